/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C API surface that the module binds with bindgen: the IIO headers
 * (rust/kernel has no IIO bindings) and the module's own C helpers.
 */
#include <linux/iio/buffer.h>
#include <linux/iio/buffer_impl.h>
#include <linux/iio/iio.h>
#include <linux/iio/sw_device.h>
#include <linux/iio/types.h>

#include "helpers.h"
#include "export.h"
