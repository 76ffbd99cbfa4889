--
-- The money paths as a business meets them: a credit invoice (a prorated
-- downgrade or cancellation) becomes account credit that settles what the
-- account owes, oldest due first, and what is left is consumed by later
-- invoices; nobody is dunned for money they do not owe.
--
-- A database of its own, so that ids do not depend on the tests before.
CREATE DATABASE money_paths_regress;
\c money_paths_regress
\i test/regress_own_database.sql
CREATE VIEW invoices AS
SELECT account_id, invoice_id, number, status, billing_reason, total, amount_paid, amount_due
FROM billing.invoice ORDER BY account_id, invoice_id;
CREATE VIEW credit AS
SELECT account_id, balance FROM billing.account_credit ORDER BY account_id;

SELECT billing.create_billing_entity('Acme', 'USD') AS entity \gset
SELECT billing.create_account(:entity, 'Dora', payment_terms_days => 10) AS dora \gset
SELECT billing.create_account(:entity, 'Carl', payment_terms_days => 10) AS carl \gset
SELECT billing.create_product('Plan') AS product \gset
SELECT billing.create_price(:product, 'USD', 100.00) AS pro \gset
SELECT billing.create_price(:product, 'USD', 10.00) AS basic \gset

-- Dora subscribes on Jan 1 and pays; the Feb 1 invoice stays unpaid.
SET billing.clock = '2026-01-01 12:00+00';
SELECT billing.subscribe(:dora, :pro) AS dora_sub \gset
SELECT billing.apply_payment(:dora, '100.00 USD', 'bank_transfer', idempotency_key => 'd-1') IS NOT NULL AS paid;
SET billing.clock = '2026-02-01 12:00+00';
CALL billing.run_cycle();
SELECT * FROM invoices WHERE account_id = :dora;

-- credit_invoice_settles_open_invoice: on Feb 15 Dora downgrades at once.
-- The unused half of February's 100.00 (14 of 28 days) is credited, the
-- 10.00 plan charged for the same days: -50.00 + 5.00 = -45.00.  That
-- credit invoice is paid by handing 45.00 to the account's credit, which
-- pays the open February invoice at once: 55.00 is left due there, no
-- credit is left over, and nothing is negative or open with nothing due.
SET billing.clock = '2026-02-15 12:00+00';
SELECT billing.change_subscription(:dora, :dora_sub, price_id => :basic, proration => 'prorate_now') IS NOT NULL
    AS downgraded;
SELECT * FROM invoices WHERE account_id = :dora;
SELECT * FROM credit WHERE account_id = :dora;
SELECT source, amount FROM billing.payment_application WHERE account_id = :dora ORDER BY application_id;
SELECT t.kind, t.description, e.ledger_account, e.amount
FROM billing.ledger_transaction t JOIN billing.ledger_entry e USING (account_id, txn_id)
WHERE t.account_id = :dora AND t.posted_on >= '2026-02-15' ORDER BY t.txn_id, e.entry_id;
SELECT event_type, payload FROM billing.outbox WHERE account_id = :dora AND event_type = 'invoice.credited';
SELECT billing.account_balance(:dora) AS dora_owes;

-- credit_left_over_is_consumed_by_the_next_invoice: Carl pays for March in
-- advance, then cancels on Mar 11 with proration: 21 of 31 days unused,
-- 67.74 credited.  He owes nothing, so all of it is account credit; the
-- cycle's next invoice would be paid from it, but he has none.  He
-- resubscribes on Mar 20 to the basic plan: the 10.00 invoice is paid from
-- the credit, 57.74 is left.
SET billing.clock = '2026-03-01 12:00+00';
SELECT billing.subscribe(:carl, :pro) AS carl_sub \gset
SELECT billing.apply_payment(:carl, '100.00 USD', 'cash', idempotency_key => 'c-1') IS NOT NULL AS paid;
SET billing.clock = '2026-03-11 12:00+00';
SELECT billing.cancel_subscription(:carl, :carl_sub, at_period_end => false, prorate => true);
SELECT * FROM invoices WHERE account_id = :carl;
SELECT * FROM credit WHERE account_id = :carl;
SET billing.clock = '2026-03-20 12:00+00';
SELECT billing.subscribe(:carl, :basic) IS NOT NULL AS resubscribed;
SELECT * FROM invoices WHERE account_id = :carl;
SELECT * FROM credit WHERE account_id = :carl;

