#!/bin/sh
# test/sim/seeds.sh DAYS ACCOUNTS SEED...: runs the simulator for each seed,
# each in a database of its own, on the cluster the caller's PG* variables
# name (pg_virtualenv's).  Prints one line per seed; with $RESULTS set,
# appends "sim <passed> <failed>" to it (one count per seed).
set -u
cd "$(dirname "$0")/../.."
days=$1; accounts=$2; shift 2
ok=0; bad=0
for seed in "$@"; do
	db="sim_$seed"
	psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null &&
	psql -X -q -d "$db" -c 'CREATE EXTENSION billing CASCADE' >/dev/null &&
	/usr/bin/python3 test/sim/sim.py --seed "$seed" --days "$days" --accounts "$accounts" --dsn "dbname=$db"
	if [ $? -eq 0 ]; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
done
[ -n "${RESULTS:-}" ] && echo "sim $ok $bad" >> "$RESULTS"
[ "$bad" -eq 0 ]
