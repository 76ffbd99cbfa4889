-- A year of dunning with the test clock.  Three customers on a 50.00 USD
-- monthly plan, invoices due 14 days after the 1st, the standard policy
-- (-3 remind, +1 remind, +3 retry, +7 late fee 2%, +14 suspend, +30 write
-- off).  Every day: the customers pay by their habits, the cycle runs,
-- dunning runs twice (the second run must take nothing), and
-- check_invariants() must be empty.
--   Mia    pays on time (9 days after the invoice), except:
--          March: 5 days late; April: half 2 days late, the rest (with the
--          late fee) 10 days late; May: nothing until 20 days late, so she
--          is suspended on day 14 and restored when she pays; September:
--          8 days late, after the late fee.
--   Noah   pays on time until June, then never again: suspended, written off.
--   Olivia always pays on time: never dunned.
-- Every reminder, retry and fee is checked by hand below, exactly once.
\set ON_ERROR_STOP 1
\ir _helpers.psql

SET billing.clock = '2026-01-01 12:00+00';
SELECT create_dunning_policy('standard', NULL, true) AS policy \gset
SELECT create_billing_entity('Acme', 'USD') AS e \gset
SELECT create_product('Plan') AS prod \gset
SELECT create_price(:prod, 'USD', 50.00) AS price \gset
SELECT create_account(:e, 'Mia', email => 'mia@example.com', payment_terms_days => 14) AS mia \gset
SELECT create_account(:e, 'Noah', payment_terms_days => 14) AS noah \gset
SELECT create_account(:e, 'Olivia', payment_terms_days => 14) AS olivia \gset
SELECT subscribe(a, :price) IS NOT NULL FROM unnest(ARRAY[:mia, :noah, :olivia]) a;

CREATE TABLE habits (account_id bigint, d date, amount text);
-- What each customer pays on a day, by habit, for each of its open
-- subscription invoices; 'all' pays everything the account owes.
CREATE FUNCTION payments_due(d date) RETURNS TABLE (account_id bigint, amount numeric, invoice_id bigint)
LANGUAGE sql AS $$
    SELECT i.account_id,
           CASE WHEN x.what = 'all' THEN (SELECT sum(billing.to_numeric(o.amount_due)) FROM billing.invoice o
                                          WHERE o.account_id = i.account_id AND o.status = 'open')
                WHEN x.what = 'half' THEN billing.to_numeric(i.amount_due) / 2
                ELSE billing.to_numeric(i.amount_due) END,
           CASE WHEN x.what = 'all' THEN NULL ELSE i.invoice_id END
    FROM billing.invoice i
    JOIN billing.account a ON a.account_id = i.account_id
    CROSS JOIN LATERAL (SELECT extract(month FROM i.issue_date)::integer AS m) m
    CROSS JOIN LATERAL (
        SELECT CASE
            WHEN a.name = 'Olivia' AND d = i.issue_date + 9 THEN 'one'
            WHEN a.name = 'Noah' AND m.m <= 6 AND d = i.issue_date + 9 THEN 'one'
            WHEN a.name = 'Mia' AND m.m = 3 AND d = i.due_date + 5 THEN 'one'
            WHEN a.name = 'Mia' AND m.m = 4 AND d = i.due_date + 2 THEN 'half'
            WHEN a.name = 'Mia' AND m.m = 4 AND d = i.due_date + 10 THEN 'all'
            WHEN a.name = 'Mia' AND m.m = 5 AND d = i.due_date + 20 THEN 'all'
            WHEN a.name = 'Mia' AND m.m = 9 AND d = i.due_date + 8 THEN 'all'
            WHEN a.name = 'Mia' AND m.m NOT IN (3, 4, 5, 9) AND d = i.issue_date + 9 THEN 'one'
            END AS what) x
    WHERE i.status = 'open' AND i.billing_reason = 'subscription_cycle' AND x.what IS NOT NULL
$$;

CREATE PROCEDURE dunning_year(first date, last date) LANGUAGE plpgsql AS $$
DECLARE
    d date := first;
    r record;
    n bigint;
