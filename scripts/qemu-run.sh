#!/usr/bin/env bash
# Boot the test kernel in QEMU with a throw-away initramfs, load the given
# modules, run CMD in the guest and fail on a non-zero status or on any
# kernel splat (WARN, BUG, KASAN, lockdep, kmemleak, ...) in the console log.
#
# usage: scripts/qemu-run.sh (--kdir KDIR | --kernel test|perf)
#            [--module FILE.ko]... [--extra-module FILE.ko]...
#            [--tests DIR] [--extra DIR]
#            [--timeout SECS] [--log FILE] [--mem MIB] [--cpus N] [--[no-]tsc]
#            [--append ARGS] -- CMD...
#
# --kernel test|perf boots the cached test or performance kernel
# (scripts/build-kernel.sh, PERF=1 for perf; built first if missing)
# instead of KDIR; the modules given must be built for it. --mem sets the
# guest's memory (default 1024 MiB); --append adds kernel command-line
# arguments. A kernel built without kmemleak (the performance kernel) is
# not scanned for leaks: the verdict then says so instead of failing.
#
# The x86 guest has 2 CPUs and the host's TSC by default (tests of
# concurrent calls need two CPUs to race; timing wants a fine clock).
# --cpus N gives it N CPUs as N sockets: our kernels have no ACPI and
# find CPUs in the BIOS's MP table, which lists one core per socket, so
# a plain "-smp 2" boots them on one CPU. The TSC: the guest is told the
# host's TSC frequency (tsc_early_khz=, tsc=reliable): without ACPI it
# has no timer to calibrate the TSC against and falls back to the jiffies
# clocksource (4 ms steps at HZ=250); under TCG the guest's TSC counts at
# the host's rate. --tsc is accepted for older callers (it is the
# default); --no-tsc leaves the guest on jiffies.
#
# --target x86|versal (default: $TARGET, else x86) picks the machine:
# x86 boots bzImage on qemu-system-x86_64 (console ttyS0); versal boots
# the arm64 Image on qemu-system-aarch64 -M xlnx-versal-virt (two
# Cortex-A72, PL011 console ttyAMA0, the ZynqMP DMA engine), always under
# TCG, with the arm64 busybox of scripts/fetch-arm64-userland.sh. KDIR,
# --kernel and the modules must be built for that target.
#
# --module files are copied to /modules/ and loaded in order at boot;
# --extra-module files are only copied there, for the tests to load
# (tests/export_driver.c loads and unloads iio_dmabuf_test.ko itself).
#
# Environment: QEMU_ACCEL=tcg (default) | kvm | auto (probe KVM once, cache
# the verdict, fall back to TCG); IIO_DMABUF_CACHE (cache directory).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
cache=${IIO_DMABUF_CACHE:-$HOME/.cache/iio-dmabuf}

log() { printf 'qemu-run: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 2
}
usage() {
	echo "usage: $0 (--kdir KDIR | --kernel test|perf) [--target x86|versal] [--module FILE.ko]... [--extra-module FILE.ko]... [--tests DIR] [--extra DIR] [--timeout SECS] [--log FILE] [--mem MIB] [--cpus N] [--[no-]tsc] [--append ARGS] -- CMD..." >&2
	exit 2
}

kdir='' tests='' extra='' timeout_s=900 logfile='' mem=1024 append='' kernel=''
cpus='' tsc=''
modules=()
extra_modules=()
target=${TARGET:-x86}
while [ $# -gt 0 ]; do
	case "$1" in
	--kdir) kdir=${2:?}; shift 2 ;;
	--target) target=${2:?}; shift 2 ;;
	--kernel) kernel=${2:?}; shift 2 ;;
	--mem) mem=${2:?}; shift 2 ;;
	--append) append=${2:?}; shift 2 ;;
	--cpus) cpus=${2:?}; shift 2 ;;
	--tsc) tsc=1; shift ;;
	--no-tsc) tsc=0; shift ;;
	--module) modules+=("${2:?}"); shift 2 ;;
	--extra-module) extra_modules+=("${2:?}"); shift 2 ;;
	--tests) tests=${2:?}; shift 2 ;;
	--extra) extra=${2:?}; shift 2 ;;
	--timeout) timeout_s=${2:?}; shift 2 ;;
	--log) logfile=${2:?}; shift 2 ;;
	--) shift; break ;;
	*) usage ;;
	esac
done
[ $# -gt 0 ] || usage
case "$target" in
x86 | versal) export TARGET=$target ;; # for build-kernel.sh (--kernel)
*) die "--target must be x86 or versal" ;;
esac
case "$kernel" in
'') ;;
test) kdir=$("$here/build-kernel.sh") ;;
perf) kdir=$(PERF=1 "$here/build-kernel.sh") ;;
*) die "--kernel must be test or perf" ;;
esac
[ -n "$kdir" ] || usage
case "$mem" in
'' | *[!0-9]*) die "--mem takes a size in MiB" ;;
esac
case "$cpus" in
'') smp="2,sockets=2,cores=1,threads=1" ;;
*[!0-9]* | 0) die "--cpus takes a number of CPUs" ;;
*) smp="$cpus,sockets=$cpus,cores=1,threads=1" ;;
esac
cmd="$*"

