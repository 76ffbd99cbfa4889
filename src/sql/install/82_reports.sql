-- Reporting views: receivables aging, account balances and
-- statements, MRR and ARR with their movements, revenue by month, churn and
-- retention by cohort, days sales outstanding, upcoming invoices.
--
-- Rules every view here keeps:
--   * money is only ever summed within one currency (every view is grouped
--     by currency, or by account, whose currency is fixed), and every money
--     column that adds up rows is numeric in the row's currency, with
--     exactly its digits: billing.sum_numeric adds amounts, billing.round_money
--     rounds what is computed (a monthly value) once by billing.rounding.  A
--     single amount is bounded (10^12 major units), a sum of any number of
--     them is not: as amounts, enough of one tenant's largest payments
--     would put the report of every role that sees that tenant (the
--     owner's, a finance role's) out of range; as numeric, nothing a tenant
--     stores can make a report fail;
--   * "today" is each account's date in its time zone at billing.now(), so
--     the test clock (billing.clock) moves every view at once;
--   * no trigger and no summary table: the views read the tables as the
--     cycle and the payments leave them, through two indexes of their own
--     (invoice_open, partial, and a BRIN on issue_date), and each is one
--     set-based query (bench/reports.sh measures them, docs/performance.md);
--   * the views that aggregate everything are views over functions with
--     SET jit = off: JIT compilation of these plans costs more than running
--     them; the views that are read per
--     account (balances, statements) stay plain views, so that a filter on
--     account_id reaches the indexes.

-- ---------------------------------------------------------------------------
-- Receivables aging.

-- Open invoices only, through the partial index invoice_open (50_invoicing.sql).

-- A function under the view for its settings: the open invoices come out of
-- invoice_open in account order, so aggregating in that order beats a hash
-- table of one group per account (5 sums each), which the planner prefers;
-- and JIT compiling costs more than running it.
CREATE FUNCTION billing._ar_aging()
RETURNS TABLE (account_id bigint, account_name text, currency text, as_of date, current numeric,
               days_1_30 numeric, days_31_60 numeric, days_61_90 numeric,
               days_over_90 numeric, total_due numeric, open_invoices bigint, oldest_due_date date)
LANGUAGE sql STABLE SET jit = off SET enable_hashagg = off SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT a.account_id, a.name AS account_name, a.currency, a.today AS as_of,
           coalesce(billing.sum_numeric(i.amount_due) FILTER (WHERE i.due_date >= a.today), a.zero) AS current,
           coalesce(billing.sum_numeric(i.amount_due) FILTER (WHERE a.today - i.due_date BETWEEN 1 AND 30), a.zero) AS days_1_30,
           coalesce(billing.sum_numeric(i.amount_due) FILTER (WHERE a.today - i.due_date BETWEEN 31 AND 60), a.zero) AS days_31_60,
           coalesce(billing.sum_numeric(i.amount_due) FILTER (WHERE a.today - i.due_date BETWEEN 61 AND 90), a.zero) AS days_61_90,
           coalesce(billing.sum_numeric(i.amount_due) FILTER (WHERE a.today - i.due_date > 90), a.zero) AS days_over_90,
           billing.sum_numeric(i.amount_due) AS total_due,
           count(*) AS open_invoices,
           min(i.due_date) AS oldest_due_date
    FROM billing.invoice i
    JOIN (SELECT x.account_id, x.name, x.currency, billing.today(x.timezone) AS today,
                 billing.round_money(0, x.currency) AS zero
          FROM billing.account x) a ON a.account_id = i.account_id
    WHERE i.status = 'open'
    GROUP BY a.account_id, a.name, a.currency, a.today, a.zero
$$;
COMMENT ON FUNCTION billing._ar_aging() IS 'internal: the rows of the view billing.ar_aging';

CREATE VIEW billing.ar_aging AS SELECT * FROM billing._ar_aging();
COMMENT ON VIEW billing.ar_aging IS
    'receivables aging: what open invoices still ask each account for, by days past due as of the account''s '
    'today (billing.now() in its time zone); one row per account with an open invoice';
COMMENT ON COLUMN billing.ar_aging.account_id IS 'the account';
COMMENT ON COLUMN billing.ar_aging.account_name IS 'the account''s name';
COMMENT ON COLUMN billing.ar_aging.currency IS
    'the account''s currency: every amount of the row is in it (numeric, with exactly its digits)';
COMMENT ON COLUMN billing.ar_aging.as_of IS 'the account''s today in its time zone at billing.now(): days past due count from it';
COMMENT ON COLUMN billing.ar_aging.current IS 'amount due on open invoices not yet past due (due date today or later)';
COMMENT ON COLUMN billing.ar_aging.days_1_30 IS 'amount due on open invoices 1 to 30 days past their due date';
COMMENT ON COLUMN billing.ar_aging.days_31_60 IS 'amount due on open invoices 31 to 60 days past their due date';
COMMENT ON COLUMN billing.ar_aging.days_61_90 IS 'amount due on open invoices 61 to 90 days past their due date';
COMMENT ON COLUMN billing.ar_aging.days_over_90 IS 'amount due on open invoices more than 90 days past their due date';
COMMENT ON COLUMN billing.ar_aging.total_due IS 'the sum of the five buckets: everything due on open invoices';
COMMENT ON COLUMN billing.ar_aging.open_invoices IS 'how many open invoices the account has';
COMMENT ON COLUMN billing.ar_aging.oldest_due_date IS 'the earliest due date among them';

-- ---------------------------------------------------------------------------
-- Account balances and statements.  The balance is invariant 5's right-hand
-- side, amount due on open invoices - unapplied credit, which equals the
-- ledger's receivable + customer_credit (billing.account_balance) and is
-- read from two small sources instead of the whole ledger.