BEGIN
    WHILE d <= last LOOP
        PERFORM set_config('billing.clock', d || ' 12:00+00', false);
        FOR r IN SELECT * FROM payments_due(d) LOOP
            IF r.amount > 0 THEN
                PERFORM billing.apply_payment(r.account_id, billing.amount(r.amount, 'USD'), 'bank_transfer',
                                              invoice_ids => CASE WHEN r.invoice_id IS NOT NULL THEN ARRAY[r.invoice_id] END);
            END IF;
        END LOOP;
        COMMIT;
        CALL billing.run_cycle();
        CALL billing.run_dunning();
        SELECT count(*) INTO n FROM billing.dunning_action;
        CALL billing.run_dunning();
        IF (SELECT count(*) FROM billing.dunning_action) <> n THEN
            RAISE EXCEPTION 'FAILED on %: a second run took more steps', d;
        END IF;
        IF EXISTS (SELECT FROM billing.check_invariants()) THEN
            RAISE EXCEPTION 'FAILED invariants on %: %', d, (SELECT string_agg(invariant || ': ' || detail, '; ')
                                                            FROM billing.check_invariants());
        END IF;
        IF EXISTS (SELECT FROM billing.dunning_run WHERE status <> 'done') THEN
            RAISE EXCEPTION 'FAILED dunning run on %: %', d, (SELECT errors FROM billing.dunning_run WHERE status <> 'done' LIMIT 1);
        END IF;
        COMMIT;
        d := d + 1;
    END LOOP;
END $$;

CALL dunning_year('2026-01-01', '2026-12-31');

-- The steps each customer got, as "invoice month offset action outcome".
CREATE FUNCTION steps_of(account bigint) RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(to_char(i.issue_date, 'MM-DD') || ' ' || x.day_offset || ' ' || x.action || ' ' || x.outcome
                              ORDER BY i.issue_date, x.invoice_id, x.day_offset), '{}')
    FROM billing.dunning_action x JOIN billing.invoice i USING (account_id, invoice_id)
    WHERE x.account_id = account
$$;

-- Mia.  March (due Mar 15, paid Mar 20): -3 and +1 reminders, +3 retry
-- (no card).  April (due Apr 15, half on Apr 17, the rest on Apr 25):
-- reminders, retry, a fee of 2% of the 25.00 still due on Apr 22 = 0.50,
-- whose invoice (due May 6) she pays with the rest.  May (due May 15,
-- paid with everything else on Jun 4, +20): reminders, retry, fee 1.00 on
-- May 22, suspended on May 29; the fee invoice (due Jun 5) gets its own -3
-- reminder on Jun 2.  No invoice on Jun 1; restored on Jun 4, billed from
-- Jun 4 by the Jun 5 cycle (27 of 30 days: 45.00), paid on Jun 14.
-- September (due Sep 15, paid Sep 23): reminders, retry, fee 1.00.
SELECT expect('Mia''s steps', steps_of(:mia), ARRAY[
    '03-01 -3 remind sent', '03-01 1 remind sent', '03-01 3 retry_payment no_payment_method',
    '04-01 -3 remind sent', '04-01 1 remind sent', '04-01 3 retry_payment no_payment_method',
    '04-01 7 late_fee charged',
    '05-01 -3 remind sent', '05-01 1 remind sent', '05-01 3 retry_payment no_payment_method',
    '05-01 7 late_fee charged', '05-01 14 suspend suspended', '05-22 -3 remind sent',
    '09-01 -3 remind sent', '09-01 1 remind sent', '09-01 3 retry_payment no_payment_method',
    '09-01 7 late_fee charged']);
SELECT expect('Mia''s late fees', (SELECT array_agg(total::text || ' ' || issue_date ORDER BY invoice_id)
                                   FROM billing.invoice WHERE account_id = :mia AND billing_reason = 'late_fee'),
              ARRAY['0.50 USD 2026-04-22', '1.00 USD 2026-05-22', '1.00 USD 2026-09-22']);
SELECT expect('Mia paid every fee', (SELECT count(*) FROM billing.invoice
                                     WHERE account_id = :mia AND billing_reason = 'late_fee' AND status <> 'paid'), 0::bigint);
SELECT expect('Mia''s reminders', (SELECT count(*) FROM billing.outbox
                                   WHERE account_id = :mia AND event_type = 'dunning.reminder'), 9::bigint);
SELECT expect('Mia suspended and restored', (SELECT array_agg(event_type || ' ' || (payload->>'on') ORDER BY event_id)
                                             FROM billing.outbox WHERE account_id = :mia
                                               AND event_type IN ('subscription.suspended', 'subscription.restored')),
              ARRAY['subscription.suspended 2026-05-29', 'subscription.restored 2026-06-04']);
SELECT expect('Mia not billed while suspended, then from the day restored',
              (SELECT array_agg(coalesce(period_start::text, '-') || ' ' || total::text ORDER BY invoice_id)
               FROM billing.invoice WHERE account_id = :mia AND issue_date BETWEEN '2026-05-01' AND '2026-07-01'
                 AND billing_reason = 'subscription_cycle'),
              ARRAY['2026-05-01 50.00 USD', '2026-06-04 45.00 USD', '2026-07-01 50.00 USD']);
