#!/bin/sh
# pg_dump keeps every row of every table that holds user data: bill a
# database, dump it in two formats (custom, restored by pg_restore; plain
# with --inserts, restored by psql), restore each into a new database with
# session_replication_role = replica (triggers off, as README's Operations:
# Backup and restore says; pg_restore --disable-triggers does it only for a data-only restore),
# and compare each billing table's row count and digest, that the restored
# sequences go on where the old ones stopped, and check_invariants().  A
# restore loads rows as they were: billing's triggers (guards) are off, and
# no trigger does money work that a restore would repeat.  Run by
# test/cluster.sh with PGDATABASE set to a fresh database.
set -eu
SRC=$PGDATABASE
DST=${PGDATABASE}_restored
DUMP=$(mktemp)
trap 'rm -f "$DUMP"' EXIT
PSQL="psql -X -q -v ON_ERROR_STOP=1"

$PSQL -d "$SRC" <<'SQL'
CREATE EXTENSION billing;
SET search_path = public, billing;
SET billing.clock = '2024-01-01 12:00+00';
SELECT create_billing_entity('Dump GmbH', 'EUR');
SELECT create_tax_rate('VAT', 19);
SELECT create_account(1, 'Anna', tax_rate_id => 1), create_account(1, 'Bob', currency => 'USD');
SELECT create_product('Plan');
SELECT create_price(1, 'EUR', 10.00, setup_fee => 5), create_price(1, 'USD', 0.01, scheme => 'per_unit', usage_type => 'metered');
SELECT create_coupon('HALF', 'once', percent_off => 50);
SELECT create_price(1, 'EUR', scheme => 'graduated', tiers => '[{"up_to": 5, "unit_amount": 2}, {"up_to": null, "unit_amount": 1}]');
SELECT subscribe(1, 1, coupon => 'HALF'), subscribe(2, 2);
SELECT record_usage(2, 2, 123, 'u1', '2024-01-10 10:00+00');
SELECT add_payment_method(1, 'card', 'pm_dump'), set_early_payment_discount(2, 2, 10),
       set_collection_retry_days('{1,2}');
SET billing.clock = '2024-03-01 12:00+00';
CALL run_cycle();
-- payments: a row in each of their tables
SELECT apply_payment(2, '100.00 USD', 'bank_transfer', idempotency_key => 'dump-1') AS p \gset
SELECT refund_payment(2, :p, '1.00 USD');
SELECT issue_credit_note(1, (SELECT min(invoice_id) FROM invoice WHERE account_id = 1 AND status = 'open'),
                         '1.00 EUR', method => 'credit_balance');
SELECT create_installment_plan(1, (SELECT max(invoice_id) FROM invoice WHERE account_id = 1 AND status = 'open'), 2);
-- dunning: a row in each of its tables
SELECT create_dunning_policy('standard', is_default => true),
       create_dunning_policy('gentle', '[{"day_offset": 5, "action": "remind"}]');
SELECT set_dunning_policy(1, 'gentle'), set_price_change_notice_days(40);
SELECT change_subscription(2, 2, price_id => create_price(1, 'USD', 0.02, scheme => 'per_unit', usage_type => 'metered'),
                           proration => 'at_period_end');
CALL run_dunning();
-- subscription changes: an add-on
SELECT add_subscription_item(1, 1, 3, 2, proration => 'none');
-- an exchange rate
SELECT set_exchange_rate('EUR', 'USD', 1.085, '2024-01-01');
-- entitlements: a feature, a grant, an override
SELECT create_feature('api', 'API access'), set_price_feature(1, 'api'), set_subscription_feature(1, 1, 'api', 'false');
-- deliveries: a delivery worker's claim and one report
SELECT count(*) FROM claim_deliveries('dump-worker', '{email,webhook:crm}', 2);
SELECT finish_delivery(account_id, event_id, channel, 'dump-worker', 'failed', 'HTTP 503')
FROM delivery WHERE status = 'claimed' ORDER BY event_id, channel LIMIT 1;
-- roles: the grants of grant_roles and a binding
SELECT grant_roles('dump_writer', 'dump_operator', 'dump_reporting');
SELECT bind_role_to_entity('dump_reporting', 1);
SQL

