--
-- Dunning: policies as data, billing.run_dunning taking each step
-- once per invoice (reminders, payment retries, late fees, suspension,
-- write-off), statuses and their way back, catching up, price-change
-- notices, bad input.
--
CREATE DATABASE dunning_regress;
\c dunning_regress
\i test/regress_own_database.sql
CREATE VIEW actions AS
SELECT a.name AS account, x.invoice_id, i.number, x.day_offset, x.action, x.due_on, x.taken_on, x.amount_due,
       x.outcome, x.fee_invoice_id
FROM billing.dunning_action x
JOIN billing.account a USING (account_id)
JOIN billing.invoice i USING (account_id, invoice_id)
ORDER BY a.name, x.invoice_id, x.day_offset, x.step_id;
CREATE VIEW subs AS
SELECT a.name AS account, s.subscription_id, s.status, s.next_bill_date
FROM billing.subscription s JOIN billing.account a USING (account_id) ORDER BY s.subscription_id;
CREATE VIEW events AS
SELECT o.event_id, a.name AS account, o.event_type, o.payload
FROM billing.outbox o JOIN billing.account a USING (account_id)
WHERE o.event_type NOT IN ('invoice.finalized', 'subscription.created', 'payment.received')
ORDER BY o.event_id;
CREATE PROCEDURE days(first date, last date) LANGUAGE plpgsql AS $$
BEGIN
    FOR d IN 0 .. last - first LOOP
        PERFORM set_config('billing.clock', (first + d) || ' 12:00+00', false);
        COMMIT;
        CALL billing.run_cycle();
        CALL billing.run_dunning();
        IF EXISTS (SELECT FROM billing.check_invariants()) THEN
            RAISE EXCEPTION 'invariants broken on %: %', first + d,
                (SELECT string_agg(invariant || ': ' || detail, '; ') FROM billing.check_invariants());
        END IF;
    END LOOP;
END $$;

SELECT billing.create_billing_entity('Acme', 'USD') AS entity \gset
SELECT billing.create_product('Pro') AS product \gset
SELECT billing.create_price(:product, 'USD', 100.00) AS price \gset
SELECT billing.create_account(:entity, 'Alice', email => 'alice@example.com', payment_terms_days => 14) AS alice \gset
SELECT billing.create_account(:entity, 'Bob', email => 'bob@example.com', payment_terms_days => 14) AS bob \gset
SELECT billing.create_account(:entity, 'Carol', payment_terms_days => 14) AS carol \gset
SELECT billing.add_payment_method(:bob, 'card', 'pm_bob') IS NOT NULL AS bob_has_a_card;
-- automatic collection tries once; dunning's retry step tries again
SELECT billing.set_collection_retry_days('{}');

-- No policy yet: the first run creates the standard one as the default.
SELECT count(*) AS policies FROM billing.dunning_policy;
CALL billing.run_dunning();
SELECT policy_id, name, is_default FROM billing.dunning_policy;
SELECT day_offset, action, name, fee_fixed, fee_percent, fee_cap FROM billing.dunning_step ORDER BY day_offset;
-- Adding a step is an INSERT: a final notice three weeks after the due date.
INSERT INTO billing.dunning_step (policy_id, day_offset, action, name)
SELECT policy_id, 21, 'remind', 'final_notice' FROM billing.dunning_policy WHERE name = 'standard';
-- Carol's terms: a reminder the day after, a fee of 5.00 + 10% of what is
-- due (at most 12.00) after 7 days' grace, suspension after 10, write-off after 20.
SELECT billing.create_dunning_policy('strict', '[
    {"day_offset": 1, "action": "remind", "name": "overdue"},
    {"day_offset": 7, "action": "late_fee", "name": "late_fee", "fee_fixed": 5, "fee_percent": 10, "fee_cap": 12},
    {"day_offset": 10, "action": "suspend", "name": "suspension"},
    {"day_offset": 20, "action": "write_off", "name": "write_off"}]') AS strict \gset
SELECT billing.set_dunning_policy(:carol, 'strict');

-- Everyone subscribes on Jan 1: 100.00 USD due on Jan 15.
SET billing.clock = '2026-01-01 12:00+00';
SELECT billing.subscribe(x, :price) IS NOT NULL AS subscribed FROM unnest(ARRAY[:alice, :bob, :carol]) x;

-- Three days before the due date: a reminder each for Alice and Bob (the
-- standard policy); Carol's policy starts after the due date.
CALL days('2026-01-01', '2026-01-12');
SELECT * FROM actions;
SELECT account, event_type, payload - 'step' AS payload, payload -> 'step' AS step FROM events;
-- Run again the same day, and once more: nothing more.
CALL billing.run_dunning();
CALL billing.run_dunning();
SELECT count(*) AS actions FROM billing.dunning_action;

