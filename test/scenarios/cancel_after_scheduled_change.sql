-- A subscription with a change scheduled at period end (its new item starts
-- on the next bill date) can still be canceled now: the item that never ran
-- ends on its own first day (an empty life, never billed), the current one
-- on the cancellation day with its prorated credit.  Found by the simulator
-- (make sim SEED=3 DAYS=90 ACCOUNTS=10).
\set ON_ERROR_STOP 1
\ir _helpers.psql

SET billing.clock = '2024-04-01 12:00+00';
SELECT create_billing_entity('Sched GmbH', 'EUR') AS e \gset
SELECT create_product('Plan') AS prod \gset
SELECT create_price(:prod, 'EUR', 30.00, nickname => 'basic') AS basic \gset
SELECT create_price(:prod, 'EUR', 60.00, nickname => 'pro') AS pro \gset
SELECT create_account(:e, 'Sched') AS acct \gset
SELECT subscribe(:acct, :basic) AS sub \gset
SELECT change_subscription(:acct, :sub, price_id => :pro, proration => 'at_period_end') AS later \gset
SELECT expect('the change starts at period end',
    (SELECT started_on FROM subscription_item WHERE subscription_item_id = :later), '2024-05-01'::date);

-- Apr 11 of [Apr 1, May 1): 20 of 30 days unused, 30.00 - R(30 x 10/30) = 20.00 back
SET billing.clock = '2024-04-11 12:00+00';
SELECT cancel_subscription(:acct, :sub, at_period_end => false, prorate => true);
SELECT expect('canceled on Apr 11', (SELECT status || ' ' || canceled_on FROM subscription WHERE subscription_id = :sub),
    'canceled 2024-04-11');
SELECT expect('the scheduled item never runs',
    (SELECT started_on || ' ' || ended_on FROM subscription_item WHERE subscription_item_id = :later),
    '2024-05-01 2024-05-01');
SELECT expect('invoices', invoices_of(:sub), '{"2024-04-01 30.00 EUR","2024-04-11 -20.00 EUR"}'::text[]);
-- the credit pays the open April invoice at once
SELECT expect('April less the credit', (SELECT amount_due FROM invoice WHERE subscription_id = :sub
                                        ORDER BY invoice_id LIMIT 1), '10.00 EUR'::amount);
SELECT expect('no credit left', (SELECT balance FROM account_credit WHERE account_id = :acct), '0.00 EUR'::amount);
SET billing.clock = '2024-06-01 12:00+00';
CALL run_cycle();
SELECT expect('nothing billed after the cancellation', cardinality(invoices_of(:sub)), 2);
SELECT expect('no invariant violated', (SELECT count(*) FROM check_invariants()), 0::bigint);
