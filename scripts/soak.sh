#!/usr/bin/env bash
# `make soak`: every data path at once for SOAK_MINUTES (default 10) in the
# QEMU guest (tests/soak.c): the seed and mainline ADC -> DAC loopbacks,
# two fileio readers and a mainline reader. Prints the counters as it
# goes; fails on any lost, duplicated or mismatched scan, and on a kernel
# splat.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}

kdir=$(scripts/build-kernel.sh)
make -s -C "$kdir" M="$top" LLVM=-19 modules
ksrc=$(scripts/fetch-kernel.sh 2>/dev/null)
rm -rf out/soak
mkdir -p out/soak
make -s -C tests KSRC="$ksrc" O="$top/out/soak/build" "$top/out/soak/build/soak"
mkdir -p out/soak/guest
cp out/soak/build/soak out/soak/guest/

minutes=${SOAK_MINUTES:-10}
exec scripts/qemu-run.sh --kdir "$kdir" --module iio_dmabuf.ko --extra out/soak/guest \
	--timeout $((minutes * 60 + 400)) -- "SOAK_MINUTES=$minutes /extra/soak"
