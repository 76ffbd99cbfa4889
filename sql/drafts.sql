-- Draft invoices with a grace period, and one-off charges: the cycle makes
-- drafts (no number, nothing posted, not receivable, not collected), they
-- take late usage, a coupon and one-off items, and are finalized by hand or
-- by the cycle exactly draft_days later through the one finalization step.
-- The worked amounts are in the comments.  A database of its own: the
-- tests after this one start from an empty billing.
CREATE DATABASE drafts_regress;
\c drafts_regress
SET client_min_messages = warning;
CREATE EXTENSION billing CASCADE;
RESET client_min_messages;
\pset null '(null)'
SET search_path = public, billing;
\i test/regress_helpers.sql

CREATE VIEW invoices AS
SELECT i.account_id, i.invoice_id, i.number, i.status, i.billing_reason, i.issue_date, i.due_date, i.finalize_on,
       i.subtotal, i.discount, i.tax, i.total, i.amount_due
FROM billing.invoice i;
CREATE VIEW lines AS
SELECT l.account_id, l.invoice_id, l.kind, l.description, l.quantity, l.amount, l.period_start, l.period_end
FROM billing.invoice_line l;
CREATE VIEW postings AS
SELECT t.account_id, t.invoice_id, t.kind, t.posted_on, e.ledger_account, e.amount
FROM billing.ledger_transaction t JOIN billing.ledger_entry e USING (account_id, txn_id);

-- The seller gives its customers 3 days of grace; Bob's account 1 day, Eve's
-- none.  VAT 19% exclusive.
SET billing.clock = '2024-01-28 12:00+00';
SELECT create_billing_entity('Acme', 'EUR') AS acme \gset
SELECT create_tax_rate('VAT', 19) AS vat \gset
SELECT set_entity_draft_days(:acme, 3);
SELECT create_account(:acme, 'Anna', tax_rate_id => :vat) AS anna \gset
SELECT create_account(:acme, 'Bob', tax_rate_id => :vat) AS bob \gset
SELECT create_account(:acme, 'Carl', tax_exempt => true) AS carl \gset
SELECT create_account(:acme, 'Eve') AS eve \gset
SELECT set_account_draft_days(:bob, 1);
SELECT set_account_draft_days(:carl, 10);
SELECT set_account_draft_days(:eve, 0);
SELECT account_id, draft_days FROM account ORDER BY 1;
SELECT create_product('Plan') AS plan \gset
SELECT create_price(:plan, 'EUR', 30.00) AS basic \gset
SELECT create_product('API') AS api \gset
SELECT create_price(:api, 'EUR', 0.10, scheme => 'per_unit', usage_type => 'metered') AS calls \gset
SELECT create_coupon('TEN', 'once', percent_off => 10) AS ten \gset

