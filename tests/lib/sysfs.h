/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations of lib/sysfs.c: sysfs attributes, device discovery, the
 * module, the target, running programs. Included by iio_test_util.h.
 */
#ifndef IIO_TEST_SYSFS_H
#define IIO_TEST_SYSFS_H

int sysfs_write(const char *path, const char *val);
int sysfs_read(const char *path, char *buf, size_t size);
int parse_ll(const char *s, long long *out);
int sysfs_read_ll(const char *path, long long *val);
int sysfs_write_ll(const char *path, long long val);
bool path_exists(const char *path);
bool dir_exists(const char *path);
int iio_find_device(const char *name);
int iio_wait_device(const char *name, bool present, int ms);
bool module_loaded(void);
int module_remove(const char *name);
int module_insert(const char *path, const char *params);
int module_unload(void);
int module_load(void);
int module_ensure_loaded(void);
int target_has_dma(void);
int self_dir(char *buf, size_t size);
int run_capture(char *const argv[], char *out, size_t size, int timeout_s,
		int *status);

#endif /* IIO_TEST_SYSFS_H */
