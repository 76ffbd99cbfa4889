#!/bin/sh
# bench/reports.sh - the reporting views over 1M invoices, read by the
# superuser and by a login role bound to one billing entity (row-level
# security).  Run by bench/run.sh with PGDATABASE set to a fresh database:
#   sh test/run.sh bench reports   (or make bench BENCH=reports)
# Prints per view the time of its query in a fresh backend and the
# backend's CPU time, as the superuser and as the reader:
#   BENCH report_<view>_seconds <s>
#   BENCH report_<view>_cpu_seconds <s>
#   BENCH report_<view>_as_reader_seconds <s>
#   BENCH report_<view>_as_reader_cpu_seconds <s>
# and the size of the data set.  BENCH_INVOICES (default 1000000) sets the
# size: BENCH_INVOICES x 0.1865 accounts (BENCH_ACCOUNTS sets the number of
# accounts directly); each has one monthly subscription started in one of
# January to October 2025 and an invoice for every month since, so 186,500
# accounts make about 1M invoices (and as many lines, 900k payments with
# their applications, 1.9M ledger transactions).
#
# BENCH_REPORTS_10M=1 then does it again at 10M invoices (1,865,000
# accounts, about 25 GB of disk and half an hour of set-up on two cores) in
# a database of its own, timing the views as the reader once each:
#   BENCH report_<view>_as_reader_10m_seconds <s>
#
# The reader (bench_reader, LOGIN, a member of billing_reporting) is bound
# to the entity that holds every account but a handful: a second entity
# with accounts of its own keeps the policies from seeing everything, so the
# reader pays for row-level security as the largest tenant of a shared
# database would.
#
# The data is written set-based in a few statements with
# session_replication_role = replica (no foreign-key checks, no triggers):
# the benchmark measures the reads, and the rows are made consistent by
# construction (every invoice and payment posted to the ledger, amount_paid
# = its applications, invariant 5 per account; the run checks a sample).
set -eu
PSQL="psql -X -q -v ON_ERROR_STOP=1"
TICKS=$(getconf CLK_TCK)