# The machine: kernel image, QEMU and machine, console, userland.
case "$target" in
x86)
	bzimage=$kdir/arch/x86/boot/bzImage
	qemu_machine=(qemu-system-x86_64)
	console=ttyS0
	;;
versal)
	bzimage=$kdir/arch/arm64/boot/Image
	qemu_machine=(qemu-system-aarch64 -M xlnx-versal-virt)
	console=ttyAMA0
	[ -z "$tsc" ] || die "--tsc and --no-tsc are for the x86 target"
	[ -z "$cpus" ] || die "--cpus is for the x86 target"
	# The machine's fixed CPUs: two Cortex-A72 (Linux's) and two
	# Cortex-R5F (held in reset).
	smp=4
	# An arm64 guest on this host is emulated whatever QEMU_ACCEL says.
	QEMU_ACCEL=tcg
	;;
esac
[ -f "$bzimage" ] || die "no kernel image: $bzimage"
kver=$(cat "$kdir/include/config/kernel.release")
moddir=$kdir/modinst/lib/modules/$kver
[ -d "$moddir" ] || die "no installed modules: $moddir"
if [ "$target" = versal ]; then
	busybox=$("$here/fetch-arm64-userland.sh")/bin/busybox
else
	busybox=$(command -v busybox || true)
fi
[ -n "$busybox" ] || die "busybox not found (apt-get install busybox-static)"
for m in "${modules[@]}" "${extra_modules[@]}"; do [ -f "$m" ] || die "no such module: $m"; done
for d in "$tests" "$extra"; do [ -z "$d" ] || [ -d "$d" ] || die "no such directory: $d"; done

work=$(mktemp -d "${TMPDIR:-/tmp}/qemu-run.XXXXXX")
trap 'rm -rf "$work"' EXIT
[ -n "$logfile" ] || logfile=$work/console.log
: >"$logfile"

# --- initramfs -------------------------------------------------------------
root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,modules,tests,extra} \
	"$root/lib/modules"
cp "$busybox" "$root/bin/busybox"
install -m 0755 "$top/qemu/init" "$root/init"
cp -a "$moddir" "$root/lib/modules/"
# The build/source links point at the host tree: useless in the guest.
rm -f "$root/lib/modules/$kver/build" "$root/lib/modules/$kver/source"
: >"$root/modules/order"
for m in "${modules[@]}"; do
	cp "$m" "$root/modules/"
	basename "$m" >>"$root/modules/order"
done
for m in "${extra_modules[@]}"; do
	cp "$m" "$root/modules/"
done
[ -z "$tests" ] || cp -a "$tests/." "$root/tests/"
[ -z "$extra" ] || cp -a "$extra/." "$root/extra/"
printf '%s\n' "$cmd" >"$root/cmd"
# Running as root, give the kernel a console node for init's first output;
# init reopens /dev/console from devtmpfs anyway.
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) |
	gzip -1 >"$work/initramfs.cpio.gz"

# --- QEMU ------------------------------------------------------------------
# stdin is /dev/null and the monitor is off so nothing waits on a terminal;
# -no-reboot turns the guest's final reboot (or a panic, with panic=-1)
# into a QEMU exit.
# The host's TSC frequency in kHz: the kernel's calibration of it, or
# what /proc/cpuinfo says.
host_tsc_khz() {
	local mhz
	mhz=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Refined TSC clocksource calibration: \([0-9.]*\) MHz.*/\1/p' | tail -n 1)
	[ -n "$mhz" ] || mhz=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Detected \([0-9.]*\) MHz processor.*/\1/p' | tail -n 1)
	[ -n "$mhz" ] || mhz=$(awk -F': *' '/^cpu MHz/ { print $2; exit }' /proc/cpuinfo)
	[ -n "$mhz" ] || die "--tsc: cannot tell the host's TSC frequency"
	awk -v m="$mhz" 'BEGIN { printf "%d\n", m * 1000 }'
}
[ "$target" != x86 ] || [ "$tsc" = 0 ] || append="tsc_early_khz=$(host_tsc_khz) tsc=reliable${append:+ $append}"
cmdline="console=$console loglevel=7 panic=-1 printk.time=1${append:+ $append}"
# No NIC: the guest needs none and it saves the iPXE option ROM's boot time.
qemu_base=("${qemu_machine[@]}" -m "$mem" -smp "$smp" -nographic -no-reboot
	-monitor none -serial stdio -nic none
	-kernel "$bzimage" -initrd "$work/initramfs.cpio.gz")

