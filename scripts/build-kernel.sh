#!/usr/bin/env bash
# Build (or reuse from the cache) the QEMU test kernel for $KERNEL_SERIES.
# TARGET=x86 (default) builds an x86_64 kernel from qemu/kernel.config;
# TARGET=versal an arm64 one (ARCH=arm64, for QEMU's xlnx-versal-virt),
# from the same fragment with qemu/kernel-versal.config overriding the
# machine's lines (a separate cache entry).
# With PERF=1, the performance kernel instead: the same fragment with the
# lines of qemu/perf.config overriding the debugging ones (a separate
# cache entry; the test kernel stays the default).
# The cache key covers the kernel version, the config fragment, this script
# and the toolchain, so any change to those rebuilds. Prints the build
# directory (usable as KDIR for the module) on stdout.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
series=${KERNEL_SERIES:-7.3}
cache=${IIO_DMABUF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iio-dmabuf}
fragment="$top/qemu/kernel.config"
log() { printf '[build-kernel] %s\n' "$*" >&2; }

# Effective fragments are generated: the dropped-line check below checks
# what the kernel really asks for.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# overlay BASE OVER OUT: BASE minus every line naming a symbol that OVER's
# config lines ("CONFIG_X=...", "# CONFIG_X is not set", "#drop CONFIG_X")
# name, then OVER without its "#drop" lines.
overlay() {
	local syms
	syms=$(sed -nE 's/^(#drop |# )?(CONFIG_[A-Za-z0-9_]+)([= ].*)?$/\2/p' "$2" | sort -u)
	if [ -n "$syms" ]; then
		grep -vwF -e "$syms" "$1" >"$3" || true
	else
		cp "$1" "$3"
	fi
	grep -v '^#drop ' "$2" >>"$3"
}

target=${TARGET:-x86}
# Not for the kernel's make: bindgen takes $TARGET for a target triple
# (the cargo build-script convention), and the Rust check fails.
unset TARGET
case "$target" in
x86) arch_args=() image=bzImage ;;
versal)
	arch_args=(ARCH=arm64) image=Image
	overlay "$fragment" "$top/qemu/kernel-versal.config" "$tmp/versal.config"
	fragment=$tmp/versal.config
	;;
*) log "unknown TARGET '$target' (x86 or versal)"; exit 2 ;;
esac

flavour=test
if [ "${PERF:-0}" = 1 ]; then
	# The target's fragment minus every symbol perf.config names, then
	# perf.config.
	flavour=perf
	overlay "$fragment" "$top/qemu/perf.config" "$tmp/perf.config"
	fragment=$tmp/perf.config
fi
jobs=${JOBS:-$(($(nproc) + 1))}
export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}

src=$("$here/fetch-kernel.sh")
kver=$(make -s -C "$src" kernelversion)

key=$( {
	echo "$kver $target $flavour"
	cat "$fragment" "$here/build-kernel.sh"
	rustc --version
	bindgen --version
	clang-19 --version | head -n 1
} | sha256sum | cut -c1-16)
# linux-VERSION[-versal][-perf]-KEY
name=linux-$kver
[ "$target" = x86 ] || name=$name-$target
[ "$flavour" = test ] || name=$name-$flavour
out="$cache/build/$name-$key"

if [ -f "$out/.built" ]; then
	log "reusing cached $target $flavour kernel $kver ($out)"
	echo "$out"
	exit 0
fi

log "building $target $flavour kernel $kver into $out (first time: several minutes)"
mkdir -p "$out"
kmake=(make -C "$src" O="$out" "${arch_args[@]}" LLVM=-19 -j"$jobs")
"${kmake[@]}" -s tinyconfig >&2
"$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "$fragment" >/dev/null
"${kmake[@]}" -s olddefconfig >&2

# A line of the fragment that olddefconfig dropped means a missing
# dependency: fail loudly instead of booting a kernel without it.
dropped=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*) want=$line ;;
	"# CONFIG_"*" is not set") want=$line ;;
	*) continue ;;
	esac
	if ! grep -qxF "$want" "$out/.config"; then
		log "config fragment line not honoured: $want"
		dropped=1
	fi
done <"$fragment"
[ "$dropped" -eq 0 ] || exit 1

"${kmake[@]}" -s "$image" modules >&2
"${kmake[@]}" -s INSTALL_MOD_PATH="$out/modinst" modules_install >&2
touch "$out/.built"
log "$target kernel $kver built"
echo "$out"
