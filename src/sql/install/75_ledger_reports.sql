-- The ledger's checks (invariants 2 to 5), the account balance and the
-- account statement.  billing.check_invariants() includes
-- billing.check_ledger_invariants() (91_invariants_ledger.sql).

CREATE FUNCTION billing.check_ledger_invariants()
RETURNS TABLE (invariant text, detail text)
LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    -- invariant 4: every ledger transaction balances per currency
    SELECT 'ledger_transaction_balances',
           format('transaction %s (account %s, %s): %s entries sum to %s', t.txn_id, t.account_id, t.kind,
                  s.currency, s.total)
    FROM (SELECT e.account_id, e.txn_id, billing.currency(e.amount) AS currency, billing.sum(e.amount) AS total
          FROM billing.ledger_entry e GROUP BY 1, 2, 3
          HAVING billing.to_numeric(billing.sum(e.amount)) <> 0) s
    JOIN billing.ledger_transaction t ON t.account_id = s.account_id AND t.txn_id = s.txn_id
    UNION ALL
    SELECT 'ledger_transaction_has_entries',
           format('transaction %s (account %s, %s) has no entries', t.txn_id, t.account_id, t.kind)
    FROM billing.ledger_transaction t
    WHERE NOT EXISTS (SELECT FROM billing.ledger_entry e WHERE e.account_id = t.account_id AND e.txn_id = t.txn_id)
    UNION ALL
    -- every entry belongs to a transaction (no foreign key: the balance
    -- trigger checks it on every INSERT; a restore runs with triggers off)
    SELECT 'ledger_entry_has_transaction',
           format('entry %s (account %s) names transaction %s, which does not exist', e.entry_id, e.account_id,
                  e.txn_id)
    FROM billing.ledger_entry e
    WHERE NOT EXISTS (SELECT FROM billing.ledger_transaction t WHERE t.account_id = e.account_id AND t.txn_id = e.txn_id)
    UNION ALL
    -- invoices and ledger transactions name an account without a foreign
    -- key (checked when billing writes them; a restore runs with triggers off)
    SELECT 'account_exists', format('invoice %s names account %s, which does not exist', i.invoice_id, i.account_id)
    FROM billing.invoice i
    WHERE NOT EXISTS (SELECT FROM billing.account a WHERE a.account_id = i.account_id)
    UNION ALL
    SELECT 'account_exists',
           format('ledger transaction %s names account %s, which does not exist', t.txn_id, t.account_id)
    FROM billing.ledger_transaction t
    WHERE NOT EXISTS (SELECT FROM billing.account a WHERE a.account_id = t.account_id)
    UNION ALL
    -- invariant 3: every finalized invoice is posted
    SELECT 'invoice_finalization_posted',
           format('invoice %s (account %s, total %s) has no invoice_finalized transaction', i.invoice_id,
                  i.account_id, i.total)
    FROM billing.invoice i
    WHERE i.status <> 'draft' AND (billing.to_numeric(i.total) <> 0 OR billing.to_numeric(i.tax) <> 0)
      AND NOT EXISTS (SELECT FROM billing.ledger_transaction t
                      WHERE t.account_id = i.account_id AND t.invoice_id = i.invoice_id
                        AND t.kind = 'invoice_finalized')
    UNION ALL
    -- a draft is not issued: no number (a CHECK), no posting, no payment or
    -- credit applied, no collection attempt (77_drafts.sql)
    -- (the counts as subqueries of the select list and the test as
    -- EXISTS, each correlated by the account: the form Citus pushes down)
    SELECT 'draft_posts_nothing',
           format('draft %s (account %s) has %s ledger transactions, %s applications, %s collection attempts',
                  i.invoice_id, i.account_id,
                  (SELECT count(*) FROM billing.ledger_transaction t
                   WHERE t.account_id = i.account_id AND t.invoice_id = i.invoice_id),
                  (SELECT count(*) FROM billing.payment_application p
                   WHERE p.account_id = i.account_id AND p.invoice_id = i.invoice_id),
                  (SELECT count(*) FROM billing.collection_attempt c
                   WHERE c.account_id = i.account_id AND c.invoice_id = i.invoice_id))
    FROM billing.invoice i
    WHERE i.status = 'draft'
      AND (EXISTS (SELECT FROM billing.ledger_transaction t
                   WHERE t.account_id = i.account_id AND t.invoice_id = i.invoice_id)
           OR EXISTS (SELECT FROM billing.payment_application p
                      WHERE p.account_id = i.account_id AND p.invoice_id = i.invoice_id)
           OR EXISTS (SELECT FROM billing.collection_attempt c
                      WHERE c.account_id = i.account_id AND c.invoice_id = i.invoice_id))
    UNION ALL
    -- invariant 5, in its parts and whole, per account
    -- (the three checks of an account as parallel arrays unnested in the
    -- select list, not a lateral VALUES: Citus pushes VALUES down only with
    -- immutable functions in it)
    SELECT x.invariant, x.detail
    FROM (
    SELECT unnest(ARRAY['receivable_equals_due_less_credit', 'ledger_receivable_equals_open_due',
                        'ledger_credit_equals_unapplied_credit']) AS invariant,
           unnest(ARRAY[b.receivable + b.customer_credit <> b.due - b.credit, b.receivable <> b.due,
                        -b.customer_credit <> b.credit]) AS broken,
           unnest(ARRAY[
               format('account %s: ledger receivable %s + customer credit %s <> amount due on open invoices %s - '
                      'unapplied credit %s', b.account_id, b.receivable, b.customer_credit, b.due, b.credit),
               format('account %s: ledger receivable %s, amount due on open invoices %s', b.account_id,
                      b.receivable, b.due),
               format('account %s: ledger customer credit %s, unapplied credit %s', b.account_id,
                      -b.customer_credit, b.credit)]) AS detail
    FROM (
        SELECT a.account_id,
               coalesce(l.receivable, 0) AS receivable, coalesce(l.customer_credit, 0) AS customer_credit,
               coalesce(d.due, 0) AS due, coalesce(billing.to_numeric(c.balance), 0) AS credit
        FROM billing.account a
        LEFT JOIN (SELECT e.account_id,
                          sum(billing.to_numeric(e.amount)) FILTER (WHERE e.ledger_account = 'receivable') AS receivable,
                          sum(billing.to_numeric(e.amount)) FILTER (WHERE e.ledger_account = 'customer_credit')
                              AS customer_credit
                   FROM billing.ledger_entry e GROUP BY 1) l ON l.account_id = a.account_id
        LEFT JOIN (SELECT i.account_id, sum(billing.to_numeric(i.amount_due)) AS due
                   FROM billing.invoice i WHERE i.status = 'open' GROUP BY 1) d ON d.account_id = a.account_id
        LEFT JOIN billing.account_credit c ON c.account_id = a.account_id
    ) b
    ) x
    WHERE x.broken
    UNION ALL
    -- a payment is never applied (and refunded) beyond its amount
    SELECT 'payment_not_over_applied',
           format('payment %s (account %s): amount %s, applied %s, refunded %s', p.payment_id, p.account_id,
                  p.amount, coalesce(ap.applied, 0), p.amount_refunded)
    FROM billing.payment p
    LEFT JOIN (SELECT account_id, payment_id, sum(billing.to_numeric(amount)) AS applied
               FROM billing.payment_application WHERE payment_id IS NOT NULL GROUP BY 1, 2) ap
           ON ap.account_id = p.account_id AND ap.payment_id = p.payment_id
    WHERE coalesce(ap.applied, 0) + billing.to_numeric(p.amount_refunded) > billing.to_numeric(p.amount)
       OR coalesce(ap.applied, 0) < 0
    UNION ALL
    -- an invoice's amount_paid is what was applied to it, never beyond its total
    SELECT 'invoice_paid_equals_applications',
           format('invoice %s (account %s): amount_paid %s, applications %s', i.invoice_id, i.account_id,
                  i.amount_paid, coalesce(ap.applied, 0))
    FROM billing.invoice i
    LEFT JOIN (SELECT account_id, invoice_id, sum(billing.to_numeric(amount)) AS applied
               FROM billing.payment_application GROUP BY 1, 2) ap
           ON ap.account_id = i.account_id AND ap.invoice_id = i.invoice_id
    WHERE billing.to_numeric(i.amount_paid) <> coalesce(ap.applied, 0)
    UNION ALL
    SELECT 'invoice_not_paid_beyond_total',
           format('invoice %s (account %s): total %s, paid %s', i.invoice_id, i.account_id, i.total, i.amount_paid)
    FROM billing.invoice i
    -- (a credit invoice, total below zero, is paid by handing its amount
    -- to the account's credit: its amount_paid is its negative total)
    WHERE billing.to_numeric(i.amount_paid) > greatest(billing.to_numeric(i.total), 0)
       OR billing.to_numeric(i.amount_paid) < least(billing.to_numeric(i.total), 0)
    UNION ALL
    -- invariant 2: one payment per idempotency key (the unique constraint
    -- holds it; this catches a dropped constraint)
    SELECT 'one_payment_per_idempotency_key',
           format('account %s: idempotency key %s names %s payments', account_id, idempotency_key, count(*))
    FROM billing.payment WHERE idempotency_key IS NOT NULL
    GROUP BY account_id, idempotency_key HAVING count(*) > 1
$$;
COMMENT ON FUNCTION billing.check_ledger_invariants() IS
    'the ledger and payment invariants (2 to 5), one named check each; no rows means all hold';

-- The account's balance from the ledger: what it owes (positive) or has in
-- credit (negative), receivable + customer_credit, as posted up to as_of.
CREATE FUNCTION billing.account_balance(account_id bigint, as_of date DEFAULT NULL)
RETURNS billing.amount LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    a billing.account;
    v numeric;
BEGIN
    PERFORM billing._authorize_account(account_balance.account_id);
    SELECT * INTO a FROM billing.account x WHERE x.account_id = account_balance.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_account.';
    END IF;
    SELECT coalesce(sum(billing.to_numeric(e.amount)), 0) INTO v
    FROM billing.ledger_entry e
    JOIN billing.ledger_transaction t ON t.account_id = e.account_id AND t.txn_id = e.txn_id
    WHERE e.account_id = a.account_id AND e.ledger_account IN ('receivable', 'customer_credit')
      AND (as_of IS NULL OR t.posted_on <= as_of);
    RETURN billing.amount(v, a.currency);
END $$;
COMMENT ON FUNCTION billing.account_balance(bigint, date) IS
    'what the account owes (positive) or has in credit (negative) by the ledger: receivable + customer credit '
    'posted up to as_of (NULL: everything)';

-- One row per ledger transaction that changed what the account owes.  A
-- credit invoice (an invoice whose total is below zero: a prorated
-- downgrade or cancellation) is a credit to the account, not an invoice:
-- its row says so (kind credit_invoice).  Credit moving from the account's
-- credit to an invoice (credit_applied) changes nothing owed and has no row.
CREATE VIEW billing.account_statement_lines AS
SELECT t.account_id, t.posted_on, t.txn_id,
       CASE WHEN t.kind = 'invoice_finalized' AND billing.to_numeric(billing.sum(e.amount)) < 0
            THEN 'credit_invoice' ELSE t.kind END AS kind,
       CASE WHEN t.kind = 'invoice_finalized' AND billing.to_numeric(billing.sum(e.amount)) < 0
            THEN 'credit ' || t.description ELSE t.description END AS description,
       t.invoice_id, t.payment_id,
       billing.sum(e.amount) AS amount
FROM billing.ledger_transaction t
JOIN billing.ledger_entry e ON e.account_id = t.account_id AND e.txn_id = t.txn_id
WHERE e.ledger_account IN ('receivable', 'customer_credit')
GROUP BY t.account_id, t.posted_on, t.txn_id, t.kind, t.description, t.invoice_id, t.payment_id
HAVING billing.to_numeric(billing.sum(e.amount)) <> 0;
COMMENT ON VIEW billing.account_statement_lines IS
    'the movements of what each account owes: invoices (+), payments, early-payment discounts, credit notes, '
    'credit invoices, write-offs (-), refunds and chargebacks (+); one row per ledger transaction';
COMMENT ON COLUMN billing.account_statement_lines.account_id IS 'the account';
COMMENT ON COLUMN billing.account_statement_lines.posted_on IS 'the day the ledger transaction was posted';
COMMENT ON COLUMN billing.account_statement_lines.txn_id IS 'the ledger transaction';
COMMENT ON COLUMN billing.account_statement_lines.kind IS
    'what happened: the ledger transaction''s kind (invoice_finalized, payment, early_payment_discount, credit_note, '
    'refund, chargeback, void, write_off), credit_invoice for an invoice whose total is below zero';
COMMENT ON COLUMN billing.account_statement_lines.description IS 'the transaction''s description';
COMMENT ON COLUMN billing.account_statement_lines.invoice_id IS 'the invoice it concerns, if any';
COMMENT ON COLUMN billing.account_statement_lines.payment_id IS 'the payment it concerns, if any';
COMMENT ON COLUMN billing.account_statement_lines.amount IS 'the change of what the account owes: + more owed, - less owed';

CREATE FUNCTION billing.account_statement(account_id bigint, from_date date, to_date date)
RETURNS TABLE (line_no bigint, posted_on date, kind text, description text, invoice_id bigint, payment_id bigint,
               amount billing.amount, balance billing.amount)
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    a billing.account;
    v_open billing.amount;
    v_close billing.amount;
BEGIN
    PERFORM billing._authorize_account(account_statement.account_id);
    SELECT * INTO a FROM billing.account x WHERE x.account_id = account_statement.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_account.';
    END IF;
    IF from_date IS NULL OR to_date IS NULL OR from_date > to_date THEN
        RAISE EXCEPTION 'a statement needs from_date <= to_date, not % to %', coalesce(from_date::text, 'NULL'),
            coalesce(to_date::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Both dates are included.';
    END IF;
    v_open := billing.account_balance(a.account_id, from_date - 1);
    -- read before the query, not in it: under Citus the query runs on the
    -- account's shard, where a function cannot query the tables again
    v_close := billing.account_balance(a.account_id, to_date);
    RETURN QUERY
    WITH l AS (
        SELECT s.posted_on, s.txn_id, s.kind, s.description, s.invoice_id, s.payment_id, s.amount
        FROM billing.account_statement_lines s
        WHERE s.account_id = a.account_id AND s.posted_on BETWEEN from_date AND to_date
    ), numbered AS (
        SELECT row_number() OVER (ORDER BY l.posted_on, l.txn_id) AS n, l.*,
               billing.amount(billing.to_numeric(v_open)
                              + sum(billing.to_numeric(l.amount)) OVER (ORDER BY l.posted_on, l.txn_id), a.currency)
                   AS running
        FROM l
    )
    SELECT 0::bigint, from_date, 'opening_balance', 'opening balance', NULL::bigint, NULL::bigint, NULL::billing.amount,
           v_open
    UNION ALL
    SELECT n.n, n.posted_on, n.kind, n.description, n.invoice_id, n.payment_id, n.amount, n.running FROM numbered n
    UNION ALL
    SELECT (SELECT count(*) FROM l) + 1, to_date, 'closing_balance', 'closing balance', NULL, NULL, NULL, v_close
    ORDER BY 1;
END $$;
COMMENT ON FUNCTION billing.account_statement(bigint, date, date) IS
    'an account statement for [from_date, to_date]: the opening balance, each invoice, payment, credit, refund '
    'and write-off with the running balance, and the closing balance (positive: the customer owes)';