CREATE VIEW billing.account_balances AS
SELECT a.account_id, a.name AS account_name, a.currency, a.today AS as_of,
       coalesce(o.open_due, z.zero) AS open_due,
       coalesce(o.overdue, z.zero) AS overdue,
       coalesce(billing.to_numeric(c.balance), z.zero) AS unapplied_credit,
       coalesce(o.open_due, z.zero) - coalesce(billing.to_numeric(c.balance), z.zero) AS balance,
       o.open_invoices,
       o.oldest_due_date
-- (the zero of the currency computed with the account's columns, not in
-- a subquery of its own: Citus pushes a query down to the shards only
-- when its subqueries without FROM call immutable functions alone)
FROM (SELECT x.account_id, x.name, x.currency, billing.today(x.timezone) AS today,
             billing.round_money(0, x.currency) AS zero
      FROM billing.account x) a
CROSS JOIN LATERAL (SELECT a.zero) z
LEFT JOIN billing.account_credit c ON c.account_id = a.account_id
-- the account's open invoices, through the invoice_open index
CROSS JOIN LATERAL (
    SELECT billing.sum_numeric(i.amount_due) AS open_due,
           billing.sum_numeric(i.amount_due) FILTER (WHERE i.due_date < a.today) AS overdue,
           count(*) AS open_invoices, min(i.due_date) AS oldest_due_date
    FROM billing.invoice i
    WHERE i.account_id = a.account_id AND i.status = 'open'
) o;
COMMENT ON VIEW billing.account_balances IS
    'what each account owes now: amount due on open invoices, the overdue part, unapplied credit, and the '
    'balance (= billing.account_balance, the ledger''s receivable + customer credit, by invariant 5)';
COMMENT ON COLUMN billing.account_balances.account_id IS 'the account';
COMMENT ON COLUMN billing.account_balances.account_name IS 'the account''s name';
COMMENT ON COLUMN billing.account_balances.currency IS
    'the account''s currency: every amount of the row is in it (numeric, with exactly its digits)';
COMMENT ON COLUMN billing.account_balances.as_of IS 'the account''s today in its time zone at billing.now()';
COMMENT ON COLUMN billing.account_balances.open_due IS 'amount due on the account''s open invoices';
COMMENT ON COLUMN billing.account_balances.overdue IS 'the part of open_due whose due date is before as_of';
COMMENT ON COLUMN billing.account_balances.unapplied_credit IS
    'money received or credited and not yet applied to an invoice (billing.account_credit)';
COMMENT ON COLUMN billing.account_balances.balance IS
    'open_due - unapplied_credit: positive, the customer owes; negative, we owe the customer';
COMMENT ON COLUMN billing.account_balances.open_invoices IS 'how many open invoices the account has';
COMMENT ON COLUMN billing.account_balances.oldest_due_date IS 'the earliest due date of an open invoice (NULL: none)';

-- Every movement of what an account owes, with the running balance.  The
-- window runs over the account's whole history, so a filter on posted_on
-- keeps the right balances; a filter on account_id is pushed below it.
CREATE VIEW billing.account_statements AS
SELECT s.account_id, s.posted_on, s.txn_id, s.kind, s.description, s.invoice_id, s.payment_id, s.amount,
       billing.sum_numeric(s.amount) OVER (PARTITION BY s.account_id ORDER BY s.posted_on, s.txn_id) AS balance
FROM billing.account_statement_lines s;
COMMENT ON VIEW billing.account_statements IS
    'every ledger movement of what each account owes (invoices, payments, credit notes, refunds, voids, '
    'write-offs) with the running balance; filter by account_id (billing.account_statement(account_id, from, to) '
    'adds opening and closing balances for a date range)';
COMMENT ON COLUMN billing.account_statements.account_id IS 'the account';
COMMENT ON COLUMN billing.account_statements.posted_on IS 'the date the ledger transaction was posted';
COMMENT ON COLUMN billing.account_statements.txn_id IS 'the ledger transaction (billing.ledger_transaction)';
COMMENT ON COLUMN billing.account_statements.kind IS
    'invoice_finalized, credit_invoice (an invoice whose total is below zero), payment, early_payment_discount, '
    'credit_note, refund, chargeback, void or write_off';
COMMENT ON COLUMN billing.account_statements.description IS 'the transaction''s description (invoice number, payment, ...)';
COMMENT ON COLUMN billing.account_statements.invoice_id IS 'the invoice it concerns, if any';
COMMENT ON COLUMN billing.account_statements.payment_id IS 'the payment it concerns, if any';
COMMENT ON COLUMN billing.account_statements.amount IS
    'the change of what the account owes: positive (invoice, refund) raises it, negative (payment, credit note) lowers it';
COMMENT ON COLUMN billing.account_statements.balance IS
    'what the account owes after this movement (all movements up to it, in posted_on, txn_id order), numeric in '
    'the account''s currency';

-- ---------------------------------------------------------------------------
-- MRR.  The MRR of a subscription on a day is the sum of the monthly values
-- of its licensed (recurring) items that are paid for on that day, less its
-- recurring coupon:
--   * an item's monthly value is its full period amount (the amount the
--     cycle bills for a whole period, billing.price_amount) x 365 /
--     (365 x months + 12 x days) of the cadence (1 month: x 1, 3 months:
--     / 3, 1 year: / 12, 1 week: x 365/84), rounded once by the rounding
--     mode of the account's billing entity, as the cycle rounds;
--   * an item is paid for from greatest(started_on, trial_end) until
--     ended_on, the cancellation (canceled_on, or a scheduled cancel_on) or
--     the pause (paused_on, or a scheduled pause_on);
--   * metered usage, setup fees, one-off charges and credits are not MRR;
--   * a percent coupon of duration forever or repeating takes
--     R(value x percent / 100) off each item over [coupon_from,
--     coupon_until); an amount_off coupon takes off its monthly value
--     (amount_off the same way as a price), at most the subscription's MRR
--     when the coupon starts; a coupon of duration once is not MRR.
-- An account's MRR at a month is its MRR on the last day of that month, in
-- the account's calendar; changes dated after the account's today are not
-- counted yet.  Everything is a sum of changes (+value at a start, -value
-- at an end), so a month's MRR is the previous month's plus its movements.

