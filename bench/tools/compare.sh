#!/bin/sh
# bench/tools/compare.sh <rev-a> <rev-b> [subscriptions] [rounds]
#
# run_cycle of two git revisions side by side, on this machine, in one run:
# the way to tell whether a change to the cycle is faster when the machine's
# own speed drifts within an hour (docs/performance.md).  Each
# revision is built from `git archive` and installed into a directory of its
# own, and gets a cluster of its own (initdb in a temporary directory, Unix
# socket only, extension_destdir pointing at its install; as root the
# clusters run as postgres), with a template database of <subscriptions>
# (default 200,000) monthly subscriptions made as bench/cycle.sh makes them.
# Then, <rounds> times (default 2), for a, then b: a fresh copy of the
# template, CHECKPOINT, one run_cycle session timed; a fresh copy, two
# sessions at once timed.  Prints every time as it goes, then
#   BENCH compare_<a|b>_one_seconds <best>   one session, best of the rounds
#   BENCH compare_<a|b>_two_seconds <best>   two sessions (wall time)
#   BENCH compare_one_b_vs_a <ratio> x       below 1: b is faster
#   BENCH compare_two_b_vs_a <ratio> x
# Not a group of `make bench` (bench/run.sh runs bench/*.sh only).  Needs
# what `sh test/run.sh bench` needs, and about 2 GB of disk per 1M
# subscriptions and side.  Example, the last commit against its parent:
#   sh bench/tools/compare.sh HEAD~1 HEAD 100000 3
set -eu
[ $# -ge 2 ] || { echo "usage: $0 <rev-a> <rev-b> [subscriptions] [rounds]" >&2; exit 2; }
REV_A=$1
REV_B=$2
N=${3:-200000}
ROUNDS=${4:-2}
BATCH=${BENCH_BATCH:-10000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
BIN=$($PG_CONFIG --bindir)
DIR=$(mktemp -d /tmp/billing-compare.XXXXXX)
export PGOPTIONS="-c client_min_messages=warning"

as_pg() {
	if [ "$(id -u)" = 0 ]; then (cd "$DIR" && runuser -u postgres -- "$@"); else (cd "$DIR" && "$@"); fi
}
cleanup() {
	for side in a b; do
		[ -d "$DIR/data-$side" ] && as_pg "$BIN/pg_ctl" -D "$DIR/data-$side" -m fast stop >/dev/null 2>&1 || true
	done
	rm -rf "$DIR"
}
trap cleanup EXIT

port_of() { [ "$1" = a ] && echo 5441 || echo 5442; }
psql_on() { side=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$(port_of "$side")" -U postgres "$@"; }

# $1 side, $2 revision: build, install, cluster, template database
prepare() {
	side=$1
	rev=$2
	echo "== $side: $rev ($(git -C "$ROOT" rev-parse --short "$rev"))"
	mkdir -p "$DIR/src-$side"
	git -C "$ROOT" archive "$rev" | tar -x -C "$DIR/src-$side"
	make -s -C "$DIR/src-$side" PG_CONFIG="$PG_CONFIG" >/dev/null
	make -s -C "$DIR/src-$side" PG_CONFIG="$PG_CONFIG" install DESTDIR="$DIR/inst-$side" >/dev/null
	chmod -R a+rX "$DIR/inst-$side"
	[ "$(id -u)" = 0 ] && chown postgres "$DIR"
	as_pg "$BIN/initdb" -D "$DIR/data-$side" -A trust -U postgres --encoding=UTF8 --locale=C.UTF-8 >/dev/null
	cat >> "$DIR/data-$side/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$DIR'
port = $(port_of "$side")
extension_destdir = '$DIR/inst-$side'
shared_buffers = 1GB
work_mem = 256MB
max_wal_size = 8GB
checkpoint_timeout = 30min
synchronous_commit = off
EOF
	as_pg "$BIN/pg_ctl" -D "$DIR/data-$side" -l "$DIR/server-$side.log" -w -t 300 start >/dev/null
	psql_on "$side" -d postgres -c "CREATE DATABASE tmpl" >/dev/null
	# the data of bench/cycle.sh, from the current tree for both sides
	psql_on "$side" -d tmpl -f "$ROOT/bench/tools/cycle_catalog.sql" >/dev/null
	psql_on "$side" -d tmpl -v first=1 -v n="$N" -f "$ROOT/bench/tools/cycle_subscriptions.sql" >/dev/null
}

CYCLE="CALL billing.run_cycle(as_of => '2024-01-01', batch_size => $BATCH)"
fresh() {
	psql_on "$1" -d postgres -c "DROP DATABASE IF EXISTS run" -c "CREATE DATABASE run TEMPLATE tmpl" \
		-c CHECKPOINT >/dev/null
}
now() { date +%s.%N; }

prepare a "$REV_A"
prepare b "$REV_B"
OUT=$DIR/times
: > "$OUT"
r=1
while [ "$r" -le "$ROUNDS" ]; do
	for side in a b; do
		fresh "$side"
		t0=$(now)
		psql_on "$side" -d run -c "$CYCLE"
		one=$(echo "$(now) - $t0" | bc -l)
		fresh "$side"
		t0=$(now)
		psql_on "$side" -d run -c "$CYCLE" &
		psql_on "$side" -d run -c "$CYCLE" &
		wait
		two=$(echo "$(now) - $t0" | bc -l)
		left=$(psql_on "$side" -d run -A -t -c "SELECT count(*) FROM billing.subscription WHERE next_bill_date <= '2024-01-01'")
		[ "$left" = 0 ] || { echo "$side: $left subscriptions left unbilled" >&2; exit 1; }
		printf 'round %d %s: one session %.2f s, two sessions %.2f s\n' "$r" "$side" "$one" "$two"
		echo "$side $one $two" >> "$OUT"
	done
	r=$((r + 1))
done

best() { awk -v s="$1" -v c="$2" '$1 == s && (m == "" || $c < m) { m = $c } END { print m }' "$OUT"; }
A1=$(best a 2); A2=$(best a 3); B1=$(best b 2); B2=$(best b 3)
printf 'BENCH compare_a_one_seconds %.2f\n' "$A1"
printf 'BENCH compare_b_one_seconds %.2f\n' "$B1"
printf 'BENCH compare_a_two_seconds %.2f\n' "$A2"
printf 'BENCH compare_b_two_seconds %.2f\n' "$B2"
printf 'BENCH compare_one_b_vs_a %.3f x\n' "$(echo "$B1 / $A1" | bc -l)"
printf 'BENCH compare_two_b_vs_a %.3f x\n' "$(echo "$B2 / $A2" | bc -l)"
