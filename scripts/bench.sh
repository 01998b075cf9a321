#!/usr/bin/env bash
# `make bench`: every data path of the virtual converters at every block
# size and count, the highest rate each sustains, its throughput and CPU
# cost, and the machine's memset/memcpy limits, in one boot of the
# performance kernel (tools/bench, Documentation/iio/performance.rst).
#
# BENCH_QUICK=1: the reduced sweep (3 block sizes, 4 blocks; < 3 min).
# BENCH_ARGS: more iio_bench options (e.g. "--paths seed,fileio --verbose").
# With --no-timestamp among them (8-byte scans: the converters' 4 channels
# without in_timestamp), the outputs go to out/bench-nots/ (versal:
# out/bench-versal-nots/), beside the default layout's.
# BENCH_MEM: guest memory in MiB (default 3072: 32 blocks of 16 MiB on two
# devices, with room to spare).
# BENCH_TARGET: x86 (default: QEMU's PC, 2 vCPUs, the TSC clock) or versal
# (arm64, QEMU's xlnx-versal-virt under TCG: two Cortex-A72 and the ZynqMP
# DMA engine, whose channels the converters take as their backend; the
# versal performance kernel, the module built for it with ARCH=arm64 and
# iio_bench built static for aarch64).
#
# Writes out/bench/ (versal: out/bench-versal/; -nots appended with
# --no-timestamp): console.log (the guest's
# console), results.csv (every point, limit and meta row), summary.txt (the
# tables and ratios) and throughput.png (throughput against block size, one
# line per path and reader mode, a panel per block count, the memset limit
# drawn).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
log() { printf '[bench] %s\n' "$*" >&2; }

quick=${BENCH_QUICK:-0}
mem=${BENCH_MEM:-3072}
target=${BENCH_TARGET:-x86}
# Per target: the output directory, the guest's compiler, the module's
# ARCH, QEMU and the machine's qemu-run.sh options.
case "$target" in
x86)
	out=$top/out/bench
	cc=gcc
	karch=()
	qemu=qemu-system-x86_64
	machine_args=(--cpus 2 --tsc)
	guest_pre=
	;;
versal)
	out=$top/out/bench-versal
	cc=aarch64-linux-gnu-gcc
	karch=(ARCH=arm64)
	qemu=qemu-system-aarch64
	# qemu-run.sh boots -M xlnx-versal-virt: its CPUs are fixed (two
	# Cortex-A72 run Linux) and its clock is the arm64 generic timer.
	machine_args=(--target versal)
	# Our arm64 kernel has no RTC driver: the guest's clock starts at
	# 1970. The host's date, for the run's date (within the boot time).
	guest_pre="date -u -s '$(date -u '+%Y-%m-%d %H:%M:%S')' >/dev/null; "
	;;
*)
	log "BENCH_TARGET must be x86 or versal, not '$target'"
	exit 2
	;;
esac
# The layout without the timestamp has outputs of its own (bench-doc.sh
# takes out/bench/'s).
nots=0
case " ${BENCH_ARGS:-} " in
*" --no-timestamp "*)
	nots=1
	out=$out-nots
	;;
esac
mkdir -p "$out/guest" "$out/include/linux/iio"

# The plot needs gnuplot (Debian's gnuplot-nox: no X11).
if ! command -v gnuplot >/dev/null 2>&1; then
	log "installing gnuplot-nox (for the plot)"
	sudo_cmd=()
	[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
	"${sudo_cmd[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq \
		--no-install-recommends gnuplot-nox >/dev/null
fi

# The performance kernel (built and cached the first time) and the module
# built against it, apart from the tree's iio_dmabuf.ko.
kdir=$(TARGET=$target PERF=1 scripts/build-kernel.sh)
kver=$(cat "$kdir/include/config/kernel.release")
ko=$(env "${karch[@]}" scripts/build-module.sh "$kdir" "$out/module")
ksrc=$(scripts/fetch-kernel.sh 2>/dev/null)
cp "$ksrc"/include/uapi/linux/iio/*.h "$out/include/linux/iio/"
"$cc" -static -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -I"$out/include" \
	-Iinclude/uapi -o "$out/guest/iio_bench" tools/bench/*.c -lm

host_cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
host="$(nproc) x ${host_cpu:-unknown CPU}, $(awk '/^MemTotal/ { printf "%d GiB", $2 / 1048576 }' /proc/meminfo)"
qemu_ver=$("$qemu" --version | sed -n '1s/.*version \([^ ]*\).*/\1/p')
case "$target" in
x86)
	machine="QEMU $qemu_ver TCG, 2 vCPUs"
	plot_machine="QEMU TCG"
	;;
versal)
	machine="versal/arm64: $qemu $qemu_ver -M xlnx-versal-virt TCG, 2 Cortex-A72, ZynqMP DMA"
	plot_machine="versal/arm64, QEMU xlnx-versal-virt TCG"
	;;