# $1: accounts.  Writes the data set into $PGDATABASE.
make_data() {
N=$1
$PSQL <<SQL >/dev/null
CREATE EXTENSION IF NOT EXISTS billing;
SELECT billing.create_billing_entity('Bench Inc', 'USD');
SELECT billing.create_tax_rate('Sales tax', 8.875);
SELECT billing.create_product('Plan');
SELECT billing.create_price(1, 'USD', 19.99);   -- 1: basic USD
SELECT billing.create_price(1, 'EUR', 17.99);   -- 2: basic EUR
SELECT billing.create_price(1, 'USD', 49.00);   -- 3: pro USD
SELECT billing.create_price(1, 'EUR', 44.00);   -- 4: pro EUR
SET session_replication_role = replica;

-- The plan of each account: start month s (0 = January 2025), anchor day,
-- months billed, cancellation (i % 7 = 3: after its September invoice),
-- upgrade to the pro price two months in (i % 11 = 5).
CREATE UNLOGGED TABLE bench_plan AS
SELECT i AS account_id, x.s, x.d, x.cur, x.taxed, x.canceled, x.upgraded,
       make_date(2025, 1 + x.s, x.d) AS start_date,
       CASE WHEN x.canceled THEN 8 ELSE 9 END AS last_month
FROM generate_series(1, $N) i
CROSS JOIN LATERAL (SELECT i % 10 AS s, 1 + i % 28 AS d, CASE WHEN i % 10 = 9 THEN 'EUR' ELSE 'USD' END AS cur,
                           i % 2 = 0 AS taxed, i % 7 = 3 AND i % 10 < 9 AS canceled,
                           i % 11 = 5 AND i % 10 < 7 AS upgraded) x;

INSERT INTO billing.account (account_id, entity_id, name, currency, timezone, tax_rate_id)
SELECT account_id, 1, 'customer ' || account_id, cur,
       (ARRAY['UTC', 'America/New_York', 'Europe/Berlin'])[1 + account_id % 3], CASE WHEN taxed THEN 1 END
FROM bench_plan;
INSERT INTO billing.subscription (account_id, subscription_id, status, anchor, cadence, start_date, next_bill_date,
                                  current_period_start, current_period_end, cancel_on, canceled_on)
SELECT account_id, account_id, CASE WHEN canceled THEN 'canceled' ELSE 'active' END, start_date, '1 month',
       start_date, CASE WHEN NOT canceled THEN make_date(2025, 11, d) END,
       make_date(2025, 1 + last_month, d), make_date(2025, 2 + last_month, d),
       CASE WHEN canceled THEN make_date(2025, 10, d) END, CASE WHEN canceled THEN make_date(2025, 10, d) END
FROM bench_plan;
INSERT INTO billing.subscription_item (account_id, subscription_item_id, subscription_id, price_id, quantity,
                                       started_on, ended_on)
SELECT account_id, account_id, account_id, CASE WHEN cur = 'USD' THEN 1 ELSE 2 END, 1, start_date,
       CASE WHEN upgraded THEN (start_date + interval '2 months')::date END
FROM bench_plan
UNION ALL
SELECT account_id, 1000000000 + account_id, account_id, CASE WHEN cur = 'USD' THEN 3 ELSE 4 END, 1,
       (start_date + interval '2 months')::date, NULL
FROM bench_plan WHERE upgraded;

-- One invoice per account and month; paid unless (account + month) % 10 = 0
-- or it is an October invoice of an even account.
CREATE UNLOGGED TABLE bench_invoice AS
SELECT p.account_id, p.cur, m, make_date(2025, 1 + m, p.d) AS issue_date, v.price_id, v.net,
       CASE WHEN p.taxed THEN round(v.net * 0.08875, 2) ELSE 0 END AS tax,
       (p.account_id + m) % 10 <> 0 AND NOT (m = 9 AND p.account_id % 2 = 0) AS paid,
       row_number() OVER (ORDER BY make_date(2025, 1 + m, p.d), p.account_id) AS invoice_id
FROM bench_plan p
CROSS JOIN LATERAL generate_series(p.s, p.last_month) m
CROSS JOIN LATERAL (SELECT CASE WHEN p.upgraded AND m >= p.s + 2 THEN CASE WHEN p.cur = 'USD' THEN 3 ELSE 4 END
                                ELSE CASE WHEN p.cur = 'USD' THEN 1 ELSE 2 END END AS price_id) pp
CROSS JOIN LATERAL (SELECT pp.price_id, CASE pp.price_id WHEN 1 THEN 19.99 WHEN 2 THEN 17.99 WHEN 3 THEN 49.00
                                                          ELSE 44.00 END AS net) v;

INSERT INTO billing.invoice (account_id, invoice_id, entity_id, subscription_id, number, status, billing_reason,
                             currency, subtotal, discount, tax, total, amount_paid, amount_due, issue_date, due_date,
                             period_start, period_end, finalized_at)
SELECT account_id, invoice_id, 1, account_id, 'INV-' || invoice_id, CASE WHEN paid THEN 'paid' ELSE 'open' END,
       'subscription_cycle', cur, billing.amount(net, cur), billing.amount(0, cur), billing.amount(tax, cur),
       billing.amount(net + tax, cur), billing.amount(CASE WHEN paid THEN net + tax ELSE 0 END, cur),
       billing.amount(CASE WHEN paid THEN 0 ELSE net + tax END, cur), issue_date, issue_date + 30, issue_date,
       (issue_date + interval '1 month')::date, issue_date
FROM bench_invoice ORDER BY invoice_id;
INSERT INTO billing.invoice_line (account_id, invoice_id, kind, description, subscription_id, subscription_item_id,
                                  price_id, quantity, unit_amount, amount, period_start, period_end, source)
SELECT account_id, invoice_id, 'subscription', 'Plan', account_id,
       CASE WHEN price_id IN (3, 4) THEN 1000000000 + account_id ELSE account_id END, price_id, 1, net,
       billing.amount(net, cur), issue_date, (issue_date + interval '1 month')::date, 'cycle'
FROM bench_invoice ORDER BY invoice_id;
-- a payment per paid invoice, received 0 to 19 days after the issue date
INSERT INTO billing.payment (account_id, payment_id, amount, method, received_on, amount_refunded)
SELECT account_id, invoice_id, billing.amount(net + tax, cur), 'card', issue_date + (account_id % 20)::integer,
       billing.amount(0, cur)
FROM bench_invoice WHERE paid;
INSERT INTO billing.payment_application (account_id, application_id, invoice_id, source, payment_id, amount)
SELECT account_id, invoice_id, invoice_id, 'payment', invoice_id, billing.amount(net + tax, cur)
FROM bench_invoice WHERE paid;
-- the ledger: invoice_finalized (txn 2n) and payment (txn 2n+1)
INSERT INTO billing.ledger_transaction (account_id, txn_id, kind, posted_on, invoice_id, payment_id, description)
SELECT account_id, 2 * invoice_id, 'invoice_finalized', issue_date, invoice_id, NULL, 'invoice INV-' || invoice_id
FROM bench_invoice
UNION ALL
SELECT account_id, 2 * invoice_id + 1, 'payment', issue_date + (account_id % 20)::integer, invoice_id, invoice_id,
       'payment ' || invoice_id
FROM bench_invoice WHERE paid;
INSERT INTO billing.ledger_entry (account_id, txn_id, ledger_account, amount)
SELECT b.account_id, e.txn_id, e.ledger_account, billing.amount(e.amount, b.cur)
FROM bench_invoice b
CROSS JOIN LATERAL (VALUES (2 * b.invoice_id, 'receivable', b.net + b.tax), (2 * b.invoice_id, 'revenue', -b.net),
                           (2 * b.invoice_id, 'tax_payable', -b.tax),
                           (2 * b.invoice_id + 1, 'cash', CASE WHEN b.paid THEN b.net + b.tax ELSE 0 END),
                           (2 * b.invoice_id + 1, 'receivable', CASE WHEN b.paid THEN -(b.net + b.tax) ELSE 0 END))
     e(txn_id, ledger_account, amount)
WHERE e.amount <> 0;
SELECT setval('billing.invoice_invoice_id_seq', (SELECT max(invoice_id) FROM billing.invoice));
SELECT setval('billing.payment_payment_id_seq', (SELECT max(payment_id) FROM billing.payment));
SELECT setval('billing.payment_application_application_id_seq', (SELECT max(application_id) FROM billing.payment_application));
SELECT setval('billing.ledger_transaction_txn_id_seq', (SELECT max(txn_id) FROM billing.ledger_transaction));
SELECT setval('billing.subscription_subscription_id_seq', (SELECT max(subscription_id) FROM billing.subscription));
SELECT setval('billing.subscription_item_subscription_item_id_seq', (SELECT max(subscription_item_id) FROM billing.subscription_item));
SELECT setval('billing.account_account_id_seq', (SELECT max(account_id) FROM billing.account));
RESET session_replication_role;
DROP TABLE bench_plan;
DROP TABLE bench_invoice;
SQL

# Credit notes on 1 in 50 open invoices and a few refunds, through the
# functions themselves (so they post as the application would).  A second
# entity with a few accounts of its own, which the reader must not see.
$PSQL <<SQL >/dev/null
SET billing.clock = '2025-10-20 12:00+00';
SELECT count(billing.issue_credit_note(account_id, invoice_id, billing.amount(5, currency), 'reduce_due'))
FROM billing.invoice WHERE status = 'open' AND invoice_id % 50 = 0;
SELECT count(billing.refund_payment(account_id, payment_id, billing.amount(1, billing.currency(amount))))
FROM billing.payment WHERE payment_id % 997 = 0;
SELECT billing.create_billing_entity('Other Inc', 'USD', invoice_prefix => 'OTH');
SELECT count(billing.create_account(2, 'other ' || i, 'USD')) FROM generate_series(1, 20) i;
VACUUM ANALYZE;
CHECKPOINT;
SQL

$PSQL -A -t <<'SQL'
SELECT 'data: ' || (SELECT count(*) FROM billing.invoice) || ' invoices, '
       || (SELECT count(*) FROM billing.invoice WHERE status = 'open') || ' open, '
       || (SELECT count(*) FROM billing.payment) || ' payments, '
       || (SELECT count(*) FROM billing.ledger_entry) || ' ledger entries, '
       || (SELECT count(*) FROM billing.account) || ' accounts, '
       || pg_size_pretty(pg_database_size(current_database()));
-- a sample of accounts: the ledger balance is the view's balance (invariant 5)
SELECT 'check: ' || count(*) FILTER (WHERE b.balance <> billing.to_numeric(billing.account_balance(b.account_id)))
       || ' of ' || count(*) || ' sampled balances differ from the ledger'
FROM billing.account_balances b WHERE b.account_id % 1000 = 7;
SQL
}