SELECT expect('Mia is active', (SELECT status FROM billing.subscription WHERE account_id = :mia), 'active');
SELECT expect('Mia''s cases', (SELECT array_agg(status ORDER BY invoice_id) FROM billing.dunning_case WHERE account_id = :mia),
              ARRAY['recovered', 'recovered', 'recovered', 'recovered', 'recovered']);

-- Noah.  July (due Jul 15): reminders Jul 12 and 16, retry Jul 18, fee
-- 1.00 on Jul 22 (its invoice due Aug 5), suspended Jul 29 (no invoice
-- from Aug 1 on), written off Aug 14.  The fee invoice: reminders Aug 2 and
-- 6, retry Aug 8, no fee on a fee, suspend Aug 19, written off Sep 4.
SELECT expect('Noah''s steps', steps_of(:noah), ARRAY[
    '07-01 -3 remind sent', '07-01 1 remind sent', '07-01 3 retry_payment no_payment_method',
    '07-01 7 late_fee charged', '07-01 14 suspend suspended', '07-01 30 write_off written_off',
    '07-22 -3 remind sent', '07-22 1 remind sent', '07-22 3 retry_payment no_payment_method',
    '07-22 14 suspend suspended', '07-22 30 write_off written_off']);
SELECT expect('Noah written off', (SELECT array_agg(billing_reason || ' ' || status || ' ' || total::text ORDER BY invoice_id)
                                   FROM billing.invoice WHERE account_id = :noah AND issue_date >= '2026-07-01'),
              ARRAY['subscription_cycle uncollectible 50.00 USD', 'late_fee uncollectible 1.00 USD']);
SELECT expect('Noah''s bad debt', (SELECT billing.sum(e.amount) FROM billing.ledger_entry e
                                   WHERE e.account_id = :noah AND e.ledger_account = 'bad_debt'), '51.00 USD'::billing.amount);
SELECT expect('Noah stays suspended', (SELECT status FROM billing.subscription WHERE account_id = :noah), 'suspended');
SELECT expect('Noah owes nothing open', billing.account_balance(:noah), '0.00 USD'::billing.amount);

-- Olivia: never dunned, twelve invoices paid.
SELECT expect('Olivia never dunned', steps_of(:olivia), '{}'::text[]);
SELECT expect('Olivia''s invoices', (SELECT count(*) FILTER (WHERE status = 'paid') FROM billing.invoice
                                     WHERE account_id = :olivia), 12::bigint);

-- Exactly once, everywhere: one reminder event per invoice and step, one
-- fee invoice per fee charged.
SELECT expect('one reminder per invoice and step', (
    SELECT count(*) FROM (SELECT payload->>'invoice_id', payload->'step'->>'step_id' FROM billing.outbox
                          WHERE event_type = 'dunning.reminder' GROUP BY 1, 2 HAVING count(*) > 1) x), 0::bigint);
SELECT expect('reminder events = reminders sent', (SELECT count(*) FROM billing.outbox WHERE event_type = 'dunning.reminder'),
              (SELECT count(*) FROM billing.dunning_action WHERE action = 'remind' AND outcome = 'sent'));
SELECT expect('fee invoices = fees charged', (SELECT count(*) FROM billing.invoice WHERE billing_reason = 'late_fee'),
              (SELECT count(*) FROM billing.dunning_action WHERE outcome = 'charged'));
-- every issued invoice, the fee invoices among them, told the integrations
-- exactly once; a draft never
SELECT expect('one invoice.finalized per issued invoice', (
    SELECT count(*) FROM billing.invoice i
    WHERE (i.status <> 'draft') <> ((SELECT count(*) FROM billing.outbox o WHERE o.event_type = 'invoice.finalized'
                                     AND (o.payload->>'invoice_id')::bigint = i.invoice_id) = 1)), 0::bigint);
SELECT expect('fee invoices told', (
    SELECT count(*) FROM billing.invoice i JOIN billing.outbox o ON o.event_type = 'invoice.finalized'
     AND (o.payload->>'invoice_id')::bigint = i.invoice_id AND o.payload->>'number' = i.number
    WHERE i.billing_reason = 'late_fee'), (SELECT count(*) FROM billing.invoice WHERE billing_reason = 'late_fee'));
SELECT expect('invariants', (SELECT count(*) FROM billing.check_invariants()), 0::bigint);
