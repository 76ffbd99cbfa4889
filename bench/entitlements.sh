#!/bin/sh
# bench/entitlements.sh - the application's check, billing.entitled, under
# pgbench: 8 clients, prepared statements, random accounts of 20,000 (half
# of them with an add-on), against the floor: the same answer read by one
# plain statement over the same tables (the subscriptions, items and grants
# of the account, no authorization, no override, no time zone).  Prints:
#   BENCH entitled_checks_per_second <tps>
#   BENCH entitled_floor_per_second <tps>
#   BENCH entitled_vs_floor <r> x     checks / floor
#   BENCH entitled_in_server_microseconds <us>  one call inside a statement, the
#                                     client round trip left out
set -eu
CLIENTS=${BENCH_CLIENTS:-8}
SECONDS_=${BENCH_SECONDS:-15}
ACCOUNTS=${BENCH_ACCOUNTS:-20000}
PSQL="psql -X -q -v ON_ERROR_STOP=1"
$PSQL -v accounts="$ACCOUNTS" <<'SQL' >/dev/null
SET client_min_messages = warning;
CREATE EXTENSION billing CASCADE;
SELECT billing.create_billing_entity('Bench', 'EUR') AS e \gset
SELECT billing.create_product('Cloud') AS p \gset
SELECT billing.create_price(:p, 'EUR', 10.00) AS basic \gset
SELECT billing.create_price(:p, 'EUR', 5.00, scheme => 'per_unit') AS pack \gset
SELECT billing.create_feature('api', 'API'), billing.create_feature('storage', 'Storage', 'limit');
SELECT billing.set_price_feature(:basic, 'api'), billing.set_price_feature(:basic, 'storage', '10'),
       billing.set_price_feature(:pack, 'storage', '50', per_unit => true);
SELECT count(billing.subscribe(billing.create_account(:e, 'A' || i), :basic, invoice_now => false))
FROM generate_series(1, :accounts) i;
SELECT count(billing.subscribe(a, :pack, quantity => 2, invoice_now => false)) FROM generate_series(1, :accounts, 2) a;
VACUUM ANALYZE;
SQL
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cat > "$T/check.sql" <<EOF2
\set aid random(1, $ACCOUNTS)
SELECT billing.entitled(:aid, 'api');
EOF2
cat > "$T/floor.sql" <<EOF2
\set aid random(1, $ACCOUNTS)
SELECT EXISTS (SELECT FROM billing.subscription s
               JOIN billing.subscription_item i ON i.account_id = s.account_id AND i.subscription_id = s.subscription_id
               JOIN billing.price_feature pf ON pf.price_id = i.price_id AND pf.feature_id = 1
               WHERE s.account_id = :aid AND s.status IN ('trialing', 'active', 'past_due')
                 AND i.started_on <= current_date AND (i.ended_on IS NULL OR i.ended_on > current_date));
EOF2
tps() {
	pgbench -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -T "$2" -f "$1" > "$T/out" 2>&1 || { cat "$T/out"; exit 1; }
	sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$T/out" | tail -1
}
tps "$T/check.sql" 3 >/dev/null
CHECK=$(tps "$T/check.sql" "$SECONDS_")
FLOOR=$(tps "$T/floor.sql" "$SECONDS_")
US=$($PSQL -A -t -v accounts="$ACCOUNTS" <<'SQL'
SELECT billing.entitled(1, 'api') \g /dev/null
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FILTER (WHERE billing.entitled(1 + (i * 7919) % :accounts, 'api')) FROM generate_series(1, 20000) i \g /dev/null
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1e6 / 20000, 1);
SQL
)
printf 'BENCH entitled_checks_per_second %.0f\n' "$CHECK"
printf 'BENCH entitled_floor_per_second %.0f\n' "$FLOOR"
printf 'BENCH entitled_vs_floor %.2f x\n' "$(echo "$CHECK / $FLOOR" | bc -l)"
echo "BENCH entitled_in_server_microseconds $US us"
