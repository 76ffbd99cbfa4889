#!/bin/sh
# bench/payments.sh - billing.apply_payment under pgbench: 8 clients over
# 10k accounts that each have an open invoice (billed by run_cycle, so the
# ledger holds their finalization).  Each transaction pays 1.00 USD with a
# fresh idempotency key to a random account: oldest invoice first, the rest
# (after ten payments) to credit.  The clients use the extended protocol with
# prepared statements (pgbench -M prepared), as an application's driver does:
# the call is parsed and planned once per connection, not once per payment.
# Run by bench/run.sh with PGDATABASE set
# to a fresh database: sh test/run.sh bench payments.  Prints
#   BENCH payments_cold_per_second <tps>  the warm-up run, on statistics of empty tables
#   BENCH payments_per_second_durable <tps>  pgbench's tps, excluding connections, with
#                                     synchronous_commit = on (the measured run is two halves,
#                                     each followed by the floor)
#   BENCH payments_floor_per_second_durable <tps>  the same load on the floor, also durable: the
#                                     rows a payment writes, by plain statements
#                                     (bench/tools/payment_floor.sql)
#   BENCH payments_vs_floor <r> x     payments_per_second_durable / payments_floor_per_second_durable
#   BENCH payments_per_second_async <tps>, payments_floor_per_second_async <tps>,
#   BENCH payments_vs_floor_async <r> x   the same with synchronous_commit = off
#   BENCH payments_deadlocks <n>      pg_stat_database.deadlocks after the run
#   BENCH payments_broken_invariants <n>  rows of check_invariants() after it
set -eu
CLIENTS=${BENCH_CLIENTS:-8}
SECONDS_=${BENCH_SECONDS:-20}
ACCOUNTS=${BENCH_ACCOUNTS:-10000}
PSQL="psql -X -q -v ON_ERROR_STOP=1"

$PSQL <<SQL >/dev/null
CREATE EXTENSION IF NOT EXISTS billing;
SELECT billing.create_billing_entity('Bench Inc', 'USD');
SELECT billing.create_product('Plan');
SELECT billing.create_price(1, 'USD', 10.00);
INSERT INTO billing.account (account_id, entity_id, name, currency)
SELECT i, 1, 'customer ' || i, 'USD' FROM generate_series(1, $ACCOUNTS) i;
INSERT INTO billing.subscription (account_id, subscription_id, status, anchor, cadence, start_date, next_bill_date)
SELECT i, i, 'active', '2024-01-01', '1 month', '2024-01-01', '2024-01-01' FROM generate_series(1, $ACCOUNTS) i;
INSERT INTO billing.subscription_item (account_id, subscription_item_id, subscription_id, price_id, quantity, started_on)
SELECT i, i, i, 1, 1, '2024-01-01' FROM generate_series(1, $ACCOUNTS) i;
SET billing.clock = '2024-01-01 12:00+00';
CALL billing.run_cycle(as_of => '2024-01-01');
VACUUM ANALYZE;
CHECKPOINT;
SQL
OPEN=$($PSQL -A -t -c "SELECT count(*) FROM billing.invoice WHERE status = 'open'")
echo "open invoices: $OPEN"

SCRIPT=$(mktemp)
cat > "$SCRIPT" <<PGB
\set acct random(1, $ACCOUNTS)
\set key random(1, 99999999999)
SELECT billing.apply_payment(:acct, '1.00 USD', 'card', reference => 'tok_bench', idempotency_key => 'k' || :key, received_on => '2024-01-05');
PGB
# Warm-up: the tables' statistics were taken while payment, its
# applications and their ledger rows were empty, and plans made from those
# statistics run the first payments at about half the speed.  A database in
# service has statistics of its tables (autovacuum analyzes them), so the
# measured run comes after a short cold run (its figure printed as
# payments_cold_per_second) and an ANALYZE.
pgbench -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -T "${BENCH_WARMUP_SECONDS:-5}" -f "$SCRIPT" > "$SCRIPT.out" 2>&1 || { cat "$SCRIPT.out"; exit 1; }
COLD=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$SCRIPT.out")
$PSQL -c "ANALYZE"
DB=$(psql -X -A -t -c "SELECT current_database()")
# the floor's database: a copy of this one as the measured run finds it
FLOOR_DB=${DB}_floor
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $FLOOR_DB" -c "CREATE DATABASE $FLOOR_DB TEMPLATE $DB"
$PSQL -d "$FLOOR_DB" -f "$(dirname "$0")/tools/payment_floor.sql" \
	-c 'ALTER TABLE billing.ledger_entry DISABLE TRIGGER ledger_entry_balanced'
