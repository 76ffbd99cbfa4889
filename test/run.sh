#!/bin/sh
# test/run.sh test [15|17] | demo | bench [group]
#
# The one entry point behind README's commands and .ci/run.  On a fresh
# Debian bookworm (PostgreSQL 15) or trixie (PostgreSQL 17) machine, as
# root, it installs what is missing, builds, installs the extension, starts
# a throwaway cluster with pg_cron preloaded (pg_virtualenv), and runs the
# suite, the demo, or the benchmarks.  It never uses a server that was
# running before.
#
# The PostgreSQL major version is the distribution's own (bookworm 15,
# trixie 17) unless PG_MAJOR or the test mode's second argument names one.
# "test" with no version on bookworm runs the suite for 15 here and then for
# 17 in a Debian trixie root (test/trixie/run.sh); BILLING_PG17=0 leaves
# that part out.  "test 17" on bookworm runs only the trixie part.  The
# closing "N passed, N failed" line sums every part that ran; a part that
# could not run counts as failed.
set -eu
# The caller's PG* variables (PGPORT of a running server, PGDATABASE, ...)
# would point the throwaway cluster's clients elsewhere: drop them all
# (PG_MAJOR, the version asked for, is ours and kept).
want_major=${PG_MAJOR:-}
for v in $(env | sed -n 's/^\(PG[A-Za-z0-9_]*\)=.*/\1/p'); do
	unset "$v"
done
PG_MAJOR=$want_major
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MODE=${1:-test}
GROUP=${2:-}
[ "$MODE" = test ] && [ -n "$GROUP" ] && { PG_MAJOR=$GROUP; GROUP=; }

# The distribution's PostgreSQL: the one this machine's archive carries.
codename=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release 2>/dev/null || true)
case "$codename" in
trixie) NATIVE_PG=17 ;;
*) NATIVE_PG=15 ;;
esac
# test with no version: both (the native one here, 17 in a trixie root)
BOTH=0
if [ "$MODE" = test ] && [ -z "${PG_MAJOR:-}" ] && [ "$NATIVE_PG" = 15 ] && [ "${BILLING_PG17:-1}" != 0 ]; then
	BOTH=1
fi
PG_MAJOR=${PG_MAJOR:-$NATIVE_PG}
case "$PG_MAJOR" in
15|17) ;;
*) echo "PostgreSQL $PG_MAJOR is not supported (15 or 17)" >&2; exit 2 ;;
esac
export PG_MAJOR
# 17 asked for on a machine whose archive has no 17: the trixie root
if [ "$PG_MAJOR" != "$NATIVE_PG" ]; then
	if [ "$MODE" = test ] && [ "$PG_MAJOR" = 17 ]; then
		RESULTS=$(mktemp)
		export RESULTS
		status=0
		sh test/trixie/run.sh || status=1
		grep -q '^pg17:' "$RESULTS" || { echo "pg17:trixie 0 1" >> "$RESULTS"; echo "== the trixie part did not run"; }
		passed=$(awk '{p+=$2} END {print p+0}' "$RESULTS")
		failed=$(awk '{f+=$3} END {print f+0}' "$RESULTS")
		rm -f "$RESULTS"
		[ "$failed" -gt 0 ] && status=1
		[ "$passed" -eq 0 ] && status=1
		echo "$passed passed, $failed failed"
		exit $status
	fi
	echo "PostgreSQL $PG_MAJOR is not in this machine's archive (Debian $codename); test/run.sh test 17 runs the suite in a trixie root" >&2
	exit 2
fi

# What building and running billing needs (the demo and the benchmarks),
# and what only the test suite needs on top: the fuzzers' clang, the
# browser that renders invoice documents to PNG (and the delivery worker's
# PDFs), plpgsql_check, what the delivery worker (worker/) builds with.
PACKAGES="postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR postgresql-$PG_MAJOR-cron libicu-dev
pkg-config build-essential util-linux"
TEST_PACKAGES="clang libclang-rt-dev chromium fonts-dejavu-core postgresql-$PG_MAJOR-plpgsql-check
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
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
export PG_CONFIG

# Several checkouts on one machine share PostgreSQL's extension directory:
# installing and testing hold one lock so they cannot overwrite each other.
LOCK=/tmp/billing-install.lock
# What test/cluster.sh reports, one line each in $RESULTS.
CLUSTER_PARTS="regress isolation scenarios security worker sim"


case "$MODE" in
test)
	# The trixie root's run writes its part lines where the caller says.
	RESULTS=${BILLING_RESULTS:-$(mktemp)}
	export RESULTS
	status=0
	echo "== PostgreSQL $PG_MAJOR"
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
		$(command -v pg_virtualenv) -t -v $PG_MAJOR -i '--encoding=UTF8 --locale=C.UTF-8' \
		-o shared_preload_libraries=pg_cron -o cron.database_name=contrib_regression \
		-o max_prepared_transactions=10 sh test/cluster.sh" || status=1
	# a part of the cluster that could not run counts as failed
	for part in $CLUSTER_PARTS; do
		grep -q "^$part " "$RESULTS" || { echo "$part 0 1" >> "$RESULTS"; echo "== $part did not run"; status=1; }
	done
	# inside the trixie root: the caller reads the part lines and sums them
	[ -n "${BILLING_RESULTS:-}" ] && exit $status
	if [ "$BOTH" = 1 ]; then
		echo "== PostgreSQL 17 in a Debian trixie root (BILLING_PG17=0 leaves it out)"
		sh test/trixie/run.sh || status=1
		grep -q '^pg17:' "$RESULTS" || { echo "pg17:trixie 0 1" >> "$RESULTS"; echo "== the trixie part did not run"; status=1; }
	fi
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
		$(command -v pg_virtualenv) -t -v $PG_MAJOR -i '--encoding=UTF8 --locale=C.UTF-8' \
		-o shared_preload_libraries=pg_cron -o cron.database_name=postgres \
		psql -X -v ON_ERROR_STOP=1 $(for f in test/demo/*.sql; do printf ' -f %s' "$f"; done)"
	;;
bench)
	make -s PG_CONFIG=$PG_CONFIG
	flock "$LOCK" sh -c "make -s install PG_CONFIG=$PG_CONFIG >/dev/null && \
		$(command -v pg_virtualenv) -t -v $PG_MAJOR -i '--encoding=UTF8 --locale=C.UTF-8' \
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