-- Subscribing invoices the first period at once, finalized (the grace
-- period is the cycle's): Bob from Jan 28, Carl and Eve too.
SELECT subscribe(:bob, :basic) AS bob_sub \gset
SELECT subscribe(:carl, :basic) AS carl_sub \gset
SELECT subscribe(:eve, :basic) AS eve_sub \gset
SET billing.clock = '2024-01-31 12:00+00';
SELECT subscribe(:anna, items => format('[{"price_id": %s}, {"price_id": %s}]', :basic, :calls)::jsonb) AS anna_sub \gset
SELECT add_payment_method(:anna, 'card', 'pm_anna') IS NOT NULL AS anna_has_a_card;
SELECT subscription_item_id AS anna_calls FROM subscription_item WHERE subscription_id = :anna_sub AND price_id = :calls \gset
SELECT * FROM invoices ORDER BY invoice_id;

-- 100 calls in February: 10.00.
SELECT record_usage(:anna, :anna_calls, 100, 'a-1', occurred_at => '2024-02-10 12:00+00') IS NOT NULL AS recorded;

-- The cycle of Feb 28: Bob's draft (one day of grace: finalized on the leap
-- day), Carl's (ten days: Mar 9) and Eve's invoice, finalized (no grace).
-- Drafts take no number, post nothing, queue no collection; invoice.created.
SET billing.clock = '2024-02-28 12:00+00';
CALL run_cycle(as_of => '2024-02-28');
SELECT * FROM invoices WHERE issue_date = '2024-02-28' ORDER BY invoice_id;
SELECT invoice_id AS bob_draft FROM invoice WHERE account_id = :bob AND status = 'draft' \gset
SELECT invoice_id AS carl_draft FROM invoice WHERE account_id = :carl AND status = 'draft' \gset
SELECT count(*) AS draft_postings FROM ledger_transaction WHERE invoice_id IN (:bob_draft, :carl_draft);
SELECT event_type, payload - 'invoice_id' AS payload FROM outbox WHERE payload ->> 'invoice_id' IN (:'bob_draft', :'carl_draft');
SELECT invoices, drafts_finalized FROM cycle_run ORDER BY cycle_run_id DESC LIMIT 1;
-- the same day again: nothing new, nothing finalized
CALL run_cycle(as_of => '2024-02-28');
SELECT count(*) AS drafts FROM invoice WHERE status = 'draft';
SELECT * FROM check_invariants();

-- A draft is no receivable: not in the balance, the aging or the statement.
SELECT account_balance(:bob) AS bob_owes;
SELECT account_id, total_due, open_invoices FROM ar_aging WHERE account_id = :bob;
SELECT count(*) AS statement_lines FROM account_statement(:bob, '2024-01-01', '2024-12-31') WHERE invoice_id = :bob_draft;
-- Its document says DRAFT where the number goes.
SELECT split_part(invoice_document(:bob_draft, 'text'), E'\n', 1) AS heading;

-- The preview is what the cycle does: Anna's invoice of Feb 29 previewed,
-- then made (a draft, with the same lines).  30.00 + 100 calls 10.00 = 40.00,
-- VAT 7.60, total 47.60.
SET billing.clock = '2024-02-29 12:00+00';
CREATE TEMP TABLE anna_preview AS
SELECT kind, description, quantity, amount, period_start, period_end FROM preview_invoice(:anna, as_of => '2024-02-29');
-- Feb 29, the leap day: Bob's draft is finalized (issued today, due in 30
-- days, numbered after Eve's), Anna's draft is made (finalized Mar 3).
CALL run_cycle(as_of => '2024-02-29');
SELECT invoices, drafts_finalized FROM cycle_run ORDER BY cycle_run_id DESC LIMIT 1;
SELECT * FROM invoices WHERE invoice_id = :bob_draft;
SELECT kind, ledger_account, amount, posted_on FROM postings WHERE invoice_id = :bob_draft ORDER BY ledger_account;
SELECT event_type, payload ->> 'number' AS number FROM outbox WHERE payload ->> 'invoice_id' = :'bob_draft' ORDER BY event_id;
SELECT invoice_id AS anna_draft FROM invoice WHERE account_id = :anna AND status = 'draft' \gset
SELECT * FROM invoices WHERE invoice_id = :anna_draft;
SELECT kind, description, quantity, amount, period_start, period_end FROM lines WHERE invoice_id = :anna_draft
EXCEPT SELECT * FROM anna_preview;
SELECT * FROM anna_preview EXCEPT
SELECT kind, description, quantity, amount, period_start, period_end FROM lines WHERE invoice_id = :anna_draft;
SELECT count(*) AS collection_attempts FROM collection_attempt WHERE invoice_id = :anna_draft;

