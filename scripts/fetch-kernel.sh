#!/usr/bin/env bash
# Fetch and unpack the newest Debian linux-source-$KERNEL_SERIES into the
# cache, using a private apt configuration (the system's sources are never
# touched). Prints the path of the unpacked source tree on stdout.
set -euo pipefail

series=${KERNEL_SERIES:-7.3}
cache=${IIO_DMABUF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iio-dmabuf}
log() { printf '[fetch-kernel] %s\n' "$*" >&2; }

# Which suite carries which series.
case "$series" in
6.12) suite=bookworm-security; uri_path=debian-security ;;
*) suite=trixie-backports; uri_path=debian ;;
esac

mirror_host=$(grep -hoE 'https?://[^ /]+' /etc/apt/sources.list.d/*.sources \
	/etc/apt/sources.list 2>/dev/null | grep -v snapshot | head -n 1 || true)
mirror_host=${mirror_host:-http://deb.debian.org}

apt_dir="$cache/apt/$suite"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror_host/$uri_path $suite main" \
	>"$apt_dir/sources.list"
apt_opts=(
	-o "Dir::Etc::SourceList=$apt_dir/sources.list"
	-o "Dir::Etc::SourceParts=/nonexistent"
	-o "Dir::State::Lists=$apt_dir/lists"
	-o "Dir::Cache::archives=$apt_dir/archives"
	-o "Dir::Cache=$apt_dir"
	-o "APT::Get::List-Cleanup=0"
	-o "APT::Sandbox::User=root"
)

# Refresh the private index at most once a day.
stamp="$apt_dir/updated"
if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440)" ]; then
	log "updating private apt index for $suite"
	if apt-get "${apt_opts[@]}" update -qq >&2; then
		touch "$stamp"
	elif ! ls "$apt_dir"/lists/*Packages* >/dev/null 2>&1; then
		log "apt update failed and no index is cached"
		exit 1
	fi
fi

pkg="linux-source-$series"
version=$(apt-cache "${apt_opts[@]}" policy "$pkg" | awk '/Candidate:/ {print $2}')
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
	log "$pkg not found in $suite"
	exit 1
fi

src_root="$cache/src/$pkg-$version"
if [ ! -f "$src_root/.unpacked" ]; then
	deb_dir="$cache/debs"
	mkdir -p "$deb_dir"
	deb=$(ls "$deb_dir/${pkg}_${version//:/%3a}_"*.deb 2>/dev/null | head -n 1 || true)
	if [ -z "$deb" ]; then
		log "downloading $pkg $version"
		(cd "$deb_dir" && apt-get "${apt_opts[@]}" download -qq "$pkg=$version" >&2)
		deb=$(ls "$deb_dir/${pkg}_"*.deb | head -n 1)
	fi
	log "unpacking $pkg $version"
	rm -rf "$src_root"
	mkdir -p "$src_root/deb"
	dpkg-deb -x "$deb" "$src_root/deb"
	tarball=$(ls "$src_root"/deb/usr/src/linux-source-*.tar.xz)
	tar -C "$src_root" -xJf "$tarball"
	rm -rf "$src_root/deb"
	touch "$src_root/.unpacked"
fi
tree=$(ls -d "$src_root"/linux-source-*/ | head -n 1)
tree=${tree%/}
log "kernel source: $pkg $version ($(make -s -C "$tree" kernelversion 2>/dev/null))"
echo "$tree"