-- credit_is_refundable: Carl asks for 20.00 of his credit back, then the
-- rest; a retry with the same key returns the same refund; more than the
-- credit is refused and writes nothing.
SELECT billing.refund_credit(:carl, '20.00 USD', 'customer asked', 'cr-1') AS carl_refund \gset
SELECT billing.refund_credit(:carl, '20.00 USD', 'customer asked', 'cr-1') = :carl_refund AS same_refund;
SELECT * FROM credit WHERE account_id = :carl;
SELECT billing_test_error(format('SELECT billing.refund_credit(%s, %L)', :carl, '37.75 USD')) AS more_than_the_credit;
SELECT billing_test_error(format('SELECT billing.refund_credit(%s, %L)', :carl, '-1.00 USD')) AS negative;
SELECT billing_test_error(format('SELECT billing.refund_credit(%s, %L)', :carl, '1.00 EUR')) AS other_currency;
SELECT billing_test_error(format('SELECT billing.refund_credit(%s, %L, NULL, %L)', :carl, '1.00 USD', 'cr-1'))
    AS key_reused;
SELECT billing.refund_credit(:carl) IS NOT NULL AS rest_refunded;
SELECT * FROM credit WHERE account_id = :carl;
SELECT billing_test_error(format('SELECT billing.refund_credit(%s)', :carl)) AS nothing_left;
SELECT r.payment_id, r.amount, r.from_credit, e.ledger_account, e.amount AS posted
FROM billing.refund r
JOIN billing.ledger_transaction t ON t.account_id = r.account_id AND t.kind = 'refund' AND t.source_id = r.refund_id
JOIN billing.ledger_entry e ON e.account_id = t.account_id AND e.txn_id = t.txn_id
WHERE r.account_id = :carl ORDER BY r.refund_id, e.entry_id;

-- no_dunning_for_money_not_owed: dunning long after every due date reminds
-- Dora of the 55.00 she still owes on February's invoice, and nobody of
-- the credit invoices.
SELECT billing.create_dunning_policy('standard', is_default => true) IS NOT NULL AS policy;
SET billing.clock = '2026-03-25 12:00+00';
CALL billing.run_dunning();
SELECT a.account_id, i.number, i.total, i.amount_due, a.action
FROM billing.dunning_action a JOIN billing.invoice i USING (account_id, invoice_id)
ORDER BY a.account_id, i.invoice_id, a.action;
SELECT count(*) AS actions_on_credit_invoices
FROM billing.dunning_action a JOIN billing.invoice i USING (account_id, invoice_id)
WHERE billing.to_numeric(i.total) <= 0;

-- installments_on_time_are_never_dunned, installment_missed_is_dunned:
-- Ivy and Max each owe 90.00 (due Apr 11), spread over three monthly
-- installments of 30.00 from the due date.  Ivy pays each on its day and
-- is never reminded, charged or suspended; Max misses May's: dunning goes
-- by May 11 and asks for 30.00 (the June installment is not due yet), the
-- late fee is 2% of that; once he catches up nothing more happens.
SELECT billing.create_price(:product, 'USD', 90.00) AS p90 \gset
SELECT billing.create_account(:entity, 'Ivy', payment_terms_days => 10) AS ivy \gset
SELECT billing.create_account(:entity, 'Max', payment_terms_days => 10) AS max \gset
SET billing.clock = '2026-04-01 12:00+00';
SELECT billing.subscribe(:ivy, :p90) AS ivy_sub \gset
SELECT billing.subscribe(:max, :p90) AS max_sub \gset
SELECT billing.cancel_subscription(:ivy, :ivy_sub), billing.cancel_subscription(:max, :max_sub);
SELECT i.invoice_id AS ivy_inv FROM billing.invoice i WHERE i.account_id = :ivy \gset
SELECT i.invoice_id AS max_inv FROM billing.invoice i WHERE i.account_id = :max \gset
SELECT * FROM billing.create_installment_plan(:ivy, :ivy_inv, 3);
SELECT count(*) AS installments FROM billing.create_installment_plan(:max, :max_inv, 3);
SET billing.clock = '2026-04-11 12:00+00';
SELECT billing.apply_payment(:ivy, '30.00 USD', 'cash', idempotency_key => 'i-1') IS NOT NULL AS ivy_paid,
       billing.apply_payment(:max, '30.00 USD', 'cash', idempotency_key => 'm-1') IS NOT NULL AS max_paid;
