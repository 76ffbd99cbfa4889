-- The data behind the dashboard's picture (test/scenarios/dashboard_png.sh):
-- one seller with customers joining, growing, churning and paying late over
-- six months, and a second seller whose figures must not show.
SET billing.clock = '2026-01-01 12:00+00';
SELECT billing.create_dunning_policy('standard', '[{"day_offset": 1, "action": "remind", "name": "reminder"},
    {"day_offset": 7, "action": "remind", "name": "second reminder"},
    {"day_offset": 30, "action": "write_off", "name": "write off"}]', is_default => true) IS NOT NULL;
SELECT billing.create_billing_entity('Northwind <Analytics> & Co', 'USD') AS nw \gset
SELECT billing.create_billing_entity('Other seller', 'USD') AS other \gset
SELECT billing.create_product('Team') AS team \gset
SELECT billing.create_price(:team, 'USD', 49.00, scheme => 'per_unit') AS seat \gset
SELECT billing.create_price(:team, 'USD', 990.00, cadence => '1 year') AS yearly \gset
SELECT billing.create_account(:other, 'Hidden customer') AS hidden \gset
SELECT billing.subscribe(:hidden, :seat, quantity => 99) IS NOT NULL;

CREATE TEMP TABLE plan (name text, month integer, seats integer, pays boolean);
INSERT INTO plan VALUES ('Ada Ltd', 1, 3, true), ('Babbage GmbH', 1, 5, true), ('<script>alert(1)</script>', 1, 2, false),
    ('Curie SA', 2, 4, true), ('Dijkstra BV', 3, 8, true), ('Euler AB', 3, 2, true), ('Fermat SARL', 4, 6, false),
    ('Gauss KG', 5, 10, true), ('Hopper Inc', 6, 3, true);

CREATE PROCEDURE dashboard_month(m integer) LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_first date := make_date(2026, m, 1);
BEGIN
    PERFORM set_config('billing.clock', v_first || ' 12:00+00', false);
    COMMIT;
    CALL billing.run_cycle();
    FOR r IN SELECT p.* FROM plan p WHERE p.month = m LOOP
        PERFORM billing.subscribe(billing.create_account(1, r.name, payment_terms_days => 10, external_ref => 'dash-' || md5(r.name)),
                                  (SELECT price_id FROM billing.price WHERE scheme = 'per_unit' LIMIT 1), quantity => r.seats);
    END LOOP;
    IF m = 4 THEN   -- Babbage grows, Ada leaves
        PERFORM billing.change_subscription(s.account_id, s.subscription_id, quantity => 9)
        FROM billing.subscription s JOIN billing.account a USING (account_id) WHERE a.name = 'Babbage GmbH';
        PERFORM billing.cancel_subscription(s.account_id, s.subscription_id, at_period_end => false)
        FROM billing.subscription s JOIN billing.account a USING (account_id) WHERE a.name = 'Ada Ltd';
    END IF;
    PERFORM set_config('billing.clock', (v_first + 5) || ' 12:00+00', false);
    PERFORM billing.apply_payment(i.account_id, i.amount_due, 'card')
    FROM billing.invoice i JOIN billing.account a USING (account_id) JOIN plan p ON p.name = a.name
    WHERE i.status = 'open' AND p.pays AND i.issue_date <= v_first + 5;
    COMMIT;
    PERFORM set_config('billing.clock', (v_first + 20) || ' 12:00+00', false);
    COMMIT;
    CALL billing.run_dunning();
END $$;
CALL dashboard_month(1);
CALL dashboard_month(2);
CALL dashboard_month(3);
CALL dashboard_month(4);
CALL dashboard_month(5);
CALL dashboard_month(6);
-- Fermat pays its June invoice late, after the reminders: recovered.
SET billing.clock = '2026-06-25 12:00+00';
SELECT billing.apply_payment(i.account_id, i.amount_due, 'bank_transfer') IS NOT NULL
FROM billing.invoice i JOIN billing.account a USING (account_id)
WHERE a.name = 'Fermat SARL' AND i.status = 'open' AND i.issue_date = '2026-06-01';
