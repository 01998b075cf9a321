#!/usr/bin/env bash
# Fetch the arm64 userland of the versal guest from Debian, with a private
# apt configuration (the system's sources, architectures and dpkg state
# are never touched): busybox-static (the initramfs) and libiio-utils with
# every library it needs (tests/libiio_client). apt resolves the
# dependencies against an empty dpkg status, downloads the .debs into the
# cache and they are unpacked into one directory tree, a sysroot for the
# guest's dynamically linked tools. Prints that directory on stdout.
#
# The suite is the host's Debian release (so both targets run the same
# libiio and busybox versions); ARM64_USERLAND_SUITE overrides it.
set -euo pipefail

cache=${IIO_DMABUF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iio-dmabuf}
log() { printf '[fetch-arm64-userland] %s\n' "$*" >&2; }

packages=(busybox-static libiio-utils)

suite=${ARM64_USERLAND_SUITE:-}
if [ -z "$suite" ]; then
	suite=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
	suite=${suite:-bookworm}
fi
mirror_host=$(grep -hoE 'https?://[^ /]+' /etc/apt/sources.list.d/*.sources \
	/etc/apt/sources.list 2>/dev/null | grep -v snapshot | head -n 1 || true)
mirror_host=${mirror_host:-http://deb.debian.org}

apt_dir="$cache/apt/$suite-arm64"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/empty"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror_host/debian $suite main" \
	>"$apt_dir/sources.list"
: >"$apt_dir/status"
apt_opts=(
	-o "Dir::Etc::SourceList=$apt_dir/sources.list"
	-o "Dir::Etc::SourceParts=$apt_dir/empty"
	-o "Dir::Etc::Preferences=$apt_dir/empty/none"
	-o "Dir::Etc::PreferencesParts=$apt_dir/empty"
	-o "Dir::State::Lists=$apt_dir/lists"
	-o "Dir::State::status=$apt_dir/status"
	-o "Dir::Cache::archives=$apt_dir/archives"
	-o "Dir::Cache=$apt_dir"
	-o "APT::Architecture=arm64"
	-o "APT::Architectures=arm64"
	-o "APT::Get::List-Cleanup=0"
	-o "APT::Sandbox::User=root"
)

# Refresh the private index at most once a day.
stamp="$apt_dir/updated"
if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440)" ]; then
	log "updating private apt index for $suite (arm64)"
	if apt-get "${apt_opts[@]}" update -qq >&2; then
		touch "$stamp"
	elif ! ls "$apt_dir"/lists/*Packages* >/dev/null 2>&1; then
		log "apt update failed and no index is cached"
		exit 1
	fi
fi

# The packages apt would install on an empty system: the dependency
# closure, as name=version (the tree is keyed by it).
closure=$(apt-get "${apt_opts[@]}" install -s --no-install-recommends "${packages[@]}" |
	sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) .*/\1=\2/p' | sort)
[ -n "$closure" ] || { log "apt found nothing to install for ${packages[*]}"; exit 1; }
key=$(printf '%s\n' "$closure" | sha256sum | cut -c1-16)
root="$cache/userland/arm64-$suite-$key"

if [ ! -f "$root/.unpacked" ]; then
	log "downloading ${packages[*]} and their dependencies for arm64 ($suite)"
	# Download-only takes no dpkg lock and installs nothing.
	apt-get "${apt_opts[@]}" install -d -y -qq --no-install-recommends \
		"${packages[@]}" >&2
	rm -rf "$root"
	mkdir -p "$root"
	while IFS== read -r name version; do
		deb=$(ls "$apt_dir/archives/${name}_${version//:/%3a}_"*.deb 2>/dev/null | head -n 1 || true)
		[ -n "$deb" ] || { log "not downloaded: $name $version"; exit 1; }
		dpkg-deb -x "$deb" "$root"
	done <<<"$closure"
	[ -x "$root/bin/busybox" ] || { log "no bin/busybox in $root"; exit 1; }
	touch "$root/.unpacked"
fi
log "arm64 userland ($suite): $root"
echo "$root"
