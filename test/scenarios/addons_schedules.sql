-- Five months of a SaaS shop on the test clock, run as the business would:
-- one customer adds seats as an add-on and removes them again, then
-- schedules a downgrade; the Team price goes up for one customer by a
-- price migration while another keeps the old price (grandfathered) and
-- takes a scheduled change back.  The cycle runs every day (drive: the
-- preview equals the run, check_invariants() empty every day), dunning on
-- the days the price-change notices are due.  Amounts by hand: R rounds
-- half up to the cent; the share of a period amount P for [a, b) of the
-- period [s, e) is R(P(b-s)/(e-s)) - R(P(a-s)/(e-s)).
\set ON_ERROR_STOP 1
\ir _helpers.psql

SET billing.clock = '2025-01-01 12:00+00';
SELECT create_billing_entity('Shop GmbH', 'EUR') AS e \gset
SELECT create_product('Workspace') AS ws \gset
SELECT create_product('Seats') AS seats \gset
SELECT create_price(:ws, 'EUR', 100.00, nickname => 'Team') AS team \gset
SELECT create_price(:ws, 'EUR', 40.00, nickname => 'Starter') AS starter \gset
SELECT create_price(:seats, 'EUR', 8.00, scheme => 'per_unit', nickname => 'extra seat') AS seat \gset
SELECT set_price_change_notice_days(14);
SELECT create_account(:e, 'Mia') AS mia \gset
SELECT create_account(:e, 'Leo') AS leo \gset
SELECT create_account(:e, 'Ivy') AS ivy \gset
SELECT subscribe(:mia, :team) AS mia_sub \gset
SELECT subscribe(:leo, :team) AS leo_sub \gset
SELECT subscribe(:ivy, :team) AS ivy_sub \gset
-- each pays ahead; the credit pays every invoice as it is issued
SELECT apply_payment(:mia, 1000.00, 'bank_transfer', idempotency_key => 'mia') > 0,
       apply_payment(:leo, 1000.00, 'bank_transfer', idempotency_key => 'leo') > 0,
       apply_payment(:ivy, 1000.00, 'bank_transfer', idempotency_key => 'ivy') > 0;
CALL drive('2025-01-02', '2025-01-15');

-- Jan 16: Mia adds 3 seats (24.00 a month) for the rest of January,
-- [Jan 16, Feb 1) of 31 days: R(24.00 x 31/31) - R(24.00 x 15/31) =
-- 24.00 - R(11.6129) = 24.00 - 11.61 = 12.39 on the next invoice.
SET billing.clock = '2025-01-16 12:00+00';
SELECT add_subscription_item(:mia, :mia_sub, :seat, 3) AS mia_seats \gset
SELECT item AS mia_team FROM (SELECT subscription_item_id AS item FROM subscription_item
                              WHERE subscription_id = :mia_sub AND price_id = :team) x \gset
CALL drive('2025-01-16', '2025-02-04');
-- Feb 1: one invoice, 100.00 + 24.00 + 12.39 = 136.39
SELECT expect('Mia, February', invoices_of(:mia_sub), '{"2025-01-01 100.00 EUR","2025-02-01 136.39 EUR"}'::text[]);
SELECT expect('Mia, February''s lines', lines_of(:mia_sub, 2),
              '{"subscription 100.00 EUR","subscription 24.00 EUR","proration 12.39 EUR"}'::text[]);
SELECT expect('the document shows the add-on and its proration',
    (SELECT strpos(d, 'Seats (extra seat)') > 0 AND strpos(d, 'Remaining time on Seats (extra seat) x 3 from 2025-01-16') > 0
            AND strpos(d, '136.39') > 0
     FROM invoice i, invoice_document(i.invoice_id, 'text') d
     WHERE i.subscription_id = :mia_sub AND i.issue_date = '2025-02-01'), true);

-- Feb 5: Mia schedules a downgrade to Starter for the period of May 20,
-- which begins on May 1.  Ivy schedules one for March and takes it back.
SET billing.clock = '2025-02-05 12:00+00';
SELECT schedule_change(:mia, :mia_sub, '2025-05-20', :starter, subscription_item_id => :mia_team) AS mia_starter \gset
SELECT expect('the downgrade starts on May 1',
    (SELECT started_on FROM subscription_item WHERE subscription_item_id = :mia_starter), '2025-05-01'::date);
SELECT schedule_change(:ivy, :ivy_sub, '2025-03-15', :starter) AS ivy_starter \gset
SELECT cancel_scheduled_change(:ivy, :ivy_starter);
CALL drive('2025-02-05', '2025-02-28');

-- Mar 1: Team costs 110.00 from now on, for Leo (the others not asked):
-- 14 days' notice, so at his first renewal on or after Mar 15, Apr 1.
SET billing.clock = '2025-03-01 12:00+00';
SELECT create_price(:ws, 'EUR', 110.00, nickname => 'Team 2025') AS team2025 \gset
SELECT expect('one subscription migrated', migrate_price(:team, :team2025, 14, ARRAY[:leo]::bigint[]), 1);
SELECT expect('Leo moves on Apr 1',
    (SELECT started_on FROM subscription_item WHERE subscription_id = :leo_sub AND price_id = :team2025),
    '2025-04-01'::date);