digest() { # every table of the extension: name, rows, md5 of its rows in key order
	$PSQL -A -t -d "$1" <<'SQL'
SELECT format('SELECT %L || '' '' || count(*) || '' '' || md5(coalesce(string_agg(t::text, E''\\n'' ORDER BY t::text), '''')) FROM billing.%I t',
              c.relname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'billing' AND c.relkind = 'r'
ORDER BY c.relname \gexec
SELECT 'seq ' || sequencename || ' ' || coalesce(last_value, 0) FROM pg_sequences WHERE schemaname = 'billing' ORDER BY 1;
SQL
}
for format in custom inserts; do
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DST" -c "CREATE DATABASE $DST"
case $format in
custom)
	pg_dump -Fc -f "$DUMP" "$SRC"
	PGOPTIONS='-c session_replication_role=replica' pg_restore --exit-on-error -d "$DST" "$DUMP" ;;
inserts)
	pg_dump --inserts -f "$DUMP" "$SRC"
	PGOPTIONS='-c session_replication_role=replica' $PSQL -d "$DST" -f "$DUMP" >/dev/null ;;
esac
echo "-- restored from the $format dump"
digest "$SRC" > "$DUMP.src"
digest "$DST" > "$DUMP.dst"
cat "$DUMP.src"
if ! diff "$DUMP.src" "$DUMP.dst"; then
	echo "FAILED: the restored database differs"; exit 1
fi
# every table holding data was dumped: none is empty in the source
if grep -E '^[a-z_]+ 0 ' "$DUMP.src" ; then
	echo "FAILED: a table above is empty in the source, so the test proves nothing for it"; exit 1
fi
# the restored database goes on billing: new ids do not collide
$PSQL -d "$DST" <<'SQL'
DO $$ BEGIN
    IF (SELECT count(*) FROM billing.check_invariants()) > 0 THEN RAISE EXCEPTION 'FAILED invariants as restored'; END IF;
    IF NOT (has_function_privilege('dump_writer', 'billing.apply_payment(bigint,billing.amount,text,text,text,date,bigint[])', 'EXECUTE')
            AND has_table_privilege('dump_reporting', 'billing.invoice', 'SELECT')
            AND NOT has_table_privilege('dump_writer', 'billing.invoice', 'UPDATE')
            AND NOT has_function_privilege('dump_reporting', 'billing.apply_payment(bigint,billing.amount,text,text,text,date,bigint[])', 'EXECUTE'))
    THEN RAISE EXCEPTION 'FAILED: the grants of grant_roles did not come back with the dump'; END IF;
END $$;
SET billing.clock = '2024-04-01 12:00+00';
SELECT billing.create_account(1, 'Carl');
SELECT billing.subscribe(3, 1);
CALL billing.run_cycle();
SELECT billing.create_feature('sso', 'Single sign-on');
DO $$ BEGIN
    IF billing.entitled(1, 'api') OR NOT billing.entitled(3, 'api') THEN
        RAISE EXCEPTION 'FAILED: the entitlements did not come back with the dump';
    END IF;
    IF (SELECT count(*) FROM billing.check_invariants()) > 0 THEN RAISE EXCEPTION 'FAILED invariants after restore'; END IF;
END $$;
SQL
psql -X -q -d postgres -c "DROP DATABASE $DST"
done
psql -X -q -d "$SRC" -c "DROP OWNED BY dump_writer, dump_operator, dump_reporting" \
	-c "DROP ROLE dump_writer, dump_operator, dump_reporting"
rm -f "$DUMP.src" "$DUMP.dst"
echo "dump and restore: same rows"
