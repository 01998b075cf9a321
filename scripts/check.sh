#!/usr/bin/env bash
# `make check`: build everything and run the whole suite. Ends with the
# line "N passed, N failed, N skipped"; exits non-zero if anything failed
# or was skipped (every feature is configured in the test kernel, so a
# skip means a test did not run what it exists to run).
#
# Counted: the host unit tests (cargo test), the static checks (a
# warning-free build, clippy, rustfmt, checkpatch), the test programs'
# build, every kselftest case run in the QEMU guest (as counted by
# tests/run-all.sh) and the guest kernel log (clean, and read to its end).
# README.md, "How make check counts", describes each rule.
#
# TARGET=x86 or TARGET=versal runs one target's kernel, module, test
# programs and guest; without TARGET both run, one after the other, and
# the closing line counts both. The host unit tests, rustfmt and
# checkpatch do not depend on the target and run once. versal goes first:
# the module is built in the source tree, and this leaves the tree's
# iio_dmabuf.ko built for the default target, x86.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
out="$top/out"
mkdir -p "$out"

# Time the guest may take beyond the sum of the test programs' budgets:
# boot, module load, the kmemleak scans, power-off.
GUEST_MARGIN=300

passed=0
failed=0
skipped=0
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
	if [ "$skipped" -gt 0 ]; then
		printf '# %s skipped: a skip fails the run (every feature is configured in the test kernel)\n' \
			"$skipped"
	fi
	printf '%s passed, %s failed, %s skipped\n' "$passed" "$failed" "$skipped"
	[ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ]
	exit
}

case "${TARGET:-}" in
'') targets=(versal x86) ;;
x86 | versal) targets=("$TARGET") ;;
*) echo "check: unknown TARGET '$TARGET' (x86 or versal; empty for both)" >&2; exit 2 ;;
esac
# Not for the builds: bindgen takes $TARGET for a target triple.
unset TARGET
ksrc=$(scripts/fetch-kernel.sh) || { fail "kernel source fetched"; finish; }

# Host unit tests of the pure logic. Each test is a result; cargo's exit
# status counts too (a build failure prints no test at all).
cargo test >"$out/unit.log" 2>&1
unit_status=$?
read -r unit_pass unit_fail unit_skip < <(awk '/^test result:/ {
	for (i = 2; i <= NF; i++) {
		if ($(i) ~ /^passed/) p += $(i-1)
		if ($(i) ~ /^failed/) f += $(i-1)
		if ($(i) ~ /^ignored/) s += $(i-1)
	}
} END { print p + 0, f + 0, s + 0 }' "$out/unit.log")
grep -E '^test .* (FAILED|ignored)$' "$out/unit.log"
passed=$((passed + unit_pass))
failed=$((failed + unit_fail))
skipped=$((skipped + unit_skip))
printf '# host unit tests: %s passed, %s failed, %s skipped (ignored)\n' \
	"$unit_pass" "$unit_fail" "$unit_skip"
if [ "$unit_status" -ne 0 ] && [ "$unit_fail" -eq 0 ]; then
	tail -n 30 "$out/unit.log"
	fail "host unit tests: cargo test exited with status $unit_status"
elif [ "$unit_pass" -eq 0 ]; then
	fail "host unit tests ran"
fi

# Static checks that do not depend on the target.
check "rustfmt clean" rustfmt --check --edition 2021 \
	--config-path "$ksrc/.rustfmt.toml" src/iio_dmabuf_main.rs
check "checkpatch clean (C helpers)" "$ksrc/scripts/checkpatch.pl" --no-tree \
	--quiet --ignore SPDX_LICENSE_TAG -f src/helpers.c src/helpers.h

no_warnings() { # LOG: fails if the build log has a warning
	! grep -E '(^|: )warning|^WARNING' "$1"
}
# A forced rebuild, so that warnings show every time. The old module goes
# first: a failed build must not leave one to boot. The module is built
# in the source tree for one target at a time (Kbuild rebuilds every
# object whose command line changed when the target does).
build_clean() {
	rm -f iio_dmabuf.ko iio_dmabuf_test.ko
	"${kmake[@]}" clean >/dev/null 2>&1
	"${kmake[@]}" "$@" modules >"$tout/build.log" 2>&1 || { cat "$tout/build.log"; return 1; }
	no_warnings "$tout/build.log"
}

