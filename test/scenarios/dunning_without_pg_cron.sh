#!/bin/sh
# billing without pg_cron: on a cluster of its own that does not preload
# pg_cron, CREATE EXTENSION billing works, the cycle and dunning run, and
# billing.schedule() fails with 55000 and a hint that says how to install
# and preload pg_cron.
set -eu
fail() { echo "FAIL: $*"; exit 1; }
dir=$(mktemp -d)
cat > "$dir/inner.sh" <<'INNER'
set -eu
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
[ -z "$(q -c "SELECT current_setting('cron.database_name', true)")" ] || { echo "pg_cron is loaded"; exit 1; }
q -c 'CREATE EXTENSION billing'
q -c "SET billing.clock = '2026-01-01 12:00+00'" -c "SELECT billing.create_billing_entity('Acme', 'USD')" \
  -c "SELECT billing.create_account(1, 'Alice', payment_terms_days => 14)" -c "SELECT billing.create_product('Pro')" \
  -c "SELECT billing.create_price(1, 'USD', 10.00)" -c "SELECT billing.subscribe(1, 1)" \
  -c "SET billing.clock = '2026-01-20 12:00+00'" -c 'CALL billing.run_cycle()' -c 'CALL billing.run_dunning()' \
  -c "SELECT 'steps ' || count(*) FROM billing.dunning_action" -c "SELECT 'broken ' || count(*) FROM billing.check_invariants()"
psql -X -q -At -c '\set VERBOSITY verbose' -c 'SELECT * FROM billing.schedule()' 2>&1 || true
psql -X -q -At -c 'SELECT job_name FROM billing.schedule_status()' 2>&1
INNER
# a cluster of its own: none of the outer cluster's connection settings,
# but extensions from where the outer cluster loads them
major=$(psql -X -At -c "SELECT current_setting('server_version_num')::int / 10000")
ext=$(psql -X -At -c "SELECT format('-o extension_destdir=%s -o dynamic_library_path=%s',
                                    current_setting('extension_destdir'), current_setting('dynamic_library_path'))")
out=$(env -u PGHOST -u PGPORT -u PGDATABASE -u PGUSER -u PGPASSWORD -u PGSYSCONFDIR -u PG_CLUSTER_CONF_ROOT \
	pg_virtualenv -t -v "$major" $ext sh "$dir/inner.sh" 2>&1) || { rm -rf "$dir"; fail "inner cluster: $out"; }
rm -rf "$dir"
echo "$out"
# -3 (Jan 12) and +1 (Jan 16) reminders, +3 retry (no card)
echo "$out" | grep -q '^steps 3$' || fail "dunning without pg_cron"
echo "$out" | grep -q '^broken 0$' || fail "invariants"
echo "$out" | grep -q 'ERROR:  55000: pg_cron is not loaded: billing cannot schedule its jobs' || fail "no 55000"
echo "$out" | grep -q "HINT:  Install pg_cron (Debian: apt-get install postgresql-$major-cron), add to postgresql.conf: shared_preload_libraries = 'pg_cron' and cron.database_name = 'postgres'" \
	|| fail "no hint"
echo "$out" | grep -q 'pg_cron is not available here (not_loaded)' || fail "status without pg_cron"
echo "$out" | grep -q '^billing-dunning$' || fail "status rows"
echo ok