SET billing.clock = '2026-04-20 12:00+00';
CALL billing.run_dunning();
SET billing.clock = '2026-05-11 12:00+00';
SELECT billing.apply_payment(:ivy, '30.00 USD', 'cash', idempotency_key => 'i-2') IS NOT NULL AS ivy_paid;
SET billing.clock = '2026-05-20 12:00+00';
CALL billing.run_dunning();
SELECT i.account_id = :max AS is_max, a.action, a.outcome, a.due_on, a.amount_due
FROM billing.dunning_action a JOIN billing.invoice i USING (account_id, invoice_id)
WHERE a.account_id IN (:ivy, :max) ORDER BY a.account_id, a.due_on, a.step_id;
SELECT total FROM billing.invoice WHERE account_id = :max AND billing_reason = 'late_fee';
SELECT payload ->> 'amount_due' AS asked, payload ->> 'invoice_amount_due' AS invoice_due,
       payload ->> 'due_date' AS due_date, payload ->> 'days_overdue' AS days_overdue
FROM billing.outbox WHERE account_id = :max AND event_type = 'dunning.reminder';
SET billing.clock = '2026-05-22 12:00+00';
SELECT billing.apply_payment(:max, '30.00 USD', 'cash', idempotency_key => 'm-2',
                             invoice_ids => ARRAY[:max_inv]::bigint[]) IS NOT NULL AS max_caught_up;
SET billing.clock = '2026-06-05 12:00+00';
CALL billing.run_dunning();
SET billing.clock = '2026-06-11 12:00+00';
SELECT billing.apply_payment(:ivy, '30.00 USD', 'cash', idempotency_key => 'i-3') IS NOT NULL AS ivy_paid,
       billing.apply_payment(:max, '30.00 USD', 'cash', idempotency_key => 'm-3',
                             invoice_ids => ARRAY[:max_inv]::bigint[]) IS NOT NULL AS max_paid;
SET billing.clock = '2026-06-20 12:00+00';
CALL billing.run_dunning();
SELECT count(*) FILTER (WHERE a.account_id = :ivy) AS ivy_actions,
       count(*) FILTER (WHERE a.account_id = :max AND a.invoice_id = :max_inv AND a.taken_on > '2026-05-20')
           AS max_actions_after_catching_up
FROM billing.dunning_action a;
-- (the late fee itself is an invoice of its own, due May 30, still unpaid: dunned as any invoice)
SELECT i.billing_reason, a.action, a.amount_due FROM billing.dunning_action a JOIN billing.invoice i USING (account_id, invoice_id)
WHERE a.account_id = :max AND a.invoice_id <> :max_inv ORDER BY a.due_on, a.step_id;
SELECT status FROM billing.subscription WHERE subscription_id = :max_sub;
SELECT account_id = :ivy AS is_ivy, status FROM billing.invoice WHERE account_id IN (:ivy, :max) AND invoice_id IN (:ivy_inv, :max_inv)
ORDER BY 1;

