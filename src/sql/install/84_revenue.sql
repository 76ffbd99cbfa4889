-- Revenue recognition: when the revenue an invoice posts to the ledger is
-- earned.  Computed when read, from the invoice lines, never posted: the
-- ledger's revenue account holds what was invoiced (total - tax, posted by
-- billing._post_invoices_finalized) and the discounts account the net part
-- of credit notes; the schedule below splits exactly those amounts over the
-- days they are earned, so for every entity and currency
--     recognized to date + deferred = net revenue invoiced - net credited
-- holds by construction (sql/revenue.sql checks it against the ledger).
-- Nothing is stored, so nothing can drift from the invoices, and a report
-- needs no scheduled step to be current.
--
-- The rules, each written once here:
--   * the revenue of a line: the invoices that are not drafts or void
--     (open, paid, uncollectible: a write-off is bad debt, not a reversal
--     of revenue) have charge lines (every kind but discount and tax).  A
--     line's revenue is its amount plus its share of its tax group's
--     discount lines, less its share of the group's tax-included lines (tax
--     is never revenue); the group is the invoice's lines of one tax rate,
--     as billing._discount_and_tax makes them.  The shares are
--     billing.allocate of the group's adjustment in proportion to the
--     group's positive line amounts (every line alike when none is
--     positive), so the lines of an invoice sum to its total - tax exactly;
--   * when it is earned: a line with a service period of at least one day
--     that is not usage (subscription, proration, credit for a period) is
--     earned per day of [period_start, period_end), billing.split of its
--     revenue over those days (equal parts, the extra minor units to the
--     first days: the parts sum to the line).  Usage is billed in arrears,
--     when its period is over, and lines without a period (one-off items,
--     setup and late fees) are earned at once: both on the invoice's issue
--     date.  Nothing is earned before the invoice exists: a day before the
--     issue date is counted on the issue date;
--   * credit notes reverse: the net part of a credit note (its amount less
--     its tax, the amount it posts to discounts) is allocated over the
--     invoice's lines in proportion to their positive revenue, and each
--     share is split over the line's days as the line is; days before the
--     credit note's date (the account's date when it was made) are
--     reversed on that date, later days on their day.  Refunds of payments
--     move cash, not revenue: they reverse nothing (a credit note of method
--     refund does, as a credit note);
--   * dates are the account's calendar; a month is its first day.

