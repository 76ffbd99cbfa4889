# test/citus/bench.sh: the bench of test/citus/run.sh (`run.sh bench`, make
# citus-bench), sourced by it once the coordinator, the two workers and the
# plain node run: the same load and the same payments on the cluster and on
# the plain node, side by side.  Prints BENCH lines; docs/performance.md
# (Scaling out) has the figures and how to read them.
ACCOUNTS=${BENCH_ACCOUNTS:-100000}
CLIENTS=${BENCH_CLIENTS:-4}
SECS=${BENCH_SECONDS:-20}
DB=citus_bench
now_ms() { date +%s%3N; }
# psql on a port of the bench database, timed: prints the milliseconds
timed() { # port, then psql arguments
	t0=$(now_ms)
	q "$@" -d "$DB" >> "$LOG/bench.out" 2>&1 || { echo "failed: $*" >&2; tail -5 "$LOG/bench.out" >&2; return 1; }
	echo $(( $(now_ms) - t0 ))
}
load_sql="SELECT billing.create_billing_entity('Bench Inc', 'USD');
SELECT billing.create_product('Plan');
SELECT billing.create_price(1, 'USD', 10.00);
INSERT INTO billing.account (account_id, entity_id, name, currency)
SELECT i, 1, 'customer ' || i, 'USD' FROM generate_series(1, $ACCOUNTS) i;
INSERT INTO billing.subscription (account_id, subscription_id, status, anchor, cadence, start_date, next_bill_date)
SELECT i, i, 'active', '2024-01-01', '1 month', '2024-01-01', '2024-01-01' FROM generate_series(1, $ACCOUNTS) i;
INSERT INTO billing.subscription_item (account_id, subscription_item_id, subscription_id, price_id, quantity, started_on)
SELECT i, i, i, 1, 1, '2024-01-01' FROM generate_series(1, $ACCOUNTS) i;"

for p in $PORTS; do
	q "$p" -d postgres -c "CREATE DATABASE $DB" && q "$p" -d "$DB" -c "CREATE EXTENSION citus" || exit 1
done
q "$COORD" -d "$DB" -c "SELECT citus_set_coordinator_host('127.0.0.1', $COORD)" \
	-c "SELECT citus_add_node('127.0.0.1', $((BASE + 1)))" -c "SELECT citus_add_node('127.0.0.1', $((BASE + 2)))" \
	-c "CREATE EXTENSION billing CASCADE" >/dev/null || exit 1
q "$PLAIN" -d postgres -c "CREATE DATABASE $DB" && q "$PLAIN" -d "$DB" -c "CREATE EXTENSION billing CASCADE" || exit 1

echo "-- $ACCOUNTS accounts with a subscription each; the first cycle"
for p in $COORD $PLAIN; do
	q "$p" -d "$DB" -c "$load_sql" >/dev/null || exit 1
done
CYCLE_PLAIN=$(timed "$PLAIN" -c "SET billing.clock = '2024-01-01 12:00+00'" -c "CALL billing.run_cycle(as_of => '2024-01-01')") || exit 1
# the cluster's first cycle runs before the tables are distributed
timed "$COORD" -c "SET billing.clock = '2024-01-01 12:00+00'" -c "CALL billing.run_cycle(as_of => '2024-01-01')" >/dev/null || exit 1
DIST=$(timed "$COORD" -c "SET client_min_messages = warning" -c "SELECT count(*) FROM billing.distribute()") || exit 1
for p in $COORD $PLAIN; do
	q "$p" -d "$DB" -c "VACUUM ANALYZE" >/dev/null
done
echo "BENCH citus_cycle_plain_ms $CYCLE_PLAIN  ($ACCOUNTS subscriptions, one node)"
echo "BENCH citus_distribute_ms $DIST  (moving $ACCOUNTS accounts' rows to the shards)"
# the second cycle on the cluster: distributed
if CYCLE2=$(timed "$COORD" -c "SET billing.clock = '2024-02-01 12:00+00'" -c "CALL billing.run_cycle(as_of => '2024-02-01')"); then
	echo "BENCH citus_cycle_cluster_ms $CYCLE2 ($(q "$COORD" -d "$DB" -c "SELECT count(*) FROM billing.invoice WHERE issue_date = '2024-02-01'") invoices)"
else
	echo "BENCH citus_cycle_cluster_ms failed: $(grep ERROR "$LOG/bench.out" | tail -1)"
fi

echo "-- payments: pgbench, $CLIENTS clients, ${SECS}s, random accounts"
SCRIPT=$DIR/pay.pgb
cat > "$SCRIPT" <<PGB
\set acct random(1, $ACCOUNTS)
\set key random(1, 99999999999)
SELECT billing.apply_payment(:acct, '1.00 USD', 'card', reference => 'tok_bench', idempotency_key => 'k' || :key, received_on => '2024-01-05');
PGB
pay() { # port: tps
	"$BIN/pgbench" -n -M prepared -h 127.0.0.1 -p "$1" -U postgres -c "$CLIENTS" -j "$CLIENTS" -T "$SECS" \
		-f "$SCRIPT" "$DB" > "$LOG/pgbench_$1.out" 2>&1 || { tail -5 "$LOG/pgbench_$1.out" >&2; echo 0; return; }
	sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$LOG/pgbench_$1.out" | cut -d. -f1
}
# each side warmed for a few seconds (plans, connections to the workers)
SECS_W=$SECS; SECS=3; pay "$PLAIN" >/dev/null; pay "$COORD" >/dev/null; SECS=$SECS_W
PAY_PLAIN=$(pay "$PLAIN")
PAY_CLUSTER=$(pay "$COORD")
grep -h "latency average" "$LOG/pgbench_$PLAIN.out" "$LOG/pgbench_$COORD.out" | sed 's/^/   plain, cluster: /'
# the same with the call delegated to the worker that holds the account
# (Citus runs the whole function there: every statement local to the
# shard); billing.distribute() does not do this, see docs/performance.md
q "$COORD" -d "$DB" -c "SELECT create_distributed_function('billing.apply_payment(bigint, billing.amount, text, text, text, date, bigint[])', 'account_id', colocate_with := 'billing.account')" >/dev/null
SECS_W=$SECS; SECS=3; pay "$COORD" >/dev/null; SECS=$SECS_W
PAY_DELEGATED=$(pay "$COORD")
echo "BENCH citus_payments_plain_per_second $PAY_PLAIN"
echo "BENCH citus_payments_cluster_per_second $PAY_CLUSTER"
echo "BENCH citus_payments_cluster_delegated_per_second $PAY_DELEGATED"
grep -h "latency average" "$LOG/pgbench_$COORD.out" | sed 's/^/   delegated: /'

echo "-- reports and invariants over $ACCOUNTS accounts"
for r in "account_balances" "ar_aging" "mrr_by_month" "revenue_by_month"; do
	a=$(timed "$PLAIN" -c "SELECT count(*) FROM billing.$r") || a=failed
	b=$(timed "$COORD" -c "SELECT count(*) FROM billing.$r") || b=failed
	echo "BENCH citus_${r}_ms plain $a cluster $b"
done
a=$(timed "$PLAIN" -c "SELECT count(*) FROM billing.check_invariants()") || a=failed
b=$(timed "$COORD" -c "SELECT count(*) FROM billing.check_invariants()") || b=failed
echo "BENCH citus_check_invariants_ms plain $a cluster $b"
echo "BENCH citus_broken_invariants plain $(q "$PLAIN" -d "$DB" -c "SELECT count(*) FROM billing.check_invariants()") cluster $(q "$COORD" -d "$DB" -c "SELECT count(*) FROM billing.check_invariants()")"
