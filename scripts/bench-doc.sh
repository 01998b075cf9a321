#!/usr/bin/env bash
# Put the figures of the last full `make bench` (out/bench/) into
# Documentation/iio/performance.rst, between its "bench-results" markers,
# and its plot into Documentation/iio/performance.png. Run it after a
# `make bench` on an otherwise idle machine; the analysis around the
# figures is written by hand.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/out/bench
doc=$top/Documentation/iio/performance.rst
die() {
	printf 'bench-doc: %s\n' "$*" >&2
	exit 1
}

[ -s "$out/results.csv" ] && [ -s "$out/summary.txt" ] && [ -s "$out/throughput.png" ] ||
	die "no results in $out: run make bench first"
grep -q '^meta,sweep,.*,full$' "$out/results.csv" ||
	die "$out holds a quick sweep: the document takes a full one"
grep -q '^\.\. bench-results-begin' "$doc" && grep -q '^\.\. bench-results-end' "$doc" ||
	die "$doc lacks the bench-results markers"

meta() { awk -F, -v k="$1" '$1 == "meta" && $2 == k { print $NF }' "$out/results.csv"; }
date=$(meta date)
kernel=$(meta kernel)
seconds=$(sed -n 's/^iio_bench: [0-9]* points in \([0-9]*\) s.*/\1/p' "$out/console.log" | tail -n 1)

frag=$(mktemp)
trap 'rm -f "$frag"' EXIT
{
	echo ".. bench-results-begin: written by scripts/bench-doc.sh from out/bench/"
	echo
	echo "Run of $date (the full sweep took ${seconds:-?} s in the guest): kernel" \
		"$kernel. The tables as \`\`iio_bench\`\` printed them" \
		"(\`\`out/bench/summary.txt\`\`; every point is in" \
		"\`\`out/bench/results.csv\`\`):" | fmt -w 76
	echo
	echo "::"
	echo
	sed -e 's/[[:space:]]*$//' -e 's/^./    &/' "$out/summary.txt"
	echo
	echo ".. figure:: performance.png"
	echo "   :alt: MB/s at the highest sustained rate against block size"
	echo
	echo "   Throughput at the highest sustained rate against block size, a panel"
	echo "   per block count; solid: fetch-only, dashed: read-all; black: the"
	echo "   guest's userspace memset; dotted: the kernel's copy_to_user()."
	echo
	echo ".. bench-results-end"
} >"$frag"

awk -v frag="$frag" '
/^\.\. bench-results-begin/ {
	while ((getline line < frag) > 0)
		print line
	skip = 1
	next
}
/^\.\. bench-results-end/ { skip = 0; next }
!skip' "$doc" >"$doc.tmp"
mv "$doc.tmp" "$doc"
cp "$out/throughput.png" "$top/Documentation/iio/performance.png"
echo "bench-doc: $doc and Documentation/iio/performance.png updated from the run of $date"