-- suspended_is_not_previewed_and_leaves_mrr: Sue pays July, not August;
-- dunning suspends her on Aug 25.  While suspended, the cycle bills her
-- nothing, so the preview and the upcoming invoices show nothing either,
-- and her MRR leaves in August as churn; she pays on Sep 2, is restored,
-- billed again from that day, and comes back as a reactivation.
SELECT billing.create_account(:entity, 'Sue', payment_terms_days => 10) AS sue \gset
SET billing.clock = '2026-07-01 12:00+00';
SELECT billing.subscribe(:sue, :pro) AS sue_sub \gset
SELECT billing.apply_payment(:sue, '100.00 USD', 'cash', idempotency_key => 's-1') IS NOT NULL AS paid;
SET billing.clock = '2026-08-01 12:00+00';
CALL billing.run_cycle();
SET billing.clock = '2026-08-26 12:00+00';
CALL billing.run_dunning();
SELECT status FROM billing.subscription WHERE subscription_id = :sue_sub;
SELECT count(*) AS preview_lines FROM billing.preview_invoice(:sue);
SELECT count(*) AS upcoming FROM billing.upcoming_invoices(30) WHERE account_id = :sue;
SET billing.clock = '2026-09-01 12:00+00';
CALL billing.run_cycle();
SELECT count(*) AS invoices_while_suspended FROM billing.invoice
WHERE account_id = :sue AND issue_date >= '2026-08-26' AND billing_reason <> 'late_fee';
SET billing.clock = '2026-09-02 12:00+00';
SELECT billing.apply_payment(:sue, '100.00 USD', 'cash', idempotency_key => 's-2') IS NOT NULL AS paid;
CALL billing.run_dunning();
SELECT status, next_bill_date FROM billing.subscription WHERE subscription_id = :sue_sub;
SELECT bill_date, billing.sum(amount) AS total FROM billing.preview_invoice(:sue) GROUP BY 1;
CALL billing.run_cycle();
SELECT number, issue_date, total, status FROM billing.invoice WHERE account_id = :sue ORDER BY invoice_id;
SELECT month, mrr_before, mrr_after, movement FROM billing.mrr_movements WHERE account_id = :sue ORDER BY month;

-- coupon_running_is_not_replaced_silently, coupon_codes_ignore_case: a
-- coupon still running stays unless the caller replaces it; SUMMER and
-- summer are one code, for applying and for creating.
SELECT billing.create_coupon('SUMMER', 'forever', percent_off => 10) AS summer \gset
SELECT billing.create_coupon('Winter', 'once', percent_off => 50) AS winter \gset
SELECT billing_test_error($$SELECT billing.create_coupon('summer', 'once', percent_off => 5)$$) AS same_code_lower_case;
SELECT billing.apply_coupon(:sue, :sue_sub, 'summer');
SELECT coupon_id = :summer AS has_summer, coupon_until FROM billing.subscription WHERE subscription_id = :sue_sub;
SELECT billing_test_error(format('SELECT billing.apply_coupon(%s, %s, %L)', :sue, :sue_sub, 'WINTER')) AS replace_running;
SELECT coupon_id = :summer AS still_summer FROM billing.subscription WHERE subscription_id = :sue_sub;
SELECT billing.apply_coupon(:sue, :sue_sub, 'WINTER', replace => true);
SELECT coupon_id = :winter AS now_winter, coupon_until > coupon_from AS for_one_period
FROM billing.subscription WHERE subscription_id = :sue_sub;
SELECT billing_test_error(format('SELECT billing.apply_coupon(%s, %s, %L)', :sue, :sue_sub, 'autumn')) AS unknown_code;

-- quantity_change_prorates_the_difference: 10 seats at 1.00 from Apr 1,
-- 20 from Apr 9 (a 30-day month): 8 days of 10 and 22 days of 20 are
-- 2.67 + 14.67 = 17.33 as their own prorations, and April costs exactly
-- that: 10.00 billed plus one line of 7.33 for the 10 more seats, not a
-- credit of the 10 and a charge of the 20 each rounded (17.34).
SELECT billing.create_price(:product, 'USD', 1.00, scheme => 'per_unit') AS seat \gset
SELECT billing.create_account(:entity, 'Seth') AS seth \gset
SET billing.clock = '2027-04-01 12:00+00';
SELECT billing.subscribe(:seth, :seat, quantity => 10) AS seth_sub \gset
SET billing.clock = '2027-04-09 12:00+00';
SELECT billing.change_subscription(:seth, :seth_sub, quantity => 20, proration => 'prorate_now') IS NOT NULL AS changed;
SELECT l.kind, l.description, l.quantity, l.amount
FROM billing.invoice_line l WHERE l.account_id = :seth ORDER BY l.invoice_id, l.invoice_line_id;
SELECT billing.sum(total) AS april FROM billing.invoice WHERE account_id = :seth;
-- and back down to 5 on Apr 24 (7 days left): a credit of the difference,
-- 15 seats for 7 days, -3.50; April is 10 x 8 + 20 x 15 + 5 x 7 seat-days
-- of 1.00 / 30 = 13.83
SET billing.clock = '2027-04-24 12:00+00';
SELECT billing.change_subscription(:seth, :seth_sub, quantity => 5, proration => 'prorate_now') IS NOT NULL AS changed;
SELECT l.description, l.quantity, l.amount FROM billing.invoice_line l
WHERE l.account_id = :seth AND l.kind = 'proration' ORDER BY l.invoice_line_id;
SELECT billing.sum(total) AS april FROM billing.invoice WHERE account_id = :seth;
SELECT billing.account_balance(:seth) AS seth_owes;

