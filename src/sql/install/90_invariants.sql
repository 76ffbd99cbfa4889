-- billing.check_invariants(): every invariant of docs/design.md that can be read
-- off the tables, as named checks; a row is a violation, no rows is good.
-- Each check is one branch of the UNION ALL.
CREATE FUNCTION billing.check_invariants()
RETURNS TABLE (invariant text, detail text)
LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    -- invoice totals are the sums of their lines
    SELECT 'invoice_totals_equal_lines',
           format('invoice %s (account %s): subtotal %s discount %s tax %s total %s, lines %s %s %s %s',
                  i.invoice_id, i.account_id, i.subtotal, i.discount, i.tax, i.total,
                  l.subtotal, l.discount, l.tax, l.total)
    FROM billing.invoice i
    LEFT JOIN LATERAL (
        SELECT coalesce(billing.sum(amount) FILTER (WHERE kind NOT IN ('discount', 'tax')), billing.from_minor_units(0, i.currency)) AS subtotal,
               coalesce(billing.sum(amount) FILTER (WHERE kind = 'discount'), billing.from_minor_units(0, i.currency)) AS discount,
               coalesce(billing.sum(amount) FILTER (WHERE kind = 'tax'), billing.from_minor_units(0, i.currency)) AS tax,
               coalesce(billing.sum(amount) FILTER (WHERE NOT tax_inclusive), billing.from_minor_units(0, i.currency)) AS total
        FROM billing.invoice_line x WHERE x.account_id = i.account_id AND x.invoice_id = i.invoice_id
    ) l ON true
    WHERE NOT (i.subtotal = l.subtotal AND i.discount = l.discount AND i.tax = l.tax AND i.total = l.total)
    UNION ALL
    -- every amount of an invoice is in its currency
    SELECT 'invoice_one_currency', format('invoice %s line %s: %s on a %s invoice', l.invoice_id, l.invoice_line_id,
                                          l.amount, i.currency)
    FROM billing.invoice_line l
    JOIN billing.invoice i ON i.account_id = l.account_id AND i.invoice_id = l.invoice_id
    WHERE billing.currency(l.amount) <> i.currency
    UNION ALL
    -- invariant 1: one recurring line per subscription item and period
    SELECT 'one_line_per_item_and_period',
           format('item %s (account %s) billed %s times for the period from %s', subscription_item_id, account_id,
                  count(*), period_start)
    FROM billing.invoice_line
    WHERE kind = 'subscription'
    GROUP BY account_id, subscription_item_id, period_start
    HAVING count(*) > 1
    UNION ALL
    -- recurring periods of one item never overlap
    SELECT 'no_overlapping_periods',
           format('item %s (account %s): [%s, %s) overlaps [%s, %s)', a.subscription_item_id, a.account_id,
                  a.period_start, a.period_end, b.period_start, b.period_end)
    FROM billing.invoice_line a
    JOIN billing.invoice_line b
      ON b.account_id = a.account_id AND b.subscription_item_id = a.subscription_item_id
     AND b.kind = 'subscription' AND b.invoice_line_id > a.invoice_line_id
     AND daterange(a.period_start, a.period_end) && daterange(b.period_start, b.period_end)
    WHERE a.kind = 'subscription'
    UNION ALL
    -- invoice numbers: gapless from 1 in each series of each entity
    SELECT 'invoice_numbers_gapless',
           format('entity %s series %s: %s numbers, the last is %s, counter %s', s.entity_id, s.series,
                  n.numbers, n.last, s.last_number)
    -- (the numbers of every series counted in one pass over the invoices
    -- and joined to the series, not a lateral subquery per series: Citus
    -- cannot join a reference table laterally to a distributed one)
    FROM billing.invoice_number_series s
    LEFT JOIN (
        SELECT x.entity_id, x.series, count(*) AS numbers, count(DISTINCT i.number) AS distinct_numbers,
               max(substr(i.number, length(x.series) + 2)::bigint) AS last
        FROM billing.invoice i
        JOIN billing.invoice_number_series x
          ON x.entity_id = i.entity_id AND i.number LIKE x.series || '-%'
         AND substr(i.number, length(x.series) + 2) ~ '^[0-9]+$'
        GROUP BY x.entity_id, x.series
    ) n ON n.entity_id = s.entity_id AND n.series = s.series
    WHERE NOT (coalesce(n.numbers, 0) = s.last_number AND coalesce(n.distinct_numbers, 0) = coalesce(n.numbers, 0)
               AND coalesce(n.last, 0) = s.last_number)
    UNION ALL
    -- an amount due is the total less what was paid
    SELECT 'amount_due_is_total_less_paid',
           format('invoice %s: total %s, paid %s, due %s', invoice_id, total, amount_paid, amount_due)
    FROM billing.invoice
    WHERE status IN ('open', 'paid') AND amount_due <> total - amount_paid
          AND NOT (status = 'paid' AND total = amount_paid)
    UNION ALL
    -- a billed usage event belongs to an invoice of its account
    SELECT 'usage_billed_on_an_invoice',
           format('usage event %s (account %s) names invoice %s, which does not exist', e.usage_event_id,
                  e.account_id, e.invoice_id)
    FROM billing.usage_event e
    WHERE e.invoice_id IS NOT NULL AND NOT EXISTS (
        SELECT FROM billing.invoice i WHERE i.account_id = e.account_id AND i.invoice_id = e.invoice_id)
$$;
COMMENT ON FUNCTION billing.check_invariants() IS
    'the invariants that can be checked on the tables, one named check each; no rows means all hold';