-- How many months one period of a cadence is worth: the factor that turns
-- a period amount into a monthly one.
CREATE FUNCTION billing.monthly_factor(cadence interval) RETURNS numeric
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT 365::numeric / (365 * (12 * extract(year FROM cadence) + extract(month FROM cadence))
                           + 12 * extract(day FROM cadence))
$$;
COMMENT ON FUNCTION billing.monthly_factor(interval) IS
    'periods per month of a cadence: 365 / (365 x months + 12 x days); 1 for a month, 1/12 for a year, '
    '365/84 for a week';

-- The changes of MRR, one row per account, day and cause.  The monthly
-- value is computed once per price and quantity (a few rows), and the
-- account's today only for the changes dated within a day or two of now,
-- where time zones disagree: both functions cost more than the join.
CREATE VIEW billing._mrr_changes AS
WITH bounds AS MATERIALIZED (
    -- no time zone is behind UTC-12 or ahead of UTC+14
    SELECT billing.today('Etc/GMT+12') AS earliest, billing.today('Etc/GMT-14') AS latest
), value AS MATERIALIZED (
    -- the full period amount, as the cycle bills it, made monthly, in each
    -- rounding mode the entities use (most often one)
    SELECT q.price_id, q.quantity, m.rounding, p.currency,
           CASE WHEN f.factor = 1 THEN v.full_amount
                ELSE billing.round_money(v.full_amount * f.factor, p.currency, m.rounding) END AS value
    FROM (SELECT DISTINCT price_id, quantity FROM billing.subscription_item) q
    CROSS JOIN (SELECT DISTINCT rounding FROM billing.billing_entity) m
    JOIN billing.price p ON p.price_id = q.price_id AND p.usage_type = 'licensed'
    CROSS JOIN LATERAL (SELECT billing.monthly_factor(p.cadence) AS factor) f
    CROSS JOIN LATERAL (SELECT billing.round_money(
                            billing._price_value(p.price_id, p.scheme, p.unit_amount, p.package_size, q.quantity),
                            p.currency, m.rounding) AS full_amount) v
 ), account_mode AS MATERIALIZED (
    -- each account's rounding mode, its entity's
    SELECT a.account_id, e.rounding, a.timezone
    FROM billing.account a JOIN billing.billing_entity e ON e.entity_id = a.entity_id
 ), item AS (
    SELECT i.account_id, v.currency, v.value,
           greatest(i.started_on, s.trial_end) AS from_date,
           least(i.ended_on, s.cancel_on, s.canceled_on, s.pause_on, s.paused_on) AS until_date
    FROM billing.subscription_item i
    JOIN account_mode m ON m.account_id = i.account_id
    JOIN value v ON v.price_id = i.price_id AND v.quantity = i.quantity AND v.rounding = m.rounding
    JOIN billing.subscription s ON s.account_id = i.account_id AND s.subscription_id = i.subscription_id
), couponed AS (
    -- the few subscriptions with a recurring coupon, and their items
    SELECT s.account_id, s.subscription_id, v.currency, v.rounding, v.value,
           greatest(i.started_on, s.trial_end) AS from_date,
           least(i.ended_on, s.cancel_on, s.canceled_on, s.pause_on, s.paused_on) AS until_date,
           s.trial_end, s.coupon_from, s.coupon_until, s.cadence, c.percent_off, c.amount_off,
           least(s.cancel_on, s.canceled_on, s.pause_on, s.paused_on) AS sub_end
    FROM billing.subscription s
    JOIN billing.coupon c ON c.coupon_id = s.coupon_id AND c.duration <> 'once'
    JOIN billing.subscription_item i ON i.account_id = s.account_id AND i.subscription_id = s.subscription_id
    JOIN account_mode m ON m.account_id = s.account_id
    JOIN value v ON v.price_id = i.price_id AND v.quantity = i.quantity AND v.rounding = m.rounding
    WHERE s.coupon_id IS NOT NULL
), piece AS (
    -- the item itself
    SELECT account_id, currency, from_date, until_date, value FROM item
    UNION ALL
    -- its percent discount while the coupon runs
    SELECT account_id, currency, greatest(from_date, coupon_from),
           CASE WHEN until_date IS NULL THEN coupon_until ELSE least(until_date, coupon_until) END,
           -billing.round_money(value * percent_off / 100, currency, rounding)
    FROM couponed WHERE percent_off IS NOT NULL
    UNION ALL
    -- an amount_off coupon, capped at the subscription's MRR when it starts
    SELECT account_id, currency, greatest(coupon_from, trial_end), least(coupon_until, sub_end),
           -least(billing.round_money(to_numeric(amount_off) * billing.monthly_factor(cadence), currency, rounding),
                  coalesce(sum(value) FILTER (WHERE from_date <= greatest(coupon_from, trial_end)
                                                AND (until_date IS NULL
                                                     OR until_date > greatest(coupon_from, trial_end))), 0))
    FROM couponed WHERE amount_off IS NOT NULL
    GROUP BY account_id, subscription_id, currency, rounding, coupon_from, coupon_until, trial_end, sub_end, amount_off,
             cadence
), suspended AS (
    -- the days dunning held the account's subscriptions suspended: from
    -- the suspend step until its case closed (recovered or closed), for
    -- good while it is active or written off; overlapping cases merged
    SELECT account_id, min(a) AS a, nullif(max(coalesce(b, 'infinity')), 'infinity') AS b
    FROM (SELECT account_id, a, b,
                 count(*) FILTER (WHERE starts) OVER (PARTITION BY account_id ORDER BY a, b NULLS LAST) AS island
          FROM (SELECT x.account_id, x.a, x.b,
                       x.a > coalesce(max(coalesce(x.b, 'infinity')) OVER (
                           PARTITION BY x.account_id ORDER BY x.a, x.b NULLS LAST
                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), '-infinity') AS starts
                FROM (SELECT c.account_id, t.taken_on AS a,
                             CASE WHEN c.status IN ('recovered', 'closed') THEN c.closed_on END AS b
                      FROM billing.dunning_case c
                      JOIN billing.dunning_action t ON t.account_id = c.account_id AND t.invoice_id = c.invoice_id
                                                   AND t.action = 'suspend' AND t.outcome = 'suspended'
                      WHERE c.suspended) x) y) z
    GROUP BY account_id, island
), all_pieces AS (
    SELECT * FROM piece
    UNION ALL
    -- a suspended customer pays for nothing: every piece is taken back
    -- over the suspension
    SELECT p.account_id, p.currency, greatest(p.from_date, u.a),
           CASE WHEN p.until_date IS NULL THEN u.b WHEN u.b IS NULL THEN p.until_date ELSE least(p.until_date, u.b) END,
           -p.value
    FROM piece p
    JOIN suspended u ON u.account_id = p.account_id
                    AND (p.until_date IS NULL OR u.a < p.until_date) AND (u.b IS NULL OR p.from_date < u.b)
)
SELECT p.account_id, p.currency, v.day, v.change
FROM all_pieces p
CROSS JOIN LATERAL (VALUES (p.from_date, p.value), (p.until_date, -p.value)) v(day, change)
CROSS JOIN bounds b
-- the account's time zone from the materialized account_mode, not a
-- correlated subquery (Citus plans none beside a CTE); its today is still
-- computed only for the changes between the two bounds
JOIN account_mode m ON m.account_id = p.account_id
WHERE v.day IS NOT NULL AND (p.until_date IS NULL OR p.until_date > p.from_date) AND p.value <> 0
  AND (v.day <= b.earliest
       OR (v.day <= b.latest AND v.day <= billing.today(m.timezone)));
