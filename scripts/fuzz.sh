#!/usr/bin/env bash
# `make fuzz`: run the concurrency fuzzer (tests/fuzz.c) in the QEMU guest
# for longer than make check does. FUZZ_SECONDS (default 400), FUZZ_SEED
# (default: the program draws one and prints it; pass it back to replay
# the same operations), FUZZ_MIN_OPS (default 100000: fewer operations
# fail the run), FUZZ_THREADS, FUZZ_EPOCH_OPS. The guest fails the run
# on a hang, a broken invariant or a kernel splat.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}

kdir=$(scripts/build-kernel.sh)
make -s -C "$kdir" M="$top" LLVM=-19 modules
ksrc=$(scripts/fetch-kernel.sh 2>/dev/null)
rm -rf out/fuzz
mkdir -p out/fuzz
make -s -C tests KSRC="$ksrc" O="$top/out/fuzz/build" "$top/out/fuzz/build/fuzz"
mkdir -p out/fuzz/guest
cp out/fuzz/build/fuzz out/fuzz/guest/

seconds=${FUZZ_SECONDS:-400}
min_ops=${FUZZ_MIN_OPS:-100000}
env="FUZZ_SECONDS=$seconds FUZZ_MIN_OPS=$min_ops"
for v in FUZZ_SEED FUZZ_THREADS FUZZ_EPOCH_OPS; do
	[ -z "${!v:-}" ] || env="$env $v=${!v}"
done
# The program's own epochs, teardowns and module reload take a few
# seconds each; boot and kmemleak take the rest of the margin.
exec scripts/qemu-run.sh --kdir "$kdir" --module iio_dmabuf.ko --extra out/fuzz/guest \
	--timeout $((seconds + 400)) -- "$env /extra/fuzz"