# The reader: a login role bound to entity 1 only, with the reporting
# role's privileges.  Roles belong to the cluster, so a second database
# (the 10M part) finds it there and binds it again.
reader() {
	$PSQL <<'SQL' >/dev/null
SELECT billing.grant_roles();
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_reader') THEN
        CREATE ROLE bench_reader LOGIN PASSWORD 'bench_reader';  -- the password is its name (timed)
    END IF;
END $$;
GRANT billing_reporting TO bench_reader;
-- COPY ... TO '/dev/null' as the superuser's runs do, so that both measure
-- the query and not the client
GRANT pg_write_server_files TO bench_reader;
-- the runs' clock (a superuser's setting)
GRANT SET ON PARAMETER billing.clock TO bench_reader;
SELECT billing.bind_role_to_entity('bench_reader', 1);
SQL
	# what the reader sees: every account of entity 1, none of entity 2
	PGUSER=bench_reader PGPASSWORD=bench_reader $PSQL -A -t -c "
		SELECT 'reader: sees ' || count(*) || ' accounts, ' || count(*) FILTER (WHERE entity_id <> 1)
		       || ' of other entities' FROM billing.account"
}

# $1 name, $2 query, $3 how many runs, $4 name suffix, $5 role (empty: the
# superuser of the run): run it, each time in a fresh backend with the clock
# at 2025-10-31, the result written by the server to /dev/null (every
# column computed and converted to text, nothing sent to the client).
# Prints the best wall time of the runs (the machine is shared) and the
# CPU time of the backend in that run (utime + stime from /proc: what the
# query costs without waiting for a core; parallel workers not counted).
once() { # $1 query: prints "<seconds> <cpu ticks after> <cpu ticks before>"
	$PSQL -A -t <<SQL
SET billing.clock = '2025-10-31 12:00+00';
SELECT pg_backend_pid() AS pid \gset
\setenv BENCH_PID :pid
\! awk '{ print \$14 + \$15 }' /proc/\$BENCH_PID/stat > /tmp/bench_reports_cpu.\$BENCH_PID
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
COPY ($1) TO '/dev/null';
SELECT round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 3) AS seconds \gset
\setenv BENCH_SECONDS :seconds
\! echo "\$BENCH_SECONDS \$(awk '{ print \$14 + \$15 }' /proc/\$BENCH_PID/stat) \$(cat /tmp/bench_reports_cpu.\$BENCH_PID)"; rm -f /tmp/bench_reports_cpu.\$BENCH_PID
SQL
}