esac
desc="performance kernel (PERF=1, $(basename "$kdir")); $machine, $mem MiB; host $host"
log "kernel: performance kernel $kver, $kdir"
[ "$nots" = 0 ] || log "scans: 8 bytes, no timestamp (--no-timestamp), into $out"
log "host: $host"

args="--kernel '$desc'"
timeout=5400
if [ "$quick" = 1 ]; then
	args="--quick $args"
	timeout=900
fi
args="$args ${BENCH_ARGS:-}"

# The CSV rows travel on the guest's console, marked; the console shows
# the rest. The guest settles for 2 s first (the end of its boot would
# print into the limits' table).
set +e
scripts/qemu-run.sh --kdir "$kdir" --module "$ko" --mem "$mem" "${machine_args[@]}" \
	--extra "$out/guest" --timeout "$timeout" --log "$out/console.log" \
	-- "${guest_pre}sleep 2; /extra/iio_bench $args" | grep --line-buffered -v '@@bench-csv: '
status=${PIPESTATUS[0]}
set -e

sed -n 's/^.*@@bench-csv: //p' "$out/console.log" >"$out/results.csv"
{
	sed -n '/^limits (MB\/s)/,/^$/p' "$out/console.log"
	sed -n '/^throughput, MB\/s/,/^iio_bench: /p' "$out/console.log"
} | grep -av -e '^@@' -e '^\[ *[0-9]*\.[0-9]*\] ' >"$out/summary.txt"
rows=$(grep -c '^point,' "$out/results.csv" || true)
log "results: $out/results.csv ($rows points), $out/summary.txt"

# --- the plot ---------------------------------------------------------------
plot=$out/plot
rm -rf "$plot"
mkdir -p "$plot"
# One data file per block count, path and mode: "block_bytes mb_s".
awk -F, -v dir="$plot" '
$1 == "point" && ($7 == "ok" || $7 == "top") {
	f = dir "/" $5 "_" $2 "_" $3 ".dat"
	print $4, $9 >f
	counts[$5] = 1
}
$1 == "limit" && ($2 == "user_memset" || $2 == "kernel_copy") {
	print $4, $9 >(dir "/" $2 ".dat")
}
END {
	for (c in counts)
		print c >(dir "/counts")
}' "$out/results.csv"
if [ -s "$plot/counts" ]; then
	counts=$(sort -n "$plot/counts" | tr '\n' ' ')
	n=$(wc -w <<<"$counts")
	cols=$((n > 1 ? 2 : 1))
	rowsn=$(((n + 1) / 2))
	{
		echo "set terminal pngcairo size $((cols * 800)),$((rowsn * 560)) font ',10'"
		echo "set output '$out/throughput.png'"
		echo "set termoption noenhanced"
		echo "set logscale xy"
		echo "set xrange [3000:22000000]"
		echo "set grid"
		echo "set xlabel 'block size'"
		echo "set ylabel 'MB/s at the highest sustained rate'"
		echo "set xtics ('4K' 4096, '16K' 16384, '64K' 65536, '256K' 262144, '1M' 1048576, '4M' 4194304, '16M' 16777216)"
		echo "set key outside right top vertical"
		echo "set multiplot layout $rowsn,$cols title 'iio_dmabuf, $(sed -n 's/^meta,date,.*,//p' "$out/results.csv"), kernel $kver (performance), $plot_machine, $(sed -n 's/^meta,scan,.*,//p' "$out/results.csv")'"
		for c in $counts; do
			echo "set title '$c blocks'"
			s=''
			i=1
			for p in fileio seed heap udmabuf loopback; do
				for m in fetch all; do
					f=$plot/${c}_${p}_${m}.dat
					if [ -s "$f" ]; then
						dt=1
						[ "$m" = all ] && dt=2
						s="$s${s:+, }'$f' using 1:2 with linespoints lc $i dt $dt pt $((i + 5)) title '$p $m'"
					fi
				done
				i=$((i + 1))
			done
			[ ! -s "$plot/user_memset.dat" ] ||
				s="$s${s:+, }'$plot/user_memset.dat' using 1:2 with lines lw 3 lc rgb 'black' title 'memset (user)'"
			[ ! -s "$plot/kernel_copy.dat" ] ||
				s="$s${s:+, }'$plot/kernel_copy.dat' using 1:2 with lines lw 2 dt 3 lc rgb 'gray40' title 'kernel copy_to_user'"
			if [ -n "$s" ]; then
				echo "plot $s"
			fi
		done
		echo "unset multiplot"
	} >"$plot/throughput.gp"
	if gnuplot "$plot/throughput.gp"; then
		log "plot: $out/throughput.png"
	else
		log "gnuplot failed ($plot/throughput.gp)"
		[ "$status" -ne 0 ] || status=1
	fi
else
	log "no point to plot"
	[ "$status" -ne 0 ] || status=1
fi
exit "$status"
