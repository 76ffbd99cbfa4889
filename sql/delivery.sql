--
-- Delivery of the outbox (worker/): the rows a worker claims per event and
-- channel under a lease, their outcomes, retries with backoff, dead
-- letters, accounts without an address, and the e-mails in the account's
-- locale.
--
CREATE DATABASE delivery_regress;
\c delivery_regress
\i test/regress_own_database.sql
CREATE VIEW deliveries AS
SELECT event_id, channel, status, tries, worker, reason, finished_at IS NOT NULL AS finished
FROM billing.delivery ORDER BY event_id, channel;
CREATE VIEW events AS
SELECT event_id, account_id, event_type, processed_at IS NOT NULL AS processed FROM billing.outbox ORDER BY event_id;

SELECT billing.create_billing_entity('Acme', 'EUR') AS entity \gset
SELECT billing.create_account(:entity, 'Alice', currency => 'EUR', email => 'alice@example.test', locale => 'de-DE') AS a \gset
SELECT billing.create_account(:entity, 'Nobody', currency => 'EUR') AS b \gset
SELECT billing.create_product('Pro') AS product \gset
SELECT billing.create_price(:product, 'EUR', 1234.50) AS price \gset
SELECT billing.subscribe(:a, :price) IS NOT NULL AS subscribed;
SELECT billing.subscribe(:b, :price) IS NOT NULL AS subscribed;
SELECT * FROM events;

-- A worker with e-mail and one webhook: each event gets a row per channel
-- that takes it; Nobody's invoice e-mail is skipped with the reason, the
-- subscription events have no e-mail.
SELECT account_id, event_id, channel, try, event_type FROM billing.claim_deliveries('w1', '{email,webhook:crm}', 100);
SELECT * FROM deliveries;
-- a second worker finds everything leased
SELECT count(*) AS claimed FROM billing.claim_deliveries('w2', '{email,webhook:crm}', 100);

-- Outcomes: delivered; failed, tried again after the backoff (1 minute,
-- then doubled); skipped by the worker with its reason.
SELECT event_id AS inv_a FROM billing.outbox WHERE account_id = :a AND event_type = 'invoice.finalized' \gset
SELECT event_id AS sub_a FROM billing.outbox WHERE account_id = :a AND event_type = 'subscription.created' \gset
SELECT event_id AS inv_b FROM billing.outbox WHERE account_id = :b AND event_type = 'invoice.finalized' \gset
SELECT event_id AS sub_b FROM billing.outbox WHERE account_id = :b AND event_type = 'subscription.created' \gset
SELECT billing.finish_delivery(:a, :inv_a, 'email', 'w1', 'delivered');
SELECT billing.finish_delivery(:a, :inv_a, 'webhook:crm', 'w1', 'failed', 'HTTP 503', max_tries => 3);
SELECT due_at - clock_timestamp() BETWEEN interval '55 seconds' AND interval '61 seconds' AS backoff_one_minute
FROM billing.delivery WHERE event_id = :inv_a AND channel = 'webhook:crm';
SELECT billing.finish_delivery(:a, :sub_a, 'webhook:crm', 'w1', 'skipped', 'event type not subscribed');
SELECT billing.finish_delivery(:b, :inv_b, 'webhook:crm', 'w1', 'delivered');
SELECT billing.finish_delivery(:b, :sub_b, 'webhook:crm', 'w1', 'delivered');
-- the events with every delivery done are processed, the retried one not
SELECT * FROM events;
-- a finished delivery cannot be finished again, nor one another worker holds
SELECT billing_test_error(format('SELECT billing.finish_delivery(%s, %s, ''email'', ''w1'', ''delivered'')', :a, :inv_a));
-- nothing is due before its backoff
SELECT count(*) AS claimed FROM billing.claim_deliveries('w1', '{email,webhook:crm}', 100);
-- the backoff doubles: the second failure waits 2 minutes, the third is a dead letter
UPDATE billing.delivery SET due_at = clock_timestamp() WHERE event_id = :inv_a AND channel = 'webhook:crm';
SELECT event_id, channel, try FROM billing.claim_deliveries('w1', '{webhook:crm}', 100, max_tries => 3);
-- (a report holding a card number is refused, and nothing is written)
SELECT billing_test_error(format('SELECT billing.finish_delivery(%s, %s, ''webhook:crm'', ''w1'', ''failed'', ''HTTP 500: card 4242 4242 4242 4242'', max_tries => 3)', :a, :inv_a));
SELECT status, tries FROM billing.delivery WHERE event_id = :inv_a AND channel = 'webhook:crm';
SELECT billing.finish_delivery(:a, :inv_a, 'webhook:crm', 'w1', 'failed', 'HTTP 500', max_tries => 3);
SELECT due_at - clock_timestamp() BETWEEN interval '115 seconds' AND interval '121 seconds' AS backoff_two_minutes
FROM billing.delivery WHERE event_id = :inv_a AND channel = 'webhook:crm';
UPDATE billing.delivery SET due_at = clock_timestamp() WHERE event_id = :inv_a AND channel = 'webhook:crm';
SELECT event_id, channel, try FROM billing.claim_deliveries('w1', '{webhook:crm}', 100, max_tries => 3);
SELECT billing.finish_delivery(:a, :inv_a, 'webhook:crm', 'w1', 'failed', 'HTTP 500', max_tries => 3);
SELECT * FROM deliveries WHERE event_id = :inv_a;
SELECT try, worker, outcome, detail FROM billing.delivery_attempt WHERE event_id = :inv_a AND channel = 'webhook:crm'
ORDER BY attempt_id;
SELECT * FROM events WHERE event_id = :inv_a;