-- One row per charge line of every invoice that is not a draft or void:
-- its revenue (billing.amount, in the invoice's currency) and its days.
CREATE FUNCTION billing._revenue_lines()
RETURNS TABLE (entity_id bigint, account_id bigint, invoice_id bigint, invoice_line_id bigint, currency text,
               issue_date date, kind text, price_id bigint, period_start date, days integer,
               revenue billing.amount)
LANGUAGE sql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH l AS (
        SELECT i.entity_id, i.account_id, i.invoice_id, l.invoice_line_id, i.currency::text AS currency,
               i.issue_date, l.kind, l.price_id, l.tax_rate_id, l.amount, l.tax_inclusive,
               CASE WHEN l.kind NOT IN ('usage', 'discount', 'tax') AND l.period_end > l.period_start
                    THEN l.period_start END AS period_start,
               CASE WHEN l.kind NOT IN ('usage', 'discount', 'tax') AND l.period_end > l.period_start
                    THEN l.period_end - l.period_start ELSE 1 END AS days
        FROM billing.invoice i
        JOIN billing.invoice_line l ON l.account_id = i.account_id AND l.invoice_id = i.invoice_id
        WHERE i.status IN ('open', 'paid', 'uncollectible')
    ), g AS (
        -- per tax group: its charge lines in order, and what its discounts
        -- (negative) and included tax take from them; only the invoices
        -- with a discount or an included tax line, the others' groups take
        -- nothing (ordered aggregates per group of every invoice would cost
        -- more than the rest of the schedule)
        SELECT c.account_id, c.invoice_id, min(c.currency) AS currency,
               array_agg(c.invoice_line_id ORDER BY c.invoice_line_id)
                   FILTER (WHERE c.kind NOT IN ('discount', 'tax')) AS ids,
               array_agg(greatest(billing.to_numeric(c.amount), 0) ORDER BY c.invoice_line_id)
                   FILTER (WHERE c.kind NOT IN ('discount', 'tax')) AS ratios,
               coalesce(billing.sum_numeric(c.amount) FILTER (WHERE c.kind = 'discount'), 0)
                 - coalesce(billing.sum_numeric(c.amount) FILTER (WHERE c.tax_inclusive), 0) AS adjust
        FROM l c
        WHERE (c.account_id, c.invoice_id) IN (SELECT x.account_id, x.invoice_id FROM l x
                                               WHERE x.kind = 'discount' OR x.tax_inclusive)
        GROUP BY c.account_id, c.invoice_id, c.tax_rate_id
    ), share AS (
        SELECT g.account_id, g.invoice_id, s.invoice_line_id, s.part
        FROM g
        CROSS JOIN LATERAL unnest(g.ids,
                                  billing.allocate(billing.amount(g.adjust, g.currency),
                                                   CASE WHEN (SELECT sum(r) FROM unnest(g.ratios) r) > 0 THEN g.ratios
                                                        ELSE array_fill(1::numeric, ARRAY[cardinality(g.ratios)]) END))
                                  s(invoice_line_id, part)
        WHERE g.adjust <> 0 AND g.ids IS NOT NULL
    )
    SELECT l.entity_id, l.account_id, l.invoice_id, l.invoice_line_id, l.currency, l.issue_date, l.kind,
           l.price_id, l.period_start, l.days, coalesce(l.amount + s.part, l.amount)
    FROM l
    LEFT JOIN share s ON s.account_id = l.account_id AND s.invoice_id = l.invoice_id
                     AND s.invoice_line_id = l.invoice_line_id
    WHERE l.kind NOT IN ('discount', 'tax')
$$;
COMMENT ON FUNCTION billing._revenue_lines() IS
    'internal: the revenue of every charge line of the invoices that are not drafts or void (its amount, plus its '
    'share of its tax group''s discounts, less its share of included tax: billing.allocate), with its days';

-- The schedule: what each line (and each credit note's share of it) adds
-- to the revenue of each month, in numeric with the currency's digits.
-- booked_on is the day the ledger posted it (the invoice's issue date, the
-- credit note's date); a part is never recognized before it: recognized in
-- month m = the parts of the days in m, a day before booked_on counting on
-- booked_on.
CREATE FUNCTION billing._revenue_schedule()
RETURNS TABLE (entity_id bigint, account_id bigint, currency text, invoice_id bigint, invoice_line_id bigint,
               credit_note_id bigint, kind text, price_id bigint, issue_date date, booked_on date, month date,
               recognized numeric)
LANGUAGE sql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH r AS MATERIALIZED (
        SELECT * FROM billing._revenue_lines()
    ), inv AS (
        -- an invoice's lines in order, weighted by their positive revenue
        -- (every line alike when none is positive); only the invoices with
        -- a credit note
        SELECT r.account_id, r.invoice_id, array_agg(r.invoice_line_id ORDER BY r.invoice_line_id) AS ids,
               array_agg(greatest(billing.to_numeric(r.revenue), 0) ORDER BY r.invoice_line_id) AS ratios
        FROM r
        WHERE (r.account_id, r.invoice_id) IN (SELECT c.account_id, c.invoice_id FROM billing.credit_note c)
        GROUP BY 1, 2
    ), cn AS (
        -- each credit note's net part (what it posts to discounts: amount
        -- less its tax), over the invoice's lines
        SELECT c.account_id, c.invoice_id, c.credit_note_id, s.invoice_line_id, s.part,
               billing.today(a.timezone, c.created_at) AS credited_on
        FROM billing.credit_note c
        JOIN billing.account a ON a.account_id = c.account_id
        JOIN inv ON inv.account_id = c.account_id AND inv.invoice_id = c.invoice_id
        CROSS JOIN LATERAL unnest(inv.ids,
                                  billing.allocate(c.amount - c.tax,
                                                   CASE WHEN (SELECT sum(x) FROM unnest(inv.ratios) x) > 0 THEN inv.ratios
                                                        ELSE array_fill(1::numeric, ARRAY[cardinality(inv.ratios)]) END))
                                  s(invoice_line_id, part)
        WHERE billing.to_numeric(c.amount - c.tax) <> 0
    ), piece AS (
        SELECT r.*, NULL::bigint AS credit_note_id, r.issue_date AS booked_on, r.revenue AS amount FROM r
        UNION ALL
        SELECT r.*, cn.credit_note_id, greatest(cn.credited_on, r.issue_date), -cn.part
        FROM cn
        JOIN r ON r.account_id = cn.account_id AND r.invoice_id = cn.invoice_id AND r.invoice_line_id = cn.invoice_line_id
        WHERE billing.to_numeric(cn.part) <> 0
    )
    SELECT p.entity_id, p.account_id, p.currency, p.invoice_id, p.invoice_line_id, p.credit_note_id, p.kind,
           p.price_id, p.issue_date, p.booked_on, m.month,
           round((x.sign * (x.q * (m.last_day - m.first_day + 1)
                            + greatest(0, least(m.last_day, x.r) - m.first_day + 1)))::numeric
                 / 10::numeric ^ x.scale, x.scale) AS recognized
    FROM piece p
    -- One part per day, as billing.split makes them (they sum to the
    -- piece): every day |units| / days minor units, the |units| % days left
    -- over one each to the first days.  Day n is period_start + n - 1; it
    -- counts in its month, or in booked_on's for the days before booked_on,
    -- so the months run from greatest(period_start, booked_on)'s to the last
    -- day's, the first of them taking every day from day 1.  The sum of the
    -- parts of days a..b is computed rather than the parts themselves: a
    -- row per month instead of one per day.
    CROSS JOIN LATERAL (
        SELECT CASE WHEN billing.minor_units(p.amount) < 0 THEN -1 ELSE 1 END AS sign,
               abs(billing.minor_units(p.amount)) / p.days AS q, abs(billing.minor_units(p.amount)) % p.days AS r,
               billing.scale(p.amount) AS scale,
               date_trunc('month', greatest(p.period_start, p.booked_on)::timestamp) AS first_month,
               date_trunc('month', greatest(p.period_start + (p.days - 1), p.booked_on)::timestamp) AS last_month
    ) x
    CROSS JOIN LATERAL (
        SELECT g.month::date AS month,
               CASE WHEN g.month = x.first_month THEN 1 ELSE g.month::date - p.period_start + 1 END AS first_day,
               CASE WHEN g.month = x.last_month THEN p.days
                    ELSE (g.month + interval '1 month')::date - p.period_start END AS last_day
        FROM generate_series(x.first_month, x.last_month, interval '1 month') g(month)
    ) m
$$;
COMMENT ON FUNCTION billing._revenue_schedule() IS
    'internal: the rows of the view billing.revenue_schedule: per charge line, and per credit note''s share of it, '
    'the revenue recognized in each month';

CREATE VIEW billing.revenue_schedule AS SELECT * FROM billing._revenue_schedule();
COMMENT ON VIEW billing.revenue_schedule IS
    'revenue recognition: per invoice line (and per credit note''s reversal of it) and month, the revenue '
    'recognized in that month; a line with a service period (not usage) is earned per day of [period_start, '
    'period_end), others on the issue date; void invoices and drafts recognize nothing (README, Reporting)';
COMMENT ON COLUMN billing.revenue_schedule.entity_id IS 'the invoice''s billing entity';
COMMENT ON COLUMN billing.revenue_schedule.account_id IS 'the account';
COMMENT ON COLUMN billing.revenue_schedule.currency IS 'the invoice''s currency: recognized is numeric in it';
COMMENT ON COLUMN billing.revenue_schedule.invoice_id IS 'the invoice';
COMMENT ON COLUMN billing.revenue_schedule.invoice_line_id IS 'the charge line (every kind but discount and tax)';
COMMENT ON COLUMN billing.revenue_schedule.credit_note_id IS
    'the credit note whose share of the line this row reverses (NULL: the line''s own revenue)';
COMMENT ON COLUMN billing.revenue_schedule.kind IS 'the line''s kind (subscription, proration, usage, one_off, ...)';
COMMENT ON COLUMN billing.revenue_schedule.price_id IS 'the line''s price (NULL for one-off items and late fees)';
COMMENT ON COLUMN billing.revenue_schedule.issue_date IS 'the invoice''s issue date';
COMMENT ON COLUMN billing.revenue_schedule.booked_on IS
    'the day the ledger posted it: the issue date, or the credit note''s date; nothing is recognized before it';
COMMENT ON COLUMN billing.revenue_schedule.month IS 'the month recognized (first day), in the account''s calendar';
COMMENT ON COLUMN billing.revenue_schedule.recognized IS
    'the revenue recognized in the month: the sum of the day parts (billing.split of the line''s revenue over its '
    'days) in it; negative for a credit note''s reversal';

-- Per currency and month, from the first month with revenue to the last
-- one scheduled (or the current one): booked, recognized, deferred.
CREATE FUNCTION billing._revenue_months()
RETURNS TABLE (month date, currency text, booked numeric, recognized numeric, from_invoices numeric,
               reversed numeric, deferred numeric)
LANGUAGE sql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH s AS MATERIALIZED (
        SELECT * FROM billing._revenue_schedule()
    ), ev AS (
        SELECT s.currency, date_trunc('month', s.booked_on::timestamp)::date AS month,
               sum(s.recognized) AS booked, 0 AS recognized, 0 AS from_invoices, 0 AS reversed
        FROM s GROUP BY 1, 2
        UNION ALL
        SELECT s.currency, s.month, 0, sum(s.recognized),
               coalesce(sum(s.recognized) FILTER (WHERE s.credit_note_id IS NULL), 0),
               coalesce(sum(s.recognized) FILTER (WHERE s.credit_note_id IS NOT NULL), 0)
        FROM s GROUP BY 1, 2
    ), t AS (
        SELECT ev.currency, ev.month, sum(ev.booked) AS booked, sum(ev.recognized) AS recognized,
               sum(ev.from_invoices) AS from_invoices, sum(ev.reversed) AS reversed
        FROM ev GROUP BY 1, 2
    ), months AS (
        SELECT r.currency, m::date AS month
        FROM (SELECT t.currency, min(t.month) AS first_month,
                     greatest(max(t.month), date_trunc('month', billing.today('UTC')::timestamp)::date) AS last_month
              FROM t GROUP BY 1) r
        CROSS JOIN LATERAL generate_series(r.first_month, r.last_month, interval '1 month') m
    )
    SELECT ms.month, ms.currency::text,
           coalesce(t.booked, 0) + z.zero, coalesce(t.recognized, 0) + z.zero,
           coalesce(t.from_invoices, 0) + z.zero, coalesce(t.reversed, 0) + z.zero,
           sum(coalesce(t.booked, 0) - coalesce(t.recognized, 0))
               OVER (PARTITION BY ms.currency ORDER BY ms.month) + z.zero
    FROM months ms
    LEFT JOIN t ON t.currency = ms.currency AND t.month = ms.month
    CROSS JOIN LATERAL (SELECT billing.round_money(0, ms.currency) AS zero) z
$$;
COMMENT ON FUNCTION billing._revenue_months() IS
    'internal: the rows of the views billing.revenue_recognized_by_month and billing.deferred_revenue';

CREATE VIEW billing.revenue_recognized_by_month AS
SELECT month, currency, recognized, from_invoices, reversed FROM billing._revenue_months();
COMMENT ON VIEW billing.revenue_recognized_by_month IS
    'revenue recognized per month and currency (billing.revenue_schedule summed), from the first month with '
    'revenue to the last one scheduled or the current one; months after the current one are the schedule as it '
    'stands';
COMMENT ON COLUMN billing.revenue_recognized_by_month.month IS 'the first day of the month, in the accounts'' calendars';
COMMENT ON COLUMN billing.revenue_recognized_by_month.currency IS 'the currency: every figure of the row is numeric in it';
COMMENT ON COLUMN billing.revenue_recognized_by_month.recognized IS 'from_invoices + reversed: the revenue earned in the month';
COMMENT ON COLUMN billing.revenue_recognized_by_month.from_invoices IS 'the part of the invoice lines'' revenue earned in the month';
COMMENT ON COLUMN billing.revenue_recognized_by_month.reversed IS 'what credit notes took back in the month (negative or zero)';

CREATE VIEW billing.deferred_revenue AS
SELECT month, currency, booked, recognized, deferred FROM billing._revenue_months();
COMMENT ON VIEW billing.deferred_revenue IS
    'deferred revenue per currency at the end of each month: net revenue booked (invoices'' total - tax by issue '
    'date, less credit notes'' net part by their date) and not yet recognized; deferred = the month before''s '
    'deferred + booked - recognized';
COMMENT ON COLUMN billing.deferred_revenue.month IS 'the first day of the month; the balance is at its end';
COMMENT ON COLUMN billing.deferred_revenue.currency IS 'the currency: every figure of the row is numeric in it';
COMMENT ON COLUMN billing.deferred_revenue.booked IS
    'net revenue posted in the month: invoices issued (total - tax) less the net part of credit notes made';
COMMENT ON COLUMN billing.deferred_revenue.recognized IS 'revenue recognized in the month (billing.revenue_recognized_by_month)';
COMMENT ON COLUMN billing.deferred_revenue.deferred IS
    'the balance at the month''s end: everything booked up to it less everything recognized up to it';

CREATE FUNCTION billing._revenue_waterfall()
RETURNS TABLE (invoice_month date, currency text, month date, months_since integer, recognized numeric)
LANGUAGE sql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT s.invoice_month, s.currency, s.month,
           ((extract(year FROM s.month) - extract(year FROM s.invoice_month)) * 12
            + extract(month FROM s.month) - extract(month FROM s.invoice_month))::integer,
           sum(s.recognized) + billing.round_money(0, s.currency)
    FROM (SELECT date_trunc('month', x.issue_date::timestamp)::date AS invoice_month, x.currency, x.month, x.recognized
          FROM billing._revenue_schedule() x) s
    GROUP BY 1, 2, 3
$$;
COMMENT ON FUNCTION billing._revenue_waterfall() IS 'internal: the rows of the view billing.revenue_waterfall';

CREATE VIEW billing.revenue_waterfall AS SELECT * FROM billing._revenue_waterfall();
COMMENT ON VIEW billing.revenue_waterfall IS
    'the revenue waterfall: per month of issue of the invoices (credit notes counted with their invoice) and '
    'currency, how much of it is recognized in each month';
COMMENT ON COLUMN billing.revenue_waterfall.invoice_month IS 'the month the invoices were issued (first day)';
COMMENT ON COLUMN billing.revenue_waterfall.currency IS 'the currency: recognized is numeric in it';
COMMENT ON COLUMN billing.revenue_waterfall.month IS 'the month recognized (first day)';
COMMENT ON COLUMN billing.revenue_waterfall.months_since IS 'months from invoice_month to month (0: the month of issue)';
COMMENT ON COLUMN billing.revenue_waterfall.recognized IS
    'the revenue of those invoices recognized in month, less what their credit notes reversed in it';

CREATE FUNCTION billing._revenue_by_price()
RETURNS TABLE (month date, currency text, product_id bigint, product_name text, price_id bigint,
               price_nickname text, recognized numeric)
LANGUAGE sql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT s.month, s.currency, p.product_id, pr.name, s.price_id, p.nickname,
           sum(s.recognized) + billing.round_money(0, s.currency)
    FROM billing._revenue_schedule() s
    LEFT JOIN billing.price p ON p.price_id = s.price_id
    LEFT JOIN billing.product pr ON pr.product_id = p.product_id
    GROUP BY 1, 2, 3, 4, 5, 6
$$;
COMMENT ON FUNCTION billing._revenue_by_price() IS
    'internal: the rows of the views billing.revenue_by_price and billing.revenue_by_product';

CREATE VIEW billing.revenue_by_price AS SELECT * FROM billing._revenue_by_price();
COMMENT ON VIEW billing.revenue_by_price IS
    'revenue recognized per month, currency and price (price_id NULL: one-off items and late fees)';
COMMENT ON COLUMN billing.revenue_by_price.month IS 'the month recognized (first day)';
COMMENT ON COLUMN billing.revenue_by_price.currency IS 'the currency: recognized is numeric in it';
COMMENT ON COLUMN billing.revenue_by_price.product_id IS 'the price''s product';
COMMENT ON COLUMN billing.revenue_by_price.product_name IS 'the product''s name';
COMMENT ON COLUMN billing.revenue_by_price.price_id IS 'the price of the lines (NULL: lines without a price)';
COMMENT ON COLUMN billing.revenue_by_price.price_nickname IS 'the price''s nickname';
COMMENT ON COLUMN billing.revenue_by_price.recognized IS 'revenue of the price''s lines recognized in the month, less credit notes';

CREATE VIEW billing.revenue_by_product AS
SELECT month, currency, product_id, product_name, sum(recognized) AS recognized
FROM billing._revenue_by_price()
GROUP BY 1, 2, 3, 4;
COMMENT ON VIEW billing.revenue_by_product IS
    'revenue recognized per month, currency and product (product_id NULL: one-off items and late fees)';
COMMENT ON COLUMN billing.revenue_by_product.month IS 'the month recognized (first day)';
COMMENT ON COLUMN billing.revenue_by_product.currency IS 'the currency: recognized is numeric in it';
COMMENT ON COLUMN billing.revenue_by_product.product_id IS 'the product (NULL: lines without a price)';
COMMENT ON COLUMN billing.revenue_by_product.product_name IS 'the product''s name';
COMMENT ON COLUMN billing.revenue_by_product.recognized IS 'revenue of the product''s lines recognized in the month, less credit notes';

-- ---------------------------------------------------------------------------
-- Revenue in a reporting currency (83_exchange_rates.sql): every part of
-- the schedule at the rate in force on its invoice's issue date, so a
-- credit note takes back at the rate its invoice was converted at.  The
-- schedule is grouped by currency, issue date, month booked, month
-- recognized (and price) first, and each group converted and rounded once.

CREATE FUNCTION billing._check_report_months(currency text, from_month date, to_month date) RETURNS date[]
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_from date := billing._check_report_month(currency, from_month, 'from_month');
    v_to date := billing._check_report_month(currency, to_month, 'to_month');
BEGIN
    IF v_from > v_to THEN
        RAISE EXCEPTION 'from_month % is after to_month %', from_month, to_month
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN ARRAY[v_from, v_to];
END $$;
COMMENT ON FUNCTION billing._check_report_months(text, date, date) IS
    'internal: checks a reporting currency and a range of months (22023, 22008); their first days';

CREATE FUNCTION billing.revenue_in(reporting_currency text, from_month date, to_month date)
RETURNS TABLE (month date, currency text, booked numeric, recognized numeric, deferred numeric)
LANGUAGE plpgsql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_months date[] := billing._check_report_months(reporting_currency, from_month, to_month);
BEGIN
    RETURN QUERY
    WITH g AS (
        SELECT date_trunc('month', s.booked_on::timestamp)::date AS booked_month, s.month,
               billing._convert(sum(s.recognized), s.currency, reporting_currency, s.issue_date) AS value
        FROM billing._revenue_schedule() s
        WHERE date_trunc('month', s.booked_on::timestamp)::date <= v_months[2]
        GROUP BY s.currency, s.issue_date, 1, 2
    ), t AS (
        SELECT m::date AS month,
               coalesce((SELECT sum(g.value) FROM g WHERE g.booked_month = m), 0) AS booked,
               coalesce((SELECT sum(g.value) FROM g WHERE g.month = m), 0) AS recognized,
               coalesce((SELECT sum(g.value) FROM g WHERE g.booked_month <= m AND g.month > m), 0) AS deferred
        FROM generate_series(v_months[1], v_months[2], interval '1 month') m
    )
    SELECT t.month, reporting_currency, t.booked + z.zero, t.recognized + z.zero, t.deferred + z.zero
    FROM t CROSS JOIN (SELECT billing.round_money(0, reporting_currency) AS zero) z
    ORDER BY t.month;
END $$;
COMMENT ON FUNCTION billing.revenue_in(text, date, date) IS
    'revenue per month from from_month to to_month in one reporting currency: booked (net revenue posted), '
    'recognized and deferred at the month''s end (billing.deferred_revenue), every part converted at the rate in '
    'force on its invoice''s issue date and rounded once per currency, issue date and month; P0002 when a rate is '
    'missing';

CREATE FUNCTION billing.revenue_by_price_in(reporting_currency text, from_month date, to_month date)
RETURNS TABLE (month date, currency text, product_id bigint, product_name text, price_id bigint,
               price_nickname text, recognized numeric)
LANGUAGE plpgsql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_months date[] := billing._check_report_months(reporting_currency, from_month, to_month);
BEGIN
    RETURN QUERY
    WITH g AS (
        SELECT s.month, s.price_id,
               billing._convert(sum(s.recognized), s.currency, reporting_currency, s.issue_date) AS value
        FROM billing._revenue_schedule() s
        WHERE s.month BETWEEN v_months[1] AND v_months[2]
        GROUP BY s.currency, s.issue_date, s.month, s.price_id
    )
    SELECT g.month, reporting_currency, p.product_id, pr.name, g.price_id, p.nickname,
           sum(g.value) + billing.round_money(0, reporting_currency)
    FROM g
    LEFT JOIN billing.price p ON p.price_id = g.price_id
    LEFT JOIN billing.product pr ON pr.product_id = p.product_id
    GROUP BY 1, 2, 3, 4, 5, 6
    ORDER BY 1, 3 NULLS LAST, 5 NULLS LAST;
END $$;
COMMENT ON FUNCTION billing.revenue_by_price_in(text, date, date) IS
    'revenue recognized per month and price (with its product: add up by product_id for revenue by product) from '
    'from_month to to_month in one reporting currency, converted at the rate in force on each invoice''s issue '
    'date and rounded once per currency, issue date, month and price; P0002 when a rate is missing';