# A KVM boot that hangs on this host would waste the whole timeout: boot
# once for 25 s, look for init's marker, and remember the answer.
kvm_probe() {
	local verdict=$cache/kvm-probe
	if [ ! -f "$verdict" ]; then
		local out=tcg
		log "probing KVM (once, up to 25 s; verdict cached in $verdict)"
		if [ -w /dev/kvm ] &&
			timeout -k 5 25 "${qemu_base[@]}" -accel kvm \
				-append "$cmdline qemu_run.probe" </dev/null 2>&1 |
			grep -q '@@qemu-run: init started'; then
			out=kvm
		fi
		mkdir -p "$cache"
		echo "$out" >"$verdict"
	fi
	cat "$verdict"
}

case "${QEMU_ACCEL:-tcg}" in
tcg | kvm) accel=${QEMU_ACCEL:-tcg} ;;
auto) accel=$(kvm_probe) ;;
*) die "QEMU_ACCEL must be tcg, kvm or auto" ;;
esac

# A kernel without kmemleak (the performance kernel) cannot be scanned:
# its log is still checked for every other report.
kmemleak_configured=1
if [ -f "$kdir/.config" ] && ! grep -qx 'CONFIG_DEBUG_KMEMLEAK=y' "$kdir/.config"; then
	kmemleak_configured=0
fi

log "kernel $kver ($bzimage), accel $accel, ${mem} MiB, -smp $smp, timeout ${timeout_s}s"
log "command: $cmd"

# Strip the serial CRs so the log greps cleanly; sed -u keeps streaming.
set +e
timeout -k 10 "$timeout_s" "${qemu_base[@]}" -accel "$accel" \
	-append "$cmdline" </dev/null 2>&1 |
	sed -u 's/\r$//' | tee "$logfile"
qemu_rc=${PIPESTATUS[0]}
set -e

# --- verdict ---------------------------------------------------------------
# The kernel log passes only if the guest reached its end: CMD returned
# (exit-status), the kmemleak scan ran ("kmemleak scanned") and init got
# to its last line ("done"); and if no kernel report is in it. Only kernel
# log lines (printk timestamp, possibly glued after guest output without a
# newline) and init's kmemleak dump count as reports: the command's own
# output may well say "BUG" or "WARNING". The hang detectors (hung tasks,
# soft and hard lockups, RCU stalls) are reports too.
splat_re='BUG:|KASAN|WARNING:|possible circular locking dependency|possible recursive locking|inconsistent lock state|suspicious RCU usage|INFO: lockdep|unreferenced object|suspected memory leak|Oops|refcount_t|UBSAN|sleeping function called from invalid context|Kernel panic|general protection fault|blocked for more than|INFO: task |hung_task|soft lockup|hard LOCKUP|watchdog: BUG|self-detected stall|detected stalls? on CPU|rcu: INFO|kthread starved|Call Trace:|printk messages dropped'
# init echoes CMD itself: that line is the command's text, not a finding.
console=$(grep -v '^@@qemu-run: running: ' "$logfile" || true)
splats=$(grep -E "\\[ *[0-9]+\\.[0-9]{6}\\] .*($splat_re)" <<<"$console" || true)
leaks=$(grep '@@kmemleak: ' <<<"$console" || true)
status=$(sed -n 's/^.*@@qemu-run: exit-status \([0-9]\{1,\}\).*$/\1/p' <<<"$console" | tail -n 1)
kmemleak_failed=$(sed -n 's/^.*@@qemu-run: kmemleak failed: //p' <<<"$console" | tail -n 1)

rc=0
incomplete=()
if [ -z "$status" ]; then
	incomplete+=("the command did not finish (timeout or crash)")
elif [ "$kmemleak_configured" = 1 ] &&
	! grep -q '@@qemu-run: kmemleak scanned' <<<"$console"; then
	incomplete+=("the kmemleak scan did not run${kmemleak_failed:+: $kmemleak_failed}")
fi
if ! grep -q '@@qemu-run: done' <<<"$console"; then
	incomplete+=("init did not reach its end")
fi
if [ ${#incomplete[@]} -gt 0 ]; then
	printf 'qemu-run: GUEST DID NOT FINISH: %s\n' "${incomplete[@]}"
	if [ "$qemu_rc" -eq 124 ]; then
		echo "qemu-run: timed out after ${timeout_s}s"
		rc=124
	else
		rc=1
	fi
fi
if [ -n "$splats$leaks" ]; then
	echo "qemu-run: KERNEL SPLATS:"
	[ -z "$splats" ] || printf '%s\n' "$splats"
	[ -z "$leaks" ] || printf '%s\n' "$leaks"
	[ "$rc" -ne 0 ] || rc=1
elif [ "$rc" -eq 0 ]; then
	echo "qemu-run: kernel log clean"
	[ "$kmemleak_configured" = 1 ] ||
		echo "qemu-run: (this kernel has no kmemleak: leaks were not checked)"
fi
[ "$rc" -ne 0 ] || rc=$status
[ "$logfile" = "$work/console.log" ] || log "console log: $logfile"
exit "$rc"
