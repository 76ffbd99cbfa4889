#!/bin/sh
# test/citus/run.sh: billing distributed with Citus (README: Scaling out).
#
# Uses a Citus that is already installed for PostgreSQL 15 (Citus is not a
# Debian package and is not part of this project: README says how to get
# it).  Builds and installs billing (under the lock test/run.sh takes), then
# starts a coordinator and two workers on loopback ports, each a cluster of
# its own in a temporary directory (pg_ctl; citus and pg_cron preloaded), and
# for every test database: creates it on all three nodes, creates citus in
# each, adds the workers, creates billing on the coordinator (Citus creates
# it on the workers), calls billing.distribute(), and runs the test in it:
# the SQL scenarios (test/scenarios/*.sql, or CITUS_SCENARIOS) and the
# simulator's seeds (test/sim/sim.py; SIM_SEEDS, SIM_DAYS, SIM_ACCOUNTS).  The shell scenarios make clusters or extensions of
# their own and stay in the single-node suite.  Ends with "N passed, N failed";
# without Citus it says so and exits 1.  Every cluster it starts it stops.
#
# `run.sh bench` (make citus-bench) measures instead, in the same run, the
# cluster against one plain node (a fourth cluster without Citus): both get
# BENCH_ACCOUNTS accounts (100000) with a subscription each, billed once by
# run_cycle on one node (the cluster's before billing.distribute(), which
# then moves the rows to the shards), then pgbench pays random accounts
# (BENCH_CLIENTS, BENCH_SECONDS) on each, and the reports and
# check_invariants() are timed on each.  Prints BENCH lines
# (docs/performance.md, Scaling out).
set -u
MODE=${1:-test}
# PG_CONFIG (which PostgreSQL, and so which Citus) is kept; the other PG*
# variables would point the clients at another server
pg_config_wanted=${PG_CONFIG:-}
for v in $(env | sed -n 's/^\(PG[A-Za-z0-9_]*\)=.*/\1/p'); do
	unset "$v"
done
cd "$(dirname "$0")/../.."
PG_CONFIG=${pg_config_wanted:-/usr/lib/postgresql/15/bin/pg_config}
BIN=$("$PG_CONFIG" --bindir)
# Debian's pg_config names /usr/lib/postgresql/15/bin even when it lies in
# a copy of that tree: the servers are the ones next to it
[ -x "$(dirname "$PG_CONFIG")/postgres" ] && BIN=$(dirname "$PG_CONFIG")
if [ ! -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ] ||
	[ ! -f "$("$PG_CONFIG" --sharedir)/extension/citus.control" ]; then
	echo "citus is not installed for $("$PG_CONFIG" --version) (no citus.so in $("$PG_CONFIG" --pkglibdir)):"
	echo "install Citus for PostgreSQL 15 first (README: Scaling out); nothing was run"
	echo "0 passed, 1 failed"
	exit 1
fi

if [ -z "${BILLING_CITUS_LOCKED:-}" ]; then
	make -s PG_CONFIG="$PG_CONFIG" >/dev/null || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
	BILLING_CITUS_LOCKED=1 exec flock /tmp/billing-install.lock sh -c \
		"make -s install PG_CONFIG='$PG_CONFIG' >/dev/null && BILLING_CITUS_LOCKED=1 PG_CONFIG='$PG_CONFIG' sh '$0' '$MODE'"
fi

# PostgreSQL refuses to run as root: the servers run as postgres then.
if [ "$(id -u)" = 0 ]; then
	as_server() { runuser -u postgres -- "$@"; }
else
	as_server() { "$@"; }
fi
# three free loopback ports in a row (CITUS_PORT: the first)
in_use() { # the port cannot be bound on loopback
	! /usr/bin/python3 -c "import socket,sys; socket.socket().bind(('127.0.0.1', int(sys.argv[1])))" "$1" 2>/dev/null
}
BASE=${CITUS_PORT:-57630}
while in_use "$BASE" || in_use $((BASE + 1)) || in_use $((BASE + 2)) || in_use $((BASE + 3)); do
	BASE=$((BASE + 4))
done
PORTS="$BASE $((BASE + 1)) $((BASE + 2))"
COORD=$BASE
# the plain node of the bench: the same PostgreSQL without Citus
PLAIN=$((BASE + 3))
ALL_PORTS=$PORTS
[ "$MODE" = bench ] && ALL_PORTS="$PORTS $PLAIN"
DIR=$(mktemp -d /tmp/billing-citus.XXXXXX)
chmod 755 "$DIR"
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
LOG=$DIR/log
mkdir -p "$LOG"
[ "$(id -u)" = 0 ] && chown postgres "$LOG"
RESULTS=$DIR/results
: > "$RESULTS"

stop_all() {
	for p in $ALL_PORTS; do
		[ -f "$DIR/n$p/postmaster.pid" ] && as_server "$BIN/pg_ctl" -D "$DIR/n$p" -m fast -w stop >/dev/null 2>&1
	done
	[ -n "${KEEP:-}" ] && { echo "kept $DIR"; return; }
	rm -rf "$DIR"
}
trap stop_all EXIT
trap 'exit 1' INT TERM

