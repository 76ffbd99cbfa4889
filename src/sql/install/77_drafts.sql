-- Draft invoices with a grace period, and one-off charges.
--
-- An account (or its entity) with draft_days > 0 gets the invoices that
-- billing.run_cycle makes as drafts (billing._bill_invoices): status
-- 'draft', no number, nothing posted, not collected, not dunned, not
-- receivable.  For draft_days days a draft stays editable: one-off items
-- are added to it or removed from it (billing.add_invoice_item,
-- billing.remove_invoice_item), usage recorded late for its period and a
-- coupon applied to its subscription are taken in.  It is finalized by hand
-- (billing.finalize_invoice) or by the cycle on its finalize_on day, both
-- through billing._finalize_drafts: the draft's variable lines are computed
-- again (billing._refresh_drafts), it takes its gapless number
-- (billing._take_invoice_numbers) and its issue and due dates, and the one
-- finalization step (billing._finalize_invoices) posts it, applies credit
-- and queues collection.
--
-- What a draft's refresh recomputes, set-based over a batch of drafts, and
-- by the formulas of billing._lines_to_bill (50_invoicing.sql):
--   * usage: the unbilled events of the subscription's items dated before
--     the draft's bill date are marked with the draft (each with the draft
--     of the smallest bill date after it, when a batch holds several drafts
--     of one subscription), and the usage line of each item and usage
--     period they fall in is written again: the period's price with every
--     billed event minus what other invoices billed for it;
--   * discounts: the coupon of the subscription whose time the bill date is
--     in (billing.apply_coupon during the grace period covers the draft),
--     per tax group, percent or amount off allocated;
--   * taxes: per tax rate on the net after discounts, rounded once;
--   * the totals, from the lines.
-- The recurring lines, the pending items and the one-off items stay as
-- they are: what a period costs was decided when the draft was made.
--
-- Lock order: the draft's subscription row, then the draft, then (in the
-- finalization) the number series' counters and the accounts' credit rows.
-- The hand paths wait for each lock in that order; the cycle takes the
-- subscription and the draft with SKIP LOCKED, so it never waits for a
-- session that holds either (that draft is finalized by the next run).  No
-- other money path locks a draft: payments, credit, dunning, voids and
-- collection take open invoices only.


-- What billing.add_invoice_item made: the invoice line (on a draft, or on
-- the invoice made at once) or the pending item (for the next invoice).
CREATE TYPE billing.invoice_item AS (invoice_id bigint, invoice_line_id bigint, pending_item_id bigint);
COMMENT ON TYPE billing.invoice_item IS
    'what billing.add_invoice_item made: invoice_id and invoice_line_id (a draft or an invoice made at once), or '
    'pending_item_id (for the subscription''s next invoice)';

-- ---------------------------------------------------------------------------
-- The settings.