BEFORE=$(psql -X -A -t -c "SELECT deadlocks FROM pg_stat_database WHERE datname = '$DB'")
FLOOR_SCRIPT=$(mktemp)
cat > "$FLOOR_SCRIPT" <<PGB
\set acct random(1, $ACCOUNTS)
\set key random(1, 99999999999)
SELECT bench_floor.pay(:acct, '1.00 USD', 'k' || :key);
PGB
# $1 script, $2 database, $3 seconds, $4 synchronous_commit: pgbench's tps
tps() {
	PGOPTIONS="-c synchronous_commit=$4" pgbench -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -T "$3" -f "$1" "$2" \
		> "$SCRIPT.out" 2>&1 || { cat "$SCRIPT.out" >&2; exit 1; }
	grep -E 'number of transactions actually processed|number of failed|latency average' "$SCRIPT.out" >&2 || true
	sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$SCRIPT.out"
}
# The measured run in two halves per commit mode, each followed by as long
# a run of the floor (the same rows by plain statements,
# bench/tools/payment_floor.sql) in the copy with the same commit mode:
# side by side, so that the machine's drift does not fall between the two
# figures.  Durable: synchronous_commit = on, each payment's commit waits
# for its WAL on disk (concurrent commits share a flush); asynchronous:
# off, as the cluster of bench/run.sh is set.
HALF=$((SECONDS_ / 2))
REST=$((SECONDS_ - HALF))
T1=$(tps "$SCRIPT" "$DB" "$HALF" on)
F1=$(tps "$FLOOR_SCRIPT" "$FLOOR_DB" "$HALF" on)
A1=$(tps "$SCRIPT" "$DB" "$HALF" off)
G1=$(tps "$FLOOR_SCRIPT" "$FLOOR_DB" "$HALF" off)
T2=$(tps "$SCRIPT" "$DB" "$REST" on)
F2=$(tps "$FLOOR_SCRIPT" "$FLOOR_DB" "$REST" on)
A2=$(tps "$SCRIPT" "$DB" "$REST" off)
G2=$(tps "$FLOOR_SCRIPT" "$FLOOR_DB" "$REST" off)
TPS=$(echo "($T1 * $HALF + $T2 * $REST) / $SECONDS_" | bc -l)
FLOOR=$(echo "($F1 * $HALF + $F2 * $REST) / $SECONDS_" | bc -l)
ATPS=$(echo "($A1 * $HALF + $A2 * $REST) / $SECONDS_" | bc -l)
AFLOOR=$(echo "($G1 * $HALF + $G2 * $REST) / $SECONDS_" | bc -l)
echo "apply_payment durable: $T1 then $T2 per second; the floor: $F1 then $F2"
echo "apply_payment asynchronous commit: $A1 then $A2 per second; the floor: $G1 then $G2"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
AFTER=$(psql -X -A -t -c "SELECT deadlocks FROM pg_stat_database WHERE datname = '$DB'")
BROKEN=$(psql -X -A -t -c "SELECT count(*) FROM billing.check_invariants()")
PAID=$(psql -X -A -t -c "SELECT count(*) FROM billing.invoice WHERE status = 'paid'")
echo "invoices paid: $PAID"
psql -X -q -d postgres -c "DROP DATABASE $FLOOR_DB"

printf 'BENCH payments_cold_per_second %.0f\n' "$COLD"
printf 'BENCH payments_per_second_durable %.0f\n' "$TPS"
printf 'BENCH payments_floor_per_second_durable %.0f\n' "$FLOOR"
printf 'BENCH payments_vs_floor %.2f x\n' "$(echo "$TPS / $FLOOR" | bc -l)"
printf 'BENCH payments_per_second_async %.0f\n' "$ATPS"
printf 'BENCH payments_floor_per_second_async %.0f\n' "$AFLOOR"
printf 'BENCH payments_vs_floor_async %.2f x\n' "$(echo "$ATPS / $AFLOOR" | bc -l)"
echo "BENCH payments_deadlocks $((AFTER - BEFORE))"
echo "BENCH payments_broken_invariants $BROKEN"
rm -f "$SCRIPT" "$SCRIPT.out" "$FLOOR_SCRIPT"