timed() {
	best=
	run=0
	while [ $run -lt "$3" ]; do
		run=$((run + 1))
		if [ -n "$5" ]; then
			S=$(PGUSER=$5 PGPASSWORD=$5 once "$2")
		else
			S=$(once "$2")
		fi
		best=$(echo "$S $TICKS $best" | awk '{ cpu = ($2 - $3) / $4; if (NF == 4 || $1 < $5) printf "%s %.2f", $1, cpu; else printf "%s %s", $5, $6 }')
	done
	set -- "$1" "$4" $best
	echo "BENCH report_$1$2_seconds $3"
	echo "BENCH report_$1$2_cpu_seconds $4"
}

# $1 runs, $2 name suffix, $3 role: every reporting view; the one-account
# queries read account 4242 (or the last one of a smaller data set)
views() {
	ONE=$($PSQL -A -t -c "SELECT least(4242, max(account_id)) FROM billing.account WHERE entity_id = 1")
	timed ar_aging "SELECT * FROM billing.ar_aging" "$@"
	timed ar_aging_by_currency "SELECT currency, sum(total_due), sum(days_over_90) FROM billing.ar_aging GROUP BY 1" "$@"
	timed account_balances "SELECT * FROM billing.account_balances" "$@"
	timed account_balances_one_account "SELECT * FROM billing.account_balances WHERE account_id = $ONE" "$@"
	timed account_statements_one_account "SELECT * FROM billing.account_statements WHERE account_id = $ONE" "$@"
	timed account_statement_one_account "SELECT * FROM billing.account_statement($ONE, '2025-01-01', '2025-10-31')" "$@"
	timed mrr_movements "SELECT * FROM billing.mrr_movements" "$@"
	timed mrr_by_month "SELECT * FROM billing.mrr_by_month" "$@"
	timed cohort_retention "SELECT * FROM billing.cohort_retention" "$@"
	timed revenue_by_month "SELECT * FROM billing.revenue_by_month" "$@"
	timed days_sales_outstanding "SELECT * FROM billing.days_sales_outstanding" "$@"
	timed upcoming_invoices "SELECT * FROM billing.upcoming_invoices" "$@"
	timed upcoming_invoices_30_days "SELECT * FROM billing.upcoming_invoices(30)" "$@"
	timed dunning_funnel "SELECT * FROM billing.dunning_funnel" "$@"
	timed installment_status "SELECT * FROM billing.installment_status" "$@"
	timed revenue_schedule "SELECT * FROM billing.revenue_schedule" "$@"
	timed revenue_recognized_by_month "SELECT * FROM billing.revenue_recognized_by_month" "$@"
	timed deferred_revenue "SELECT * FROM billing.deferred_revenue" "$@"
	timed revenue_waterfall "SELECT * FROM billing.revenue_waterfall" "$@"
	timed revenue_by_price "SELECT * FROM billing.revenue_by_price" "$@"
	timed revenue_by_product "SELECT * FROM billing.revenue_by_product" "$@"
}

