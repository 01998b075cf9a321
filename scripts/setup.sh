#!/usr/bin/env bash
# Install everything the build and the QEMU harness need, skipping what is
# already present. Safe to run again and again.
set -euo pipefail

BINDGEN_VERSION=0.73.2
LLVM_VERSION=19

log() { printf '[setup] %s\n' "$*" >&2; }

debian_packages=(
	"clang-$LLVM_VERSION" "lld-$LLVM_VERSION" "llvm-$LLVM_VERSION"
	"libclang-$LLVM_VERSION-dev" flex bison bc libelf-dev libssl-dev cpio
	busybox-static qemu-system-x86 xz-utils make gcc libc6-dev rsync kmod
	libiio-utils
	# the versal target (arm64): QEMU's xlnx-versal-virt and a cross
	# compiler for the static test programs (its userland comes from
	# scripts/fetch-arm64-userland.sh)
	qemu-system-arm gcc-aarch64-linux-gnu libc6-dev-arm64-cross
)

missing=()
for pkg in "${debian_packages[@]}"; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
	log "installing Debian packages: ${missing[*]}"
	sudo_cmd=()
	[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
	"${sudo_cmd[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v rustup >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/rustup" ]; then
	export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v rustup >/dev/null || { log "rustup not found"; exit 1; }

if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
	log "adding rust-src"
	rustup component add rust-src
fi
for comp in clippy rustfmt; do
	rustup component list --installed 2>/dev/null | grep -q "^$comp" ||
		rustup component add "$comp"
done

if ! bindgen --version 2>/dev/null | grep -q "$BINDGEN_VERSION"; then
	log "installing bindgen-cli $BINDGEN_VERSION"
	cargo install --quiet --locked --version "$BINDGEN_VERSION" bindgen-cli
fi
log "toolchain ready: $(rustc --version), $(bindgen --version), clang-$LLVM_VERSION"