-- usage_line_clipped_to_the_item, metered_invoice_has_a_period: Mia's
-- metered subscription starts on May 10, anchored on the 1st; May's usage
-- is billed on Jun 1 on a line for [May 10, Jun 1), the days the item
-- existed, and the invoice (usage only) carries that period.
SELECT billing.create_price(:product, 'USD', 0.10, scheme => 'per_unit', usage_type => 'metered') AS api \gset
SELECT billing.create_account(:entity, 'Mia') AS mia \gset
SET billing.clock = '2027-05-10 12:00+00';
SELECT billing.subscribe(:mia, :api, anchor => '2027-05-01') AS mia_sub \gset
SELECT subscription_item_id AS mia_item FROM billing.subscription_item WHERE subscription_id = :mia_sub \gset
SELECT billing.record_usage(:mia, :mia_item, 100, 'mia-1', '2027-05-12 10:00+00') IS NOT NULL AS recorded;
SELECT billing_test_error(format('SELECT billing.record_usage(%s, %s, 1, %L, %L)', :mia, :mia_item, 'mia-0',
                                 '2027-05-09 10:00+00')) AS before_the_item;
SET billing.clock = '2027-06-01 12:00+00';
SELECT bill_date, kind, period_start, period_end, amount FROM billing.preview_invoice(:mia);
CALL billing.run_cycle();
SELECT l.kind, l.quantity, l.amount, l.period_start, l.period_end
FROM billing.invoice_line l WHERE l.account_id = :mia ORDER BY l.invoice_line_id;
SELECT total, period_start, period_end FROM billing.invoice WHERE account_id = :mia AND billing.to_numeric(total) > 0;
-- a late event of May, recorded in June, is billed as the difference on the
-- next invoice, for the same clipped period
SELECT billing.record_usage(:mia, :mia_item, 50, 'mia-2', '2027-05-31 10:00+00') IS NOT NULL AS late;
SET billing.clock = '2027-07-01 12:00+00';
CALL billing.run_cycle();
SELECT l.quantity, l.amount, l.period_start, l.period_end
FROM billing.invoice_line l WHERE l.account_id = :mia ORDER BY l.invoice_line_id;

-- price_change_notice_arrives_its_days_before: with 30 days of notice, a
-- price change made on May 9 is dated at the start of July (the end of the
-- billed period, June 1, is only 23 days away): its notice is written on
-- Jun 1, 30 days before, not on May 31; June is still billed at the old
-- price, July at the new.
SELECT billing.set_price_change_notice_days(30);
SELECT billing.create_account(:entity, 'Nora') AS nora \gset
SET billing.clock = '2027-05-01 12:00+00';
SELECT billing.subscribe(:nora, :basic) AS nora_sub \gset
SET billing.clock = '2027-05-09 12:00+00';
SELECT billing_test_error(format('SELECT billing.change_subscription(%s, %s, price_id => %s, proration => %L, effective_date => %L)',
                                 :nora, :nora_sub, :pro, 'at_period_end', '2027-06-15')) AS not_a_period_start;
SELECT billing_test_error(format('SELECT billing.change_subscription(%s, %s, price_id => %s, proration => %L, effective_date => %L)',
                                 :nora, :nora_sub, :pro, 'at_period_end', '2027-04-01')) AS in_the_past;
SELECT billing.change_subscription(:nora, :nora_sub, price_id => :pro, proration => 'at_period_end',
                                   effective_date => '2027-07-01') IS NOT NULL AS scheduled;
