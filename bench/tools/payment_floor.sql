-- The floor of a payment: the rows billing.apply_payment writes for a
-- payment of one account, by the plainest statements that write them, with
-- no argument check, no authorization, no idempotency lookup and no early-
-- payment discount: the account's credit row locked, the payment, its
-- application to the oldest open invoice and that invoice's update, the
-- rest to the account's credit, a ledger transaction with its entries, an
-- outbox event.  bench/payments.sh runs it under the same pgbench load as
-- apply_payment, in a copy of the same database with billing's own ledger
-- triggers off (the function writes balanced entries itself); it measures
-- what these rows cost in these tables on this machine, below which no
-- payment function can go.
CREATE SCHEMA bench_floor;
CREATE FUNCTION bench_floor.pay(acct bigint, amount billing.amount, key text) RETURNS bigint
LANGUAGE plpgsql SET search_path = billing, pg_catalog AS $$
DECLARE
    v_id bigint;
    v_applied billing.amount;
    v_excess billing.amount;
BEGIN
    PERFORM FROM billing.account_credit c WHERE c.account_id = acct FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO billing.account_credit AS c (account_id, balance)
        VALUES (acct, billing.from_minor_units(0, 'USD'))
        ON CONFLICT (account_id) DO UPDATE SET updated_at = c.updated_at;
    END IF;
    INSERT INTO billing.payment (account_id, amount, method, reference, idempotency_key, received_on,
                                 amount_refunded)
    VALUES (acct, amount, 'card', 'tok_bench', key, '2024-01-05', billing.from_minor_units(0, 'USD'))
    RETURNING payment_id INTO v_id;
    WITH inv AS MATERIALIZED (
        SELECT i.invoice_id, least(billing.to_numeric(i.amount_due), billing.to_numeric(amount)) AS pay
        FROM billing.invoice i
        WHERE i.account_id = acct AND i.status = 'open'
        ORDER BY i.due_date, i.invoice_id
        LIMIT 1
        FOR UPDATE
    ), ins AS (
        INSERT INTO billing.payment_application (account_id, invoice_id, source, payment_id, amount)
        SELECT acct, invoice_id, 'payment', v_id, billing.amount(pay, 'USD') FROM inv
    ), upd AS (
        UPDATE billing.invoice i
        SET amount_paid = i.amount_paid + billing.amount(inv.pay, 'USD'),
            amount_due = i.amount_due - billing.amount(inv.pay, 'USD'),
            status = CASE WHEN billing.to_numeric(i.amount_due) = inv.pay THEN 'paid' ELSE i.status END
        FROM inv WHERE i.account_id = acct AND i.invoice_id = inv.invoice_id
    )
    SELECT billing.amount(coalesce(sum(pay), 0), 'USD') INTO v_applied FROM inv;
    v_excess := amount - v_applied;
    IF billing.to_numeric(v_excess) > 0 THEN
        UPDATE billing.account_credit c SET balance = c.balance + v_excess WHERE c.account_id = acct;
    END IF;
    WITH t AS (
        INSERT INTO billing.ledger_transaction (account_id, kind, posted_on, description, payment_id)
        VALUES (acct, 'payment', '2024-01-05', 'payment ' || v_id || ' by card', v_id)
        RETURNING txn_id
    )
    INSERT INTO billing.ledger_entry (account_id, txn_id, ledger_account, amount)
    SELECT acct, t.txn_id, e.ledger_account, e.amount
    FROM t, (VALUES ('cash', amount), ('receivable', -v_applied), ('customer_credit', -v_excess)) e(ledger_account, amount)
    WHERE billing.to_numeric(e.amount) <> 0;
    INSERT INTO billing.outbox (account_id, event_type, payload)
    VALUES (acct, 'payment.received', jsonb_build_object('payment_id', v_id, 'amount', amount::text,
                                                         'applied', v_applied::text, 'credited', v_excess::text));
    RETURN v_id;
END $$;