COMMENT ON VIEW billing._mrr_changes IS
    'internal: every change of an account''s MRR up to its today (numeric, in the account''s currency): '
    '+value where a recurring item or coupon starts, -value where it ends';

-- Per account and month whose MRR changed: the change, the MRR after it
-- (numeric) and the kind of movement.
CREATE VIEW billing._mrr_account_months AS
SELECT m.account_id, m.currency, m.month, m.change, m.after,
       CASE WHEN m.after - m.change = 0 AND m.earlier_months = 0 THEN 'new'
            WHEN m.after - m.change = 0 THEN 'reactivation'
            WHEN m.after = 0 THEN 'churn'
            WHEN m.change > 0 THEN 'expansion'
            ELSE 'contraction' END AS movement
FROM (SELECT c.account_id, c.currency, c.month, c.change,
             sum(c.change) OVER w AS after,
             count(*) OVER w - 1 AS earlier_months
      -- grouped by account and month first: sorted that way, one sort
      -- serves the grouping and the window (the account fixes the currency)
      FROM (SELECT account_id, date_trunc('month', day::timestamp)::date AS month, currency, sum(change) AS change
            FROM billing._mrr_changes
            GROUP BY 1, 2, 3
            HAVING sum(change) <> 0) c
      WINDOW w AS (PARTITION BY c.account_id ORDER BY c.month)) m;
COMMENT ON VIEW billing._mrr_account_months IS
    'internal: billing.mrr_movements in numeric (the change, the MRR after it, the movement)';

CREATE FUNCTION billing._mrr_movements()
RETURNS TABLE (account_id bigint, currency text, month date, mrr_before numeric, mrr_after numeric,
               change numeric, movement text)
LANGUAGE sql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
    -- every term was rounded to the currency's digits: the sums are exact
    SELECT account_id, currency, month,
           after - change AS mrr_before,
           after AS mrr_after,
           change,
           movement
    FROM billing._mrr_account_months
$$;
COMMENT ON FUNCTION billing._mrr_movements() IS
    'internal: the rows of the view billing.mrr_movements (jit off: compiling it costs more than running it)';

CREATE VIEW billing.mrr_movements AS SELECT * FROM billing._mrr_movements();
COMMENT ON VIEW billing.mrr_movements IS
    'MRR movements per account and month (only months in which its MRR at the month''s end changed): '
    'new, expansion, contraction, churn, reactivation; see README Reporting for the definition of MRR';
COMMENT ON COLUMN billing.mrr_movements.account_id IS 'the account (the customer)';
COMMENT ON COLUMN billing.mrr_movements.currency IS 'the account''s currency';
COMMENT ON COLUMN billing.mrr_movements.month IS 'the first day of the month, in the account''s calendar';
COMMENT ON COLUMN billing.mrr_movements.mrr_before IS 'the account''s MRR at the end of the month before';
COMMENT ON COLUMN billing.mrr_movements.mrr_after IS 'the account''s MRR at the end of this month';
COMMENT ON COLUMN billing.mrr_movements.change IS 'mrr_after - mrr_before';
COMMENT ON COLUMN billing.mrr_movements.movement IS
    'new (first MRR ever), reactivation (MRR again after churn), expansion (up), contraction (down, not to zero), '
    'churn (down to zero)';

