#!/bin/sh
# bench/run.sh [groups] - runs the benchmark groups inside a running cluster
# (test/run.sh bench starts a throwaway one and calls this).  A group is
# bench/<group>.sql, run by psql in a fresh database with the extension
# created, or bench/<group>.sh, run with PGDATABASE set to such a database.
# No group given: every bench/*.sql and bench/*.sh, in name order, so a new
# file is a new group of `make bench`; several groups: "periods payments".
# Results are the lines that start with "BENCH"; at the end the run prints
# them all again, with the machine they were measured on.  A group that
# fails does not stop the others; the run then exits 1.
set -u
cd "$(dirname "$0")/.."
GROUP=${1:-}

if [ -n "$GROUP" ]; then
	groups=$GROUP
else
	groups=$(for f in bench/*.sql bench/*.sh; do
		[ -f "$f" ] && basename "$f" | sed 's/\.[a-z]*$//'
	done | grep -v '^run$' | sort -u)
fi

OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
failed=""
started=$(date +%s)
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
		false
	fi > "$OUT.group" 2>&1
	status=$?
	cat "$OUT.group"
	sed -n "s/^ *BENCH /$g /p" "$OUT.group" >> "$OUT"
	[ $status -eq 0 ] || { failed="$failed $g"; echo "== bench $g FAILED" >&2; }
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null
done
rm -f "$OUT.group"

echo
echo "== every figure ($(( ($(date +%s) - started) / 60 )) min $(( ($(date +%s) - started) % 60 )) s)"
echo "machine: $(nproc) cores $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
	"$(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)," \
	"PostgreSQL $(psql -X -A -t -d postgres -c 'SHOW server_version' | cut -d' ' -f1)," \
	"load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
awk '{ printf "| %s | `%s` | %s | |\n", $1, $2, $3 ($4 == "" ? "" : " " $4) }' "$OUT"
if [ -n "$failed" ]; then
	echo "FAILED groups:$failed" >&2
	exit 1
fi