# guest_results LABEL LOG: counts the run-all summary of a guest boot's
# LOG, and whether its kernel log was clean and complete.
guest_results() {
	local label=$1 log=$2 summary g_pass g_fail g_skip
	summary=$(grep -aE '^run-all: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -n 1)
	if [ -n "$summary" ]; then
		read -r g_pass g_fail g_skip < <(echo "$summary" | awk '{ print $2, $4, $6 }')
		passed=$((passed + g_pass))
		failed=$((failed + g_fail))
		skipped=$((skipped + g_skip))
		printf '# %s guest tests: %s passed, %s failed, %s skipped\n' "$label" "$g_pass" "$g_fail" "$g_skip"
	else
		fail "$label: guest test run finished"
	fi
	# qemu-run says "kernel log clean" only when the guest reached its end,
	# kmemleak scanned and no kernel report appeared.
	if grep -aqx 'qemu-run: kernel log clean' "$log"; then
		pass "$label: guest kernel log clean and complete (no KASAN, lockdep, WARN, BUG, hang, kmemleak)"
	else
		fail "$label: guest kernel log clean and complete (no KASAN, lockdep, WARN, BUG, hang, kmemleak)"
	fi
}

# run_target TARGET: the target's kernel, module build (with the static
# checks of the compilers), test programs and guest run. The x86 target
# keeps its files in out/, the versal one in out/versal/. Results are
# named "TARGET: ...".
run_target() {
	local t=$1 kdir tout arch=() tests_args=() start=$SECONDS
	case "$t" in
	x86) tout=$out ;;
	versal)
		tout=$out/versal
		arch=(ARCH=arm64)
		local sysroot
		sysroot=$(scripts/fetch-arm64-userland.sh) ||
			{ fail "$t: arm64 userland fetched (busybox, libiio)"; return; }
		tests_args=(CC=aarch64-linux-gnu-gcc LIBIIO_SYSROOT="$sysroot")
		;;
	esac
	mkdir -p "$tout"
	printf '# target %s\n' "$t"
	kdir=$(TARGET=$t scripts/build-kernel.sh) || { fail "$t: test kernel build"; return; }
	kmake=(make -C "$kdir" M="$top" "${arch[@]}" LLVM=-19)

	# One build serves both: clippy-driver compiles the module too.
	check "$t: module builds, rustc (W=1) and clippy clean" build_clean W=1 CLIPPY=1

	# The test programs, built into an emptied directory: nothing from an
	# earlier build can run.
	rm -rf "$tout/tests"
	check "$t: test programs build" make -s -C tests KSRC="$ksrc" O="$tout/tests" \
		"${tests_args[@]}"

	# One guest boot running them all, if everything it needs was just built.
	if [ ! -f iio_dmabuf.ko ] || [ ! -f iio_dmabuf_test.ko ]; then
		fail "$t: guest tests not run: the module did not build"
		return
	fi
	if [ ! -x "$tout/tests/run-all.sh" ] || [ ! -s "$tout/tests/tests.list" ]; then
		fail "$t: guest tests not run: the test programs did not build"
		return
	fi
	# Each program has its budget (tests/Makefile); the guest, their sum and
	# a margin.
	local budget guest_timeout
	budget=$(awk '!/^#/ && NF { s += $2 } END { print s + 0 }' "$tout/tests/tests.list")
	guest_timeout=$((budget + GUEST_MARGIN))
	printf '# %s guest time budget: %ss (test programs %ss, margin %ss)\n' \
		"$t" "$guest_timeout" "$budget" "$GUEST_MARGIN"
	scripts/qemu-run.sh --target "$t" --kdir "$kdir" --module iio_dmabuf.ko \
		--extra-module iio_dmabuf_test.ko \
		--timeout "$guest_timeout" --tests "$tout/tests" -- /tests/run-all.sh |
		tee "$tout/guest.log"
	guest_results "$t" "$tout/guest.log"

	# versal: a second boot with every DMA mapping bounced (swiotlb=force).
	# QEMU emulates no cache, so a cache maintenance step the module left
	# out cannot corrupt data in the first boot; through a bounce buffer
	# it does (the sync is the copy). dma_coherency there, but not
	# udmabuf (its begin_cpu_access copies its own stale mapping back over
	# what the device wrote: a kernel limit), nor 8 MiB blocks, nor the
	# loopback (its blocks are mapped for two channels at once): the bounce
	# buffer has 1 MiB on this machine.
	if [ "$t" = versal ]; then
		scripts/qemu-run.sh --target "$t" --kdir "$kdir" --module iio_dmabuf.ko \
			--timeout "$guest_timeout" --tests "$tout/tests" --append swiotlb=force -- \
			"RUN_ALL_PROGRAM_ARGS='-V udmabuf -T adc_large -T dac_large -T loopback' /tests/run-all.sh dma_coherency" |
			tee "$tout/guest-bounce.log"
		guest_results "$t (swiotlb=force)" "$tout/guest-bounce.log"
	fi
	printf '# target %s took %ss (kernel, module, test programs, guest)\n' "$t" $((SECONDS - start))
}

for t in "${targets[@]}"; do
	run_target "$t"
done
finish
