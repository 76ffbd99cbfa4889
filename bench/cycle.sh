#!/bin/sh
# bench/cycle.sh - billing.run_cycle over 100k and 1M active monthly
# subscriptions (one flat item each, every other account taxed), against a
# bare INSERT ... SELECT of the same invoice and line rows into the same
# tables in the same database.  Run by bench/run.sh with PGDATABASE set to a
# fresh database: sh test/run.sh bench cycle.  Prints
#   BENCH cycle_100k_seconds <s>
#   BENCH cycle_1m_one_worker_seconds <s>  1M by one run_cycle session
#   BENCH cycle_peak_rss_mb <mb>       VmHWM of the backend that ran it
#   BENCH cycle_peak_private_mb <mb>   that less the shared memory it mapped (RssShmem)
#   BENCH bare_insert_1m_seconds <s>
#   BENCH cycle_vs_bare_insert <r> x   the 1M one-worker cycle / the 1M bare insert
#   BENCH cycle_1m_seconds <s>         another 1M by two run_cycle sessions at once (wall time)
#   BENCH cycle_two_workers_vs_bare_insert <r> x
#   BENCH cycle_two_workers_peak_rss_mb <mb>  the larger VmHWM of the two backends
#   BENCH cycle_floor_1m_seconds <s>   another 1M: the rows the cycle writes, by plain
#                                      statements, two sessions (bench/tools/cycle_floor.sql)
#   BENCH cycle_two_workers_vs_floor <r> x  cycle_1m_seconds / cycle_floor_1m_seconds
#   BENCH cycle_vs_floor <r> x         the same ratio, under the name of its target
#   BENCH cycle_floor_<statement>_seconds <s>  the floor's time per statement, both sessions
#   BENCH cycle_3m_seconds <s>         3M more by two run_cycle sessions (BENCH_CYCLE_3M=0: skipped)
#   BENCH cycle_per_invoice_3m_vs_1m <r> x  that run's seconds per invoice / cycle_1m_seconds's
#                                      per invoice: how the cost of an invoice grows with the tables
# BENCH_N: subscriptions per "1M" part (default 1000000); BENCH_BATCH: batch size.
# Each timed part runs in a fresh backend (psql connection); the set-up is
# set-based SQL and not timed.  The cluster runs on this machine, so the
# backend's /proc/<pid>/status is readable from here.
set -eu
BATCH=${BENCH_BATCH:-10000}
PSQL="psql -X -q -v ON_ERROR_STOP=1"

HERE=$(dirname "$0")
$PSQL -f "$HERE/tools/cycle_catalog.sql" >/dev/null

setup() { # $1 first account id, $2 count: one subscription each, due 2024-01-01
	$PSQL -v first="$1" -v n="$2" -f "$HERE/tools/cycle_subscriptions.sql" >/dev/null
}

# $1: SQL to time, in a fresh backend; prints "<seconds> <VmHWM kB> <RssShmem kB>"
timed() {
	$PSQL -A -t <<SQL
SELECT pg_backend_pid() AS pid, extract(epoch FROM clock_timestamp()) AS t0 \gset
\setenv BENCH_PID :pid
$1
SELECT extract(epoch FROM clock_timestamp()) - :t0 AS seconds \gset
\setenv BENCH_SECONDS :seconds
\\! echo "\$BENCH_SECONDS \$(awk '/^VmHWM/ {h=\$2} /^RssShmem/ {s=\$2} END {print h, s}' /proc/\$BENCH_PID/status)"
SQL
}

setup 1 100000
set -- $(timed "CALL billing.run_cycle(as_of => '2024-01-01', batch_size => $BATCH);")
printf 'BENCH cycle_100k_seconds %.2f\n' "$1"

# 1M more, due on 2024-01-01 (the first 100k are billed through January),
# billed by one session
N=${BENCH_N:-1000000}
setup 100001 $N
set -- $(timed "CALL billing.run_cycle(as_of => '2024-01-01', batch_size => $BATCH);")
CYCLE=$1
printf 'BENCH cycle_1m_one_worker_seconds %.2f\n' "$CYCLE"
printf 'BENCH cycle_peak_rss_mb %.0f\n' "$(echo "$2 / 1024" | bc -l)"
printf 'BENCH cycle_peak_private_mb %.0f\n' "$(echo "($2 - $3) / 1024" | bc -l)"

