#!/bin/sh
# test/trixie/run.sh [command ...] - runs the suite for PostgreSQL 17 in a
# Debian trixie root, as root on a Debian machine (test/run.sh calls it).
#
# The root is made once with debootstrap from the Debian mirror this
# machine's apt sources name and kept in $TRIXIE_ROOT (default
# /var/cache/billing-trixie/root), so a second run only copies the checkout
# in and runs.  The checkout goes to /build/billing inside the root, fresh
# each run (test/debian_root.sh).
#
# With no command it runs "test/run.sh test 17" inside and, with $RESULTS
# set, appends its part lines to $RESULTS prefixed "pg17:".  With a command
# it runs that in the copied checkout inside the root.
set -eu
cd "$(dirname "$0")/../.."
SRC=$(pwd)
. test/debian_root.sh
CACHE=${TRIXIE_CACHE:-/var/cache/billing-trixie}
TRIXIE_ROOT=${TRIXIE_ROOT:-$CACHE/root}
# what test/run.sh test installs for 17, so that it finds nothing missing;
# and tzdata-legacy: trixie moved the zone names bookworm's tzdata still
# has (EST5EDT, US/Eastern, ...) there, and the tests use them
PACKAGES="postgresql-17 postgresql-server-dev-17 postgresql-17-cron postgresql-17-plpgsql-check
libicu-dev pkg-config build-essential util-linux clang libclang-rt-dev chromium
fonts-dejavu-core python3-psycopg2 tzdata-legacy"

[ "$(id -u)" = 0 ] || { echo "test/trixie/run.sh needs root (debootstrap, chroot)" >&2; exit 1; }
mkdir -p "$CACHE"
# one run at a time per root
exec 9> "$CACHE/lock"
flock 9

start=$(date +%s)
make_root trixie "$TRIXIE_ROOT" "$PACKAGES"
ready=$(date +%s)
copy_checkout "$SRC" "$TRIXIE_ROOT/build/billing"

status=0
if [ $# -gt 0 ]; then
	in_root "$TRIXIE_ROOT" sh -c 'cd /build/billing && exec "$@"' sh "$@" || status=$?
	exit $status
fi
rm -f "$TRIXIE_ROOT/build/results"
in_root "$TRIXIE_ROOT" sh -c 'cd /build/billing && BILLING_RESULTS=/build/results exec sh test/run.sh test 17' || status=1
end=$(date +%s)
echo "== trixie part: $((ready - start)) s preparing the root, $((end - ready)) s the PostgreSQL 17 suite"
if [ -s "$TRIXIE_ROOT/build/results" ]; then
	echo "== PostgreSQL 17 parts:"
	awk '{printf "   %-28s %6d passed %4d failed\n", $1, $2, $3}' "$TRIXIE_ROOT/build/results"
	[ -n "${RESULTS:-}" ] && sed 's/^/pg17:/' "$TRIXIE_ROOT/build/results" >> "$RESULTS"
else
	echo "== the PostgreSQL 17 suite wrote no results"
	[ -n "${RESULTS:-}" ] && echo "pg17:trixie 0 1" >> "$RESULTS"
	status=1
fi
exit $status
