--
-- The dunning funnel: billing.dunning_funnel over fixed data,
-- with the expected figures worked out by hand below.
--
CREATE DATABASE dunning_funnel_regress;
\c dunning_funnel_regress
\i test/regress_own_database.sql

-- A policy without late fees (so that no fee invoice joins the funnel):
-- -3 remind, +1 remind, +10 suspend, +20 write off.
SELECT billing.create_dunning_policy('funnel', '[{"day_offset": -3, "action": "remind", "name": "soon"},
    {"day_offset": 1, "action": "remind", "name": "late"}, {"day_offset": 10, "action": "suspend", "name": "suspend"},
    {"day_offset": 20, "action": "write_off", "name": "write_off"}]', is_default => true) AS policy \gset

-- Five customers, one invoice each on Jan 1, due Jan 15 (14 days), no tax:
--   A 100.00 USD pays on Jan 13, before the due date
--   B  50.00 USD pays on Jan 20 (+5)
--   C  30.00 USD pays on Jan 30 (+15), after its suspension
--   D  20.00 USD never pays: written off on Feb 4 (+20)
--   E  40.00 EUR pays 10.00 on Jan 17 (+2), never the rest: written off
SELECT billing.create_billing_entity('Acme', 'USD') AS entity \gset
SELECT billing.create_product('Plan') AS product \gset
SELECT billing.subscribe(billing.create_account(:entity, name, currency => cur, payment_terms_days => 14),
                         billing.create_price(:product, cur, amount)) IS NOT NULL AS subscribed
FROM (VALUES ('A', 'USD', 100.00), ('B', 'USD', 50.00), ('C', 'USD', 30.00), ('D', 'USD', 20.00),
             ('E', 'EUR', 40.00)) v(name, cur, amount)
ORDER BY name;

CREATE PROCEDURE days(first date, last date) LANGUAGE plpgsql AS $$
BEGIN
    FOR d IN 0 .. last - first LOOP
        PERFORM set_config('billing.clock', (first + d) || ' 12:00+00', false);
        COMMIT;
        CALL billing.run_cycle();
        CALL billing.run_dunning();
    END LOOP;
END $$;

CALL days('2026-01-01', '2026-01-13');
SELECT billing.apply_payment(1, '100.00 USD', 'cash') IS NOT NULL AS a_paid;
CALL days('2026-01-14', '2026-01-17');
SELECT billing.apply_payment(5, '10.00 EUR', 'cash') IS NOT NULL AS e_paid_part;
CALL days('2026-01-18', '2026-01-20');
SELECT billing.apply_payment(2, '50.00 USD', 'cash') IS NOT NULL AS b_paid;
CALL days('2026-01-21', '2026-01-30');
SELECT billing.apply_payment(3, '30.00 USD', 'cash') IS NOT NULL AS c_paid;
CALL days('2026-01-31', '2026-02-04');

-- What happened, invoice by invoice (the February invoices of A, B and E
-- are not due for any step yet; C and D were suspended on Feb 1: not billed).
SELECT a.name, i.invoice_id, i.currency, i.status, x.day_offset, x.amount_due, x.outcome
FROM billing.dunning_action x
JOIN billing.invoice i USING (account_id, invoice_id)
JOIN billing.account a USING (account_id)
ORDER BY a.name, x.day_offset;

-- By hand, USD:
--   -3 (Jan 12): A B C D reached it, owing 100 + 50 + 30 + 20 = 200.00;
--                A B C paid since: 3, 180.00, rate 3/4 = 0.7500; D written off
--   +1 (Jan 16): B C D, 50 + 30 + 20 = 100.00; B C recovered: 2, 80.00,
--                rate 2/3 = 0.6667; D written off
--  +10 (Jan 25): C D, 30 + 20 = 50.00; C recovered: 1, 30.00, 0.5000
--  +20 (Feb 4):  D, 20.00; none recovered, 0.00, 0.0000; written off 1
-- EUR (E, 40.00, 10.00 paid on Jan 17, after the +1 reminder):
--   -3 and +1: 1 invoice owing 40.00; +10 and +20: owing 30.00; never
--   recovered, written off at +20.
SELECT day_offset, action, step, currency, invoices, amount_due, recovered, recovered_amount, recovery_rate,
       still_open, written_off
FROM billing.dunning_funnel
WHERE policy = 'funnel'
ORDER BY currency DESC, day_offset;

-- Every column is documented.
SELECT a.attname, col_description('billing.dunning_funnel'::regclass, a.attnum) IS NOT NULL AS commented
FROM pg_attribute a WHERE a.attrelid = 'billing.dunning_funnel'::regclass AND a.attnum > 0
ORDER BY a.attnum;
SELECT count(*) AS broken FROM billing.check_invariants();

\c contrib_regression
DROP DATABASE dunning_funnel_regress;