CALL drive('2025-03-01', '2025-03-09');

-- Mar 10: Mia removes the seats; the unused [Mar 10, Apr 1) of 31 days is
-- credited on the next invoice: -(R(24.00 x 31/31) - R(24.00 x 9/31)) =
-- -(24.00 - R(6.9677)) = -(24.00 - 6.97) = -17.03.
SET billing.clock = '2025-03-10 12:00+00';
SELECT expect('the seats end on Mar 10', remove_subscription_item(:mia, :mia_seats), '2025-03-10'::date);
CALL drive('2025-03-10', '2025-03-17');

-- Mar 18, 14 days before Apr 1: Leo's notice (none on Mar 17)
SET billing.clock = '2025-03-17 12:00+00';
CALL run_dunning();
SELECT expect('no notice 15 days before',
    (SELECT count(*) FROM outbox WHERE event_type = 'subscription.price_change_notice'), 0::bigint);
SET billing.clock = '2025-03-18 12:00+00';
CALL run_dunning();
SELECT expect('Leo''s notice',
    (SELECT string_agg(concat_ws(' ', payload ->> 'effective_date', payload ->> 'days_before',
                                 payload ->> 'old_amount', payload ->> 'new_amount'), '; ')
     FROM outbox WHERE event_type = 'subscription.price_change_notice' AND account_id = :leo),
    '2025-04-01 14 100.00 EUR 110.00 EUR');
CALL drive('2025-03-18', '2025-04-16');
-- Apr 17, 14 days before May 1: Mia's downgrade notice
SET billing.clock = '2025-04-17 12:00+00';
CALL run_dunning();
SELECT expect('Mia''s notice',
    (SELECT string_agg(concat_ws(' ', payload ->> 'effective_date', payload ->> 'days_before',
                                 payload ->> 'old_amount', payload ->> 'new_amount'), '; ')
     FROM outbox WHERE event_type = 'subscription.price_change_notice' AND account_id = :mia),
    '2025-05-01 14 100.00 EUR 40.00 EUR');
SELECT expect('no notice for Ivy''s change taken back, none for the add-on',
    (SELECT count(*) FROM outbox WHERE event_type = 'subscription.price_change_notice'), 2::bigint);
CALL drive('2025-04-17', '2025-06-01');

-- Mar 1: 100.00 + 24.00 = 124.00; Apr 1: 100.00 - 17.03 = 82.97; May 1 and
-- Jun 1: Starter 40.00
SELECT expect('Mia''s invoices', invoices_of(:mia_sub),
    '{"2025-01-01 100.00 EUR","2025-02-01 136.39 EUR","2025-03-01 124.00 EUR","2025-04-01 82.97 EUR","2025-05-01 40.00 EUR","2025-06-01 40.00 EUR"}'::text[]);
SELECT expect('April''s lines', lines_of(:mia_sub, 4), '{"subscription 100.00 EUR","proration -17.03 EUR"}'::text[]);
SELECT expect('Leo''s invoices', invoices_of(:leo_sub),
    '{"2025-01-01 100.00 EUR","2025-02-01 100.00 EUR","2025-03-01 100.00 EUR","2025-04-01 110.00 EUR","2025-05-01 110.00 EUR","2025-06-01 110.00 EUR"}'::text[]);
SELECT expect('Ivy keeps the old price', invoices_of(:ivy_sub),
    '{"2025-01-01 100.00 EUR","2025-02-01 100.00 EUR","2025-03-01 100.00 EUR","2025-04-01 100.00 EUR","2025-05-01 100.00 EUR","2025-06-01 100.00 EUR"}'::text[]);
SELECT expect('one invoice per subscription and month (the add-on on it)',
    (SELECT count(*) FROM invoice WHERE subscription_id = :mia_sub), 6::bigint);
-- the credit paid everything: 1000.00 - (100 + 136.39 + 124 + 82.97 + 40 + 40) = 476.64 left
SELECT expect('nothing due', (SELECT sum(to_numeric(amount_due)) FROM invoice), 0.00);
SELECT expect('Mia''s credit left', (SELECT balance FROM account_credit WHERE account_id = :mia), '476.64 EUR'::amount);
SELECT expect('the document of the downgraded month',
    (SELECT strpos(d, 'Workspace (Starter)') > 0 AND strpos(d, 'Team') = 0
     FROM invoice i, invoice_document(i.invoice_id, 'text') d
     WHERE i.subscription_id = :mia_sub AND i.issue_date = '2025-05-01'), true);
SELECT expect('no invariant violated', (SELECT count(*) FROM check_invariants()), 0::bigint);