INVOICES=${BENCH_INVOICES:-1000000}
make_data "${BENCH_ACCOUNTS:-$((INVOICES * 1865 / 10000))}"
reader
echo "load average before the timings: $(cut -d' ' -f1-3 /proc/loadavg)"
views 3 "" ""
views 3 _as_reader bench_reader
echo "load average after the timings: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ -n "${BENCH_REPORTS_10M:-}" ]; then
	# 10x: a database of its own, the 1M one dropped first for the disk
	DB1=$PGDATABASE
	PGDATABASE=${DB1}_10m
	export PGDATABASE
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $PGDATABASE" -c "CREATE DATABASE $PGDATABASE" \
		-c "DROP DATABASE $DB1" -c "CREATE DATABASE $DB1"
	$PSQL -c 'CREATE EXTENSION billing CASCADE' >/dev/null
	started=$(date +%s)
	make_data "$((INVOICES * 18650 / 10000))"
	echo "set-up of the 10x data: $(( $(date +%s) - started )) s"
	reader
	echo "load average before the 10x timings: $(cut -d' ' -f1-3 /proc/loadavg)"
	views "${BENCH_REPORTS_10M_RUNS:-1}" _as_reader_10m bench_reader
	echo "load average after the 10x timings: $(cut -d' ' -f1-3 /proc/loadavg)"
	psql -X -q -d postgres -c "DROP DATABASE $PGDATABASE"
fi