CREATE FUNCTION billing._check_draft_days(days integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF days < 0 OR days > 90 THEN
        RAISE EXCEPTION 'a grace period is 0 to 90 days, not %', days
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass 0 to finalize invoices when they are made.';
    END IF;
END $$;
COMMENT ON FUNCTION billing._check_draft_days(integer) IS 'internal: 22023 unless 0 <= days <= 90';

CREATE FUNCTION billing.set_entity_draft_days(entity_id bigint, days integer)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._authorize_entity(set_entity_draft_days.entity_id);
    IF days IS NULL THEN
        RAISE EXCEPTION 'an entity''s grace period must not be NULL'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass 0 to finalize invoices when they are made.';
    END IF;
    PERFORM billing._check_draft_days(days);
    UPDATE billing.billing_entity e SET draft_days = days WHERE e.entity_id = set_entity_draft_days.entity_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'billing entity % does not exist', coalesce(entity_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'billing.billing_entity lists the entities.';
    END IF;
END $$;
COMMENT ON FUNCTION billing.set_entity_draft_days(bigint, integer) IS
    'sets the grace period of the entity''s accounts (0 to 90 days; 0: the cycle''s invoices are finalized when '
    'made): the cycle makes drafts that it finalizes that many days later; an account''s own setting wins';

CREATE FUNCTION billing.set_account_draft_days(account_id bigint, days integer)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._authorize_account(set_account_draft_days.account_id);
    PERFORM billing._check_draft_days(days);
    UPDATE billing.account a SET draft_days = days WHERE a.account_id = set_account_draft_days.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_account.';
    END IF;
END $$;
COMMENT ON FUNCTION billing.set_account_draft_days(bigint, integer) IS
    'sets the account''s grace period (0 to 90 days: the cycle''s invoices stay drafts that long; NULL: its '
    'entity''s)';

-- ---------------------------------------------------------------------------
-- The refresh of drafts: their usage, discount and tax lines and totals
-- computed again (see the head of this file).  The caller holds the
-- drafts' subscriptions and the drafts.

CREATE FUNCTION billing._refresh_drafts(accounts bigint[], invoices bigint[])
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_acc bigint[];
    v_inv bigint[];
    v_item bigint[];
    v_date date[];
    v_from date[];
    v_until date[];
BEGIN
    -- 1. late usage: each unbilled event dated before a draft's bill date
    --    goes to the draft of its subscription with the smallest bill date
    --    after it
    WITH d AS MATERIALIZED (
        SELECT i.account_id, i.invoice_id, i.subscription_id, i.bill_date
        FROM unnest(accounts, invoices) u(account_id, invoice_id)
        JOIN billing.invoice i ON i.account_id = u.account_id AND i.invoice_id = u.invoice_id
        WHERE i.status = 'draft' AND i.subscription_id IS NOT NULL AND i.bill_date IS NOT NULL
    ), ev AS (
        SELECT DISTINCT ON (e.account_id, e.usage_event_id) e.account_id, e.usage_event_id, d.invoice_id
        FROM d
        JOIN billing.subscription_item si ON si.account_id = d.account_id AND si.subscription_id = d.subscription_id
        JOIN billing.usage_event e
          ON e.account_id = si.account_id AND e.subscription_item_id = si.subscription_item_id
         AND e.invoice_id IS NULL AND e.usage_date < d.bill_date
        ORDER BY e.account_id, e.usage_event_id, d.bill_date, d.invoice_id
    ), marked AS (
        UPDATE billing.usage_event e SET invoice_id = ev.invoice_id
        FROM ev
        WHERE e.account_id = ev.account_id AND e.usage_event_id = ev.usage_event_id AND e.invoice_id IS NULL
        RETURNING e.account_id, e.invoice_id, e.subscription_item_id, e.usage_date
    )
    SELECT array_agg(account_id), array_agg(invoice_id), array_agg(subscription_item_id), array_agg(usage_date)
    INTO v_acc, v_inv, v_item, v_date
    FROM marked;

    IF v_acc IS NOT NULL THEN
        -- 2. the usage lines of the periods the events fall in (item and
        --    usage period), written again
        SELECT array_agg(g.account_id), array_agg(g.invoice_id), array_agg(g.subscription_item_id),
               array_agg(lower(g.up)), array_agg(upper(g.up))
        INTO v_acc, v_inv, v_item, v_from, v_until
        FROM (SELECT DISTINCT u.account_id, u.invoice_id, u.subscription_item_id,
                     billing.period_containing(s.anchor, s.cadence, u.usage_date) AS up
              FROM unnest(v_acc, v_inv, v_item, v_date) u(account_id, invoice_id, subscription_item_id, usage_date)
              JOIN billing.invoice i ON i.account_id = u.account_id AND i.invoice_id = u.invoice_id
              JOIN billing.subscription s ON s.account_id = i.account_id AND s.subscription_id = i.subscription_id) g;
        DELETE FROM billing.invoice_line l
        USING unnest(v_acc, v_inv, v_item, v_from, v_until) g(account_id, invoice_id, subscription_item_id, lo, hi)
        WHERE l.account_id = g.account_id AND l.invoice_id = g.invoice_id AND l.kind = 'usage'
          AND l.subscription_item_id = g.subscription_item_id AND l.period_start >= g.lo AND l.period_start < g.hi;
        INSERT INTO billing.invoice_line (account_id, invoice_id, kind, description, subscription_id,
                                          subscription_item_id, price_id, quantity, unit_amount, amount,
                                          period_start, period_end, tax_rate_id, tax_inclusive, source)
        SELECT g.account_id, g.invoice_id, 'usage', pr.name || coalesce(' (' || p.nickname || ')', '') || ' usage'
                 || CASE WHEN t.in_trial THEN ' during the trial (not billed)' ELSE '' END,
               i.subscription_id, g.subscription_item_id, p.price_id, x.quantity, p.unit_amount, x.amount,
               x.period_start, x.period_end,
               CASE WHEN a.tax_exempt THEN NULL ELSE coalesce(p.tax_rate_id, a.tax_rate_id) END, false,
               'usage ' || p.usage_aggregation
        FROM unnest(v_acc, v_inv, v_item, v_from, v_until) g(account_id, invoice_id, subscription_item_id, lo, hi)
        JOIN billing.invoice i ON i.account_id = g.account_id AND i.invoice_id = g.invoice_id
        JOIN billing.account a ON a.account_id = i.account_id
        JOIN billing.billing_entity e ON e.entity_id = a.entity_id
        JOIN billing.subscription_item si
          ON si.account_id = g.account_id AND si.subscription_item_id = g.subscription_item_id
        JOIN billing.price p ON p.price_id = si.price_id
        JOIN billing.product pr ON pr.product_id = p.product_id
        JOIN billing.subscription s ON s.account_id = i.account_id AND s.subscription_id = i.subscription_id
        -- the trial's usage is free unless the price bills it: each part of
        -- the period that has events of this draft gets its line, by the
        -- usage rule of the cycle (billing._usage_line) over every event
        -- already on an invoice, the ones just marked included; this
        -- draft's own line is gone, so what others billed is what counts
        CROSS JOIN LATERAL (SELECT CASE WHEN NOT p.bill_trial_usage THEN s.trial_end END AS free_until) f
        CROSS JOIN LATERAL (VALUES (false), (true)) t(in_trial)
        CROSS JOIN LATERAL billing._usage_line(g.account_id, g.subscription_item_id, p.price_id,
                                               daterange(g.lo, g.hi), i.bill_date, si.started_on, si.ended_on,
                                               f.free_until, t.in_trial, NULL, i.currency, e.rounding) x
        WHERE (f.free_until IS NULL AND NOT t.in_trial)
           OR (f.free_until IS NOT NULL
               AND EXISTS (SELECT FROM billing.usage_event y
                           WHERE y.account_id = g.account_id AND y.subscription_item_id = g.subscription_item_id
                             AND y.invoice_id = g.invoice_id
                             AND y.usage_date >= g.lo AND y.usage_date < least(g.hi, i.bill_date)
                             AND (y.usage_date < f.free_until) = t.in_trial))
        ORDER BY g.account_id, g.invoice_id, g.subscription_item_id, g.lo, t.in_trial DESC;
    END IF;

    -- 3. the discount and tax lines, computed again from the charges
    DELETE FROM billing.invoice_line l
    USING unnest(accounts, invoices) u(account_id, invoice_id)
    JOIN billing.invoice i ON i.account_id = u.account_id AND i.invoice_id = u.invoice_id AND i.status = 'draft'
    WHERE l.account_id = u.account_id AND l.invoice_id = u.invoice_id AND l.kind IN ('discount', 'tax');
    WITH d AS MATERIALIZED (
        SELECT i.account_id, i.invoice_id, i.currency, e.rounding,
               -- the coupon, if the draft's bill date is in its time (the
               -- rule of billing._bill_dates)
               CASE WHEN i.bill_date >= s.coupon_from AND (s.coupon_until IS NULL OR i.bill_date < s.coupon_until)
                    THEN s.coupon_id END AS coupon_id
        FROM unnest(accounts, invoices) u(account_id, invoice_id)
        JOIN billing.invoice i ON i.account_id = u.account_id AND i.invoice_id = u.invoice_id
        JOIN billing.account a ON a.account_id = i.account_id
        JOIN billing.billing_entity e ON e.entity_id = a.entity_id
        LEFT JOIN billing.subscription s ON s.account_id = i.account_id AND s.subscription_id = i.subscription_id
        WHERE i.status = 'draft'
    ), groups AS MATERIALIZED (
        SELECT d.account_id, d.invoice_id, d.currency, d.rounding, d.coupon_id, l.tax_rate_id,
               billing.sum(l.amount) AS net,
               row_number() OVER () AS group_key
        FROM d
        JOIN billing.invoice_line l
          ON l.account_id = d.account_id AND l.invoice_id = d.invoice_id AND l.kind NOT IN ('discount', 'tax')
        GROUP BY 1, 2, 3, 4, 5, 6
    ), new_lines AS (
        -- the discount and tax rule of the cycle (billing._discount_and_tax)
        SELECT g.account_id, g.invoice_id, CASE a.kind WHEN 'discount' THEN 4 ELSE 5 END AS sort, a.kind,
               a.description, a.unit_amount, a.amount, a.tax_rate_id, a.tax_inclusive, a.source
        FROM (SELECT array_agg(g.group_key) AS k, array_agg(g.invoice_id) AS i, array_agg(g.currency) AS c,
                     array_agg(g.rounding) AS r, array_agg(g.coupon_id) AS cp, array_agg(g.tax_rate_id) AS t,
                     array_agg(g.net) AS n
              FROM groups g) x
        CROSS JOIN LATERAL billing._discount_and_tax(x.k, x.i, x.c, x.r, x.cp, x.t, x.n) a
        JOIN groups g ON g.group_key = a.group_key
    )
    INSERT INTO billing.invoice_line (account_id, invoice_id, kind, description, unit_amount, amount, tax_rate_id,
                                      tax_inclusive, source)
    SELECT n.account_id, n.invoice_id, n.kind, n.description, n.unit_amount, n.amount, n.tax_rate_id,
           n.tax_inclusive, n.source
    FROM new_lines n
    ORDER BY n.account_id, n.invoice_id, n.sort, n.tax_rate_id NULLS FIRST;

    -- 4. the totals, from the lines (nothing is paid on a draft)
    UPDATE billing.invoice i
    SET subtotal = coalesce(l.subtotal, z.zero), discount = coalesce(l.discount, z.zero),
        tax = coalesce(l.tax, z.zero), total = coalesce(l.total, z.zero),
        amount_due = coalesce(l.total, z.zero) - i.amount_paid
    FROM unnest(accounts, invoices) u(account_id, invoice_id)
    CROSS JOIN LATERAL (SELECT billing.from_minor_units(0, x.currency) AS zero FROM billing.invoice x
                        WHERE x.account_id = u.account_id AND x.invoice_id = u.invoice_id) z
    LEFT JOIN LATERAL (
        SELECT billing.sum(x.amount) FILTER (WHERE x.kind NOT IN ('discount', 'tax')) AS subtotal,
               billing.sum(x.amount) FILTER (WHERE x.kind = 'discount') AS discount,
               billing.sum(x.amount) FILTER (WHERE x.kind = 'tax') AS tax,
               billing.sum(x.amount) FILTER (WHERE NOT x.tax_inclusive) AS total
        FROM billing.invoice_line x WHERE x.account_id = u.account_id AND x.invoice_id = u.invoice_id
    ) l ON true
    WHERE i.account_id = u.account_id AND i.invoice_id = u.invoice_id AND i.status = 'draft';
END $$;
COMMENT ON FUNCTION billing._refresh_drafts(bigint[], bigint[]) IS
    'internal: computes the usage (late events included), discount and tax lines and the totals of these drafts '
    'again, by the formulas of billing._lines_to_bill; the caller holds their subscriptions and the drafts';

-- ---------------------------------------------------------------------------
-- The finalization of drafts, written once: billing.finalize_invoice,
-- billing.add_invoice_item (invoice_now) and the cycle call it.  The
-- caller holds the drafts' subscriptions and the drafts, all of status
-- draft.  issue_dates: the day each is issued (its due date follows from
-- the account's payment terms).

CREATE FUNCTION billing._finalize_drafts(accounts bigint[], invoices bigint[], issue_dates date[])
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF coalesce(cardinality(invoices), 0) = 0 THEN
        RETURN;
    END IF;
    PERFORM billing._refresh_drafts(accounts, invoices);
    -- the numbers (billing._take_invoice_numbers: the series' counter rows,
    -- before the credit rows of the finalization step), the status and the
    -- dates
    WITH x AS MATERIALIZED (
        SELECT u.account_id, u.invoice_id, u.issue_date, i.entity_id, a.payment_terms_days,
               row_number() OVER (ORDER BY u.account_id, u.invoice_id) AS ord
        FROM unnest(accounts, invoices, issue_dates) u(account_id, invoice_id, issue_date)
        JOIN billing.invoice i ON i.account_id = u.account_id AND i.invoice_id = u.invoice_id
        JOIN billing.account a ON a.account_id = u.account_id
        WHERE i.status = 'draft'
    ), numbers AS MATERIALIZED (
        SELECT billing._take_invoice_numbers(array_agg(entity_id ORDER BY ord), array_agg(issue_date ORDER BY ord))
                   AS number
        FROM x
    )
    UPDATE billing.invoice i
    SET number = m.number[x.ord],
        status = CASE WHEN billing.to_numeric(i.total) = 0 THEN 'paid' ELSE 'open' END,
        issue_date = x.issue_date, due_date = x.issue_date + x.payment_terms_days,
        finalized_at = billing.now()
    FROM x CROSS JOIN numbers m
    WHERE i.account_id = x.account_id AND i.invoice_id = x.invoice_id;
    -- the one finalization step: event, ledger, credit, collection
    PERFORM billing._finalize_invoices(accounts, invoices);
END $$;
COMMENT ON FUNCTION billing._finalize_drafts(bigint[], bigint[], date[]) IS
    'internal: finalizes these (locked) drafts, issued on these days: computes their variable lines again, '
    'numbers them, sets status and dates, and calls the finalization step billing._finalize_invoices (which '
    'writes invoice.finalized)';

-- A draft of the account, with its subscription and then itself locked
-- (the lock order above); P0002 when there is none, 55000 when the invoice
-- is no longer a draft.
CREATE FUNCTION billing._lock_draft(account_id bigint, invoice_id bigint, action text)
RETURNS billing.invoice LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    i billing.invoice;
BEGIN
    SELECT * INTO i FROM billing.invoice x
    WHERE x.account_id = _lock_draft.account_id AND x.invoice_id = _lock_draft.invoice_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'invoice % of account % does not exist', coalesce(invoice_id::text, 'NULL'),
            coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'billing.invoice lists the account''s invoices.';
    END IF;
    IF i.subscription_id IS NOT NULL THEN
        PERFORM billing._lock_subscription(i.account_id, i.subscription_id);
    END IF;
    SELECT * INTO i FROM billing.invoice x
    WHERE x.account_id = _lock_draft.account_id AND x.invoice_id = _lock_draft.invoice_id
    FOR UPDATE;
    IF i.status <> 'draft' THEN
        RAISE EXCEPTION 'invoice % is % (number %): only a draft can %', i.invoice_id, i.status, i.number, action
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'A finalized invoice changes only by a credit note or a void; a one-off charge can go on '
                         'the next invoice.';
    END IF;
    RETURN i;
END $$;
COMMENT ON FUNCTION billing._lock_draft(bigint, bigint, text) IS
    'internal: locks a draft''s subscription and then the draft; P0002 if there is none, 55000 if it is no '
    'longer a draft';

CREATE FUNCTION billing.finalize_invoice(account_id bigint, invoice_id bigint)
RETURNS text LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    i billing.invoice;
    v_today date;
    v_number text;
BEGIN
    PERFORM billing._authorize_account(finalize_invoice.account_id);
    i := billing._lock_draft(account_id, invoice_id, 'be finalized');
    SELECT billing.today(a.timezone) INTO v_today FROM billing.account a WHERE a.account_id = i.account_id;
    -- issued today, never before the day it was drafted
    PERFORM billing._finalize_drafts(ARRAY[i.account_id], ARRAY[i.invoice_id], ARRAY[greatest(v_today, i.issue_date)]);
    SELECT x.number INTO v_number FROM billing.invoice x
    WHERE x.account_id = i.account_id AND x.invoice_id = i.invoice_id;
    RETURN v_number;
END $$;
COMMENT ON FUNCTION billing.finalize_invoice(bigint, bigint) IS
    'finalizes a draft before its grace period ends: its usage, discounts and taxes computed again, its number, '
    'issue date today, due date by the payment terms, posted, paid from credit, queued for collection; returns '
    'the number; 55000 if it is not a draft';

-- ---------------------------------------------------------------------------
-- One-off charges.

CREATE FUNCTION billing.add_invoice_item(account_id bigint, amount billing.amount, description text,
                                         subscription_id bigint DEFAULT NULL, invoice_id bigint DEFAULT NULL,
                                         invoice_now boolean DEFAULT false)
RETURNS billing.invoice_item LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    a billing.account;
    d billing.invoice;
    s billing.subscription;
    r billing.invoice_item;
    v_today date;
    v_tax bigint;
    v_count bigint;
    v_sub bigint;
BEGIN
    PERFORM billing._authorize_account(add_invoice_item.account_id);
    a := billing._payment_account(account_id);
    IF amount IS NULL OR billing.currency(amount) <> a.currency OR billing.to_numeric(amount) <= 0 THEN
        RAISE EXCEPTION 'a one-off charge is a positive amount in the account''s currency %, not %', a.currency,
            coalesce(amount::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Money owed to the customer is a credit note (billing.issue_credit_note).';
    END IF;
    IF description IS NULL OR btrim(description) = '' THEN
        RAISE EXCEPTION 'a one-off charge needs a description'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'It is the line the customer reads: "Installation".';
    END IF;
    IF invoice_id IS NOT NULL AND coalesce(invoice_now, false) THEN
        RAISE EXCEPTION 'a one-off charge goes on a draft (invoice_id) or on an invoice of its own (invoice_now), '
                        'not both'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass one of them, or neither for the next invoice.';
    END IF;
    v_tax := CASE WHEN a.tax_exempt THEN NULL ELSE a.tax_rate_id END;

    IF invoice_id IS NOT NULL THEN
        -- on a draft: the line, then the draft's discounts, taxes and totals
        d := billing._lock_draft(a.account_id, invoice_id, 'take items');
        IF subscription_id IS NOT NULL AND subscription_id IS DISTINCT FROM d.subscription_id THEN
            RAISE EXCEPTION 'draft % bills subscription %, not %', d.invoice_id,
                coalesce(d.subscription_id::text, 'none'), subscription_id
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave subscription_id out.';
        END IF;
        INSERT INTO billing.invoice_line AS l (account_id, invoice_id, kind, description, subscription_id, quantity,
                                               unit_amount, amount, tax_rate_id, source)
        VALUES (a.account_id, d.invoice_id, 'one_off', description, d.subscription_id, 1, billing.to_numeric(amount),
                amount, v_tax, 'one_off')
        RETURNING l.invoice_id, l.invoice_line_id INTO r.invoice_id, r.invoice_line_id;
        PERFORM billing._refresh_drafts(ARRAY[a.account_id], ARRAY[d.invoice_id]);
        RETURN r;
    END IF;

    IF subscription_id IS NOT NULL THEN
        s := billing._lock_subscription(a.account_id, subscription_id);
    END IF;

    IF coalesce(invoice_now, false) THEN
        -- an invoice of its own, billing_reason manual: made as a draft and
        -- finalized at once, by the one finalization of drafts (its tax
        -- computed by the same rule)
        v_today := billing.today(a.timezone);
        INSERT INTO billing.invoice AS i (account_id, entity_id, subscription_id, status, billing_reason, currency,
                                          subtotal, discount, tax, total, amount_paid, amount_due, issue_date,
                                          due_date, finalize_on)
        SELECT a.account_id, a.entity_id, s.subscription_id, 'draft', 'manual', a.currency, z, z, z, z, z, z,
               v_today, v_today + a.payment_terms_days, v_today
        FROM billing.from_minor_units(0, a.currency) z
        RETURNING i.invoice_id INTO r.invoice_id;
        INSERT INTO billing.invoice_line AS l (account_id, invoice_id, kind, description, subscription_id, quantity,
                                               unit_amount, amount, tax_rate_id, source)
        VALUES (a.account_id, r.invoice_id, 'one_off', description, s.subscription_id, 1, billing.to_numeric(amount),
                amount, v_tax, 'one_off')
        RETURNING l.invoice_line_id INTO r.invoice_line_id;
        PERFORM billing._finalize_drafts(ARRAY[a.account_id], ARRAY[r.invoice_id], ARRAY[v_today]);
        RETURN r;
    END IF;

    -- for the next invoice of the subscription (the account's only one
    -- still billed, when none is named)
    IF subscription_id IS NULL THEN
        SELECT count(*), min(x.subscription_id) INTO v_count, v_sub FROM billing.subscription x
        WHERE x.account_id = a.account_id AND x.next_bill_date IS NOT NULL;
        IF v_count <> 1 THEN
            RAISE EXCEPTION 'account % has % subscriptions still billed: name the one whose next invoice takes the '
                            'charge', a.account_id, v_count
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Pass subscription_id, or invoice_now => true for an invoice of its own.';
        END IF;
        s := billing._lock_subscription(a.account_id, v_sub);
    END IF;
    IF s.next_bill_date IS NULL THEN
        RAISE EXCEPTION 'subscription % is %: it has no next invoice', s.subscription_id, s.status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Pass invoice_now => true for an invoice of its own.';
    END IF;
    INSERT INTO billing.pending_item AS p (account_id, subscription_id, kind, description, quantity, unit_amount,
                                           amount)
    VALUES (a.account_id, s.subscription_id, 'one_off', description, 1, billing.to_numeric(amount), amount)
    RETURNING p.pending_item_id INTO r.pending_item_id;
    RETURN r;
END $$;
COMMENT ON FUNCTION billing.add_invoice_item(bigint, billing.amount, text, bigint, bigint, boolean) IS
    'a one-off charge (consulting, installation, a fee) of a positive amount in the account''s currency, taxed at '
    'the account''s rate: on a draft (invoice_id; its discounts, taxes and totals follow), on an invoice of its own '
    'finalized at once (invoice_now; billing_reason manual), or else for the next invoice of the subscription (the '
    'account''s only one still billed by default)';

-- The same with the amount as a number in the account's currency
-- (billing._account_amount: exact, or 22023).
CREATE FUNCTION billing.add_invoice_item(account_id bigint, amount numeric, description text,
                                         subscription_id bigint DEFAULT NULL, invoice_id bigint DEFAULT NULL,
                                         invoice_now boolean DEFAULT false)
RETURNS billing.invoice_item LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._authorize_account(add_invoice_item.account_id);
    RETURN billing.add_invoice_item(account_id, billing._account_amount(account_id, amount), description,
                                    subscription_id, invoice_id, invoice_now);
END $$;
COMMENT ON FUNCTION billing.add_invoice_item(bigint, numeric, text, bigint, bigint, boolean) IS
    'add_invoice_item with the amount as a number in the account''s currency: add_invoice_item(1, 150, ''Installation'')';

CREATE FUNCTION billing.remove_invoice_item(account_id bigint, invoice_id bigint, invoice_line_id bigint)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    d billing.invoice;
    l billing.invoice_line;
BEGIN
    PERFORM billing._authorize_account(remove_invoice_item.account_id);
    d := billing._lock_draft(account_id, invoice_id, 'lose items');
    SELECT * INTO l FROM billing.invoice_line x
    WHERE x.account_id = d.account_id AND x.invoice_id = d.invoice_id
      AND x.invoice_line_id = remove_invoice_item.invoice_line_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'invoice % has no line %', d.invoice_id, coalesce(invoice_line_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'billing.invoice_line lists the draft''s lines.';
    END IF;
    IF l.kind <> 'one_off' THEN
        RAISE EXCEPTION 'line % of invoice % is a % line: only one-off items can be removed', l.invoice_line_id,
            d.invoice_id, l.kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The subscription''s lines follow from the subscription: change it instead.';
    END IF;
    DELETE FROM billing.invoice_line x
    WHERE x.account_id = l.account_id AND x.invoice_id = l.invoice_id AND x.invoice_line_id = l.invoice_line_id;
    -- a one-off that waited for this invoice is withdrawn with its line
    DELETE FROM billing.pending_item p
    WHERE p.account_id = l.account_id AND p.invoice_id = l.invoice_id AND l.source = 'pending_item ' || p.pending_item_id;
    PERFORM billing._refresh_drafts(ARRAY[d.account_id], ARRAY[d.invoice_id]);
END $$;
COMMENT ON FUNCTION billing.remove_invoice_item(bigint, bigint, bigint) IS
    'removes a one-off item from a draft (its discounts, taxes and totals follow); 55000 if the invoice is not a '
    'draft, 22023 for a line of another kind';

-- ---------------------------------------------------------------------------
-- The cycle's part: one committed batch of the drafts whose grace period has
-- passed (finalize_on reached by as_of, or by the account's today at at),
-- after the key where the previous batch stopped.  The drafts and their
-- subscriptions are taken SKIP LOCKED.  If the batch fails, each draft is
-- finalized on its own; those that still fail are logged in errors and
-- stay drafts.
CREATE FUNCTION billing._finalize_drafts_past_grace(as_of date, at timestamptz, batch_size integer,
                                             INOUT after_account bigint, INOUT after_invoice bigint,
                                             OUT picked integer, OUT finalized integer, OUT errors jsonb)
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_accounts bigint[];
    v_invoices bigint[];
    v_dates date[];
    v_state text;
    v_msg text;
BEGIN
    PERFORM billing._authorize_all('run the billing cycle');
    errors := '[]';
    finalized := 0;
    SELECT array_agg(x.account_id ORDER BY x.account_id, x.invoice_id),
           array_agg(x.invoice_id ORDER BY x.account_id, x.invoice_id),
           array_agg(x.d ORDER BY x.account_id, x.invoice_id)
    INTO v_accounts, v_invoices, v_dates
    FROM (SELECT i.account_id, i.invoice_id, greatest(t.d, i.issue_date) AS d
          FROM billing.invoice i
          JOIN billing.account a ON a.account_id = i.account_id
          JOIN billing.subscription s ON s.account_id = i.account_id AND s.subscription_id = i.subscription_id
          CROSS JOIN LATERAL (SELECT coalesce(_finalize_drafts_past_grace.as_of, billing.today(a.timezone, _finalize_drafts_past_grace.at)) AS d) t
          WHERE i.status = 'draft'
            AND (i.account_id, i.invoice_id) > (coalesce(after_account, 0), coalesce(after_invoice, 0))
            AND i.finalize_on <= t.d
          ORDER BY i.account_id, i.invoice_id
          LIMIT batch_size
          FOR UPDATE OF s, i SKIP LOCKED) x;
    picked := coalesce(cardinality(v_invoices), 0);
    IF picked = 0 THEN
        RETURN;
    END IF;
    after_account := v_accounts[picked];
    after_invoice := v_invoices[picked];
    BEGIN
        PERFORM billing._finalize_drafts(v_accounts, v_invoices, v_dates);
        finalized := picked;
    EXCEPTION WHEN OTHERS THEN
        FOR k IN 1 .. picked LOOP
            BEGIN
                PERFORM billing._finalize_drafts(ARRAY[v_accounts[k]], ARRAY[v_invoices[k]], ARRAY[v_dates[k]]);
                finalized := finalized + 1;
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT;
                errors := errors || jsonb_build_object('account_id', v_accounts[k], 'invoice_id', v_invoices[k],
                                                       'sqlstate', v_state, 'message', v_msg);
            END;
        END LOOP;
    END;
END $$;
COMMENT ON FUNCTION billing._finalize_drafts_past_grace(date, timestamptz, integer, bigint, bigint) IS
    'internal: one committed batch of billing.run_cycle: finalizes the drafts whose grace period has passed '
    '(SKIP LOCKED, after the given key), issued on the run''s day; logs those that fail';

-- The cycle's batch of drafts past their grace period as a step of
-- billing._run_in_batches.
CREATE FUNCTION billing._cycle_drafts_step(run_id bigint, as_of date, at timestamptz, batch_size integer, state jsonb)
RETURNS jsonb LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT billing._authorize_all('run the billing cycle');
    SELECT CASE WHEN r.picked > 0 THEN jsonb_build_object(
               'cursor', jsonb_build_object('after_account', r.after_account, 'after_invoice', r.after_invoice),
               'counts', jsonb_build_object('drafts_finalized', r.finalized),
               'errors', r.errors, 'notify', r.finalized) END
    FROM billing._finalize_drafts_past_grace(as_of, at, batch_size, (state #>> '{cursor,after_account}')::bigint,
                                             (state #>> '{cursor,after_invoice}')::bigint) r
$$;
COMMENT ON FUNCTION billing._cycle_drafts_step(bigint, date, timestamptz, integer, jsonb) IS
    'internal: one batch of run_cycle''s drafts past their grace period (billing._finalize_drafts_past_grace) as a '
    'step of billing._run_in_batches';
