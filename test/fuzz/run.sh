#!/bin/sh
# test/fuzz/run.sh [seconds] - builds every libFuzzer target (clang, ASan +
# UBSan) and runs each for a bounded time over its committed seed corpus
# (test/fuzz/corpus/<target>), writing new inputs to a scratch directory so
# the tree stays clean.  Appends "fuzz:<target> 1 0" or "... 0 1" to $RESULTS.
set -u
cd "$(dirname "$0")/../.."
seconds=${1:-10}
RESULTS=${RESULTS:-/dev/null}
status=0
make -s fuzz-build || { echo "fuzz-build 0 1" >> "$RESULTS"; exit 1; }
for bin in test/fuzz/bin/fuzz_*; do
	[ -x "$bin" ] || continue
	t=$(basename "$bin")
	scratch=$(mktemp -d)
	mkdir -p "test/fuzz/corpus/$t"
	if "$bin" -max_total_time="$seconds" -print_final_stats=1 \
		-artifact_prefix="$scratch/" "$scratch" "test/fuzz/corpus/$t" > "$scratch.log" 2>&1; then
		echo "fuzz $t ... ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$scratch.log" | grep -o '[0-9]*$') runs)"
		echo "fuzz:$t 1 0" >> "$RESULTS"
	else
		echo "fuzz $t ... FAILED"; tail -40 "$scratch.log"
		ls "$scratch"/crash-* "$scratch"/leak-* 2>/dev/null
		echo "fuzz:$t 0 1" >> "$RESULTS"
		status=1
	fi
	rm -rf "$scratch" "$scratch.log"
done
exit $status
