#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Run the iio_dmabuf test programs in the guest (busybox ash compatible).
#
#   run-all.sh [PROGRAM...]
#
# The programs and their time budgets come from tests.list next to this
# script, written by tests/Makefile (the one list of test programs), one
# "PROGRAM BUDGET_SECONDS" per line, in run order. With arguments, only the
# named programs run. iio_dmabuf must be loaded already (from
# /modules/iio_dmabuf.ko). RUN_ALL_PROGRAM_ARGS, if set, is given to every
# program (kselftest harness filters, e.g. "-V udmabuf -T adc_large").
#
# Output: each program's KTAP output and a "# run-all:" verdict for it, a
# summary of everything that failed or was skipped, then the line
#   run-all: N passed, N failed, N skipped
# Exits 0 only if nothing failed and nothing was skipped.
#
# How a program's results are counted, from its KTAP lines at column 0:
# - "ok N name" is a pass, "ok N name # SKIP reason" a skip, "not ok N
#   name" a failure; any other directive on "ok" (XFAIL, XPASS, TODO) is a
#   failure too: this suite expects nothing to fail.
# - One failure each for: no plan ("1..N"), more than one plan, more
#   results than the plan, results not numbered 1, 2, 3..., a non-zero exit
#   status with no failed result, running over its budget (the program and
#   every process of its session are killed; the run goes on with the next
#   program), processes of its session left running after it exited, test
#   instances (configfs directories of dmabuf_adc or dmabuf_dac) left
#   behind, the module left unloaded. Each of these is named. Leftovers are
#   still cleaned up so that the next program starts clean.
# - Results missing from the plan count as failures, one each.

TESTDIR=$(cd "$(dirname "$0")" && pwd)
LIST=$TESTDIR/tests.list
MODULE_KO=/modules/iio_dmabuf.ko
# Overridable only to exercise this script outside the guest.
MODULE_SYSFS=${RUN_ALL_MODULE_SYSFS:-/sys/module/iio_dmabuf}
CFS_DEVICES=${RUN_ALL_CFS_DEVICES:-/sys/kernel/config/iio/devices}
IIO_DEVICES=${RUN_ALL_IIO_DEVICES:-/sys/bus/iio/devices}
INSTANCE_TYPES="dmabuf_adc dmabuf_dac"

TMP=${TMPDIR:-/tmp}
mkdir -p "$TMP" 2>/dev/null
W="$TMP/run-all.$$"
LOG=$W.log
RC=$W.rc
HUNG=$W.hung
LEFT=$W.left
STUCK=$W.stuck
TEEPID=$W.teepid
FIFO=$W.fifo
REPORT=$W.report

if [ -d /sys/kernel/config ] && ! grep -q ' configfs ' /proc/mounts 2>/dev/null; then
	mount -t configfs none /sys/kernel/config 2>/dev/null
fi

say() { echo "# run-all: $*"; }

total_pass=0
total_fail=0
total_skip=0
: >"$REPORT"

# PROGRAM REASON: one failure that is not a test result of PROGRAM.
prog_fail() {
	say "$1: FAILED: $2"
	echo "$1: $2" >>"$REPORT"
	fail=$((fail + 1))
}

module_loaded() { [ -d "$MODULE_SYSFS" ]; }

load_module() {
	module_loaded && return 0
	say "loading $MODULE_KO"
	insmod "$MODULE_KO" || say "insmod $MODULE_KO failed"
}

# The test instances that exist now, as TYPE/NAME.
instances() {
	for ty in $INSTANCE_TYPES; do
		for d in "$CFS_DEVICES/$ty"/*; do
			[ -d "$d" ] && echo "$ty/${d##*/}"
		done
	done
}

