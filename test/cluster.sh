#!/bin/sh
# test/cluster.sh - the suite's server-side parts, run by test/run.sh inside
# a throwaway cluster (PGHOST, PGPORT, PGUSER set by pg_virtualenv).  Each part
# appends "<part> <passed> <failed>" to $RESULTS.
set -u
cd "$(dirname "$0")/.."
mkdir -p log
status=0

# pg_regress prints "test name ... ok" (or "FAILED") up to PostgreSQL 15,
# and TAP from 16 on ("ok 3 - name", "not ok 4 - name"); count both kinds.
count_regress() { # $1 part name, $2 output file
	ok=$(grep -cE '\.\.\. ok|^ok +[0-9]+ ' "$2" || true)
	bad=$(grep -cE '\.\.\. (FAILED|failed)|^not ok +[0-9]+ ' "$2" || true)
	# a part whose tests never ran (no server, a broken build) failed
	[ $((ok + bad)) -eq 0 ] && bad=1
	echo "$1 $ok $bad" >> "$RESULTS"
}

echo "-- pg_regress (sql/, expected/)"
make -s installcheck-regress PG_CONFIG="$PG_CONFIG" > log/regress.out 2>&1 || status=1
cat log/regress.out
count_regress regress log/regress.out
[ -f regression.diffs ] && { echo "== regression.diffs"; cat regression.diffs; }

echo "-- isolation specs (test/isolation/specs)"
make -s installcheck-isolation PG_CONFIG="$PG_CONFIG" > log/isolation.out 2>&1 || status=1
cat log/isolation.out
count_regress isolation log/isolation.out
[ -f output_iso/regression.diffs ] && { echo "== output_iso/regression.diffs"; cat output_iso/regression.diffs; }

# Scenario scripts: each runs in a database of its own and fails by raising.
echo "-- scenarios (test/scenarios)"
ok=0; bad=0
for f in test/scenarios/*.sql test/scenarios/*.sh; do
	[ -f "$f" ] || continue
	name=$(basename "$f" | sed 's/\.[a-z]*$//')
	db="scenario_$name"
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
	case "$f" in
	*.sql) psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c 'CREATE EXTENSION billing CASCADE' -f "$f" \
			> "log/$name.out" 2>&1 ;;
	*.sh) PGDATABASE=$db sh "$f" > "log/$name.out" 2>&1 ;;
	esac
	if [ $? -eq 0 ]; then
		ok=$((ok + 1)); echo "scenario $name ... ok"
	else
		bad=$((bad + 1)); status=1; echo "scenario $name ... FAILED"; tail -20 "log/$name.out"
	fi
done
echo "scenarios $ok $bad" >> "$RESULTS"

# The security attack suite: a database and login roles of its own; one
# line per attack, "security <passed> <failed>" in $RESULTS by itself.
echo "-- security attacks (test/security)"
sh test/security/run.sh > log/security.out 2>&1 || status=1
cat log/security.out
# a suite that died before counting counts as failed
grep -q '^security ' "$RESULTS" || { echo "security 0 1" >> "$RESULTS"; tail -20 log/security.out; status=1; }

# The delivery worker (worker/, test/worker): built with -Werror under the
# sanitizers, run against an SMTP sink and a webhook receiver of its own;
# "worker <passed> <failed>" in $RESULTS by itself.
echo "-- delivery worker (test/worker)"
sh test/worker/run.sh > log/worker.out 2>&1 || status=1
cat log/worker.out
grep -q '^worker ' "$RESULTS" || { echo "worker 0 1" >> "$RESULTS"; status=1; }

# The simulator (test/sim, CONTRIBUTING.md: The simulator): a fixed set of seeds, one
# database each; "sim <passed> <failed>" in $RESULTS, one count per seed.
# SIM_SEEDS, SIM_DAYS and SIM_ACCOUNTS override the set (to run a longer one).
echo "-- simulator (test/sim)"
sh test/sim/seeds.sh "${SIM_DAYS:-60}" "${SIM_ACCOUNTS:-8}" ${SIM_SEEDS:-1 2 3 4 5 6} > log/sim.out 2>&1 || status=1
# and the seeds that found a bug, as far as the day they found it: seed 24
# (12 accounts) reached, on day 12, a credit note to the credit balance of
# an account that owed money, whose credit then went unapplied and was dunned
sh test/sim/seeds.sh 15 12 24 >> log/sim.out 2>&1 || status=1
cat log/sim.out
grep -q '^sim ' "$RESULTS" || { echo "sim 0 1" >> "$RESULTS"; status=1; }
exit $status
