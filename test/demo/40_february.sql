\echo
\echo '== 4. February: the monthly cycle, usage in arrears, a late payer, a downgrade, a suspension'
CALL demo.days_until('2026-02-01');
\echo '   February 1: the cycle (pg_cron would run it every night) bills the monthly plans. Anna''s'
\echo '   invoice carries her January API calls; Dario still has the coupon; Chie, billed yearly, is not:'
SELECT number, customer, issue_date, due_date, subtotal, discount, tax, total
FROM demo.invoices WHERE issue_date = '2026-02-01' ORDER BY number;
\echo '   Anna''s invoice line by line (usage: 30 days of calls at 0.002 EUR each):'
SELECT l.kind, l.description, l.quantity, l.amount, l.period_start, l.period_end
FROM invoice_line l JOIN invoice i USING (account_id, invoice_id)
WHERE i.account_id = :anna AND i.issue_date = '2026-02-01' ORDER BY l.invoice_line_id;

\echo '   Dario has not paid his January invoice (due January 31). Dunning so far, one row per step'
\echo '   taken (a reminder 3 days before, one the day after the due date):'
SELECT i.number, i.due_date, x.taken_on, x.name, x.outcome, x.amount_due
FROM (SELECT d.*, s.name FROM dunning_action d JOIN dunning_step s USING (step_id)) x
JOIN invoice i USING (account_id, invoice_id) WHERE x.account_id = :dario ORDER BY x.taken_on;
\echo '   The reminder Dario receives, as the email worker writes it from the outbox event:'
SELECT format(E'To: %s\nSubject: Reminder: invoice %s is overdue\n\nDear %s, invoice %s of %s (%s) was due on %s.\nPlease pay %s.',
              payload->>'email', payload->>'number', payload->>'account_name',
              payload->>'number', payload->>'issue_date', payload->>'total', payload->>'due_date',
              payload->>'amount_due') AS email
FROM outbox WHERE event_type = 'dunning.reminder' AND account_id = :dario
ORDER BY event_id DESC LIMIT 1;
\echo '   Dario and Eve are past due (an invoice overdue) but keep their access for now:'
SELECT * FROM demo.access ORDER BY customer;

CALL demo.days_until('2026-02-05');
\echo '   February 5: an outage; Anna gets a credit note of 11.90 EUR on her February invoice (its'
\echo '   VAT share is credited too) before she pays the rest on February 6:'
SELECT issue_credit_note(:anna, (SELECT invoice_id FROM invoice WHERE account_id = :anna AND issue_date = '2026-02-01'),
                         '11.90 EUR', reason => 'outage on Feb 3') AS credit_note \gset
SELECT c.amount, c.tax, c.method, c.reason, i.number, i.total, i.amount_due
FROM credit_note c JOIN invoice i USING (account_id, invoice_id) WHERE c.credit_note_id = :credit_note;
CALL demo.days_until('2026-02-06');
SELECT apply_payment(:anna, (SELECT amount_due FROM invoice WHERE account_id = :anna AND status = 'open'),
                     'bank_transfer', reference => 'SEPA-0003') IS NOT NULL AS anna_paid \gset

CALL demo.days_until('2026-02-09');
\echo '   February 7 was a week past the due date: Dario was charged a late fee, an invoice of its own'
\echo '   (2% of what was due, no tax):'
SELECT number, customer, issue_date, due_date, subtotal, discount, tax, total FROM demo.invoices
WHERE reason = 'late_fee' ORDER BY number;
\echo '   February 9: Dario pays everything he owes (January, February, the fee) in one transfer;'
\echo '   the payment goes to his open invoices, oldest due first:'
SELECT apply_payment(:dario, (SELECT sum(amount_due) FROM invoice WHERE account_id = :dario AND status = 'open'),
                     'bank_transfer', reference => 'SEPA-IT-77') AS dario_payment \gset
SELECT i.number, i.reason, i.total, pa.amount AS paid_by_this_payment, i.status
FROM payment_application pa JOIN invoice inv USING (account_id, invoice_id)
JOIN demo.invoices i ON i.number = inv.number
WHERE pa.account_id = :dario AND pa.payment_id = :dario_payment ORDER BY i.number;
\echo '   ... and as a courtesy the late fee is refunded to him (a credit note paid back in cash):'
SELECT issue_credit_note(:dario, (SELECT invoice_id FROM invoice WHERE account_id = :dario AND billing_reason = 'late_fee'),
                         (SELECT total FROM invoice WHERE account_id = :dario AND billing_reason = 'late_fee'),
                         method => 'refund', reason => 'late fee waived') IS NOT NULL AS fee_refunded \gset
\echo '   The credit notes so far (tax: the VAT part of the amount; method: how it was settled):'
SELECT a.name AS customer, i.number, c.amount, c.tax, c.method, c.reason
FROM credit_note c JOIN invoice i USING (account_id, invoice_id) JOIN account a USING (account_id)
ORDER BY c.credit_note_id;

CALL demo.days_until('2026-02-10');
\echo '   February 10: Bob downgrades from Pro to Starter at the end of his billed month, so he'
\echo '   keeps Pro until March 1 and nothing is prorated:'
SELECT change_subscription(:bob, :bob_sub, price_id => :starter_usd, proration => 'at_period_end') IS NOT NULL
       AS downgrade_scheduled \gset
SELECT p.nickname AS plan, si.started_on, si.ended_on
FROM subscription_item si JOIN price p USING (price_id) WHERE si.subscription_id = :bob_sub ORDER BY si.started_on;
SELECT apply_payment(:bob, '59.00 USD', 'card', reference => 'ch_1002') IS NOT NULL AS bob_paid \gset

CALL demo.days_until('2026-02-14');
\echo '   February 14: Eve has paid nothing; two weeks past the due date dunning suspends her. The'
\echo '   cycle stops billing her, and she loses access at once: no single sign-on, no projects,'
\echo '   no support tier (Dario is active again, paid up):'
SELECT * FROM demo.access ORDER BY customer;

CALL demo.days_until('2026-02-24');
SELECT apply_payment(:chie, '24000 JPY', 'bank_transfer', reference => 'furikomi-02') IS NOT NULL AS chie_paid \gset
CALL demo.days_until('2026-02-28');
SELECT count(record_usage(:anna, (SELECT subscription_item_id FROM subscription_item WHERE price_id = :api_eur),
                          2500 + 100 * (i % 5), 'feb-' || i, '2026-02-01 10:00+00'::timestamptz + i * interval '1 day'))
       AS february_usage_events FROM generate_series(0, 26) i \gset
