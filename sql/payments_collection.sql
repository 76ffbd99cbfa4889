--
-- Automatic collection: payment methods on file, the queue that
-- workers claim with SKIP LOCKED, result reporting, the retry schedule.
--
CREATE DATABASE payments_col_regress;
\c payments_col_regress
\i test/regress_own_database.sql
CREATE VIEW attempts AS
SELECT attempt_id, invoice_id, attempt_no, amount, status, scheduled_at, worker, failure_code, payment_id
FROM billing.collection_attempt ORDER BY attempt_id;

SELECT billing.create_billing_entity('Acme', 'USD') AS entity \gset
SELECT billing.create_account(:entity, 'Alice') AS a \gset
SELECT billing.create_account(:entity, 'Bob') AS b \gset
SELECT billing.create_product('Pro') AS product \gset
SELECT billing.create_price(:product, 'USD', 10.00) AS price \gset

-- A method on file: the provider's token, never a card number.
SELECT billing.add_payment_method(:a, 'card', 'pm_1NqFZx2eZvKYlo2C') AS pm \gset
SELECT payment_method_id, method, token, is_default, active FROM billing.payment_method;

-- Finalizing an invoice queues its first attempt; Bob has no method.
SELECT billing.subscribe(:a, :price) IS NOT NULL AS subscribed;
SELECT billing.subscribe(:b, :price) IS NOT NULL AS subscribed;
SELECT * FROM attempts;

-- A worker claims it; a second worker finds nothing left.
SELECT * FROM billing.claim_collection_attempts('worker-1');
SELECT * FROM billing.claim_collection_attempts('worker-2');
-- The charge fails: the next attempt is due a day later (retry days 1, 3, 5, 7).
SELECT billing.report_collection_result(:a, 1, false, provider_reference => 'ch_1', failure_code => 'card_declined',
                                        failure_message => 'insufficient funds') AS next \gset
SELECT :next AS next_attempt;
SELECT billing.report_collection_result(:a, 1, false, provider_reference => 'ch_1', failure_code => 'card_declined') = :next
    AS same_answer;
SELECT * FROM attempts;
SELECT event_type, payload->>'attempt_no' AS attempt_no, payload->>'next_attempt_at' AS next_at
FROM billing.outbox WHERE event_type = 'collection.failed';
SELECT count(*) AS claimed_too_early FROM billing.claim_collection_attempts('worker-1');
SELECT * FROM billing.claim_collection_attempts('worker-1', as_of => '2026-01-02 12:00+00');
-- It succeeds: the payment is recorded and the invoice paid; a repeated
-- report returns the same payment.
SELECT billing.report_collection_result(:a, :next, true, provider_reference => 'ch_2') AS paid_by \gset
SELECT billing.report_collection_result(:a, :next, true, provider_reference => 'ch_2') = :paid_by AS same_payment;
SELECT * FROM attempts;
SELECT payment_id, amount, method, reference, idempotency_key FROM billing.payment;
SELECT invoice_id, status, amount_due FROM billing.invoice WHERE account_id = :a;
SELECT billing_test_error(format('SELECT billing.report_collection_result(%s, 1, true)', :a));

-- Retries run out: with retry days {2}, two failures end the attempts.
SELECT billing.set_collection_retry_days('{2}');
SET billing.clock = '2026-02-01 12:00+00';
CALL billing.run_cycle();
SELECT attempt_id AS feb FROM billing.collection_attempt WHERE status = 'pending' \gset
SELECT count(*) FROM billing.claim_collection_attempts('worker-1');
SELECT billing.report_collection_result(:a, :feb, false, failure_code => 'expired_card') AS feb2 \gset
SELECT count(*) FROM billing.claim_collection_attempts('worker-1', as_of => '2026-02-03 12:00+00');
SELECT billing.report_collection_result(:a, :feb2, false, failure_code => 'expired_card') AS exhausted;
SELECT * FROM attempts WHERE invoice_id = (SELECT invoice_id FROM billing.collection_attempt WHERE attempt_id = :feb);

-- An invoice paid meanwhile is not charged: its attempt is canceled.
SET billing.clock = '2026-03-01 12:00+00';
CALL billing.run_cycle();
SELECT billing.apply_payment(:a, '10.00 USD', 'bank_transfer', invoice_ids => ARRAY[invoice_id]) IS NOT NULL AS paid
FROM billing.invoice WHERE account_id = :a AND issue_date = '2026-03-01';
SELECT count(*) AS claimed FROM billing.claim_collection_attempts('worker-1');
SELECT status, count(*) FROM billing.collection_attempt GROUP BY 1 ORDER BY 1;

-- Removing the method cancels what is pending and stops the queue.
SELECT billing.add_payment_method(:b, 'direct_debit', 'mandate_MD0001') AS pmb \gset
SET billing.clock = '2026-04-01 12:00+00';
CALL billing.run_cycle();
SELECT count(*) AS pending_for_bob FROM billing.collection_attempt WHERE account_id = :b AND status = 'pending';
SELECT billing.remove_payment_method(:b, :pmb);
SELECT count(*) AS pending_for_bob FROM billing.collection_attempt WHERE account_id = :b AND status = 'pending';

-- Bad inputs: SQLSTATE and message.
SELECT q, billing_test_error(q) AS error FROM (VALUES
    (format('SELECT billing.add_payment_method(%s, ''card'', ''4242 4242 4242 4242'')', :a)),
    (format('SELECT billing.add_payment_method(%s, ''card'', '''')', :a)),
    (format('SELECT billing.add_payment_method(%s, ''card'', NULL)', :a)),
    (format('SELECT billing.add_payment_method(%s, ''iban'', ''tok'')', :a)),
    ('SELECT billing.add_payment_method(999999, ''card'', ''tok'')'),
    (format('SELECT billing.remove_payment_method(%s, 999999)', :a)),
    (format('SELECT billing.remove_payment_method(%s, %s)', :b, :pmb)),
    ('SELECT * FROM billing.claim_collection_attempts(NULL)'),
    ('SELECT * FROM billing.claim_collection_attempts(''w'', 0)'),
    ('SELECT * FROM billing.claim_collection_attempts(''w'', 10001)'),
    (format('SELECT billing.report_collection_result(%s, 999999, true)', :a)),
    (format('SELECT billing.report_collection_result(%s, 1, NULL)', :a)),
    (format('SELECT billing.report_collection_result(%s, 1, true, provider_reference => ''5555555555554444'')', :a)),
    ('SELECT billing.report_collection_result(999999, 1, true)'),
    ('SELECT billing.set_collection_retry_days(NULL)'),
    ('SELECT billing.set_collection_retry_days(''{1,0}'')'),
    ('SELECT billing.set_collection_retry_days(''{1,NULL}'')'),
    ('SELECT billing.set_collection_retry_days(''{-1}'')')
) t(q);
SELECT billing.set_collection_retry_days('{}');
SELECT retry_days FROM billing.collection_setting;

SELECT * FROM billing.check_invariants();

\c contrib_regression
DROP DATABASE payments_col_regress;