SET billing.clock = '2027-05-31 12:00+00';
CALL billing.run_dunning();
SELECT count(*) AS notices_may_31 FROM billing.outbox WHERE account_id = :nora AND event_type = 'subscription.price_change_notice';
SET billing.clock = '2027-06-01 12:00+00';
CALL billing.run_dunning();
SELECT payload ->> 'effective_date' AS effective, (payload ->> 'effective_date')::date - '2027-06-01'::date AS days_ahead
FROM billing.outbox WHERE account_id = :nora AND event_type = 'subscription.price_change_notice';
CALL billing.run_cycle();
SET billing.clock = '2027-07-01 12:00+00';
CALL billing.run_cycle();
SELECT issue_date, total FROM billing.invoice WHERE account_id = :nora ORDER BY invoice_id;

-- cadence_change_credits_and_starts_the_new_cadence: Yara pays 120.00 for
-- 2027 on Jan 1 and moves to 12.00 a month on Apr 1.  The unused 275 of
-- 365 days are credited (90.41), the first month charged from Apr 1 on the
-- same invoice, and the rest (78.41) is account credit that pays her next
-- months; she is billed on the 1st of each month from now on.
SELECT billing.create_price(:product, 'USD', 120.00, cadence => '1 year') AS yearly \gset
SELECT billing.create_price(:product, 'USD', 12.00) AS monthly \gset
SELECT billing.create_account(:entity, 'Yara') AS yara \gset
SET billing.clock = '2027-01-01 12:00+00';
SELECT billing.subscribe(:yara, :yearly) AS yara_sub \gset
SELECT billing.apply_payment(:yara, '120.00 USD', 'card', idempotency_key => 'y-1') IS NOT NULL AS paid;
SET billing.clock = '2027-04-01 12:00+00';
SELECT billing_test_error(format('SELECT billing.change_subscription(%s, %s, price_id => %s, proration => %L)',
                                 :yara, :yara_sub, :monthly, 'at_period_end')) AS at_period_end;
SELECT billing.change_subscription(:yara, :yara_sub, price_id => :monthly, proration => 'prorate_now') IS NOT NULL
    AS changed;
SELECT l.kind, l.description, l.amount, l.period_start, l.period_end
FROM billing.invoice_line l JOIN billing.invoice i USING (account_id, invoice_id)
WHERE l.account_id = :yara AND i.issue_date = '2027-04-01' ORDER BY l.invoice_line_id;
SELECT cadence, anchor, next_bill_date FROM billing.subscription WHERE subscription_id = :yara_sub;
SELECT * FROM credit WHERE account_id = :yara;
SET billing.clock = '2027-05-01 12:00+00';
CALL billing.run_cycle();
SELECT issue_date, total, status, period_start, period_end FROM billing.invoice WHERE account_id = :yara ORDER BY invoice_id;
SELECT * FROM credit WHERE account_id = :yara;

-- trial_usage_is_free_unless_the_price_bills_it: Tom and Una each start a
-- 14-day trial of a metered API on Aug 1, 2027 (0.10 per call, trial ends
-- Aug 15, the anchor).  Tom's price leaves trial usage free (the default):
-- the 300 calls of his trial are on the Aug 15 invoice at 0.00, on a line
-- of their own for [Aug 1, Aug 15), and are not billed again; his 50 calls
-- after the trial are billed 5.00 on Sep 15.  Una's price bills trial
-- usage: her 300 calls are 30.00 on Aug 15.
SELECT billing.create_price(:product, 'USD', 0.10, scheme => 'per_unit', usage_type => 'metered',
                            trial_days => 14) AS api_free \gset
SELECT billing.create_price(:product, 'USD', 0.10, scheme => 'per_unit', usage_type => 'metered',
                            trial_days => 14, bill_trial_usage => true) AS api_billed \gset
SELECT billing.create_account(:entity, 'Tom') AS tom \gset
SELECT billing.create_account(:entity, 'Una') AS una \gset
SET billing.clock = '2027-08-01 12:00+00';
SELECT billing.subscribe(:tom, :api_free) AS tom_sub \gset
SELECT billing.subscribe(:una, :api_billed) AS una_sub \gset
SELECT subscription_item_id AS tom_item FROM billing.subscription_item WHERE subscription_id = :tom_sub \gset
SELECT subscription_item_id AS una_item FROM billing.subscription_item WHERE subscription_id = :una_sub \gset
SELECT trial_end, anchor FROM billing.subscription WHERE subscription_id IN (:tom_sub, :una_sub) ORDER BY subscription_id;
SELECT billing.record_usage(:tom, :tom_item, 200, 'tom-1', '2027-08-03 10:00+00') IS NOT NULL AS recorded,
       billing.record_usage(:tom, :tom_item, 100, 'tom-2', '2027-08-14 23:00+00') IS NOT NULL AS last_trial_day,
       billing.record_usage(:una, :una_item, 300, 'una-1', '2027-08-10 10:00+00') IS NOT NULL AS una_recorded;
