#!/bin/sh
# Invariant 6: a cycle run killed at any point and run again ends in the same
# state as one uninterrupted run.
#
# On a cluster of its own (initdb in a temporary directory, Unix socket only,
# so the suite's cluster is never touched): CRASH_N (200,000) subscriptions
# due on 2024-01-01, with tax on every other account, metered usage on every
# tenth, unapplied credit on 1% and a payment method on another 1% (so the
# cycle also applies credit, posts to the ledger and queues collection).  The
# database is copied (CREATE DATABASE ... TEMPLATE) and the copy billed by one
# uninterrupted run_cycle.  The original is billed by run_cycle CRASH_KILLS
# (4) times, each killed after a random delay, alternately by
# `pg_ctl stop -m immediate` and by SIGKILL of the postmaster and all its
# processes, the server restarted (crash recovery) each time; then run_cycle
# once more to the end.  Asserts: no duplicate invoice, no invoice without
# lines, every ledger transaction balanced, check_invariants() empty, the
# runs' logged counts add up to the invoices, and a digest of every table
# (ids that sequences hand out replaced by natural keys) equal to the
# uninterrupted copy's.  CRASH_SEED repeats a run's delays.
#
# Run by test/cluster.sh (it ignores the database it is given).
set -eu
N=${CRASH_N:-200000}
KILLS=${CRASH_KILLS:-4}
SEED=${CRASH_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
BIN=$(${PG_CONFIG:-pg_config} --bindir)
DIR=$(mktemp -d /tmp/billing-crash.XXXXXX)
DATA=$DIR/data
started=$(date +%s)

# initdb refuses root: the cluster runs as postgres when we are root
as_pg() {
	if [ "$(id -u)" = 0 ]; then (cd "$DIR" && runuser -u postgres -- "$@"); else (cd "$DIR" && "$@"); fi
}
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
server_up() { as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 300 start >/dev/null; }
cleanup() {
	as_pg "$BIN/pg_ctl" -D "$DATA" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$DIR"
}
trap cleanup EXIT
# the processes whose parent is $1, from /proc in one pass (field 4 of stat
# is the parent; the name in field 2 has no spaces for PostgreSQL's)
children_of() {
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v parent="$1" '$4 == parent { printf "%s ", $1 }'
}
fail() {
	echo "FAILED: $*"
	echo "-- server log (errors, then the tail)"
	grep -E 'PANIC|FATAL|ERROR|terminated by signal|was terminated' "$DIR/server.log" | tail -20 || true
	tail -40 "$DIR/server.log" 2>/dev/null || true
	# the whole log next to the suite's (test/cluster.sh runs from the top)
	[ -d log ] && cp "$DIR/server.log" log/crash_cycle.server.log && echo "server log: log/crash_cycle.server.log"
	exit 1
}

as_pg "$BIN/initdb" -D "$DATA" -A trust -U postgres --encoding=UTF8 --locale=C.UTF-8 >/dev/null
cat >> "$DATA/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$DIR'
port = 5432
shared_buffers = 256MB
max_wal_size = 1GB
log_statement = 'all'
EOF
server_up
export PGHOST="$DIR" PGPORT=5432 PGUSER=postgres
unset PGPASSWORD PGSERVICE 2>/dev/null || true
# the test clock: every default billing.now() is the same in both databases
export PGOPTIONS='-c billing.clock=2024-01-01T12:00:00+00'
PSQL="psql -X -q -v ON_ERROR_STOP=1"
CYCLE="CALL billing.run_cycle(as_of => '2024-01-01', batch_size => 1000)"
echo "crash test: $N subscriptions, $KILLS kills, seed $SEED"

$PSQL -d postgres -c "CREATE DATABASE crash"
$PSQL -d crash -v n="$N" <<'SQL' >/dev/null
CREATE EXTENSION billing;
SELECT billing.create_billing_entity('Crash Ltd', 'USD');
SELECT billing.create_tax_rate('Sales tax', 8.875);
SELECT billing.create_product('Plan');
SELECT billing.create_price(1, 'USD', 19.99);
SELECT billing.create_price(1, 'USD', 0.0035, scheme => 'per_unit', usage_type => 'metered');
INSERT INTO billing.account (account_id, entity_id, name, currency, tax_rate_id)
SELECT i, 1, 'customer ' || i, 'USD', CASE WHEN i % 2 = 0 THEN 1 END FROM generate_series(1, :n) i;
-- December was billed: January is due
INSERT INTO billing.subscription (account_id, subscription_id, status, anchor, cadence, start_date,
                                  next_bill_date, current_period_start, current_period_end)
SELECT i, i, 'active', '2023-12-01', '1 month', '2023-12-01', '2024-01-01', '2023-12-01', '2024-01-01'
FROM generate_series(1, :n) i;
INSERT INTO billing.subscription_item (account_id, subscription_item_id, subscription_id, price_id, quantity, started_on)
SELECT i, i, i, 1, 1 + i % 3, '2023-12-01' FROM generate_series(1, :n) i;
INSERT INTO billing.subscription_item (account_id, subscription_item_id, subscription_id, price_id, quantity, started_on)
SELECT i, :n + i, i, 2, 1, '2023-12-01' FROM generate_series(10, :n, 10) i;
INSERT INTO billing.usage_event (account_id, subscription_item_id, quantity, occurred_at, usage_date, idempotency_key)
SELECT i, :n + i, 100 + i % 997, '2023-12-15 10:00+00', '2023-12-15', 'u' || i FROM generate_series(10, :n, 10) i;
SELECT setval('billing.account_account_id_seq', :n), setval('billing.subscription_subscription_id_seq', :n),
       setval('billing.subscription_item_subscription_item_id_seq', 2 * :n);
-- credit to apply and payment methods to collect with, through the API
SELECT count(billing.apply_payment(i, '7.00 USD', 'cash', idempotency_key => 'pre-' || i))
FROM generate_series(1, :n, 100) i;
SELECT count(billing.add_payment_method(i, 'card', 'pm_' || i)) FROM generate_series(2, :n, 100) i;
SQL
$PSQL -d crash -c "VACUUM ANALYZE" -c "CHECKPOINT"
$PSQL -d postgres -c "CREATE DATABASE reference TEMPLATE crash"
echo "set-up: $(($(date +%s) - started)) s"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
t0=$(now)
$PSQL -d reference -c "$CYCLE"
T=$(since "$t0")
echo "uninterrupted run: $T s"
TOTAL=$($PSQL -A -t -d reference -c "SELECT count(*) FROM billing.invoice")
[ "$TOTAL" -ge "$N" ] || fail "the uninterrupted run made $TOTAL invoices for $N subscriptions"

# Kill k after a random delay in [0.2 s, T / (KILLS + 1)): the killed runs
# together cannot finish the work, so the last run always has some left.
delays=$(awk -v seed="$SEED" -v k="$KILLS" -v t="$T" 'BEGIN {
	srand(seed); max = t / (k + 1); if (max < 0.4) max = 0.4;
	for (i = 1; i <= k; i++) printf "%.2f ", 0.2 + rand() * (max - 0.2) }')
k=0
partial=0
for delay in $delays; do
	k=$((k + 1))
	$PSQL -d crash -c "$CYCLE" > "$DIR/run$k.out" 2>&1 &
	run=$!
	sleep "$delay"
	if ! kill -0 "$run" 2>/dev/null; then
		cat "$DIR/run$k.out"; fail "run $k ended before it was killed at $delay s"
	fi
	if [ $((k % 2)) = 1 ]; then
		how="pg_ctl stop -m immediate"
		as_pg "$BIN/pg_ctl" -D "$DATA" -m immediate stop >/dev/null
	else
		how="SIGKILL"
		pm=$(head -1 "$DATA/postmaster.pid")
		kill -STOP "$pm"                      # no new child from here on
		children=$(children_of "$pm")
		kill -KILL $children "$pm"
		for p in $children $pm; do
			while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
		done
	fi
	wait "$run" && fail "run $k succeeded although the server was killed" || true
	server_up
	done_now=$($PSQL -A -t -d crash -c "SELECT count(*) FROM billing.invoice")
	echo "kill $k ($how) after $delay s: $done_now of $TOTAL invoices committed"
	[ "$done_now" -gt 0 ] && [ "$done_now" -lt "$TOTAL" ] && partial=$((partial + 1))
done
[ "$partial" -ge 1 ] || fail "no kill landed in the middle of a run"
[ "$done_now" -lt "$TOTAL" ] || fail "the killed runs finished the work: the last run proves nothing"

t0=$(now)
$PSQL -d crash -c "$CYCLE"
echo "final run: $(since "$t0") s"

$PSQL -d crash -v total="$TOTAL" -v kills="$KILLS" <<'SQL' || fail "the assertions above"
SET search_path = billing, pg_catalog;
DO $$ DECLARE n bigint; BEGIN
    SELECT count(*) INTO n FROM (
        SELECT FROM billing.invoice GROUP BY account_id, subscription_id, period_start HAVING count(*) > 1) d;
    IF n > 0 THEN RAISE EXCEPTION 'FAILED % duplicate invoices (account, subscription, period)', n; END IF;
    SELECT count(*) INTO n FROM billing.invoice i
    WHERE NOT EXISTS (SELECT FROM billing.invoice_line l WHERE l.account_id = i.account_id AND l.invoice_id = i.invoice_id);
    IF n > 0 THEN RAISE EXCEPTION 'FAILED % invoices without lines', n; END IF;
    SELECT count(*) INTO n FROM (
        SELECT FROM billing.ledger_entry GROUP BY account_id, txn_id, billing.currency(amount)
        HAVING billing.to_numeric(billing.sum(amount)) <> 0) u;
    IF n > 0 THEN RAISE EXCEPTION 'FAILED % ledger transactions do not balance', n; END IF;
    SELECT count(*) INTO n FROM billing.invoice i
    WHERE billing.to_numeric(i.total) <> 0 AND NOT EXISTS (
        SELECT FROM billing.ledger_transaction t
        WHERE t.account_id = i.account_id AND t.invoice_id = i.invoice_id AND t.kind = 'invoice_finalized');
    IF n > 0 THEN RAISE EXCEPTION 'FAILED % invoices not posted to the ledger', n; END IF;
    SELECT count(*) INTO n FROM billing.check_invariants();
    IF n > 0 THEN RAISE EXCEPTION 'FAILED check_invariants: %',
        (SELECT string_agg(invariant || ': ' || detail, '; ') FROM (SELECT * FROM billing.check_invariants() LIMIT 5) x);
    END IF;
END $$;
-- the runs' own log: the killed ones stay 'running', the last is done, and
-- the counts their committed batches logged add up to the invoices
SELECT count(*) FILTER (WHERE status = 'running') AS killed, count(*) FILTER (WHERE status = 'done') AS done,
       sum(invoices) AS logged, (SELECT count(*) FROM billing.invoice) AS invoices,
       (SELECT count(*) FROM billing.invoice_line WHERE kind = 'usage') AS usage_lines,
       (SELECT count(*) FROM billing.payment_application WHERE source = 'credit') AS credit_applied,
       (SELECT count(*) FROM billing.collection_attempt) AS collection_queued
FROM billing.cycle_run \gset
\echo cycle runs: :killed killed, :done done; invoices :invoices (logged :logged); usage lines :usage_lines, credit applied :credit_applied, collection queued :collection_queued
SELECT :done = 1 AND :killed <= :kills AND :logged = :invoices AND :invoices = :total
       AND :usage_lines > 0 AND :credit_applied > 0 AND :collection_queued > 0 AS ok \gset
\if :ok
\else
\echo FAILED the run log, the invoice count or the coverage above
\quit 3
\endif
SQL

# The digest: every table but the run log, every column but the ids that
# sequences hand out (a crash skips sequence values), references to
# invoices by their number and to ledger transactions by their description.
$PSQL -A -t -d crash > "$DIR/digest.sql" <<'SQL'
SELECT format('SELECT %L || '' '' || count(*) || '' '' || md5(coalesce(string_agg(t::text, E''\n'' ORDER BY t::text), '''')) FROM (SELECT %s FROM billing.%I x) t;',
              c.relname,
              coalesce(string_agg(CASE
                  WHEN a.attname = 'invoice_id' THEN
                      '(SELECT i.number FROM billing.invoice i WHERE i.account_id = x.account_id AND i.invoice_id = x.invoice_id) AS invoice'
                  WHEN a.attname = 'txn_id' THEN
                      '(SELECT y.kind || '' '' || y.description FROM billing.ledger_transaction y WHERE y.account_id = x.account_id AND y.txn_id = x.txn_id) AS txn'
                  WHEN a.attname = 'payload' THEN 'x.payload - ''invoice_id'' AS payload'
                  ELSE 'x.' || quote_ident(a.attname) END, ', ' ORDER BY a.attnum), '1'),
              c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity = ''
                         AND a.attname <> 'cycle_run_id'
WHERE n.nspname = 'billing' AND c.relkind = 'r' AND c.relname <> 'cycle_run'
GROUP BY c.relname ORDER BY c.relname;
SQL
echo "checked: $(($(date +%s) - started)) s"
$PSQL -A -t -d crash -f "$DIR/digest.sql" > "$DIR/crash.digest"
$PSQL -A -t -d reference -f "$DIR/digest.sql" > "$DIR/reference.digest"
cat "$DIR/crash.digest"
diff "$DIR/reference.digest" "$DIR/crash.digest" || fail "the state after the crashes differs from the uninterrupted run's (< reference, > crashed)"
echo "crash test: $KILLS kills, same state as the uninterrupted run ($(($(date +%s) - started)) s in all)"
