#!/usr/bin/env bash
# Build iio_dmabuf.ko against KDIR in a directory of its own: a copy of the
# module's sources (Kbuild, src/, include/, drivers/ as they are in the work tree),
# so that modules for several kernels live side by side and the tree's own
# iio_dmabuf.ko (built for the test kernel) is left alone. A module loads
# only on the kernel it was built against.
#
# usage: scripts/build-module.sh KDIR OUTDIR
# Prints the module's path (OUTDIR/iio_dmabuf.ko) on stdout.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
kdir=${1:?usage: $0 KDIR OUTDIR}
out=${2:?usage: $0 KDIR OUTDIR}
export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}

mkdir -p "$out"
out=$(cd "$out" && pwd)
# Build products are excluded: rsync neither copies nor deletes them, so
# the next build is incremental.
rsync -a --delete --exclude='*.o' --exclude='*.ko' --exclude='*.mod' \
	--exclude='*.mod.c' --exclude='*.cmd' --exclude='*.d' \
	--exclude='*.rmeta' --exclude='iio_generated.rs' \
	--exclude='modules.order' --exclude='Module.symvers' \
	"$top/Kbuild" "$top/src" "$top/include" "$top/drivers" "$out/"
rm -f "$out/iio_dmabuf.ko"
make -s -C "$kdir" M="$out" LLVM=-19 modules >&2
echo "$out/iio_dmabuf.ko"