remove_instances() {
	for i in $(instances); do
		name=${i#*/}
		for e in "$IIO_DEVICES"/iio:device*; do
			[ -f "$e/name" ] || continue
			if [ "$(cat "$e/name")" = "$name" ]; then
				echo 0 >"$e/buffer0/enable" 2>/dev/null
			fi
		done
		rmdir "$CFS_DEVICES/$i" || say "rmdir $CFS_DEVICES/$i failed"
	done
}

# SID: the live (not zombie) processes of session SID, as "PID(COMM)".
# (Helpers' variables have their own prefixes: ash has no "local".)
session_procs() {
	for sp_stat in /proc/[0-9]*/stat; do
		{ read -r sp_line <"$sp_stat"; } 2>/dev/null || continue
		sp_pid=${sp_stat#/proc/}
		sp_pid=${sp_pid%/stat}
		sp_comm=${sp_line#*(}
		sp_comm=${sp_comm%)*}
		sp_sid=$1
		# shellcheck disable=SC2086 # split the fields after "(comm) "
		set -- ${sp_line##*) }
		[ "$4" = "$sp_sid" ] && [ "$1" != Z ] && echo "$sp_pid($sp_comm)"
		set -- "$sp_sid"
	done
}

# SID: SIGKILL every process of session SID, until none is left (10 s at
# most: a process stuck in the kernel cannot be killed). Fails, naming
# them, if some are left.
kill_session() {
	ks_tries=0
	while [ $ks_tries -lt 10 ]; do
		ks_procs=$(session_procs "$1")
		[ -n "$ks_procs" ] || return 0
		for ks_p in $ks_procs; do
			kill -KILL "${ks_p%%(*}" 2>/dev/null
		done
		sleep 1
		ks_tries=$((ks_tries + 1))
	done
	echo $(session_procs "$1")
	return 1
}

# SID: kill session SID. If some of it cannot be killed, it may hold the
# pipe to tee open forever: say so in $STUCK and kill tee, so that the run
# goes on.
stop_session() {
	if ! ss_stuck=$(kill_session "$1"); then
		echo "$ss_stuck" >"$STUCK"
		kill "$(cat "$TEEPID")"
	fi
}

# PID BUDGET: kill PID's session if it still runs BUDGET seconds from now,
# and leave the file $HUNG saying so.
watchdog() {
	wd_deadline=$(($(date +%s) + $2))
	while kill -0 "$1" 2>/dev/null; do
		if [ "$(date +%s)" -ge "$wd_deadline" ]; then
			echo "killing" $(session_procs "$1") >"$HUNG"
			stop_session "$1"
			return
		fi
		sleep 1
	done
}

# PROGRAM BUDGET: run PROGRAM in a session of its own, its output to the
# console and $LOG, its status to $RC. Leaves $HUNG if it ran over BUDGET
# seconds, $LEFT listing the processes it left running, $STUCK listing
# those that could not be killed.
run_prog() {
	rm -f "$LOG" "$RC" "$HUNG" "$LEFT" "$STUCK" "$TEEPID" "$FIFO"
	mkfifo "$FIFO"
	# tee and the rest are separate jobs: "wait" for tee alone returns
	# even if the rest is stuck.
	tee "$LOG" <"$FIFO" &
	echo $! >"$TEEPID"
	{
		# shellcheck disable=SC2086 # the arguments, split
		setsid "$TESTDIR/$1" $RUN_ALL_PROGRAM_ARGS </dev/null 2>&1 &
		pid=$!
		watchdog "$pid" "$2" </dev/null >/dev/null 2>&1 &
		wd=$!
		wait "$pid"
		echo $? >"$RC"
		kill "$wd" 2>/dev/null
		wait "$wd" 2>/dev/null
		if [ ! -e "$HUNG" ]; then
			# Give processes being reaped a moment before calling
			# them left behind.
			n=0
			while [ $n -lt 3 ] && [ -n "$(session_procs "$pid")" ]; do
				sleep 1
				n=$((n + 1))
			done
			session_procs "$pid" >"$LEFT"
		fi
		stop_session "$pid"
	} >"$FIFO" &
	wait "$(cat "$TEEPID")"
	rm -f "$FIFO"
}

# Counts of the KTAP output in $LOG: pass fail skip other results plans
# plan misnumbered.
ktap_counts() {
	awk '
	/^1\.\.[0-9]+/ {
		plans++
		if (plans == 1)
			plan = substr($1, 4) + 0
		next
	}
	/^not ok [0-9]+( |$)/ { fail++; number($3); next }
	/^ok [0-9]+( |$)/ {
		d = toupper($0)
		if (d ~ / # *SKIP( |$)/)
			skip++
		else if (d ~ / # *(XFAIL|XPASS|TODO)( |$)/)
			other++
		else
			pass++
		number($2)
		next
	}
	function number(n) {
		results++
		if (n + 0 != results)
			misnumbered++
	}
	END {
		print pass + 0, fail + 0, skip + 0, other + 0, results + 0,
		      plans + 0, plan + 0, misnumbered + 0
	}' "$LOG"
}

# The programs to run, with their budgets.
if [ ! -s "$LIST" ]; then
	say "no test list $LIST: nothing to run"
	echo "run-all: 0 passed, 1 failed, 0 skipped"
	exit 1
fi
PROGS=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$LIST")
if [ $# -gt 0 ]; then
	sel=''
	for a in "$@"; do
		line=$(echo "$PROGS" | awk -v p="$a" '$1 == p')
		if [ -z "$line" ]; then
			say "$a is not in $LIST"
			echo "$a: not in the test list" >>"$REPORT"
			total_fail=$((total_fail + 1))
			continue
		fi
		sel="$sel$line
"
	done
	PROGS=$sel
fi

load_module
# Read the list on fd 3: the programs' stdin stays /dev/null.
while read -r t budget extra <&3; do
	[ -n "$t" ] || continue
	echo "# run-all: ===== $t ====="
	fail=0
	pass=0
	skip=0
	if [ -n "$extra" ] || ! [ "$budget" -gt 0 ] 2>/dev/null; then
		prog_fail "$t" "bad line in $LIST: '$t $budget $extra'"
		total_fail=$((total_fail + fail))
		continue
	fi
	if [ ! -x "$TESTDIR/$t" ]; then
		prog_fail "$t" "$TESTDIR/$t missing"
		total_fail=$((total_fail + fail))
		continue
	fi
	if ! module_loaded; then
		load_module
		module_loaded || prog_fail "$t" "iio_dmabuf not loaded before it"
	fi

	start=$(date +%s)
	run_prog "$t" "$budget"
	secs=$(($(date +%s) - start))
	rc=$(cat "$RC" 2>/dev/null)
	[ -n "$rc" ] || rc=255

	# shellcheck disable=SC2046 # eight numbers
	set -- $(ktap_counts)
	pass=$1 skip=$3 other=$4 results=$5 plans=$6 plan=$7 misnumbered=$8
	fail=$(($2 + other))
	grep '^not ok [0-9]' "$LOG" | sed "s/^/$t: /" >>"$REPORT"
	grep '^ok [0-9]' "$LOG" | grep -iE ' # *(SKIP|XFAIL|XPASS|TODO)( |$)' |
		sed "s/^/$t: /" >>"$REPORT"

	if [ -e "$HUNG" ]; then
		prog_fail "$t" "HUNG: still running after its budget of ${budget}s; $(cat "$HUNG")"
	fi
	if [ "$plans" -eq 0 ]; then
		prog_fail "$t" "printed no plan (1..N)"
	elif [ "$plans" -gt 1 ]; then
		prog_fail "$t" "printed $plans plans"
	fi
	if [ "$plans" -gt 0 ] && [ "$results" -gt "$plan" ]; then
		prog_fail "$t" "printed $results results, more than its plan of $plan"
	fi
	if [ "$misnumbered" -gt 0 ]; then
		prog_fail "$t" "results not numbered 1, 2, 3..."
	fi
	if [ "$plans" -gt 0 ] && [ "$plan" -gt "$results" ]; then
		missing=$((plan - results))
		say "$t: FAILED: $missing of $plan results missing (counted as $missing failures)"
		echo "$t: $missing of $plan results missing" >>"$REPORT"
		fail=$((fail + missing))
	fi
	if [ "$rc" != 0 ] && [ "$fail" = 0 ]; then
		prog_fail "$t" "exited with status $rc without a failed test"
	fi
	if [ -s "$STUCK" ]; then
		prog_fail "$t" "processes that cannot be killed: $(cat "$STUCK")"
	fi
	if [ -s "$LEFT" ]; then
		prog_fail "$t" "left processes running: $(tr '\n' ' ' <"$LEFT")(killed)"
	fi
	left=$(instances)
	if [ -n "$left" ]; then
		prog_fail "$t" "left test instances behind: $(echo $left) (removed)"
		remove_instances
	fi
	if ! module_loaded; then
		prog_fail "$t" "left iio_dmabuf unloaded (reloaded)"
		load_module
	fi

	say "$t: $pass passed, $fail failed, $skip skipped (exit status $rc, ${secs}s of ${budget}s)"
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	total_skip=$((total_skip + skip))
done 3<<EOF
$PROGS
EOF

if [ -s "$REPORT" ]; then
	echo "# run-all: ===== what failed or was skipped ====="
	sed 's/^/# run-all: /' "$REPORT"
fi
rm -f "$LOG" "$RC" "$HUNG" "$LEFT" "$STUCK" "$TEEPID" "$FIFO" "$REPORT"
echo "run-all: $total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" = 0 ] && [ "$total_skip" = 0 ]
