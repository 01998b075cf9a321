#!/usr/bin/env bash
# `make check`: build everything and run the whole suite. Ends with the
# line "N passed, N failed"; exits non-zero on any failure.
#
# Counted: the host unit tests (cargo test), the static checks (a
# warning-free build, clippy, rustfmt, checkpatch), every kselftest case
# run in the QEMU guest, and the guest kernel log being free of splats.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
out="$top/out"
mkdir -p "$out"

passed=0
failed=0
pass() { passed=$((passed + 1)); printf 'ok - %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'not ok - %s\n' "$1"; }
check() { # NAME COMMAND...: one result from a command's exit status
	local name=$1
	shift
	if "$@" >"$out/step.log" 2>&1; then
		pass "$name"
	else
		cat "$out/step.log"
		fail "$name"
	fi
}
finish() {
	printf '%s passed, %s failed\n' "$passed" "$failed"
	[ "$failed" -eq 0 ]
	exit
}

kdir=$(scripts/build-kernel.sh) || { fail "test kernel build"; finish; }
ksrc=$(scripts/fetch-kernel.sh 2>/dev/null)
kmake=(make -C "$kdir" M="$top" LLVM=-19)

# Host unit tests of the pure logic.
if cargo test --quiet >"$out/unit.log" 2>&1; then :; else cat "$out/unit.log"; fi
read -r unit_pass unit_fail < <(awk '/^test result:/ {
	for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed/) p += $(i-1); if ($(i) ~ /^failed/) f += $(i-1) }
} END { print p + 0, f + 0 }' "$out/unit.log")
grep -E '^test .* FAILED$' "$out/unit.log" || true
passed=$((passed + unit_pass))
failed=$((failed + unit_fail))
printf '# host unit tests: %s passed, %s failed\n' "$unit_pass" "$unit_fail"
[ "$unit_pass" -gt 0 ] || fail "host unit tests ran"

# Static checks. A forced rebuild, so that warnings show every time.
no_warnings() { # LOG: fails if the build log has a warning
	! grep -E '(^|: )warning|^WARNING' "$1"
}
build_clean() {
	"${kmake[@]}" clean >/dev/null 2>&1
	"${kmake[@]}" "$@" modules >"$out/build.log" 2>&1 || { cat "$out/build.log"; return 1; }
	no_warnings "$out/build.log"
}
# One build serves both: clippy-driver compiles the module too.
check "module builds, rustc (W=1) and clippy clean" build_clean W=1 CLIPPY=1
check "rustfmt clean" rustfmt --check --edition 2021 \
	--config-path "$ksrc/.rustfmt.toml" src/iio_dmabuf_main.rs
check "checkpatch clean (C helpers)" "$ksrc/scripts/checkpatch.pl" --no-tree \
	--quiet --ignore SPDX_LICENSE_TAG -f src/helpers.c src/helpers.h

# Userspace tests, then one guest boot running them all.
check "test programs build" make -s -C tests KSRC="$ksrc" O="$out/tests"
if [ -f iio_dmabuf.ko ] && [ -x "$out/tests/run-all.sh" ]; then
	scripts/qemu-run.sh --kdir "$kdir" --module iio_dmabuf.ko \
		--tests "$out/tests" -- /tests/run-all.sh | tee "$out/guest.log"
	guest_status=${PIPESTATUS[0]}
	summary=$(grep -aE '^run-all: [0-9]+ passed, [0-9]+ failed' "$out/guest.log" | tail -n 1)
	if [ -n "$summary" ]; then
		read -r g_pass g_fail < <(echo "$summary" | awk '{ print $2, $4 }')
		passed=$((passed + g_pass))
		failed=$((failed + g_fail))
		printf '# guest tests: %s passed, %s failed\n' "$g_pass" "$g_fail"
	else
		fail "guest test run finished"
	fi
	if [ "$guest_status" -eq 0 ] || { [ -n "$summary" ] && [ "${g_fail:-1}" -gt 0 ] &&
		! grep -aq '^qemu-run: KERNEL SPLATS' "$out/guest.log"; }; then
		pass "guest kernel log clean (no KASAN, lockdep, WARN, BUG, kmemleak)"
	else
		fail "guest kernel log clean (no KASAN, lockdep, WARN, BUG, kmemleak)"
	fi
else
	fail "guest tests (nothing to run)"
fi
finish
