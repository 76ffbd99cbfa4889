-- 36 weeks of billing with money moving: 40 accounts (USD, EUR with VAT,
-- JPY), monthly subscriptions billed by the cycle, and every week each
-- account pays, overpays, underpays, is refunded, charged back, credited,
-- voided or written off by a fixed pattern.  After every day (drive())
-- and at the end, check_invariants() must be empty (invariants 2 to 5 among
-- them); at the end the ledger's totals are checked against the tables by
-- hand-derivable identities.
\set ON_ERROR_STOP 1
\ir _helpers.psql

SET billing.clock = '2025-01-01 12:00+00';
SELECT create_billing_entity('Acme', 'USD') AS e \gset
SELECT create_tax_rate('VAT', 19) AS vat \gset
SELECT create_product('Plan') AS prod \gset
SELECT create_price(:prod, 'USD', 29.99) AS pusd \gset
SELECT create_price(:prod, 'EUR', 19.00) AS peur \gset
SELECT create_price(:prod, 'JPY', 1500) AS pjpy \gset
SELECT count(*) FROM (
    SELECT subscribe(a, CASE WHEN i % 3 = 0 THEN :pusd WHEN i % 3 = 1 THEN :peur ELSE :pjpy END,
                     start_date => '2025-01-01'::date + (i % 28), invoice_now => false)
    FROM (SELECT i, create_account(:e, 'customer ' || i, currency => CASE i % 3 WHEN 0 THEN 'USD' WHEN 1 THEN 'EUR' ELSE 'JPY' END,
                                   tax_rate_id => CASE WHEN i % 3 = 1 THEN :vat END, payment_terms_days => 14) AS a
          FROM generate_series(1, 40) i) x) y;
SELECT set_early_payment_discount(account_id, 2, 7) FROM billing.account WHERE account_id % 5 = 0;
SELECT add_payment_method(account_id, 'card', 'pm_' || account_id) FROM billing.account WHERE account_id % 4 = 0;

-- One week of money: by account and week number, deterministic.
CREATE PROCEDURE money_week(week integer) LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v bigint;
    k integer;
BEGIN
    FOR r IN SELECT a.account_id, a.currency,
                    (SELECT i.invoice_id FROM billing.invoice i WHERE i.account_id = a.account_id AND i.status = 'open'
                     ORDER BY i.due_date LIMIT 1) AS open_invoice,
                    (SELECT i.amount_due FROM billing.invoice i WHERE i.account_id = a.account_id AND i.status = 'open'
                     ORDER BY i.due_date LIMIT 1) AS due,
                    (SELECT max(p.payment_id) FROM billing.payment p WHERE p.account_id = a.account_id
                       AND p.status IN ('succeeded', 'partially_refunded')) AS last_payment
             FROM billing.account a ORDER BY a.account_id
    LOOP
        k := (r.account_id + week) % 11;
        IF k IN (0, 1, 2) AND r.due IS NOT NULL THEN      -- pays what is due, with a retried key
            v := billing.apply_payment(r.account_id, r.due, 'bank_transfer', idempotency_key => 'w' || week);
            PERFORM billing.apply_payment(r.account_id, r.due, 'bank_transfer', idempotency_key => 'w' || week);
        ELSIF k = 3 THEN                                   -- pays a round sum: under or over
            PERFORM billing.apply_payment(r.account_id, billing.amount(CASE r.currency WHEN 'JPY' THEN 1000 ELSE 25 END, r.currency), 'card',
                                          reference => 'tok_' || week);
        ELSIF k = 4 AND r.last_payment IS NOT NULL THEN    -- partial refund of the last payment
            BEGIN
                PERFORM billing.refund_payment(r.account_id, r.last_payment,
                                               billing.amount(CASE r.currency WHEN 'JPY' THEN 1 ELSE 0.01 END, r.currency));
            EXCEPTION WHEN object_not_in_prerequisite_state THEN
                NULL;  -- its credit was spent by later invoices: refused, nothing written
            END;
        ELSIF k = 5 AND r.open_invoice IS NOT NULL THEN    -- a credit note on what is due
            BEGIN
                PERFORM billing.issue_credit_note(r.account_id, r.open_invoice,
                                                  billing.amount(least(CASE r.currency WHEN 'JPY' THEN 100 ELSE 1 END,
                                                                       billing.to_numeric(r.due)), r.currency),
                                                  method => CASE week % 3 WHEN 0 THEN 'reduce_due' WHEN 1 THEN 'credit_balance'
                                                                         ELSE 'refund' END);
            EXCEPTION WHEN object_not_in_prerequisite_state THEN
                NULL;  -- a refund of more than payments brought in on it: refused, nothing written
            END;
        ELSIF k = 6 AND r.open_invoice IS NOT NULL AND week % 4 = 0 THEN
            BEGIN
                PERFORM billing.void_invoice(r.account_id, r.open_invoice, 'scenario');
            EXCEPTION WHEN object_not_in_prerequisite_state THEN
                PERFORM billing.write_off_invoice(r.account_id, r.open_invoice, 'scenario');
            END;
        ELSIF k = 7 AND r.last_payment IS NOT NULL AND week % 5 = 0 THEN
            BEGIN
                PERFORM billing.record_chargeback(r.account_id, r.last_payment);
            EXCEPTION WHEN object_not_in_prerequisite_state THEN
                NULL;  -- its credit was spent by later invoices: refused, nothing written
            END;
        ELSIF k = 8 AND r.open_invoice IS NOT NULL AND week % 6 = 0 THEN
            BEGIN
                PERFORM billing.create_installment_plan(r.account_id, r.open_invoice, 3);
            EXCEPTION WHEN object_not_in_prerequisite_state OR invalid_parameter_value THEN
                NULL;
            END;
        END IF;
    END LOOP;
    -- the collection worker: every other attempt fails once
    PERFORM billing.report_collection_result(c.account_id, c.attempt_id, (c.attempt_id + week) % 2 = 0,
                                             provider_reference => 'ch_' || c.attempt_id, failure_code => 'declined')
    FROM billing.claim_collection_attempts('scenario', 1000) c;
