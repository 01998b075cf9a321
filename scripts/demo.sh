#!/usr/bin/env bash
# `make run`: boot the test kernel in QEMU with the module, create a virtual
# ADC, stream from it with tools/iio_stream and print what arrived.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}

kdir=$(scripts/build-kernel.sh)
make -s -C "$kdir" M="$top" LLVM=-19 modules
mkdir -p out/demo
gcc -static -O2 -Wall -Wextra -Werror -o out/demo/iio_stream tools/iio_stream.c

seconds=${SECONDS_TO_STREAM:-5}
frequency=${FREQUENCY:-100000}
exec scripts/qemu-run.sh --kdir "$kdir" --module iio_dmabuf.ko --extra out/demo -- \
	"mkdir /sys/kernel/config/iio/devices/dmabuf_adc/adc0 &&
	 /extra/iio_stream adc0 $seconds $frequency;
	 status=\$?; rmdir /sys/kernel/config/iio/devices/dmabuf_adc/adc0; exit \$status"