-- A lease that runs out (the worker was killed): another worker claims the
-- row again, the first try is recorded as lease_expired, and the first
-- worker's late report is refused.
SELECT billing.create_account(:entity, 'Carla', currency => 'EUR', email => 'carla@example.test', locale => 'fr-FR') AS c \gset
SELECT billing.subscribe(:c, :price) IS NOT NULL AS subscribed;
SELECT event_id AS inv_c FROM billing.outbox WHERE account_id = :c AND event_type = 'invoice.finalized' \gset
SELECT event_id, channel, try FROM billing.claim_deliveries('w1', '{email}', 100, lease => '1 second');
SELECT pg_sleep(1.2);
SELECT event_id, channel, try FROM billing.claim_deliveries('w2', '{email}', 100, lease => '1 minute', max_tries => 2);
SELECT billing_test_error(format('SELECT billing.finish_delivery(%s, %s, ''email'', ''w1'', ''delivered'')', :c, :inv_c));
SELECT try, worker, outcome FROM billing.delivery_attempt WHERE event_id = :inv_c ORDER BY attempt_id;
-- and a lease that runs out on the last try is a dead letter
UPDATE billing.delivery SET due_at = clock_timestamp() WHERE event_id = :inv_c;
SELECT count(*) AS claimed FROM billing.claim_deliveries('w3', '{email}', 100, max_tries => 2);
SELECT * FROM deliveries WHERE event_id = :inv_c;
SELECT * FROM events WHERE account_id = :c AND event_type = 'invoice.finalized';

-- The e-mails, in the account's locale: an invoice is its document.
SELECT recipient, subject, position('Rechnung' IN html) > 0 AS html_document,
       position('1.234,50' IN text_body) > 0 AS german_amounts, invoice_id IS NOT NULL AS has_invoice, locale
FROM billing.delivery_email(:a, :inv_a);
SELECT recipient IS NULL AS no_recipient FROM billing.delivery_email(:b, :inv_b);
-- a reminder and a price-change notice (written here as dunning and the
-- price-change step write them)
INSERT INTO billing.outbox (account_id, event_type, payload) VALUES
    (:a, 'dunning.reminder', jsonb_build_object('number', 'INV-7', 'issue_date', '2026-01-31', 'due_date', '2026-02-28',
                                                'amount_due', '1234.50 EUR')),
    (:c, 'dunning.reminder', jsonb_build_object('number', 'INV-8<b>', 'issue_date', '2024-02-29', 'due_date', '2024-03-31',
                                                'amount_due', '0.00 EUR')),
    (:a, 'subscription.price_change_notice', jsonb_build_object('effective_date', '2026-03-01', 'new_price_id', :price,
                                                'old_amount', '10.00 EUR', 'new_amount', '12.00 EUR'));
SELECT subject, text_body, html FROM billing.outbox o, billing.delivery_email(o.account_id, o.event_id)
WHERE o.event_type IN ('dunning.reminder', 'subscription.price_change_notice') ORDER BY o.event_id;
-- a row of document_label overrides a shipped word
INSERT INTO billing.document_label VALUES ('de', 'mail_price_subject', 'Neuer Preis');
SELECT subject FROM billing.outbox o, billing.delivery_email(o.account_id, o.event_id)
WHERE o.event_type = 'subscription.price_change_notice';
DELETE FROM billing.document_label WHERE key = 'mail_price_subject';

