#!/usr/bin/env bash
# Build (or reuse from the cache) the QEMU test kernel for $KERNEL_SERIES.
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
flavour=test
if [ "${PERF:-0}" = 1 ]; then
	# Effective fragment: kernel.config minus every symbol perf.config
	# names, then perf.config. Generated, so the dropped-line check below
	# checks what the perf kernel really asks for.
	flavour=perf
	perf="$top/qemu/perf.config"
	syms=$(grep -oE 'CONFIG_[A-Z0-9_]+' "$perf" | sort -u)
	fragment=$(mktemp)
	trap 'rm -f "$fragment"' EXIT
	grep -vwF -e "$syms" "$top/qemu/kernel.config" >"$fragment" || true
	grep -v '^#drop ' "$perf" >>"$fragment"
fi
jobs=${JOBS:-$(($(nproc) + 1))}
export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
log() { printf '[build-kernel] %s\n' "$*" >&2; }

src=$("$here/fetch-kernel.sh")
kver=$(make -s -C "$src" kernelversion)

key=$( {
	echo "$kver $flavour"
	cat "$fragment" "$here/build-kernel.sh"
	rustc --version
	bindgen --version
	clang-19 --version | head -n 1
} | sha256sum | cut -c1-16)
out="$cache/build/linux-$kver-$key"
[ "$flavour" = test ] || out="$cache/build/linux-$kver-$flavour-$key"

if [ -f "$out/.built" ]; then
	log "reusing cached $flavour kernel $kver ($out)"
	echo "$out"
	exit 0
fi

log "building $flavour kernel $kver into $out (first time: several minutes)"
mkdir -p "$out"
kmake=(make -C "$src" O="$out" LLVM=-19 -j"$jobs")
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

"${kmake[@]}" -s bzImage modules >&2
"${kmake[@]}" -s INSTALL_MOD_PATH="$out/modinst" modules_install >&2
touch "$out/.built"
log "kernel $kver built"
echo "$out"
