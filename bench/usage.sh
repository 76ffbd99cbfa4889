#!/bin/sh
# bench/usage.sh - usage ingestion: billing.record_usage_batch against plain
# INSERTs of the same rows into the same table, and billing.record_usage
# under pgbench.  ACCOUNTS accounts (BENCH_ACCOUNTS, 10k) with one metered
# item each.  The batches: BENCH_USAGE_BATCHES (50) of BENCH_BATCH (10,000)
# events, 5% of each batch duplicates (the first batch repeats its own
# first events, the others the last events of the batch before), written
# beforehand into a table the timed calls read them from.  Each call is one
# transaction, committed with synchronous_commit = on.  Run by bench/run.sh
# with PGDATABASE set to a fresh database: sh test/run.sh bench usage.
# Prints
#   BENCH usage_events_per_second_batch <n>   events given (duplicates too) per second, best of 3
#   BENCH usage_floor_events_per_second <n>   the same rows by plain INSERT ... SELECT FROM unnest,
#                                             best of 3, in turn with the batches
#   BENCH usage_vs_floor <r> x                the two rates, floor time / batch time
#   BENCH usage_events_per_second_single <tps>   pgbench -M prepared, 8 clients, one record_usage
#                                             per transaction, synchronous_commit = on
#   BENCH usage_events_per_second_single_async <tps>  the same, synchronous_commit = off
#   BENCH usage_broken_invariants <n>         rows of check_invariants() after it
set -eu
ACCOUNTS=${BENCH_ACCOUNTS:-10000}
BATCHES=${BENCH_USAGE_BATCHES:-50}
SIZE=${BENCH_BATCH:-10000}
CLIENTS=${BENCH_CLIENTS:-8}
SECONDS_=${BENCH_SECONDS:-20}
PSQL="psql -X -q -v ON_ERROR_STOP=1"
DUPS=$((SIZE / 20))
NEW=$((SIZE - DUPS))

$PSQL <<SQL >/dev/null
CREATE EXTENSION IF NOT EXISTS billing;
SELECT billing.create_billing_entity('Bench Inc', 'USD');
SELECT billing.create_product('API');
SELECT billing.create_price(1, 'USD', 0.01, scheme => 'per_unit', usage_type => 'metered');
INSERT INTO billing.account (account_id, entity_id, name, currency)
SELECT i, 1, 'customer ' || i, 'USD' FROM generate_series(1, $ACCOUNTS) i;
INSERT INTO billing.subscription (account_id, subscription_id, status, anchor, cadence, start_date, next_bill_date)
SELECT i, i, 'active', '2024-01-01', '1 month', '2024-01-01', '2024-02-01' FROM generate_series(1, $ACCOUNTS) i;
INSERT INTO billing.subscription_item (account_id, subscription_item_id, subscription_id, price_id, quantity, started_on)
SELECT i, i, i, 1, 1, '2024-01-01' FROM generate_series(1, $ACCOUNTS) i;
-- Event g: account and item (g mod ACCOUNTS) + 1, quantity 1 to 7, key
-- e<g>, a time on 2024-01-15.  Batch b holds the new events
-- (b - 1) * NEW + 1 .. b * NEW and DUPS events again, mixed.
CREATE SCHEMA bench;
CREATE TABLE bench.batch (n integer PRIMARY KEY, a bigint[], i bigint[], q numeric[], k text[], t timestamptz[],
                          d date[]);
CREATE TABLE bench.floor (n integer PRIMARY KEY, a bigint[], i bigint[], q numeric[], k text[], t timestamptz[],
                          d date[]);
CREATE FUNCTION bench.events(b integer) RETURNS TABLE (g bigint, dup boolean) LANGUAGE sql AS \$\$
    SELECT g, false FROM generate_series((b - 1)::bigint * $NEW + 1, b::bigint * $NEW) g
    UNION ALL
    SELECT g, true FROM generate_series(greatest((b - 1)::bigint * $NEW - $DUPS + 1, 1),
                                        greatest((b - 1)::bigint * $NEW, $DUPS)) g
\$\$;
INSERT INTO bench.batch
SELECT b, array_agg(g % $ACCOUNTS + 1 ORDER BY o), array_agg(g % $ACCOUNTS + 1 ORDER BY o),
       array_agg(g % 7 + 1 ORDER BY o), array_agg('e' || g ORDER BY o),
       array_agg('2024-01-15 00:00+00'::timestamptz + (g % 86400) * interval '1 second' ORDER BY o), NULL
FROM generate_series(1, $BATCHES) b, LATERAL (SELECT g, (g * 7919 + dup::int) % 10007 AS o FROM bench.events(b)) e
GROUP BY b;
-- the floor's rows: each batch's new events, their day given
INSERT INTO bench.floor
SELECT b, array_agg(g % $ACCOUNTS + 1 ORDER BY o), array_agg(g % $ACCOUNTS + 1 ORDER BY o),
       array_agg(g % 7 + 1 ORDER BY o), array_agg('e' || g ORDER BY o),
       array_agg('2024-01-15 00:00+00'::timestamptz + (g % 86400) * interval '1 second' ORDER BY o),
       array_agg(date '2024-01-15' ORDER BY o)
