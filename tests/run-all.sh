#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Run every iio_dmabuf test program (busybox ash compatible).
# Expects iio_dmabuf to be loaded already (from /modules/iio_dmabuf.ko).
#
# Output: each program's KTAP output, then
#   run-all: N passed, N failed
# counted from the "ok N ..." / "not ok N ..." lines at column 0. A program
# that reports fewer results than its plan ("1..N") gets the missing ones
# counted as failures; one that exits non-zero without any "not ok" line
# counts as one more failure.

TESTDIR=$(cd "$(dirname "$0")" && pwd)
MODULE_KO=/modules/iio_dmabuf.ko
CFS_TYPE_DIR=/sys/kernel/config/iio/devices/dmabuf_adc
CFS_DAC_TYPE_DIR=/sys/kernel/config/iio/devices/dmabuf_dac
# Upper bound per program, on top of the harness's per-test timeouts.
PROG_TIMEOUT=${PROG_TIMEOUT:-1800}

# Fixed order; adc_module unloads/reloads the module, so it runs last.
TESTS="adc_configfs adc_sysfs adc_stream adc_tools dmabuf_seed dmabuf_errors dmabuf_mainline dac loopback libiio_client adc_module"

TMP=${TMPDIR:-/tmp}
mkdir -p "$TMP" 2>/dev/null
LOG="$TMP/run-all.$$.log"
RC="$TMP/run-all.$$.rc"

if ! grep -q ' configfs ' /proc/mounts 2>/dev/null; then
	mount -t configfs none /sys/kernel/config 2>/dev/null
fi

ensure_module() {
	if [ ! -d /sys/module/iio_dmabuf ]; then
		echo "# run-all: iio_dmabuf not loaded, loading $MODULE_KO"
		insmod "$MODULE_KO" || echo "# run-all: insmod failed"
	fi
}

cleanup_instances() {
	for d in "$CFS_TYPE_DIR"/* "$CFS_DAC_TYPE_DIR"/*; do
		[ -d "$d" ] || continue
		echo "# run-all: removing leftover instance ${d##*/}"
		for e in /sys/bus/iio/devices/iio:device*; do
			[ -f "$e/name" ] || continue
			if [ "$(cat "$e/name")" = "${d##*/}" ]; then
				echo 0 > "$e/buffer0/enable" 2>/dev/null
			fi
		done
		rmdir "$d" || echo "# run-all: rmdir $d failed"
	done
}

use_timeout=0
if timeout 5 true >/dev/null 2>&1; then
	use_timeout=1
fi
use_tee=0
if command -v tee >/dev/null 2>&1; then
	use_tee=1
fi

run_prog() {
	if [ $use_timeout = 1 ]; then
		timeout -s KILL "$PROG_TIMEOUT" "$@"
	else
		"$@"
	fi
}

total_pass=0
total_fail=0

for t in $TESTS; do
	echo "# run-all: ===== $t ====="
	ensure_module
	if [ ! -x "$TESTDIR/$t" ]; then
		echo "# run-all: $TESTDIR/$t missing"
		total_fail=$((total_fail + 1))
		continue
	fi

	rm -f "$LOG" "$RC"
	if [ $use_tee = 1 ]; then
		{ run_prog "$TESTDIR/$t" 2>&1; echo $? > "$RC"; } | tee "$LOG"
	else
		run_prog "$TESTDIR/$t" > "$LOG" 2>&1
		echo $? > "$RC"
		cat "$LOG"
	fi
	rc=$(cat "$RC" 2>/dev/null)
	[ -n "$rc" ] || rc=255

	pass=$(grep -c '^ok [0-9]' "$LOG")
	fail=$(grep -c '^not ok [0-9]' "$LOG")
	plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$LOG" | head -n 1)
	missing=0
	if [ -n "$plan" ] && [ "$plan" -gt $((pass + fail)) ]; then
		missing=$((plan - pass - fail))
		echo "# run-all: $t: $missing of $plan results missing"
	fi
	fail=$((fail + missing))
	if [ "$rc" != 0 ] && [ "$fail" = 0 ]; then
		echo "# run-all: $t exited with status $rc without a failed test"
		fail=1
	fi
	echo "# run-all: $t: $pass passed, $fail failed (exit status $rc)"
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))

	cleanup_instances
done

ensure_module
rm -f "$LOG" "$RC"
echo "run-all: $total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