-- entity_id NULL: every account the caller sees (the view); else only the
-- accounts of that billing entity (billing.dashboard_html).
CREATE FUNCTION billing._mrr_by_month(entity_id bigint DEFAULT NULL)
RETURNS TABLE (month date, currency text, mrr numeric, arr numeric, new numeric, expansion numeric, contraction numeric, churn numeric, reactivation numeric, net_change numeric, customers numeric)
LANGUAGE sql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH t AS (
        SELECT currency, month,
               sum(change) FILTER (WHERE movement = 'new') AS new,
               sum(change) FILTER (WHERE movement = 'expansion') AS expansion,
               sum(change) FILTER (WHERE movement = 'contraction') AS contraction,
               sum(change) FILTER (WHERE movement = 'churn') AS churn,
               sum(change) FILTER (WHERE movement = 'reactivation') AS reactivation,
               sum(change) AS net,
               count(*) FILTER (WHERE movement IN ('new', 'reactivation'))
                 - count(*) FILTER (WHERE movement = 'churn') AS customers_change
        FROM billing._mrr_account_months
        WHERE _mrr_by_month.entity_id IS NULL
           OR account_id IN (SELECT a.account_id FROM billing.account a WHERE a.entity_id = _mrr_by_month.entity_id)
        GROUP BY 1, 2
    ), months AS (
        SELECT r.currency, m::date AS month
        FROM (SELECT currency, min(month) AS first_month,
                     greatest(max(month), date_trunc('month', billing.today('UTC')::timestamp)::date) AS last_month
              FROM t GROUP BY 1) r
        CROSS JOIN LATERAL generate_series(r.first_month, r.last_month, interval '1 month') m
    ), g AS (
        SELECT ms.currency, ms.month, t.new, t.expansion, t.contraction, t.churn, t.reactivation,
               sum(coalesce(t.net, 0)) OVER w AS mrr,
               sum(coalesce(t.customers_change, 0)) OVER w AS customers
        FROM months ms
        LEFT JOIN t ON t.currency = ms.currency AND t.month = ms.month
        WINDOW w AS (PARTITION BY ms.currency ORDER BY ms.month)
    )
    SELECT g.month, g.currency,
           g.mrr + z.zero AS mrr,
           12 * g.mrr + z.zero AS arr,
           coalesce(g.new, z.zero) AS new,
           coalesce(g.expansion, z.zero) AS expansion,
           coalesce(g.contraction, z.zero) AS contraction,
           coalesce(g.churn, z.zero) AS churn,
           coalesce(g.reactivation, z.zero) AS reactivation,
           coalesce(g.new, 0) + coalesce(g.expansion, 0) + coalesce(g.contraction, 0)
               + coalesce(g.churn, 0) + coalesce(g.reactivation, 0) + z.zero AS net_change,
           g.customers
    FROM g
    -- a zero with the currency's digits, so that every figure shows them
    CROSS JOIN LATERAL (SELECT billing.round_money(0, g.currency) AS zero) z
$$;
COMMENT ON FUNCTION billing._mrr_by_month(bigint) IS
    'internal: the rows of the view billing.mrr_by_month (entity_id NULL), or of one billing entity''s accounts '
    '(jit off: compiling it costs more than running it)';

CREATE VIEW billing.mrr_by_month AS SELECT * FROM billing._mrr_by_month(NULL);
COMMENT ON VIEW billing.mrr_by_month IS
    'MRR and ARR per currency at the end of each month, from the first month with MRR to the current one, with '
    'the month''s movements (mrr = the month before''s mrr + net_change)';
COMMENT ON COLUMN billing.mrr_by_month.month IS 'the first day of the month (accounts'' calendars)';
COMMENT ON COLUMN billing.mrr_by_month.currency IS 'the currency: MRR is never added across currencies';
COMMENT ON COLUMN billing.mrr_by_month.mrr IS 'monthly recurring revenue at the end of the month';
COMMENT ON COLUMN billing.mrr_by_month.arr IS 'annual recurring revenue: 12 x mrr';
COMMENT ON COLUMN billing.mrr_by_month.new IS 'MRR of customers who had none before (positive)';
COMMENT ON COLUMN billing.mrr_by_month.expansion IS 'MRR added by existing customers (positive)';
COMMENT ON COLUMN billing.mrr_by_month.contraction IS 'MRR lost by customers who still have some (negative)';
COMMENT ON COLUMN billing.mrr_by_month.churn IS 'MRR of customers whose MRR went to zero (negative)';
COMMENT ON COLUMN billing.mrr_by_month.reactivation IS 'MRR of customers who had churned and came back (positive)';
COMMENT ON COLUMN billing.mrr_by_month.net_change IS
    'new + expansion + contraction + churn + reactivation: mrr minus the month before''s mrr';
COMMENT ON COLUMN billing.mrr_by_month.customers IS 'accounts with MRR at the end of the month';

-- ---------------------------------------------------------------------------
-- Churn and retention by monthly cohort: the cohort of an account is the
-- month of its first MRR (movement new).

CREATE FUNCTION billing._cohort_retention()
RETURNS TABLE (cohort_month date, currency text, month date, months_since integer, cohort_customers bigint, active_customers numeric, churned_customers bigint, reactivated_customers bigint, customer_retention numeric, cohort_mrr numeric, mrr numeric, mrr_retention numeric)
LANGUAGE sql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH mv AS (
        SELECT m.*, min(m.month) FILTER (WHERE m.movement = 'new') OVER (PARTITION BY m.account_id) AS cohort_month
        FROM billing._mrr_account_months m
    ), ev AS (
        SELECT cohort_month, currency, month,
               count(*) FILTER (WHERE movement = 'new') AS joined,
               count(*) FILTER (WHERE movement = 'churn') AS churned,
               count(*) FILTER (WHERE movement = 'reactivation') AS reactivated,
               sum(change) AS mrr_change
        FROM mv
        GROUP BY 1, 2, 3
    ), grid AS (
        SELECT c.cohort_month, c.currency, m::date AS month
        FROM (SELECT cohort_month, currency, max(month) AS last_month FROM ev GROUP BY 1, 2) c
        CROSS JOIN LATERAL generate_series(c.cohort_month,
                                           greatest(c.last_month, date_trunc('month', billing.today('UTC')::timestamp)::date),
                                           interval '1 month') m
    ), g AS (
        SELECT grid.cohort_month, grid.currency, grid.month,
               coalesce(ev.churned, 0) AS churned, coalesce(ev.reactivated, 0) AS reactivated,
               first_value(ev.joined) OVER w AS cohort_customers,
               sum(coalesce(ev.joined, 0) + coalesce(ev.reactivated, 0) - coalesce(ev.churned, 0)) OVER w AS active,
               first_value(ev.mrr_change) OVER w AS cohort_mrr,
               sum(coalesce(ev.mrr_change, 0)) OVER w AS mrr
        FROM grid
        LEFT JOIN ev ON ev.cohort_month = grid.cohort_month AND ev.currency = grid.currency AND ev.month = grid.month
        WINDOW w AS (PARTITION BY grid.cohort_month, grid.currency ORDER BY grid.month)
    )
    SELECT cohort_month, currency, month,
           ((extract(year FROM month) - extract(year FROM cohort_month)) * 12
            + extract(month FROM month) - extract(month FROM cohort_month))::integer AS months_since,
           cohort_customers, active AS active_customers, churned AS churned_customers,
           reactivated AS reactivated_customers,
           round(active / cohort_customers::numeric, 4) AS customer_retention,
           cohort_mrr + billing.round_money(0, currency) AS cohort_mrr,
           mrr + billing.round_money(0, currency) AS mrr,
           CASE WHEN cohort_mrr <> 0 THEN round(mrr / cohort_mrr, 4) END AS mrr_retention
    FROM g