-- Bad inputs: the SQLSTATE, and nothing written.
CREATE TEMP TABLE before AS SELECT * FROM billing.delivery;
SELECT billing_test_error('SELECT * FROM billing.claim_deliveries(NULL, ''{email}'')');
SELECT billing_test_error('SELECT * FROM billing.claim_deliveries('''', ''{email}'')');
SELECT billing_test_error('SELECT * FROM billing.claim_deliveries(repeat(''w'', 201), ''{email}'')');
SELECT billing_test_error('SELECT * FROM billing.claim_deliveries(''4242424242424242'', ''{email}'')');
SELECT billing_test_error('SELECT * FROM billing.claim_deliveries(''w'', NULL)');
SELECT billing_test_error('SELECT * FROM billing.claim_deliveries(''w'', ''{}'')');
SELECT billing_test_error('SELECT * FROM billing.claim_deliveries(''w'', ''{sms}'')');
SELECT billing_test_error('SELECT * FROM billing.claim_deliveries(''w'', ''{"webhook:a b"}'')');
SELECT billing_test_error('SELECT * FROM billing.claim_deliveries(''w'', ARRAY[NULL::text])');
SELECT billing_test_error('SELECT * FROM billing.claim_deliveries(''w'', ''{email}'', 0)');
SELECT billing_test_error('SELECT * FROM billing.claim_deliveries(''w'', ''{email}'', 10001)');
SELECT billing_test_error('SELECT * FROM billing.claim_deliveries(''w'', ''{email}'', 1, ''0 seconds'')');
SELECT billing_test_error('SELECT * FROM billing.claim_deliveries(''w'', ''{email}'', 1, ''2 days'')');
SELECT billing_test_error('SELECT * FROM billing.claim_deliveries(''w'', ''{email}'', 1, ''1 minute'', 0)');
SELECT billing_test_error(format('SELECT billing.finish_delivery(%s, %s, ''email'', ''w2'', ''sent'')', :c, :inv_c));
SELECT billing_test_error(format('SELECT billing.finish_delivery(%s, %s, ''email'', ''w2'', NULL)', :c, :inv_c));
SELECT billing_test_error(format('SELECT billing.finish_delivery(%s, %s, ''email'', ''w2'', ''failed'', backoff => ''0 seconds'')', :c, :inv_c));
SELECT billing_test_error(format('SELECT billing.finish_delivery(%s, %s, ''email'', ''w2'', ''failed'', max_backoff => ''31 days'')', :c, :inv_c));
SELECT billing_test_error(format('SELECT billing.finish_delivery(%s, %s, ''email'', ''w2'', ''failed'', max_tries => 0)', :c, :inv_c));
SELECT billing_test_error(format('SELECT billing.finish_delivery(%s, 999999, ''email'', ''w2'', ''delivered'')', :c));
SELECT billing_test_error('SELECT billing.finish_delivery(NULL, 1, ''email'', ''w2'', ''delivered'')');
SELECT billing_test_error(format('SELECT * FROM billing.delivery_email(%s, 999999)', :a));
SELECT billing_test_error(format('SELECT * FROM billing.delivery_email(%s, %s)', :a, :sub_a));
SELECT billing_test_error('SELECT * FROM billing.delivery_email(NULL, NULL)');
SELECT count(*) AS changed FROM (SELECT * FROM billing.delivery EXCEPT SELECT * FROM before) x;

-- Attacks of an application role bound to another entity.  The writer
-- role may not run the worker's functions at all; granted them directly
-- (a worker role per entity), the claim still needs every entity, and the
-- report and the e-mail refuse the other entity's accounts.
SELECT billing.grant_roles('regress_delivery_writer', 'regress_delivery_operator', 'regress_delivery_reporting');
SELECT billing.create_billing_entity('Globex', 'EUR') AS globex \gset
CREATE ROLE regress_delivery_globex IN ROLE regress_delivery_writer;
SELECT billing.bind_role_to_entity('regress_delivery_globex', :globex);
SET ROLE regress_delivery_globex;
SELECT billing_test_error('SELECT * FROM billing.claim_deliveries(''evil'', ''{email}'')');
SELECT billing_test_error(format('SELECT * FROM billing.delivery_email(%s, %s)', :a, :inv_a));
RESET ROLE;
GRANT EXECUTE ON FUNCTION billing.claim_deliveries(text, text[], integer, interval, integer),
    billing.finish_delivery(bigint, bigint, text, text, text, text, integer, interval, interval),
    billing.delivery_email(bigint, bigint) TO regress_delivery_globex;
SET ROLE regress_delivery_globex;
SELECT billing_test_error('SELECT * FROM billing.claim_deliveries(''evil'', ''{email}'')');
SELECT billing_test_error(format('SELECT billing.finish_delivery(%s, %s, ''email'', ''w2'', ''delivered'')', :c, :inv_c));
SELECT billing_test_error(format('SELECT * FROM billing.delivery_email(%s, %s)', :a, :inv_a));
SELECT count(*) AS visible_deliveries FROM billing.delivery;
SELECT count(*) AS visible_attempts FROM billing.delivery_attempt;
RESET ROLE;
SELECT count(*) AS changed FROM (SELECT * FROM billing.delivery EXCEPT SELECT * FROM before) x;
-- the operator bound to every entity may
SELECT billing.unbind_role_from_entity('regress_delivery_globex', :globex);
SELECT billing.bind_role_to_entity('regress_delivery_globex', NULL);
SET ROLE regress_delivery_globex;
SELECT event_id, channel, try FROM billing.claim_deliveries('ops', '{email}');
SELECT billing.finish_delivery(account_id, event_id, channel, 'ops', 'delivered')
FROM billing.delivery WHERE status = 'claimed' ORDER BY event_id;
SELECT count(*) AS pending_events FROM billing.outbox WHERE processed_at IS NULL;
RESET ROLE;

\c contrib_regression
DROP DATABASE delivery_regress;
DROP ROLE regress_delivery_globex;
DROP ROLE regress_delivery_writer;
DROP ROLE regress_delivery_operator;
DROP ROLE regress_delivery_reporting;