-- Jan 16 (+1): overdue reminders, subscriptions past_due.  Bob's card was
-- declined by the collection worker; on Jan 18 (+3) dunning queues attempt
-- 2 for it.  Alice has no card.
CALL days('2026-01-13', '2026-01-16');
SELECT count(*) AS claimed FROM billing.claim_collection_attempts('worker', 10);
SELECT billing.report_collection_result(:bob, attempt_id, false, failure_code => 'card_declined') AS next_attempt
FROM billing.collection_attempt WHERE account_id = :bob;
CALL days('2026-01-17', '2026-01-18');
SELECT * FROM actions WHERE day_offset > -3;
SELECT * FROM subs;
SELECT invoice_id, attempt_no, amount, status FROM billing.collection_attempt ORDER BY attempt_id;
-- Bob pays on Jan 19: his dunning stops, his subscription is current again.
SELECT billing.apply_payment(:bob, '100.00 USD', 'bank_transfer') IS NOT NULL AS bob_paid;

-- Jan 22 (+7): late fees.  Alice: 2% of 100.00 = 2.00; Carol: 5.00 + 10%
-- of 100.00 = 15.00, capped at 12.00.  Each is an invoice of its own,
-- numbered in the series, due in the account's 14 days, posted to the ledger.
CALL days('2026-01-19', '2026-01-22');
SELECT * FROM actions WHERE day_offset = 7;
SELECT i.invoice_id, a.name, i.number, i.status, i.billing_reason, i.total, i.issue_date, i.due_date, i.metadata
FROM billing.invoice i JOIN billing.account a USING (account_id)
WHERE i.billing_reason = 'late_fee' ORDER BY i.invoice_id;
SELECT l.invoice_id, l.kind, l.description, l.quantity, l.amount, l.tax_rate_id
FROM billing.invoice_line l JOIN billing.invoice i USING (account_id, invoice_id)
WHERE i.billing_reason = 'late_fee' ORDER BY l.invoice_id;
SELECT t.invoice_id, t.kind, e.ledger_account, e.amount
FROM billing.ledger_transaction t JOIN billing.ledger_entry e USING (account_id, txn_id)
JOIN billing.invoice i ON i.account_id = t.account_id AND i.invoice_id = t.invoice_id
WHERE i.billing_reason = 'late_fee' ORDER BY t.txn_id, e.entry_id;
SELECT account, event_type, payload FROM events WHERE event_type IN ('dunning.recovered', 'dunning.late_fee',
                                                                     'subscription.current');

-- Jan 25 (+10): Carol suspended.  Jan 29 (+14): Alice suspended.  Feb 1:
-- the cycle bills Bob only; suspended subscriptions are not billed.
CALL days('2026-01-23', '2026-02-01');
SELECT * FROM subs;
SELECT a.name, i.issue_date, i.total FROM billing.invoice i JOIN billing.account a USING (account_id)
WHERE i.issue_date = '2026-02-01' ORDER BY 1;
-- Alice pays all she owes on Feb 3; the run of that day restores her
-- subscription, which the next day's cycle bills from Feb 3 (prorated),
-- not for the days it was suspended.
CALL days('2026-02-02', '2026-02-02');
SELECT billing.apply_payment(:alice, '102.00 USD', 'bank_transfer') IS NOT NULL AS alice_paid;
CALL days('2026-02-03', '2026-02-04');
SELECT * FROM subs;
SELECT i.number, i.issue_date, i.period_start, i.period_end, i.total
FROM billing.invoice i WHERE i.account_id = :alice ORDER BY i.invoice_id;
SELECT account, event_type, payload FROM events WHERE event_type LIKE 'subscription.%' AND account = 'Alice';

-- Feb 4 (+20): Carol's invoice is written off: bad debt in the ledger, the
-- invoice uncollectible; her subscription stays suspended.
SELECT * FROM actions WHERE account = 'Carol';
SELECT invoice_id, status, amount_due FROM billing.invoice WHERE account_id = :carol ORDER BY invoice_id;
SELECT t.kind, e.ledger_account, e.amount
FROM billing.ledger_transaction t JOIN billing.ledger_entry e USING (account_id, txn_id)
WHERE t.account_id = :carol AND t.kind = 'write_off' ORDER BY e.entry_id;
SELECT invoice_id, status, suspended, closed_on, close_reason FROM billing.dunning_case
WHERE account_id = :carol ORDER BY invoice_id;
-- Closing her dunning by hand (she settled elsewhere) restores her at once,
-- from today.  Her late fee invoice is still dunned on its own.
SELECT billing.close_dunning(:carol, invoice_id, 'settled by agreement')
FROM billing.invoice WHERE account_id = :carol AND billing_reason = 'subscription_cycle';
SELECT * FROM subs WHERE account = 'Carol';

