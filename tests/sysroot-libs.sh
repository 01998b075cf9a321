#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Copy dynamically linked programs of another architecture, with every
# shared library they need and their dynamic loader, out of a sysroot (a
# tree of unpacked Debian packages, scripts/fetch-arm64-userland.sh):
# what ldd does for the host's programs, from the ELF headers alone
# (readelf reads any architecture's ELF files).
#
#   sysroot-libs.sh ROOT DEST PROGRAM...
#
# PROGRAM is a path inside ROOT (e.g. /usr/bin/iio_info); it is copied to
# DEST, its libraries (the closure of DT_NEEDED, searched in ROOT's
# multiarch and plain library directories) and the loader (PT_INTERP) to
# DEST/lib. Symbolic links are resolved inside ROOT, absolute ones too.
set -eu

[ $# -ge 3 ] || { echo "usage: $0 ROOT DEST PROGRAM..." >&2; exit 2; }
root=$1
dest=$2
shift 2
die() { echo "sysroot-libs: $*" >&2; exit 1; }

# The file a path inside ROOT names, following links within ROOT.
resolve() {
	f=$root$1
	n=0
	while [ -L "$f" ]; do
		t=$(readlink "$f")
		case "$t" in
		/*) f=$root$t ;;
		*) f=$(dirname "$f")/$t ;;
		esac
		n=$((n + 1))
		[ "$n" -lt 40 ] || die "too many links: $1"
	done
	[ -f "$f" ] || return 1
	echo "$f"
}

needed() { readelf -dW "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p'; }
interp() { readelf -lW "$1" | sed -n 's/.*Requesting program interpreter: \(.*\)\]$/\1/p'; }

libdirs=$(for d in lib usr/lib; do
	for m in "$root/$d"/*-linux-gnu*; do [ -d "$m" ] && echo "/$d/${m##*/}"; done
	echo "/$d"
done)

find_lib() {
	for d in $libdirs; do
		resolve "$d/$1" && return 0
	done
	return 1
}

mkdir -p "$dest/lib"
queue=''
loader=''
for p in "$@"; do
	f=$(resolve "$p") || die "no such program in $root: $p"
	cp -f "$f" "$dest/${p##*/}"
	i=$(interp "$f")
	[ -n "$i" ] || die "$p has no program interpreter (not dynamically linked?)"
	[ -z "$loader" ] || [ "$loader" = "$i" ] || die "programs with different loaders: $loader, $i"
	loader=$i
	queue="$queue $(needed "$f")"
done

lf=$(resolve "$loader") || die "loader $loader not found in $root"
cp -f "$lf" "$dest/lib/${loader##*/}"

done_libs=' '
while [ -n "$(echo $queue)" ]; do
	set -- $queue
	lib=$1
	shift
	queue="$*"
	case "$done_libs" in *" $lib "*) continue ;; esac
	done_libs="$done_libs$lib "
	f=$(find_lib "$lib") || die "library $lib not found in $root"
	cp -f "$f" "$dest/lib/$lib"
	queue="$queue $(needed "$f")"
done