-- During the grace period: 50 more calls dated Feb 20 (late usage of the
-- draft's period: 150 calls 15.00), the coupon TEN (10% off, once: this
-- draft), an installation of 120.00 on the draft, consulting of 80.00 added
-- and removed again.
--   charges 30.00 + 15.00 + 120.00 = 165.00, discount -16.50, net 148.50,
--   VAT R(148.50 x 19%) = R(28.215) = 28.22, total 176.72
SET billing.clock = '2024-03-01 12:00+00';
SELECT record_usage(:anna, :anna_calls, 50, 'a-2', occurred_at => '2024-02-20 12:00+00') IS NOT NULL AS late_usage;
SELECT apply_coupon(:anna, :anna_sub, 'TEN');
SELECT coupon_from, coupon_until FROM subscription WHERE subscription_id = :anna_sub;
SELECT (add_invoice_item(:anna, '120.00 EUR', 'Installation', invoice_id => :anna_draft)).invoice_id = :anna_draft AS on_the_draft;
SELECT (add_invoice_item(:anna, '80.00 EUR', 'Consulting', invoice_id => :anna_draft)).invoice_line_id AS consulting \gset
SELECT * FROM invoices WHERE invoice_id = :anna_draft;
SELECT remove_invoice_item(:anna, :anna_draft, :consulting);
SELECT * FROM invoices WHERE invoice_id = :anna_draft;
SELECT kind, description, quantity, amount, period_start, period_end FROM lines WHERE invoice_id = :anna_draft
ORDER BY kind, description;
SELECT * FROM check_invariants();
-- only one-off items can be removed
SELECT billing_test_error(format('SELECT billing.remove_invoice_item(%s, %s, %s)', :anna, :anna_draft,
    (SELECT min(invoice_line_id) FROM invoice_line WHERE invoice_id = :anna_draft AND kind = 'subscription'))) AS recurring_line;
SELECT billing_test_error(format('SELECT billing.remove_invoice_item(%s, %s, 999999)', :anna, :anna_draft)) AS no_such_line;

-- Mar 2: one day of grace left, nothing happens.  Mar 3: the cycle finalizes
-- it with what it holds now, the collection is queued.  The late usage was
-- taken in when the draft was edited; 5 more calls recorded on the last day
-- of grace are taken in by the finalization: 155 calls 15.50,
--   charges 165.50, discount -16.55, net 148.95, VAT R(28.3005) = 28.30,
--   total 177.25
CALL run_cycle(as_of => '2024-03-02');
SELECT status FROM invoice WHERE invoice_id = :anna_draft;
SELECT record_usage(:anna, :anna_calls, 5, 'a-3', occurred_at => '2024-02-25 12:00+00') IS NOT NULL AS last_minute_usage;
CALL run_cycle(as_of => '2024-03-03');
SELECT * FROM invoices WHERE invoice_id = :anna_draft;
SELECT kind, description, quantity, amount FROM lines WHERE invoice_id = :anna_draft ORDER BY kind, description;
SELECT ledger_account, amount FROM postings WHERE invoice_id = :anna_draft ORDER BY ledger_account;
SELECT count(*) AS collection_attempts FROM collection_attempt WHERE invoice_id = :anna_draft;
SELECT count(*) FILTER (WHERE invoice_id = :anna_draft) AS usage_on_the_draft, count(*) FILTER (WHERE invoice_id IS NULL) AS unbilled
FROM usage_event WHERE account_id = :anna;
-- the coupon was once: the next invoice (Mar 31) has none
SELECT kind, amount FROM preview_invoice(:anna, :anna_sub, '2024-03-31') ORDER BY line_no;
SELECT * FROM check_invariants();

-- By hand: Carl's draft (ten days of grace) finalized on Mar 4, issued that
-- day; again: 55000.  A finalized invoice takes no items.
SET billing.clock = '2024-03-04 12:00+00';
SELECT finalize_invoice(:carl, :carl_draft) AS carl_number;
SELECT * FROM invoices WHERE invoice_id = :carl_draft;
SELECT billing_test_error(format('SELECT billing.finalize_invoice(%s, %s)', :carl, :carl_draft)) AS finalize_twice;
SELECT billing_test_error(format('SELECT billing.add_invoice_item(%s, %L, %L, invoice_id => %s)', :carl, '1.00 EUR', 'x', :carl_draft))
    AS add_to_a_finalized_invoice;
