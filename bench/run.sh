#!/bin/sh
# bench/run.sh [group] - runs the benchmark groups inside a running cluster
# (test/run.sh bench starts a throwaway one and calls this).  A group is
# bench/<group>.sql, run by psql in a fresh database with the extension
# created, or bench/<group>.sh, run with PGDATABASE set to such a database.
# No group given: every group, in name order.  Results are the lines that
# start with "BENCH".
set -eu
cd "$(dirname "$0")/.."
GROUP=${1:-}

if [ -n "$GROUP" ]; then
	groups=$GROUP
else
	groups=$(for f in bench/*.sql bench/*.sh; do
		[ -f "$f" ] && basename "$f" | sed 's/\.[a-z]*$//'
	done | grep -v '^run$' | sort -u)
fi

for g in $groups; do
	db="bench_$g"
	echo "== bench $g"
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
	if [ -f "bench/$g.sql" ]; then
		psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c 'CREATE EXTENSION billing CASCADE' -f "bench/$g.sql"
	elif [ -f "bench/$g.sh" ]; then
		PGDATABASE=$db sh "bench/$g.sh"
	else
		echo "no benchmark group \"$g\" (bench/$g.sql or bench/$g.sh)" >&2
		exit 2
	fi
	psql -X -q -d postgres -c "DROP DATABASE $db" >/dev/null
done