# The same rows for the same 1M subscriptions' next period, by bare SQL in
# one statement: the invoices with their totals and numbers, and their lines.
set -- $(timed "
WITH inv AS (
    INSERT INTO billing.invoice (account_id, invoice_id, entity_id, subscription_id, number, status, billing_reason,
                                 currency, subtotal, discount, tax, total, amount_paid, amount_due, issue_date,
                                 due_date, period_start, period_end, finalized_at)
    SELECT s.account_id, nextval('billing.invoice_invoice_id_seq'), 1, s.subscription_id,
           'BARE-' || lpad(s.subscription_id::text, 7, '0'), 'open', 'subscription_cycle', 'USD', '19.99 USD',
           '0.00 USD', CASE WHEN a.tax_rate_id IS NULL THEN '0.00 USD' ELSE '1.77 USD' END::billing.amount,
           CASE WHEN a.tax_rate_id IS NULL THEN '19.99 USD' ELSE '21.76 USD' END::billing.amount, '0.00 USD',
           CASE WHEN a.tax_rate_id IS NULL THEN '19.99 USD' ELSE '21.76 USD' END::billing.amount,
           '2024-02-01', '2024-03-02', '2024-02-01', '2024-03-01', now()
    FROM billing.subscription s JOIN billing.account a ON a.account_id = s.account_id
    WHERE s.account_id BETWEEN 100001 AND 100000 + $N
    RETURNING account_id, invoice_id, subscription_id, tax
)
INSERT INTO billing.invoice_line (account_id, invoice_id, kind, description, subscription_id, subscription_item_id,
                                  price_id, quantity, unit_amount, amount, period_start, period_end, tax_rate_id,
                                  source)
SELECT account_id, invoice_id, 'subscription', 'Plan', subscription_id, subscription_id, 1, 1, 19.99,
       '19.99 USD'::billing.amount, '2024-02-01'::date, '2024-03-01'::date,
       CASE WHEN billing.minor_units(tax) <> 0 THEN 1 END, 'cycle'
FROM inv
UNION ALL
SELECT account_id, invoice_id, 'tax', 'Sales tax 8.875%', NULL, NULL, NULL, NULL, 8.875, tax, NULL, NULL, 1,
       'tax_rate 1'
FROM inv WHERE billing.minor_units(tax) <> 0;
")
BARE=$1
printf 'BENCH bare_insert_1m_seconds %.2f\n' "$BARE"
printf 'BENCH cycle_vs_bare_insert %.2f x\n' "$(echo "$CYCLE / $BARE" | bc -l)"

# Another 1M, billed by two sessions at once sharing the run (SKIP LOCKED),
# as the design intends (SKIP LOCKED batches): the wall time from the start of both to the
# end of the last.  The tables now hold the rows above as well.
setup $((100001 + N)) $N
T0=$(date +%s.%N)
W=$(mktemp)
timed "CALL billing.run_cycle(as_of => '2024-01-01', batch_size => $BATCH);" > "$W.1" &
timed "CALL billing.run_cycle(as_of => '2024-01-01', batch_size => $BATCH);" > "$W.2" &
wait
T1=$(date +%s.%N)
CYCLE2=$(echo "$T1 - $T0" | bc -l)
printf 'BENCH cycle_1m_seconds %.2f\n' "$CYCLE2"
printf 'BENCH cycle_two_workers_vs_bare_insert %.2f x\n' "$(echo "$CYCLE2 / $BARE" | bc -l)"
printf 'BENCH cycle_two_workers_peak_rss_mb %.0f\n' \
	"$(cat "$W.1" "$W.2" | awk '{ if ($2 > m) m = $2 } END { print m / 1024 }')"
rm -f "$W" "$W.1" "$W.2"

# The floor under the cycle: another 1M, the same rows written by plain
# statements with nothing computed (bench/tools/cycle_floor.sql), by two
# sessions at once in batches of the same size, billing's own triggers off.
# No cycle can be faster than this on this machine with these tables.
setup $((100001 + 2 * N)) $N
$PSQL -f "$HERE/tools/cycle_floor.sql"
$PSQL -c 'ALTER TABLE billing.ledger_entry DISABLE TRIGGER ledger_entry_balanced' -c CHECKPOINT
HALF=$((N / 2))
T0=$(date +%s.%N)
PGOPTIONS="${PGOPTIONS:-} -c search_path=billing,bench_floor" \
	$PSQL -c "CALL bench_floor.run($((100001 + 2 * N)), $HALF, $BATCH)" &
P1=$!
PGOPTIONS="${PGOPTIONS:-} -c search_path=billing,bench_floor" \
	$PSQL -c "CALL bench_floor.run($((100001 + 2 * N + HALF)), $((N - HALF)), $BATCH)" &
P2=$!
wait $P1 && wait $P2 || { echo "the floor failed" >&2; exit 1; }
T1=$(date +%s.%N)
$PSQL -c 'ALTER TABLE billing.ledger_entry ENABLE TRIGGER ledger_entry_balanced'
FLOOR=$(echo "$T1 - $T0" | bc -l)
printf 'BENCH cycle_floor_1m_seconds %.2f\n' "$FLOOR"
printf 'BENCH cycle_two_workers_vs_floor %.2f x\n' "$(echo "$CYCLE2 / $FLOOR" | bc -l)"
printf 'BENCH cycle_vs_floor %.2f x\n' "$(echo "$CYCLE2 / $FLOOR" | bc -l)"
# where the floor's time goes: seconds of both sessions per statement
$PSQL -A -t -F ' ' -c "SELECT 'BENCH cycle_floor_' || part || '_seconds', round(sum(seconds), 2)
                       FROM bench_floor.part GROUP BY part ORDER BY sum(seconds) DESC"

# 3M more by two sessions, on tables that now hold the 4.1M invoices above:
# the cost of an invoice (wall seconds / invoices) against the 1M run's.  A
# cycle whose cost per invoice grows with the tables (a scan of something
# that grows, an index that stops fitting in memory) shows here.
if [ "${BENCH_CYCLE_3M:-1}" != 0 ]; then
	setup $((100001 + 3 * N)) $((3 * N))
	T0=$(date +%s.%N)
	timed "CALL billing.run_cycle(as_of => '2024-01-01', batch_size => $BATCH);" >/dev/null &
	timed "CALL billing.run_cycle(as_of => '2024-01-01', batch_size => $BATCH);" >/dev/null &
	wait
	T1=$(date +%s.%N)
	CYCLE3=$(echo "$T1 - $T0" | bc -l)
	printf 'BENCH cycle_3m_seconds %.2f\n' "$CYCLE3"
	printf 'BENCH cycle_per_invoice_3m_vs_1m %.2f x\n' "$(echo "($CYCLE3 / 3) / $CYCLE2" | bc -l)"
fi

# The run did what it should: every subscription billed once, invariants hold.
$PSQL -A -t <<'SQL'
SELECT 'check: ' || count(*) FILTER (WHERE number NOT LIKE 'BARE-%' AND number NOT LIKE 'FLOOR-%')
       || ' cycle invoices, ' || count(*) FILTER (WHERE number LIKE 'BARE-%') || ' bare, '
       || count(*) FILTER (WHERE number LIKE 'FLOOR-%') || ' floor, '
       || (SELECT count(*) FROM billing.check_invariants() WHERE invariant <> 'invoice_numbers_gapless')
       || ' invariant violations'
FROM billing.invoice;
SELECT 'run: ' || subscriptions || ' subscriptions, ' || invoices || ' invoices, ' || lines || ' lines, '
       || batches || ' batches, ' || status FROM billing.cycle_run ORDER BY cycle_run_id;
SQL