SET billing.clock = '2027-08-15 12:00+00';
SELECT billing.record_usage(:tom, :tom_item, 50, 'tom-3', '2027-08-15 09:00+00') IS NOT NULL AS first_paid_day;
SELECT 'Tom' AS who, kind, description, quantity, amount, period_start, period_end
FROM billing.preview_invoice(:tom) UNION ALL
SELECT 'Una', kind, description, quantity, amount, period_start, period_end
FROM billing.preview_invoice(:una);
CALL billing.run_cycle();
SELECT l.account_id, l.description, l.quantity, l.amount, l.period_start, l.period_end
FROM billing.invoice_line l WHERE l.account_id IN (:tom, :una) ORDER BY l.account_id, l.invoice_line_id;
-- a late event of the trial, recorded after the Aug 15 invoice, is still free
SELECT billing.record_usage(:tom, :tom_item, 10, 'tom-4', '2027-08-12 10:00+00') IS NOT NULL AS late_trial_event;
SET billing.clock = '2027-09-15 12:00+00';
SELECT kind, description, quantity, amount, period_start, period_end FROM billing.preview_invoice(:tom);
CALL billing.run_cycle();
SELECT i.issue_date, l.description, l.quantity, l.amount, l.period_start, l.period_end
FROM billing.invoice_line l JOIN billing.invoice i USING (account_id, invoice_id)
WHERE l.account_id = :tom ORDER BY l.invoice_line_id;
SELECT account_id, billing.sum(total) AS billed FROM billing.invoice WHERE account_id IN (:tom, :una)
GROUP BY account_id ORDER BY account_id;
-- the setting is for metered prices, and can be changed
SELECT billing_test_error(format('SELECT billing.create_price(%s, %L, 5, bill_trial_usage => true)', :product, 'USD'))
    AS licensed_refused;
SELECT billing_test_error(format('SELECT billing.update_price(%s, bill_trial_usage => true)', :basic))
    AS licensed_update_refused;
SELECT billing.update_price(:api_free, bill_trial_usage => true);
SELECT bill_trial_usage FROM billing.price WHERE price_id = :api_free;

-- amounts_as_numbers_in_the_accounts_currency: every money function of an
-- account takes a plain number in the account's currency, exactly (more
-- decimals than the currency has are refused, never rounded); a quoted
-- '12.00 USD' is still an amount.  Kai (USD) pays 58.31 of her 100.00,
-- then the rest, gets 8.31 back, a credit note of 5 (which pays 5 of the
-- 8.31 due again) and a chargeback of 1; Ken (JPY) pays 1000 yen.
SELECT billing.create_account(:entity, 'Kai') AS kai \gset
SELECT billing.create_account(:entity, 'Ken', currency => 'JPY') AS ken \gset
SET billing.clock = '2027-10-01 12:00+00';
SELECT billing.subscribe(:kai, :pro) AS kai_sub \gset
SELECT invoice_id AS kai_inv FROM billing.invoice WHERE account_id = :kai \gset
SELECT billing.apply_payment(:kai, 58.31, 'cash', idempotency_key => 'kai-1') AS kai_pay \gset
SELECT billing.apply_payment(:kai, '41.69 USD', 'cash', idempotency_key => 'kai-2') AS kai_pay2 \gset
SELECT amount FROM billing.payment WHERE account_id = :kai ORDER BY payment_id;
SELECT billing.refund_payment(:kai, :kai_pay, 8.31, 'partial') IS NOT NULL AS refunded,
       billing.issue_credit_note(:kai, :kai_inv, 5, 'credit_balance') IS NOT NULL AS credited,
       billing.record_chargeback(:kai, :kai_pay2, 1) IS NOT NULL AS charged_back;