END $$;

CREATE PROCEDURE drive_money(first date, weeks integer) LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    FOR w IN 0 .. weeks - 1 LOOP
        CALL drive(first + 7 * w, first + 7 * w + 6);
        PERFORM set_config('billing.clock', (first + 7 * w + 6) || ' 18:00+00', false);
        CALL money_week(w);
        SELECT count(*) INTO n FROM billing.check_invariants();
        IF n > 0 THEN
            RAISE EXCEPTION 'FAILED invariants after money week %: %', w,
                (SELECT string_agg(invariant || ': ' || detail, '; ') FROM billing.check_invariants());
        END IF;
        COMMIT;
    END LOOP;
END $$;

CALL drive_money('2025-01-01', 36);

SELECT expect('invariants hold at the end', (SELECT count(*) FROM billing.check_invariants()), 0::bigint);
SELECT expect('every kind of event happened',
              (SELECT array_agg(DISTINCT kind ORDER BY kind) FROM billing.ledger_transaction),
              ARRAY['chargeback', 'credit_applied', 'credit_note', 'early_payment_discount', 'invoice_finalized',
                    'payment', 'refund', 'void', 'write_off']);
-- per currency the whole ledger sums to zero
SELECT expect('ledger sums to zero in ' || c, s, 0::numeric)
FROM (SELECT billing.currency(amount) AS c, sum(billing.to_numeric(amount)) AS s FROM billing.ledger_entry GROUP BY 1) x;
-- cash in the ledger = payments - refunds - refunded credit notes
SELECT expect('cash in ' || x.c, x.cash, coalesce(p.paid, 0) - coalesce(r.back, 0) - coalesce(n.refunded, 0))
FROM (SELECT billing.currency(amount) AS c, sum(billing.to_numeric(amount)) AS cash
      FROM billing.ledger_entry WHERE ledger_account = 'cash' GROUP BY 1) x
LEFT JOIN (SELECT billing.currency(amount) AS c, sum(billing.to_numeric(amount)) AS paid FROM billing.payment GROUP BY 1) p USING (c)
LEFT JOIN (SELECT billing.currency(amount) AS c, sum(billing.to_numeric(amount)) AS back FROM billing.refund GROUP BY 1) r USING (c)
LEFT JOIN (SELECT billing.currency(amount) AS c, sum(billing.to_numeric(amount)) AS refunded
           FROM billing.credit_note WHERE method = 'refund' GROUP BY 1) n USING (c);
-- one payment per key and account
SELECT expect('no duplicate payments', (SELECT count(*) FROM (SELECT account_id, idempotency_key FROM billing.payment
                                                              WHERE idempotency_key IS NOT NULL
                                                              GROUP BY 1, 2 HAVING count(*) > 1) d), 0::bigint);
SELECT kind, count(*) FROM billing.ledger_transaction GROUP BY 1 ORDER BY 1;
