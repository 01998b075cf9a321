#!/usr/bin/env bash
# `make bench`: stream from a virtual ADC through read() and through the
# DMABUF interface in the QEMU guest and print the figures (tools/iio_bench).
# The guest runs under TCG with KASAN and lockdep: compare the paths with
# each other, not with real hardware.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}

kdir=$(scripts/build-kernel.sh)
make -s -C "$kdir" M="$top" LLVM=-19 modules
ksrc=$(scripts/fetch-kernel.sh 2>/dev/null)
mkdir -p out/bench/include/linux/iio
cp "$ksrc"/include/uapi/linux/iio/*.h out/bench/include/linux/iio/
gcc -static -O2 -Wall -Wextra -Werror -Iout/bench/include -Iinclude/uapi \
	-o out/bench/iio_bench tools/iio_bench.c

seconds=${BENCH_SECONDS:-5}
frequency=${FREQUENCY:-1000000}
exec scripts/qemu-run.sh --kdir "$kdir" --module iio_dmabuf.ko --extra out/bench -- \
	"mkdir /sys/kernel/config/iio/devices/dmabuf_adc/adc0 &&
	 /extra/iio_bench adc0 $seconds $frequency;
	 status=\$?; rmdir /sys/kernel/config/iio/devices/dmabuf_adc/adc0; exit \$status"