SELECT kind, amount FROM billing.refund WHERE account_id = :kai ORDER BY refund_id;
SELECT amount FROM billing.credit_note WHERE account_id = :kai;
-- she then pays 20 more than she owes: 15.69 of credit, 2.50 of it back
SELECT billing.apply_payment(:kai, 20, 'cash', idempotency_key => 'kai-3') IS NOT NULL AS overpaid;
SELECT * FROM credit WHERE account_id = :kai;
SELECT billing.refund_credit(:kai, 2.5) IS NOT NULL AS credit_refunded;
SELECT * FROM credit WHERE account_id = :kai;
SELECT kind, amount FROM billing.refund WHERE account_id = :kai ORDER BY refund_id;
SELECT billing.apply_payment(:ken, 1000, 'cash') IS NOT NULL AS yen_paid;
SELECT amount FROM billing.payment WHERE account_id = :ken;
SELECT billing_test_error(format('SELECT billing.apply_payment(%s, 10.5, %L)', :ken, 'cash')) AS half_a_yen,
       billing_test_error(format('SELECT billing.apply_payment(%s, 1.001, %L)', :kai, 'cash')) AS tenth_of_a_cent,
       billing_test_error(format('SELECT billing.refund_credit(%s, 0.005)', :kai)) AS half_a_cent_back;
SELECT count(*) AS kai_payments FROM billing.payment WHERE account_id = :kai;
SELECT (billing.add_invoice_item(:kai, 150, 'Installation', invoice_now => true)).invoice_id AS kai_install \gset
SELECT billing_reason, total, status FROM billing.invoice WHERE invoice_id = :kai_install;
SELECT billing.create_coupon('TENOFF', 'once', amount_off => 10, currency => 'USD') AS tenoff \gset
SELECT code, amount_off FROM billing.coupon WHERE coupon_id = :tenoff;
SELECT billing_test_error($$SELECT billing.create_coupon('NOCUR', 'once', amount_off => 10, currency => NULL)$$)
    AS coupon_without_currency;
-- the allocation of the discount still sums exactly: 1/3 shares as numerics
SELECT billing.allocate('10.00 USD', ARRAY[1/3::numeric, 1/3::numeric, 1/3::numeric]) AS thirds;

-- credit_note_to_credit_settles_what_is_owed: Lia owes 10.00 on each of
-- two invoices (Nov 1 and Dec 1, 2027).  A credit note of 10.00 on the
-- December invoice, to her credit balance, pays the November one first
-- (oldest due first); one of 5.00 on the (now paid) November invoice pays
-- half of December's.  Nothing is left as credit, 5.00 is still due, and
-- dunning reminds her of those 5.00 only.
SELECT billing.create_account(:entity, 'Lia', payment_terms_days => 5) AS lia \gset
SET billing.clock = '2027-11-01 12:00+00';
SELECT billing.subscribe(:lia, :basic) AS lia_sub \gset
SET billing.clock = '2027-12-01 12:00+00';
CALL billing.run_cycle();
SELECT min(invoice_id) AS lia_first, max(invoice_id) AS lia_second FROM billing.invoice WHERE account_id = :lia \gset
SELECT billing.issue_credit_note(:lia, :lia_second, '10.00 USD', 'credit_balance') IS NOT NULL AS credited;
SELECT * FROM invoices WHERE account_id = :lia;
SELECT * FROM credit WHERE account_id = :lia;
SELECT billing.issue_credit_note(:lia, :lia_first, '5.00 USD', 'credit_balance') IS NOT NULL AS credited_again;
SELECT * FROM invoices WHERE account_id = :lia;
SELECT * FROM credit WHERE account_id = :lia;
SELECT billing_test_error(format('SELECT billing.issue_credit_note(%s, %s, %L, %L)', :lia, :lia_second, '0.01 USD',
                                 'credit_balance')) AS beyond_the_total;
SET billing.clock = '2027-12-20 12:00+00';
CALL billing.run_dunning();
SELECT x.invoice_id = :lia_second AS second_invoice, x.action, x.outcome, x.amount_due
FROM billing.dunning_action x WHERE x.account_id = :lia ORDER BY x.invoice_id, x.day_offset;

SELECT * FROM billing.check_invariants();

\c contrib_regression
DROP DATABASE money_paths_regress;
