#!/bin/sh
# test/package/run.sh [15|17] - builds the Debian package of this checkout
# (debian/, PostgreSQL's pg_buildext, dpkg-buildpackage) in a Debian root
# with the build dependencies (bookworm for 15, trixie for 17), installs it
# with apt in a fresh root of the same release that has nothing else, and
# checks there that CREATE EXTENSION billing CASCADE works and that billing
# bills and schedules with the pg_cron the package pulled in.  As root.
#
# The roots are kept in $PACKAGE_CACHE (default /var/cache/billing-package)
# and the downloaded packages too, so a second run only builds, copies and
# installs.  The .deb files are left in $PACKAGE_CACHE/out-<version>/.
set -eu
cd "$(dirname "$0")/../.."
SRC=$(pwd)
. test/debian_root.sh
MAJOR=${1:-15}
case "$MAJOR" in
15) DIST=bookworm ;;
17) DIST=trixie ;;
*) echo "usage: test/package/run.sh [15|17]" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "test/package/run.sh needs root (debootstrap, chroot)" >&2; exit 1; }
CACHE=${PACKAGE_CACHE:-/var/cache/billing-package}
mkdir -p "$CACHE"
exec 9> "$CACHE/lock.$DIST"
flock 9
ROOT_ARCHIVES=$CACHE/archives-$DIST
export ROOT_ARCHIVES
BUILD_ROOT=$CACHE/$DIST-build
BASE_ROOT=$CACHE/$DIST-base
INSTALL_ROOT=$CACHE/$DIST-install
OUT=$CACHE/out-$MAJOR

t0=$(date +%s)
make_root "$DIST" "$BUILD_ROOT" "build-essential fakeroot debhelper postgresql-server-dev-all libicu-dev pkg-config"
make_root "$DIST" "$BASE_ROOT" ""
t1=$(date +%s)

echo "== building the package in the $DIST root"
copy_checkout "$SRC" "$BUILD_ROOT/build/billing"
rm -f "$BUILD_ROOT"/build/*.deb "$BUILD_ROOT"/build/*.changes "$BUILD_ROOT"/build/*.buildinfo
# debian/control comes from debian/control.in for the versions this
# release supports (pg_buildext updatecontrol)
in_root "$BUILD_ROOT" sh -c 'cd /build/billing && pg_buildext updatecontrol && dpkg-buildpackage -us -uc -b' \
	> "$CACHE/build-$MAJOR.log" 2>&1 || { tail -40 "$CACHE/build-$MAJOR.log"; echo "package build failed"; exit 1; }
rm -rf "$OUT"; mkdir -p "$OUT"
cp "$BUILD_ROOT"/build/*.deb "$OUT/"
ls "$OUT"
deb=$(ls "$OUT"/postgresql-$MAJOR-billing_*.deb 2>/dev/null | grep -v dbgsym | head -1)
[ -n "$deb" ] || { echo "no postgresql-$MAJOR-billing package was built"; exit 1; }
dpkg-deb -f "$deb" Package Version Depends
dpkg-deb -c "$deb" | grep -E 'billing(\.so|\.control|--0\.2\.0\.sql)$' || { echo "the package lacks the extension's files"; exit 1; }
t2=$(date +%s)

echo "== installing $(basename "$deb") in a fresh $DIST root"
rm -rf "$INSTALL_ROOT"
cp -a "$BASE_ROOT" "$INSTALL_ROOT"
cp "$deb" "$INSTALL_ROOT/tmp/"
in_root "$INSTALL_ROOT" sh -c "apt-get update -q && apt-get install -y --no-install-recommends /tmp/$(basename "$deb")" \
	> "$CACHE/install-$MAJOR.log" 2>&1 || { tail -40 "$CACHE/install-$MAJOR.log"; echo "apt-get install failed"; exit 1; }
cat > "$INSTALL_ROOT/tmp/check.sh" <<'CHECK'
set -eu
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -c 'CREATE EXTENSION billing CASCADE'
q -c 'CREATE EXTENSION pg_cron'
q -c "SELECT 'version ' || extversion FROM pg_extension WHERE extname = 'billing'"
q -c "SET billing.clock = '2026-01-31 12:00+00'" -c "SELECT billing.create_billing_entity('Acme', 'USD')" \
  -c "SELECT billing.create_account(1, 'Alice')" -c "SELECT billing.create_product('Pro')" \
  -c "SELECT billing.create_price(1, 'USD', 10.00)" -c "SELECT billing.subscribe(1, 1)" \
  -c "SET billing.clock = '2026-03-01 12:00+00'" -c 'CALL billing.run_cycle()' \
  -c "SELECT 'invoices ' || count(*) FROM billing.invoice WHERE status <> 'draft'" \
  -c "SELECT 'broken ' || count(*) FROM billing.check_invariants()"
q -c 'SELECT count(*) FROM billing.schedule()' > /dev/null
q -c "SELECT 'jobs ' || count(*) FROM cron.job WHERE jobname LIKE 'billing-%'"
CHECK
out=$(in_root "$INSTALL_ROOT" pg_virtualenv -v "$MAJOR" -i '--encoding=UTF8 --locale=C.UTF-8' \
	-o shared_preload_libraries=pg_cron -o cron.database_name=postgres sh /tmp/check.sh 2>&1) \
	|| { echo "$out"; echo "the installed package does not work"; exit 1; }
echo "$out"
t3=$(date +%s)
echo "$out" | grep -q '^version 0\.2\.0$' || { echo "FAIL: not version 0.2.0"; exit 1; }
echo "$out" | grep -q '^broken 0$' || { echo "FAIL: invariants"; exit 1; }
echo "$out" | grep -Eq '^invoices [1-9]' || { echo "FAIL: no invoices"; exit 1; }
echo "$out" | grep -Eq '^jobs [1-9]' || { echo "FAIL: no pg_cron jobs"; exit 1; }
echo "== package $MAJOR: $((t1 - t0)) s preparing the roots, $((t2 - t1)) s building, $((t3 - t2)) s installing and checking"
echo "package $MAJOR ok"