$$;
COMMENT ON FUNCTION billing._cohort_retention() IS 'internal: the rows of the view billing.cohort_retention (jit off: compiling it costs more than running it)';

CREATE VIEW billing.cohort_retention AS SELECT * FROM billing._cohort_retention();
COMMENT ON VIEW billing.cohort_retention IS
    'churn and retention of each monthly cohort (accounts whose first MRR fell in that month), per currency, '
    'for every month from the cohort''s to the current one';
COMMENT ON COLUMN billing.cohort_retention.cohort_month IS 'the month of the cohort''s first MRR (first day)';
COMMENT ON COLUMN billing.cohort_retention.currency IS 'the accounts'' currency (cohorts are per currency)';
COMMENT ON COLUMN billing.cohort_retention.month IS 'the month measured (first day), at its end';
COMMENT ON COLUMN billing.cohort_retention.months_since IS 'months from cohort_month to month (0 for the cohort''s own month)';
COMMENT ON COLUMN billing.cohort_retention.cohort_customers IS 'accounts in the cohort';
COMMENT ON COLUMN billing.cohort_retention.active_customers IS 'of them, accounts with MRR at the end of month';
COMMENT ON COLUMN billing.cohort_retention.churned_customers IS 'of them, accounts whose MRR went to zero in month';
COMMENT ON COLUMN billing.cohort_retention.reactivated_customers IS 'of them, accounts that came back in month';
COMMENT ON COLUMN billing.cohort_retention.customer_retention IS
    'active_customers / cohort_customers, rounded to 4 decimals (1 - customer churn since the cohort month)';
COMMENT ON COLUMN billing.cohort_retention.cohort_mrr IS 'the cohort''s MRR at the end of its own month';
COMMENT ON COLUMN billing.cohort_retention.mrr IS 'the cohort''s MRR at the end of month (expansion and contraction included)';
COMMENT ON COLUMN billing.cohort_retention.mrr_retention IS
    'mrr / cohort_mrr, rounded to 4 decimals: net revenue retention (above 1 when expansion beats churn)';

-- ---------------------------------------------------------------------------
-- Revenue by month and currency.  Each figure is dated by its own event, in
-- the account's calendar: invoices by issue date, payments by received date,
-- credit notes and refunds by the day they were made.