for p in $ALL_PORTS; do
	preload=citus,pg_cron
	[ "$p" = "$PLAIN" ] && preload=pg_cron
	as_server "$BIN/initdb" -D "$DIR/n$p" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null || {
		echo "initdb failed"; echo "0 passed, 1 failed"; exit 1; }
	cat >> "$DIR/n$p/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $p
unix_socket_directories = '$DIR'
shared_preload_libraries = '$preload'
cron.database_name = 'postgres'
max_prepared_transactions = 100
max_connections = 200
max_worker_processes = 32
citus.max_cached_conns_per_worker = 4
fsync = off
synchronous_commit = off
shared_buffers = 128MB
EOF
	as_server "$BIN/pg_ctl" -D "$DIR/n$p" -l "$LOG/n$p.log" -w start >/dev/null || {
		echo "node $p did not start:"; tail -20 "$LOG/n$p.log"; echo "0 passed, 1 failed"; exit 1; }
done

q() { # port, then psql arguments
	port=$1; shift
	"$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"
}

# A database on every node with citus in each, the workers added, billing
# created on the coordinator and distributed.
make_db() { # name
	for p in $PORTS; do
		q "$p" -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $1" \
			-c "CREATE DATABASE $1" && q "$p" -d "$1" -c "CREATE EXTENSION citus" || return 1
	done
	q "$COORD" -d "$1" -c "SELECT citus_set_coordinator_host('127.0.0.1', $COORD)" \
		-c "SELECT citus_add_node('127.0.0.1', $((BASE + 1)))" \
		-c "SELECT citus_add_node('127.0.0.1', $((BASE + 2)))" >/dev/null &&
	q "$COORD" -d "$1" -c "CREATE EXTENSION billing CASCADE" -c "SELECT billing.distribute()" >/dev/null
}

drop_db() {
	for p in $PORTS; do
		q "$p" -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null 2>&1
	done
}

echo "-- Citus $(q "$COORD" -d postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'citus'"): coordinator 127.0.0.1:$COORD, workers $((BASE + 1)), $((BASE + 2))"

[ "$MODE" = bench ] && { . test/citus/bench.sh; exit $?; }

echo "-- distribute (the catalog of a distributed install)"
ok=0; bad=0
if make_db citus_distribute > "$LOG/distribute.out" 2>&1 &&
	q "$COORD" -d citus_distribute -f test/citus/distributed.sql >> "$LOG/distribute.out" 2>&1; then
	ok=1; echo "distribute ... ok"
else
	bad=1; echo "distribute ... FAILED"; tail -20 "$LOG/distribute.out"
fi
drop_db citus_distribute
echo "distribute $ok $bad" >> "$RESULTS"

echo "-- the main job, one operation at a time (test/citus/operations.sql)"
if make_db citus_operations > "$LOG/operations.out" 2>&1; then
	"$BIN/psql" -X -q -At -h 127.0.0.1 -p "$COORD" -U postgres -d citus_operations \
		-f test/citus/operations.sql >> "$LOG/operations.out" 2>&1
	grep -E '^op |ERROR' "$LOG/operations.out"
	ok=$(grep -cE '^op .* ok$' "$LOG/operations.out")
	bad=$(grep -cE 'ERROR|^op .*FAILED' "$LOG/operations.out")
else
	ok=0; bad=1; echo "operations ... FAILED"; tail -8 "$LOG/operations.out"
fi
drop_db citus_operations
echo "operations $ok $bad" >> "$RESULTS"

echo "-- scenarios (test/scenarios/*.sql), distributed"
ok=0; bad=0
for f in ${CITUS_SCENARIOS:-test/scenarios/*.sql}; do
	name=$(basename "$f" .sql)
	db="scenario_$name"
	if make_db "$db" > "$LOG/$name.out" 2>&1 &&
		"$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$COORD" -U postgres -d "$db" -f "$f" >> "$LOG/$name.out" 2>&1; then
		ok=$((ok + 1)); echo "scenario $name ... ok"
	else
		bad=$((bad + 1)); echo "scenario $name ... FAILED"; tail -8 "$LOG/$name.out"
	fi
	drop_db "$db"
done
echo "scenarios $ok $bad" >> "$RESULTS"

echo "-- simulator (test/sim), distributed"
ok=0; bad=0
for seed in ${SIM_SEEDS:-1 2 3 4 5 6}; do
	db="sim_$seed"
	if make_db "$db" > "$LOG/sim_$seed.out" 2>&1 &&
		/usr/bin/python3 test/sim/sim.py --seed "$seed" --days "${SIM_DAYS:-60}" --accounts "${SIM_ACCOUNTS:-8}" \
			--dsn "host=127.0.0.1 port=$COORD user=postgres dbname=$db" >> "$LOG/sim_$seed.out" 2>&1; then
		ok=$((ok + 1)); echo "sim seed $seed ... ok"
	else
		bad=$((bad + 1)); echo "sim seed $seed ... FAILED"; tail -8 "$LOG/sim_$seed.out"
	fi
	drop_db "$db"
done
echo "sim $ok $bad" >> "$RESULTS"

passed=$(awk '{p+=$2} END {print p+0}' "$RESULTS")
failed=$(awk '{f+=$3} END {print f+0}' "$RESULTS")
echo "== parts:"; awk '{printf "   %-12s %4d passed %4d failed\n", $1, $2, $3}' "$RESULTS"
echo "$passed passed, $failed failed"
status=1
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ] && status=0
exit $status