FROM generate_series(1, $BATCHES) b, LATERAL (SELECT g, (g * 7919) % 10007 AS o FROM bench.events(b) WHERE NOT dup) e
GROUP BY b;
VACUUM ANALYZE;
SQL

BATCH_SQL=$(mktemp)
FLOOR_SQL=$(mktemp)
trap 'rm -f "$BATCH_SQL" "$FLOOR_SQL" "$BATCH_SQL.out" "$BATCH_SQL.pgb"' EXIT
for b in $(seq 1 "$BATCHES"); do
	echo "SELECT r.inserted, r.duplicates FROM bench.batch b, billing.record_usage_batch(b.a, b.i, b.q, b.k, b.t) r WHERE b.n = $b;"
done > "$BATCH_SQL"
for b in $(seq 1 "$BATCHES"); do
	echo "INSERT INTO billing.usage_event (account_id, subscription_item_id, quantity, occurred_at, usage_date, idempotency_key)"
	echo "SELECT u.* FROM bench.floor f, unnest(f.a, f.i, f.q, f.t, f.d, f.k) u WHERE f.n = $b;"
done > "$FLOOR_SQL"

# $1 script: seconds it takes on an empty usage_event, each statement its own
# transaction, committed durably
run() {
	$PSQL -c 'TRUNCATE billing.usage_event' -c 'CHECKPOINT'
	t0=$(date +%s.%N)
	PGOPTIONS='-c synchronous_commit=on' psql -X -q -v ON_ERROR_STOP=1 -A -t -f "$1" > "$BATCH_SQL.out"
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l
}
EVENTS=$((BATCHES * SIZE))
BEST_B=""
BEST_F=""
for round in 1 2 3; do
	if [ $((round % 2)) -eq 1 ]; then
		TB=$(run "$BATCH_SQL")
		INS=$(awk -F'|' '{ i += $1; d += $2 } END { print i " " d }' "$BATCH_SQL.out")
		TF=$(run "$FLOOR_SQL")
	else
		TF=$(run "$FLOOR_SQL")
		TB=$(run "$BATCH_SQL")
		INS=$(awk -F'|' '{ i += $1; d += $2 } END { print i " " d }' "$BATCH_SQL.out")
	fi
	printf 'round %s: batches %.3f s (inserted, duplicates: %s), floor %.3f s, load %s\n' \
		"$round" "$TB" "$INS" "$TF" "$(cut -d' ' -f1-3 /proc/loadavg)"
	[ "$INS" = "$((BATCHES * NEW)) $((BATCHES * DUPS))" ] || { echo "wrong counts: $INS" >&2; exit 1; }
	if [ -z "$BEST_B" ] || [ "$(echo "$TB < $BEST_B" | bc -l)" = 1 ]; then BEST_B=$TB; fi
	if [ -z "$BEST_F" ] || [ "$(echo "$TF < $BEST_F" | bc -l)" = 1 ]; then BEST_F=$TF; fi
done
# the batches' rows stay for the single calls and the invariants
run "$BATCH_SQL" >/dev/null
STORED=$(psql -X -A -t -c "SELECT count(*) FROM billing.usage_event")
echo "events stored: $STORED"

# One record_usage per transaction, fresh keys, random accounts.
cat > "$BATCH_SQL.pgb" <<PGB
\set acct random(1, $ACCOUNTS)
\set key random(1, 99999999999)
\set q random(1, 7)
SELECT billing.record_usage(:acct, :acct, :q, 's' || :key, '2024-01-16 10:00+00');
PGB
# $1 synchronous_commit, $2 seconds: pgbench's tps
tps() {
	PGOPTIONS="-c synchronous_commit=$1" pgbench -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -T "$2" \
		-f "$BATCH_SQL.pgb" > "$BATCH_SQL.out" 2>&1 || { cat "$BATCH_SQL.out" >&2; exit 1; }
	grep -E 'number of transactions actually processed|number of failed|latency average' "$BATCH_SQL.out" >&2 || true
	sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$BATCH_SQL.out"
}
tps on "${BENCH_WARMUP_SECONDS:-5}" >/dev/null
HALF=$((SECONDS_ / 2))
S1=$(tps on "$HALF")
A1=$(tps off "$HALF")
S2=$(tps on "$HALF")
A2=$(tps off "$HALF")
echo "record_usage durable: $S1 then $S2 per second; asynchronous commit: $A1 then $A2; load $(cut -d' ' -f1-3 /proc/loadavg)"
BROKEN=$(psql -X -A -t -c "SELECT count(*) FROM billing.check_invariants()")

printf 'BENCH usage_events_per_second_batch %.0f\n' "$(echo "$EVENTS / $BEST_B" | bc -l)"
printf 'BENCH usage_floor_events_per_second %.0f\n' "$(echo "$EVENTS / $BEST_F" | bc -l)"
printf 'BENCH usage_vs_floor %.2f x\n' "$(echo "$BEST_F / $BEST_B" | bc -l)"
printf 'BENCH usage_events_per_second_single %.0f\n' "$(echo "($S1 + $S2) / 2" | bc -l)"
printf 'BENCH usage_events_per_second_single_async %.0f\n' "$(echo "($A1 + $A2) / 2" | bc -l)"
echo "BENCH usage_broken_invariants $BROKEN"