-- entity_id NULL: every account the caller sees (the view); else only that
-- billing entity's.
CREATE FUNCTION billing._revenue_by_month(entity_id bigint DEFAULT NULL)
RETURNS TABLE (month date, currency text, invoiced numeric, tax numeric, net_invoiced numeric, credited numeric, collected numeric, refunded numeric, outstanding numeric, written_off numeric, invoices numeric)
LANGUAGE sql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH ev AS (
        SELECT i.currency, date_trunc('month', i.issue_date::timestamp)::date AS month,
               billing.sum_numeric(i.total) AS invoiced, billing.sum_numeric(i.tax) AS tax,
               billing.sum_numeric(i.amount_due) FILTER (WHERE i.status = 'open') AS outstanding,
               billing.sum_numeric(i.amount_due) FILTER (WHERE i.status = 'uncollectible') AS written_off,
               NULL::numeric AS collected, NULL::numeric AS credited, NULL::numeric AS refunded,
               count(*) AS invoices
        FROM billing.invoice i
        WHERE i.status IN ('open', 'paid', 'uncollectible')
          AND (_revenue_by_month.entity_id IS NULL OR i.entity_id = _revenue_by_month.entity_id)
        GROUP BY 1, 2
        UNION ALL
        SELECT billing.currency(p.amount), date_trunc('month', p.received_on::timestamp)::date,
               NULL, NULL, NULL, NULL, billing.sum_numeric(p.amount), NULL, NULL, 0
        FROM billing.payment p
        WHERE _revenue_by_month.entity_id IS NULL
           OR p.account_id IN (SELECT a.account_id FROM billing.account a WHERE a.entity_id = _revenue_by_month.entity_id)
        GROUP BY 1, 2
        UNION ALL
        -- a credit note lowers what was invoiced; one of method refund also
        -- pays that cash out, so it is refunded too (collected - refunded is
        -- the cash kept, as in the ledger's cash account)
        SELECT a.currency, date_trunc('month', billing.today(a.timezone, c.created_at)::timestamp)::date,
               NULL, NULL, NULL, NULL, NULL, billing.sum_numeric(c.amount),
               billing.sum_numeric(c.amount) FILTER (WHERE c.method = 'refund'), 0
        FROM billing.credit_note c JOIN billing.account a ON a.account_id = c.account_id
        WHERE _revenue_by_month.entity_id IS NULL OR a.entity_id = _revenue_by_month.entity_id
        GROUP BY 1, 2
        UNION ALL
        SELECT a.currency, date_trunc('month', billing.today(a.timezone, r.created_at)::timestamp)::date,
               NULL, NULL, NULL, NULL, NULL, NULL, billing.sum_numeric(r.amount), 0
        FROM billing.refund r JOIN billing.account a ON a.account_id = r.account_id
        WHERE _revenue_by_month.entity_id IS NULL OR a.entity_id = _revenue_by_month.entity_id
        GROUP BY 1, 2
    )
    SELECT ev.month, ev.currency,
           coalesce(sum(ev.invoiced), z.zero) AS invoiced,
           coalesce(sum(ev.tax), z.zero) AS tax,
           coalesce(sum(ev.invoiced), z.zero) - coalesce(sum(ev.tax), z.zero) AS net_invoiced,
           coalesce(sum(ev.credited), z.zero) AS credited,
           coalesce(sum(ev.collected), z.zero) AS collected,
           coalesce(sum(ev.refunded), z.zero) AS refunded,
           coalesce(sum(ev.outstanding), z.zero) AS outstanding,
           coalesce(sum(ev.written_off), z.zero) AS written_off,
           sum(ev.invoices) AS invoices
    FROM ev
    CROSS JOIN LATERAL (SELECT billing.round_money(0, ev.currency) AS zero) z
    GROUP BY ev.month, ev.currency, z.zero
$$;
COMMENT ON FUNCTION billing._revenue_by_month(bigint) IS
    'internal: the rows of the view billing.revenue_by_month (entity_id NULL), or of one billing entity''s accounts '
    '(jit off: compiling it costs more than running it)';

CREATE VIEW billing.revenue_by_month AS SELECT * FROM billing._revenue_by_month(NULL);
COMMENT ON VIEW billing.revenue_by_month IS
    'per month and currency: invoiced (by issue date; void invoices left out), collected (payments by received '
    'date), credited (credit notes), refunded, and what is still outstanding or was written off of that month''s '
    'invoices';
COMMENT ON COLUMN billing.revenue_by_month.month IS 'the first day of the month, in the accounts'' calendars';
COMMENT ON COLUMN billing.revenue_by_month.currency IS
    'the currency: amounts are never added across currencies; every figure of the row is numeric in it';
COMMENT ON COLUMN billing.revenue_by_month.invoiced IS
    'totals (tax included) of the invoices issued in the month that were not voided';
COMMENT ON COLUMN billing.revenue_by_month.tax IS 'the tax in them (exclusive and inclusive)';
COMMENT ON COLUMN billing.revenue_by_month.net_invoiced IS 'invoiced - tax: the revenue posted to the ledger';
COMMENT ON COLUMN billing.revenue_by_month.credited IS 'credit notes issued in the month (tax included)';
COMMENT ON COLUMN billing.revenue_by_month.collected IS 'payments received in the month (before refunds)';
COMMENT ON COLUMN billing.revenue_by_month.refunded IS
    'cash paid back in the month: refunds, chargebacks and credit notes of method refund';
COMMENT ON COLUMN billing.revenue_by_month.outstanding IS 'what the month''s invoices still ask for now (open invoices)';
COMMENT ON COLUMN billing.revenue_by_month.written_off IS 'what was still due on the month''s invoices written off';
COMMENT ON COLUMN billing.revenue_by_month.invoices IS 'how many invoices were issued in the month (not voided)';

-- ---------------------------------------------------------------------------
-- Days sales outstanding: receivables / what was invoiced over the last
-- days days x days, per currency, as of each account's today.

-- The recent invoices through the BRIN index on issue_date (50_invoicing.sql).

-- entity_id NULL: every account the caller sees; else only that billing
-- entity's (billing.dashboard_html).
CREATE FUNCTION billing._days_sales_outstanding(days integer, entity_id bigint)
RETURNS TABLE (currency text, as_of date, window_days integer, receivable numeric, invoiced numeric,
               dso_days numeric)
LANGUAGE plpgsql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    -- no time zone is behind UTC-12 or ahead of UTC+14: every account's
    -- today is between these two
    v_earliest date := billing.today('Etc/GMT+12');
    v_latest date := billing.today('Etc/GMT-14');
BEGIN
    IF days IS NULL OR days < 1 OR days > 3660 THEN
        RAISE EXCEPTION 'days must be between 1 and 3660, not %', coalesce(days::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The default is 90 days.';
    END IF;
    RETURN QUERY
    WITH open AS (
        SELECT billing.currency(i.amount_due) AS currency, billing.sum_numeric(i.amount_due) AS receivable
        FROM billing.invoice i
        WHERE i.status = 'open'
          AND (_days_sales_outstanding.entity_id IS NULL OR i.entity_id = _days_sales_outstanding.entity_id)
        GROUP BY 1
    ), win AS (
        -- issued in (today - days, today] of the account; the account's
        -- today is looked up only for the days where time zones disagree
        SELECT i.currency, billing.sum_numeric(i.total) AS invoiced
        FROM billing.invoice i
        WHERE i.status IN ('open', 'paid', 'uncollectible')
          AND (_days_sales_outstanding.entity_id IS NULL OR i.entity_id = _days_sales_outstanding.entity_id)
          AND i.issue_date > v_earliest - _days_sales_outstanding.days AND i.issue_date <= v_latest
          AND ((i.issue_date > v_latest - _days_sales_outstanding.days AND i.issue_date <= v_earliest)
               OR (SELECT i.issue_date > t.today - _days_sales_outstanding.days AND i.issue_date <= t.today
                   FROM (SELECT billing.today(a.timezone) AS today FROM billing.account a
                         WHERE a.account_id = i.account_id) t))
        GROUP BY 1
    )
    SELECT c.currency::text, billing.today('UTC'), _days_sales_outstanding.days,
           coalesce(o.receivable, billing.round_money(0, c.currency)),
           coalesce(w.invoiced, billing.round_money(0, c.currency)),
           CASE WHEN w.invoiced > 0
                THEN round(coalesce(o.receivable, 0) / w.invoiced
                           * _days_sales_outstanding.days, 1)
           END
    FROM (SELECT o.currency FROM open o UNION SELECT w.currency FROM win w) c
    LEFT JOIN open o ON o.currency = c.currency
    LEFT JOIN win w ON w.currency = c.currency
    ORDER BY 1;
END $$;
COMMENT ON FUNCTION billing._days_sales_outstanding(integer, bigint) IS
    'internal: billing.days_sales_outstanding(days) (entity_id NULL), or of one billing entity''s invoices';

CREATE FUNCTION billing.days_sales_outstanding(days integer DEFAULT 90)
RETURNS TABLE (currency text, as_of date, window_days integer, receivable numeric, invoiced numeric,
               dso_days numeric)
LANGUAGE sql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT * FROM billing._days_sales_outstanding(days, NULL)
$$;
COMMENT ON FUNCTION billing.days_sales_outstanding(integer) IS
    'days sales outstanding per currency: amount due on open invoices / totals invoiced in the last days days '
    '(up to each account''s today) x days; NULL when nothing was invoiced in that time';

CREATE VIEW billing.days_sales_outstanding AS
SELECT * FROM billing.days_sales_outstanding(90);
COMMENT ON VIEW billing.days_sales_outstanding IS
    'days sales outstanding per currency over the last 90 days (billing.days_sales_outstanding(days) for another window)';
COMMENT ON COLUMN billing.days_sales_outstanding.currency IS 'the currency';
COMMENT ON COLUMN billing.days_sales_outstanding.as_of IS 'today in UTC (each account''s window ends on its own today)';
COMMENT ON COLUMN billing.days_sales_outstanding.window_days IS 'the window: invoices issued in the last days days, today included';
COMMENT ON COLUMN billing.days_sales_outstanding.receivable IS 'amount due on all open invoices now';
COMMENT ON COLUMN billing.days_sales_outstanding.invoiced IS 'totals of the invoices issued in the window (void left out)';
COMMENT ON COLUMN billing.days_sales_outstanding.dso_days IS
    'receivable / invoiced x days, to 1 decimal: how many days of sales are waiting to be paid';

-- ---------------------------------------------------------------------------
-- Upcoming invoices: what the cycle will bill over the next days days,
-- computed by billing._lines_to_bill in preview mode, the computation the cycle
-- inserts and billing.preview_invoice returns (invariant 7), so an upcoming
-- invoice is the invoice the cycle makes if nothing changes before.

CREATE FUNCTION billing.upcoming_invoices(days integer DEFAULT 7)
RETURNS TABLE (account_id bigint, subscription_id bigint, bill_date date, currency text, subtotal numeric,
               discount numeric, tax numeric, total numeric, lines bigint)
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_at timestamptz := billing.now();
BEGIN
    IF days IS NULL OR days < 0 OR days > 3660 THEN
        RAISE EXCEPTION 'days must be between 0 and 3660, not %', coalesce(days::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The default is 7 days.';
    END IF;
    RETURN QUERY
    WITH s AS (
        -- the subscriptions due by the last day of the window in their
        -- account's time zone, grouped by that day: one preview per group
        SELECT billing.today(a.timezone, v_at) + upcoming_invoices.days AS until,
               array_agg(s.account_id) AS accounts, array_agg(s.subscription_id) AS subscriptions
        FROM billing.subscription s
        JOIN billing.account a ON a.account_id = s.account_id
        -- no account is ahead of UTC+14: an index bound for every time zone
        WHERE s.next_bill_date <= billing.today('Etc/GMT-14', v_at) + upcoming_invoices.days
          AND s.next_bill_date <= billing.today(a.timezone, v_at) + upcoming_invoices.days
        GROUP BY 1
    )
    SELECT d.account_id, d.subscription_id, d.bill_date, min(billing.currency(d.amount)),
           coalesce(billing.sum_numeric(d.amount) FILTER (WHERE d.kind NOT IN ('discount', 'tax')), min(z.zero)),
           coalesce(billing.sum_numeric(d.amount) FILTER (WHERE d.kind = 'discount'), min(z.zero)),
           coalesce(billing.sum_numeric(d.amount) FILTER (WHERE d.kind = 'tax'), min(z.zero)),
           coalesce(billing.sum_numeric(d.amount) FILTER (WHERE NOT d.tax_inclusive), min(z.zero)),
           count(*)
    FROM s
    CROSS JOIN LATERAL billing._lines_to_bill(s.accounts, s.subscriptions, s.until, v_at, 'preview') d
    CROSS JOIN LATERAL (SELECT billing.round_money(0, billing.currency(d.amount)) AS zero) z
    WHERE d.kind <> 'header'
    GROUP BY d.account_id, d.subscription_id, d.bill_date
    ORDER BY d.bill_date, d.account_id, d.subscription_id;
END $$;
COMMENT ON FUNCTION billing.upcoming_invoices(integer) IS
    'the invoices the cycle will make in the next days days (each account''s today + days included), one row '
    'per invoice with its totals, by the same computation as billing.preview_invoice; invoices already due and '
    'not yet billed are included';

-- The view covers a week: the preview prices every subscription due in the
-- window, the same work as the cycle (docs/performance.md).
CREATE VIEW billing.upcoming_invoices AS
SELECT * FROM billing.upcoming_invoices(7);
COMMENT ON VIEW billing.upcoming_invoices IS
    'the invoices the cycle will make in the next 7 days (billing.upcoming_invoices(days) for another window)';
COMMENT ON COLUMN billing.upcoming_invoices.account_id IS 'the account';
COMMENT ON COLUMN billing.upcoming_invoices.subscription_id IS 'the subscription the invoice bills';
COMMENT ON COLUMN billing.upcoming_invoices.bill_date IS
    'the date the invoice is for: the cycle makes it that day (its issue date when the cycle runs on time)';
COMMENT ON COLUMN billing.upcoming_invoices.currency IS 'the account''s currency: the totals are numeric in it';
COMMENT ON COLUMN billing.upcoming_invoices.subtotal IS 'charges and credits before discount and tax';
COMMENT ON COLUMN billing.upcoming_invoices.discount IS 'coupon discounts (negative or zero)';
COMMENT ON COLUMN billing.upcoming_invoices.tax IS 'tax, exclusive and inclusive';
COMMENT ON COLUMN billing.upcoming_invoices.total IS 'what the invoice will ask for: subtotal + discount + exclusive tax';
COMMENT ON COLUMN billing.upcoming_invoices.lines IS 'how many lines the invoice will have';
