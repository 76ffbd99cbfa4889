#!/bin/sh
# test/run.sh test|demo|bench [group]
#
# The one entry point behind README's commands and .ci/run.  On a fresh
# Debian bookworm machine, as root, it installs what is missing, builds,
# installs the extension, starts a throwaway cluster with pg_cron preloaded
# (pg_virtualenv), and runs the suite, the demo, or the benchmarks.  It never
# uses a server that was running before.
set -eu
# The caller's PG* variables (PGPORT of a running server, PGDATABASE, ...)
# would point the throwaway cluster's clients elsewhere: drop them all.
for v in $(env | sed -n 's/^\(PG[A-Za-z0-9_]*\)=.*/\1/p'); do
	unset "$v"
done
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MODE=${1:-test}
GROUP=${2:-}

# What building and running billing needs (the demo and the benchmarks),
# and what only the test suite needs on top: the fuzzers' clang, the
# browser that renders invoice documents to PNG (and the delivery worker's
# PDFs), plpgsql_check, what the delivery worker (worker/) builds with.
PACKAGES="postgresql-15 postgresql-server-dev-15 postgresql-15-cron libicu-dev
pkg-config build-essential util-linux"
TEST_PACKAGES="clang libclang-rt-14-dev chromium fonts-dejavu-core postgresql-15-plpgsql-check
python3-psycopg2 libpq-dev libcurl4-openssl-dev libssl-dev curl python3"
[ "$MODE" = test ] && PACKAGES="$PACKAGES $TEST_PACKAGES"

bootstrap() {
	missing=""
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
			|| missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" != 0 ]; then
		echo "missing packages:$missing (run as root, or apt-get install them)" >&2
		exit 1
	fi
	echo "== installing:$missing"
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
}

bootstrap
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
export PG_CONFIG

# Several checkouts on one machine share PostgreSQL's extension directory:
# installing and testing hold one lock so they cannot overwrite each other.
LOCK=/tmp/billing-install.lock
# What test/cluster.sh reports, one line each in $RESULTS.
CLUSTER_PARTS="regress isolation scenarios security worker sim"


case "$MODE" in
test)
	RESULTS=$(mktemp)
	export RESULTS
	status=0
	# the test build treats every warning as an error (the shipped one not);
	# a build made without that flag is rebuilt so none slips through
	make -s clean PG_CONFIG=$PG_CONFIG >/dev/null
	make -s WERROR=-Werror PG_CONFIG=$PG_CONFIG
	echo "== C unit tests (ASan + UBSan)"
	if make -s unit-build PG_CONFIG=$PG_CONFIG; then
		for t in test/unit/bin/test_*; do
			"$t" > "$RESULTS.unit" || status=1
			cat "$RESULTS.unit"
			sed -n 's/^test\/unit\/\(.*\)\.c: \([0-9]*\) passed, \([0-9]*\) failed$/unit:\1 \2 \3/p' \
				"$RESULTS.unit" >> "$RESULTS"
			# a test that crashed before its summary line counts as failed
			grep -q ' passed, ' "$RESULTS.unit" || echo "unit:$t 0 1" >> "$RESULTS"
		done
	else
		echo "unit-build 0 1" >> "$RESULTS"
		status=1
	fi
	echo "== fuzzing the parsers (${FUZZ_SECONDS:=10}s each)"
	sh test/fuzz/run.sh "$FUZZ_SECONDS" || status=1
	echo "== pg_regress, isolation and scenarios on a throwaway cluster"
	flock "$LOCK" sh -c "make -s install PG_CONFIG=$PG_CONFIG >/dev/null && \
		$(command -v pg_virtualenv) -t -v 15 -i '--encoding=UTF8 --locale=C.UTF-8' \
		-o shared_preload_libraries=pg_cron -o cron.database_name=contrib_regression \
		-o max_prepared_transactions=10 sh test/cluster.sh" || status=1
	# a part of the cluster that could not run counts as failed
	for part in $CLUSTER_PARTS; do
		grep -q "^$part " "$RESULTS" || { echo "$part 0 1" >> "$RESULTS"; echo "== $part did not run"; status=1; }
	done
	passed=$(awk '{p+=$2} END {print p+0}' "$RESULTS")
	failed=$(awk '{f+=$3} END {print f+0}' "$RESULTS")
	echo "== parts:"; awk '{printf "   %-28s %6d passed %4d failed\n", $1, $2, $3}' "$RESULTS"
	rm -f "$RESULTS" "$RESULTS.unit"
	[ "$failed" -gt 0 ] && status=1
	[ "$passed" -eq 0 ] && status=1
	echo "$passed passed, $failed failed"
	exit $status
	;;
demo)
	make -s PG_CONFIG=$PG_CONFIG
	flock "$LOCK" sh -c "make -s install PG_CONFIG=$PG_CONFIG >/dev/null && \
		$(command -v pg_virtualenv) -t -v 15 -i '--encoding=UTF8 --locale=C.UTF-8' \
		-o shared_preload_libraries=pg_cron -o cron.database_name=postgres \
		psql -X -v ON_ERROR_STOP=1 $(for f in test/demo/*.sql; do printf ' -f %s' "$f"; done)"
	;;
bench)
	make -s PG_CONFIG=$PG_CONFIG
	flock "$LOCK" sh -c "make -s install PG_CONFIG=$PG_CONFIG >/dev/null && \
		$(command -v pg_virtualenv) -t -v 15 -i '--encoding=UTF8 --locale=C.UTF-8' \
		-o shared_preload_libraries=pg_cron -o cron.database_name=postgres \
		-o shared_buffers=2GB -o work_mem=256MB -o max_wal_size=8GB \
		-o synchronous_commit=off -o checkpoint_timeout=30min \
		sh bench/run.sh '$GROUP'"
	;;
*)
	echo "usage: test/run.sh test|demo|bench [group]" >&2
	exit 2
	;;
esac