SELECT billing_test_error(format('SELECT billing.remove_invoice_item(%s, %s, 1)', :carl, :carl_draft)) AS remove_from_it;
SELECT billing_test_error(format('SELECT billing.finalize_invoice(%s, 999999)', :carl)) AS unknown_invoice;
-- the cycle of Mar 9 (Carl's finalize_on) has nothing left to finalize
CALL run_cycle(as_of => '2024-03-09');
SELECT drafts_finalized FROM cycle_run ORDER BY cycle_run_id DESC LIMIT 1;

-- One-off charges.  Invoiced at once: Bob's consulting, 250.00 + VAT 47.50 =
-- 297.50, billing_reason manual, numbered and posted; Carl's (tax exempt)
-- 99.99.  For the next invoice: a fee of 15.00 for Anna, on her Mar 31
-- invoice (a draft again).
SELECT * FROM add_invoice_item(:bob, '250.00 EUR', 'Consulting, March', invoice_now => true);
SELECT (add_invoice_item(:carl, '99.99 EUR', 'Installation', invoice_now => true)).invoice_id AS carl_manual \gset
SELECT * FROM invoices WHERE billing_reason = 'manual' ORDER BY invoice_id;
SELECT i.number, p.ledger_account, p.amount FROM postings p JOIN invoice i USING (account_id, invoice_id)
WHERE i.billing_reason = 'manual' ORDER BY i.invoice_id, p.ledger_account;
SELECT event_type, payload ->> 'total' AS total FROM outbox WHERE payload ->> 'invoice_id' = :'carl_manual';
SELECT (add_invoice_item(:anna, '15.00 EUR', 'Service fee')).pending_item_id IS NOT NULL AS pending;
SET billing.clock = '2024-03-31 12:00+00';
CALL run_cycle(as_of => '2024-03-31');
SELECT invoice_id AS anna_draft2 FROM invoice WHERE account_id = :anna AND status = 'draft' \gset
SELECT kind, description, amount FROM lines WHERE invoice_id = :anna_draft2 ORDER BY kind, description;
-- removing the fee from the draft withdraws it
SELECT remove_invoice_item(:anna, :anna_draft2, (SELECT invoice_line_id FROM invoice_line WHERE invoice_id = :anna_draft2 AND kind = 'one_off'));
SELECT count(*) AS pending_fees FROM pending_item WHERE account_id = :anna AND kind = 'one_off';
SELECT * FROM invoices WHERE invoice_id = :anna_draft2;
SELECT * FROM check_invariants();

-- Bad one-off charges: SQLSTATE, and nothing written.
CREATE TEMP TABLE counts_before AS
SELECT (SELECT count(*) FROM invoice) AS invoices, (SELECT count(*) FROM invoice_line) AS lines,
       (SELECT count(*) FROM pending_item) AS pending, (SELECT sum(last_number) FROM invoice_number_series) AS numbers;
SELECT v AS call, billing_test_error(v) AS error FROM (VALUES
    (format('SELECT billing.add_invoice_item(%s, %L, %L, invoice_now => true)', :bob, '0.00 EUR', 'zero')),
    (format('SELECT billing.add_invoice_item(%s, %L, %L, invoice_now => true)', :bob, '-5.00 EUR', 'negative')),
    (format('SELECT billing.add_invoice_item(%s, %L, %L, invoice_now => true)', :bob, '5.00 USD', 'dollars')),
    (format('SELECT billing.add_invoice_item(%s, NULL, %L, invoice_now => true)', :bob, 'nothing')),
    (format('SELECT billing.add_invoice_item(%s, %L, %L, invoice_now => true)', :bob, '1000000000000.00 EUR', 'the most, plus VAT')),
    (format('SELECT billing.add_invoice_item(%s, %L, %L, invoice_id => %s)', :anna, '1000000000000.00 EUR', 'too much for the draft', :anna_draft2)),
    (format('SELECT billing.add_invoice_item(%s, %L, %L)', :bob, '5.00 EUR', '')),
    (format('SELECT billing.add_invoice_item(%s, %L, %L)', :bob, '5.00 EUR', '4111 1111 1111 1111')),
    (format('SELECT billing.add_invoice_item(%s, %L, %L, invoice_id => %s, invoice_now => true)', :anna, '5.00 EUR', 'both', :anna_draft2)),
    (format('SELECT billing.add_invoice_item(%s, %L, %L, invoice_id => 999999)', :anna, '5.00 EUR', 'no draft')),
    (format('SELECT billing.add_invoice_item(%s, %L, %L, subscription_id => %s)', :anna, '5.00 EUR', 'not hers', :bob_sub)),
    (format('SELECT billing.add_invoice_item(999999, %L, %L)', '5.00 EUR', 'nobody')),
    (format('SELECT billing.set_account_draft_days(%s, -1)', :bob)),
    (format('SELECT billing.set_account_draft_days(%s, 91)', :bob)),
    (format('SELECT billing.set_entity_draft_days(%s, NULL)', :acme)),
    ('SELECT billing.set_entity_draft_days(999999, 1)')) t(v);
SELECT (SELECT count(*) FROM invoice) AS invoices, (SELECT count(*) FROM invoice_line) AS lines,
       (SELECT count(*) FROM pending_item) AS pending, (SELECT sum(last_number) FROM invoice_number_series) AS numbers
EXCEPT SELECT * FROM counts_before;
-- the largest amount without tax is one invoice (Carl is tax exempt); for
-- the next invoice it waits
SELECT invoice_id AS carl_most FROM add_invoice_item(:carl, '1000000000000.00 EUR', 'the most', invoice_now => true) \gset
SELECT number, status, total FROM invoice WHERE invoice_id = :carl_most;
SELECT (SELECT pending_item_id FROM add_invoice_item(:carl, '1000000000000.00 EUR', 'the most, later')) IS NOT NULL AS pending_for_carl;
-- an account with two subscriptions still billed names one
SELECT subscribe(:carl, :basic) IS NOT NULL AS second_subscription;
SELECT billing_test_error(format('SELECT billing.add_invoice_item(%s, %L, %L)', :carl, '5.00 EUR', 'which one')) AS two_subscriptions;

-- Another seller's invoice: the writer role of Acme may not finalize
-- Globex's draft (42501), and nothing changes.
SELECT create_billing_entity('Globex', 'EUR') AS globex \gset
SELECT set_entity_draft_days(:globex, 5);
SELECT create_account(:globex, 'Gus') AS gus \gset
SET billing.clock = '2024-04-01 12:00+00';
SELECT subscribe(:gus, :basic, invoice_now => false) AS gus_sub \gset
CALL run_cycle(as_of => '2024-04-01');
SELECT invoice_id AS gus_draft FROM invoice WHERE account_id = :gus AND status = 'draft' \gset
SELECT billing.grant_roles('regress_drafts_app', 'regress_drafts_op', 'regress_drafts_bi');
SELECT billing.bind_role_to_entity('regress_drafts_app', :acme);
CREATE TEMP TABLE gus_before AS SELECT * FROM invoice WHERE account_id = :gus;
GRANT SELECT ON gus_before TO PUBLIC;
SET ROLE regress_drafts_app;
SELECT billing_test_error(format('SELECT billing.finalize_invoice(%s, %s)', :gus, :gus_draft)) AS other_tenant;
SELECT billing_test_error(format('SELECT billing.add_invoice_item(%s, %L, %L, invoice_id => %s)', :gus, '1.00 EUR', 'x', :gus_draft)) AS other_tenant_item;
SELECT billing_test_error(format('SELECT billing.set_entity_draft_days(%s, 0)', :globex)) AS other_entity;
-- its own draft it may finalize
SELECT finalize_invoice(:anna, :anna_draft2) IS NOT NULL AS own_draft;
RESET ROLE;
SELECT count(*) AS changed FROM (SELECT * FROM invoice WHERE account_id = :gus EXCEPT SELECT * FROM gus_before) x;
SELECT status, number FROM invoice WHERE invoice_id = :gus_draft;

-- late_trial_usage_on_a_draft_stays_free: Tia's metered API (0.10 a call,
-- 14-day trial from Jun 1, 2024, anchored on the trial's end Jun 15) is
-- billed with 2 days of grace.  The draft of Jun 15 lists the 100 calls of
-- her trial at 0.00; 40 calls dated Jun 10 and 20 dated Jun 16, recorded
-- during the grace period, are taken in: the trial's 40 free too, the
-- 20 after the trial on the next period's line of the next invoice.
SELECT create_account(:acme, 'Tia') AS tia \gset
SELECT create_product('API') AS api_product \gset
SELECT create_price(:api_product, 'EUR', 0.10, scheme => 'per_unit', usage_type => 'metered', trial_days => 14)
    AS api \gset
SELECT set_account_draft_days(:tia, 2);
SET billing.clock = '2024-06-01 12:00+00';
SELECT subscribe(:tia, :api) AS tia_sub \gset
SELECT subscription_item_id AS tia_item FROM subscription_item WHERE subscription_id = :tia_sub \gset
SELECT record_usage(:tia, :tia_item, 100, 'tia-1', '2024-06-05 10:00+00') IS NOT NULL AS recorded;
SET billing.clock = '2024-06-15 12:00+00';
CALL run_cycle();
SELECT invoice_id AS tia_draft FROM invoice WHERE account_id = :tia AND status = 'draft' \gset
SELECT description, quantity, amount, period_start, period_end FROM lines WHERE invoice_id = :tia_draft ORDER BY 1;
SELECT record_usage(:tia, :tia_item, 40, 'tia-2', '2024-06-10 10:00+00') IS NOT NULL AS late_trial,
       record_usage(:tia, :tia_item, 20, 'tia-3', '2024-06-16 10:00+00') IS NOT NULL AS after_trial;
SELECT finalize_invoice(:tia, :tia_draft) IS NOT NULL AS finalized;
SELECT description, quantity, amount, period_start, period_end FROM lines WHERE invoice_id = :tia_draft ORDER BY 1;
SELECT status, total FROM invoice WHERE invoice_id = :tia_draft;
SET billing.clock = '2024-07-15 12:00+00';
SELECT kind, description, quantity, amount FROM preview_invoice(:tia);
-- a draft says invoice.created once; finalized, invoice.finalized once, with its number
SELECT i.status, count(*) FILTER (WHERE o.event_type = 'invoice.created') AS created,
       count(*) FILTER (WHERE o.event_type = 'invoice.finalized' AND o.payload->>'number' = i.number) AS finalized
FROM invoice i LEFT JOIN outbox o ON (o.payload->>'invoice_id')::bigint = i.invoice_id
GROUP BY i.invoice_id, i.status HAVING i.invoice_id = :tia_draft;
SELECT count(*) AS issued_without_one_finalized_event FROM invoice i
WHERE i.status <> 'draft'
  AND (SELECT count(*) FROM outbox o WHERE o.event_type = 'invoice.finalized'
       AND (o.payload->>'invoice_id')::bigint = i.invoice_id) <> 1;
SELECT * FROM check_invariants();
SELECT billing.unbind_role_from_entity('regress_drafts_app', :acme);
SELECT billing.unbind_role_from_entity('regress_drafts_op', NULL);
DROP OWNED BY regress_drafts_app, regress_drafts_op, regress_drafts_bi;
DROP ROLE regress_drafts_app, regress_drafts_op, regress_drafts_bi;

\c contrib_regression
DROP DATABASE drafts_regress;