-- A chargeback on Feb 5 reopens Bob's recovered invoice (due Jan 15): its
-- dunning goes on with the steps it has not taken (+7 fee, +14 suspend, +21
-- final notice), the ones it took are not taken again.
SET billing.clock = '2026-02-05 12:00+00';
SELECT billing.record_chargeback(:bob, payment_id) IS NOT NULL AS charged_back
FROM billing.payment WHERE account_id = :bob AND amount = '100.00 USD' ORDER BY payment_id LIMIT 1;
CALL days('2026-02-05', '2026-02-05');
SELECT invoice_id, status, suspended, closed_on FROM billing.dunning_case WHERE account_id = :bob ORDER BY invoice_id;
SELECT * FROM actions WHERE account = 'Bob';

-- Catching up after downtime: no run from Feb 6 to Apr 5.  Dave's invoice
-- (Mar 1, due Mar 15) is first looked at on Apr 6 (+22).  Every due step is
-- taken once, in one run; of the reminders only the latest (final notice,
-- +21) is sent, the earlier ones are recorded as superseded.  (The run
-- catches up on the other accounts' invoices too.)
SET billing.clock = '2026-03-01 12:00+00';
SELECT billing.create_account(:entity, 'Dave', payment_terms_days => 14) AS dave \gset
SELECT billing.subscribe(:dave, :price, invoice_now => true) IS NOT NULL AS subscribed;
CALL billing.run_dunning(as_of => '2026-04-06');
CALL billing.run_dunning(as_of => '2026-04-06');
SELECT * FROM actions WHERE account = 'Dave';
SELECT count(*) AS reminders_sent_to_dave FROM events WHERE account = 'Dave' AND event_type = 'dunning.reminder';
SELECT as_of, status, batches, accounts, actions, status_changes, errors FROM billing.dunning_run
ORDER BY dunning_run_id DESC LIMIT 2;

-- Advance notice of a price change: a change at period end takes effect on
-- the next bill date (Jul 1); with 10 days' notice, the event comes once,
-- on Jun 21 (not on Jun 20, and not again on Jun 22).
SELECT billing.set_price_change_notice_days(10);
SELECT billing.create_price(:product, 'USD', 120.00) AS new_price \gset
SET billing.clock = '2026-06-01 12:00+00';
CALL billing.run_cycle();
SELECT billing.subscribe(billing.create_account(:entity, 'Erin'), :price) AS erin_sub \gset
SELECT billing.change_subscription(account_id, :erin_sub, price_id => :new_price, proration => 'at_period_end')
       IS NOT NULL AS changed
FROM billing.subscription WHERE subscription_id = :erin_sub;
CALL billing.run_dunning(as_of => '2026-06-20');
SELECT count(*) AS notices_too_early FROM billing.outbox WHERE event_type = 'subscription.price_change_notice';
CALL billing.run_dunning(as_of => '2026-06-21');
CALL billing.run_dunning(as_of => '2026-06-22');
SELECT payload FROM billing.outbox WHERE event_type = 'subscription.price_change_notice';

SELECT count(*) AS broken FROM billing.check_invariants();

-- Bad input: SQLSTATE and message.
SELECT q, billing_test_error(q) AS error FROM (VALUES
    ($$CALL billing.run_dunning(batch_size => 0)$$),
    ($$SELECT billing.set_dunning_policy(1, 'nonexistent')$$),
    ($$SELECT billing.set_dunning_policy(999, 'standard')$$),
    ($$SELECT billing.create_dunning_policy('bad', '[{"day_offset": 1, "action": "phone_call"}]')$$),
    ($$SELECT billing.create_dunning_policy('bad', '{"day_offset": 1}')$$),
    ($$SELECT billing.create_dunning_policy('strict')$$),
    ($$SELECT billing.create_dunning_policy('bad', '[{"day_offset": 7, "action": "late_fee"}]')$$),
    ($$INSERT INTO billing.dunning_step (policy_id, day_offset, action, name) VALUES (1, 21, 'remind', 'again')$$),
    ($$INSERT INTO billing.dunning_step (policy_id, day_offset, action, name, fee_percent) VALUES (1, 8, 'late_fee', 'f', 150)$$),
    ($$DELETE FROM billing.dunning_step WHERE day_offset = -3$$),
    ($$SELECT billing.close_dunning(1, 999)$$),
    ($$SELECT billing.close_dunning(999, 1)$$),
    ($$SELECT billing.set_price_change_notice_days(-1)$$),
    ($$SELECT billing.set_price_change_notice_days(NULL)$$)
) t(q);

\c contrib_regression
DROP DATABASE dunning_regress;
