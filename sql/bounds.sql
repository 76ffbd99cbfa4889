--
-- Bounds of what billing accepts, each test named after what it proves:
-- binary input and text input accept the same amounts; one tenant's largest
-- amounts cannot make anyone's report fail; dates far from today and time
-- zones that are no IANA names are refused; format_date prints every date
-- it accepts correctly (BC with its era, beyond 9999 in full) and refuses
-- the ones ICU cannot; reads under row-level security can run in parallel,
-- and a parallel worker judges the leader's role.
--
-- A database of its own; the roles are the cluster's, so they carry the
-- regress_ prefix and are dropped at the end.
CREATE DATABASE bounds_regress;
\c bounds_regress
\i test/regress_own_database.sql

------------------------------------------------------------------------
-- binary_input_refuses_what_text_refuses
------------------------------------------------------------------------
-- The wire form of an amount (8 bytes of units, 3 code bytes, 1 scale
-- byte) goes through billing.amount_recv by COPY ... FROM (FORMAT binary):
-- a one-column bytea table copied out in binary is byte for byte the copy
-- of an amount column holding those bytes.  Text input of the same value
-- (as amount_out would print it) must accept exactly the same: accepted
-- text whose binary form (amount_send) is the very wire value.
CREATE TABLE wire_in (b bytea);
CREATE TABLE received (a billing.amount);
CREATE FUNCTION wire(units bigint, code bytea, scale integer) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$ SELECT int8send(units) || code || decode(lpad(to_hex(scale), 2, '0'), 'hex') $$;
CREATE FUNCTION recv_amount(w bytea) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    f text := format('/tmp/billing_bounds_%s.bin', pg_backend_pid());
    v text;
BEGIN
    TRUNCATE wire_in, received;
    INSERT INTO wire_in VALUES (w);
    EXECUTE format('COPY wire_in TO %L (FORMAT binary)', f);
    BEGIN
        EXECUTE format('COPY received FROM %L (FORMAT binary)', f);
        SELECT a::text INTO v FROM received;
        RETURN v;
    EXCEPTION WHEN OTHERS THEN
        RETURN SQLSTATE || ': ' || SQLERRM;
    END;
END $$;
-- text input of the same value: the amount when its binary form is the
-- wire value, else the error (or the other value it makes)
CREATE FUNCTION text_amount(t text, w bytea) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    a billing.amount;
BEGIN
    a := t::billing.amount;
    RETURN CASE WHEN billing.amount_send(a) = w THEN a::text ELSE 'another value: ' || a::text END;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE TABLE wire_case (n serial, units bigint, code bytea, scale integer, text_form text);
INSERT INTO wire_case (units, code, scale, text_form) VALUES
    (1234, 'USD', 2, '12.34 USD'),
    (1005, 'USD', 3, '1.005 USD'),                  -- text refuses 1.005 USD
    (1000, 'USD', 3, '1.000 USD'),                  -- text makes 1.00 USD of it
    (100000, 'USD', 4, '10.0000 USD'),
    (12, 'USD', 0, '12 USD'),                       -- text makes 12.00 USD
    (100, 'usd', 2, '1.00 usd'),                    -- text makes USD of it
    (100, 'ZZZ', 2, '1.00 ZZZ'),
    (100, '\x550144', 2, NULL),                     -- U, 0x01, D: no text form
    (100, 'USD', 63, NULL),                         -- scale 63: no text form
    (100000000000000, 'USD', 2, '1000000000000.00 USD'),
    (-100000000000000, 'USD', 2, '-1000000000000.00 USD'),
    (100000000000001, 'USD', 2, '1000000000000.01 USD'),
    (9223372036854775807, 'USD', 2, '92233720368547758.07 USD'),
    (-9223372036854775808, 'USD', 2, '-92233720368547758.08 USD'),
    (1000000000000, 'JPY', 0, '1000000000000 JPY'),
    (1000000000001, 'JPY', 0, '1000000000001 JPY'),
    (1000000000000000, 'KWD', 3, '1000000000000.000 KWD'),
    (10000000000000000, 'CLF', 4, '1000000000000.0000 CLF'),
    (10000000000000001, 'CLF', 4, '1000000000000.0001 CLF'),
    (0, 'EUR', 2, '0.00 EUR');
CREATE TEMP TABLE wire_result AS
SELECT n, units, encode(code, 'escape') AS code, scale, text_form, wire(units, code, scale) AS w,
       recv_amount(wire(units, code, scale)) AS binary_input,
       CASE WHEN text_form IS NULL THEN '(no text form)' ELSE text_amount(text_form, wire(units, code, scale)) END
           AS text_input
FROM wire_case;
SELECT n, units, code, scale, binary_input, text_input FROM wire_result ORDER BY n;
-- the pair agrees on every case: accepted by both as the same value, or
-- refused by both
SELECT n, binary_input, text_input FROM wire_result
WHERE (binary_input ~ '^[0-9A-Z]{5}: ') <> (text_input ~ '^[0-9A-Z]{5}: |^another value|^\(no text form\)$')
   OR (binary_input !~ '^[0-9A-Z]{5}: ' AND binary_input <> text_input);
-- what binary input accepts prints and parses back to the same bytes
SELECT count(*) AS accepted,
       count(*) FILTER (WHERE billing.amount_send(binary_input::billing.amount) = w) AS round_trips
FROM wire_result WHERE binary_input !~ '^[0-9A-Z]{5}: ';
-- the message names the value and says what to do
\set VERBOSITY default
SELECT recv_amount(wire(1005, 'USD', 3)) AS scale_error;
-- the binary form of the largest amount, and of the bound's sum
SELECT billing.amount_send('1000000000000.00 USD') AS largest_usd;

------------------------------------------------------------------------
-- a_single_amount_is_bounded_by_a_trillion_major_units
------------------------------------------------------------------------
-- 10^12 major units either side of zero, at every currency's digits, for
-- every constructor and operator (22003 beyond it, naming the bound)
SELECT billing.from_minor_units(100000000000000, 'USD') AS usd, billing.amount(-1000000000000, 'JPY') AS jpy,
       billing.round_amount(999999999999.9995, 'KWD', 'down') AS kwd_below,
       '1000000000000.0000 CLF'::billing.amount AS clf;
SELECT q, billing_test_error(q) AS error FROM (VALUES
    ($$SELECT '1000000000000.01 USD'::billing.amount$$),
    ($$SELECT billing.from_minor_units(100000000000001, 'USD')$$),
    ($$SELECT billing.amount(1000000000000.001, 'KWD')$$),
    ($$SELECT billing.round_amount(1000000000000.5, 'JPY', 'half_up')$$),
    ($$SELECT '600000000000 USD'::billing.amount + '400000000000.01 USD'$$),
    ($$SELECT '-1000000000000 USD'::billing.amount - '0.01 USD'$$),
    ($$SELECT '500000000000.01 USD'::billing.amount * 2$$),
    ($$SELECT '1000000000000 USD'::billing.amount * 1.00000000000001$$),
    ($$SELECT '1000000000000 USD'::billing.amount / 0.999$$),
    ($$SELECT billing.sum(a) FROM (VALUES ('1000000000000 USD'::billing.amount), ('0.01 USD')) v(a)$$)
) t(q);
SELECT '1000000000000 USD'::billing.amount * 1 AS times_one, '-1000000000000 USD'::billing.amount * -1 AS negated,
       '1000000000000 USD'::billing.amount / 3 AS a_third;
-- a sum of any number of them is exact as numeric (22003 as an amount)
SELECT billing.sum_numeric(a) AS sum_numeric FROM (VALUES ('1000000000000 USD'::billing.amount),
    ('1000000000000 USD'), ('1000000000000 USD')) v(a);
SELECT billing.sum_numeric(billing.from_minor_units(10000000000000000, 'CLF')) AS a_thousand_largest_clf
FROM generate_series(1, 1000);
-- an item whose period amount would be beyond the bound is refused when it
-- is subscribed, not in every cycle after
SELECT billing.create_billing_entity('Acme', 'USD') AS acme \gset
SELECT billing.create_billing_entity('Globex', 'USD') AS globex \gset
SELECT billing.create_product('Everything') AS product \gset
SELECT billing.create_price(:product, 'USD', 1000000000000) AS top_usd \gset
SELECT billing.create_price(:product, 'USD', 1000000000000, cadence => '1 week') AS top_weekly \gset
SELECT billing.create_price(:product, 'USD', 1000000000000, scheme => 'per_unit') AS per_unit \gset
SELECT billing.create_account(:acme, 'Probe') AS probe \gset
SELECT billing_test_error(format('SELECT billing.subscribe(%s, %s, quantity => 2)', :probe, :per_unit)) AS two_units;
SELECT count(*) AS subscriptions_of_probe FROM billing.subscription WHERE account_id = :probe;
-- a stored balance is one amount too: a second largest payment into the
-- same credit is refused, and nothing of it is written
SELECT billing.apply_payment(:probe, '1000000000000.00 USD', 'bank_transfer') IS NOT NULL AS first_paid;
SELECT billing_test_error(format('SELECT billing.apply_payment(%s, ''1000000000000.00 USD'', ''bank_transfer'')', :probe))
    AS second_paid;
SELECT count(*) AS payments_of_probe, min(c.balance) AS credit
FROM billing.payment p JOIN billing.account_credit c USING (account_id) WHERE p.account_id = :probe;

------------------------------------------------------------------------
-- one_tenant_cannot_break_anyones_report
------------------------------------------------------------------------
-- Acme bills in USD and in CLF (4 digits: its largest amount is 10^16
-- minor units, so 923 of them exceed an int64 of minor units): 930 accounts
-- each pay the largest CLF amount; two USD accounts have two invoices of
-- the largest USD amount each (a month back and this month), one has a
-- weekly one (a monthly value of 4.35 x 10^12 USD); two pay the largest USD
-- amount.  Globex has one small customer in USD.  Every report returns,
-- for the superuser (who sees both) and for a reporting role of Globex.
SET billing.clock = '2026-01-01 12:00+00';
DO $$
BEGIN
    FOR i IN 1 .. 930 LOOP
        PERFORM billing.apply_payment(billing.create_account(1, 'CLF ' || i, currency => 'CLF'),
                                      '1000000000000.0000 CLF', 'bank_transfer');
    END LOOP;
END $$;
SELECT billing.create_account(:acme, 'Whale 1') AS whale1 \gset
SELECT billing.create_account(:acme, 'Whale 2') AS whale2 \gset
SELECT billing.create_account(:acme, 'Weekly whale') AS weekly \gset
SELECT billing.subscribe(:whale1, :top_usd, start_date => '2025-12-01') IS NOT NULL AS whale1_subscribed,
       billing.subscribe(:whale2, :top_usd, start_date => '2025-12-01') IS NOT NULL AS whale2_subscribed,
       billing.subscribe(:weekly, :top_weekly) IS NOT NULL AS weekly_subscribed;
SELECT billing.apply_payment(billing.create_account(:acme, 'Payer ' || i), '1000000000000.00 USD', 'cash') IS NOT NULL
    AS paid FROM generate_series(1, 2) i;
SELECT billing.create_account(:globex, 'Small') AS small \gset
SELECT billing.create_price(:product, 'USD', 10.00) AS small_price \gset
SELECT billing.subscribe(:small, :small_price) IS NOT NULL AS small_subscribed;
SELECT billing.apply_payment(:small, '4.00 USD', 'cash') IS NOT NULL AS small_paid;
SELECT a.entity_id, billing.currency(i.total) AS currency, count(*) AS invoices, billing.sum_numeric(i.total) AS invoiced
FROM billing.invoice i JOIN billing.account a USING (account_id) GROUP BY 1, 2 ORDER BY 1, 2;
-- billing.sum of these is beyond the bound (22003), which is why reports
-- do not use it
SELECT billing_test_error('SELECT billing.sum(amount) FROM billing.payment WHERE billing.currency(amount) = ''CLF''')
    AS sum_of_payments;
-- A month and a half later: the cycle and dunning have run.
SET billing.clock = '2026-02-15 12:00+00';
CALL billing.run_cycle();
CALL billing.run_dunning();
SELECT status, count(*) FROM billing.cycle_run GROUP BY 1;

CREATE FUNCTION report_totals() RETURNS TABLE (report text, currency text, row_count bigint, total numeric)
LANGUAGE sql AS $$
    SELECT 'revenue_by_month', currency, count(*), sum(collected) + sum(invoiced) + sum(outstanding)
    FROM billing.revenue_by_month GROUP BY 2
    UNION ALL
    SELECT 'ar_aging', currency, count(*), sum(total_due) FROM billing.ar_aging GROUP BY 2
    UNION ALL
    SELECT 'account_balances', currency, count(*), sum(balance) FROM billing.account_balances GROUP BY 2
    UNION ALL
    SELECT 'account_statements', a.currency, count(*), max(s.balance)
    FROM billing.account_statements s JOIN billing.account a USING (account_id) GROUP BY 2
    UNION ALL
    SELECT 'mrr_movements', currency, count(*), sum(change) FROM billing.mrr_movements GROUP BY 2
    UNION ALL
    SELECT 'mrr_by_month', currency, count(*), max(arr) FROM billing.mrr_by_month GROUP BY 2
    UNION ALL
    SELECT 'cohort_retention', currency, count(*), max(mrr) FROM billing.cohort_retention GROUP BY 2
    UNION ALL
    SELECT 'days_sales_outstanding', currency, count(*), sum(receivable) + sum(invoiced)
    FROM billing.days_sales_outstanding GROUP BY 2
    UNION ALL
    SELECT 'upcoming_invoices', currency, count(*), sum(total) FROM billing.upcoming_invoices(31) GROUP BY 2
    UNION ALL
    SELECT 'dunning_funnel', currency, count(*), sum(amount_due) FROM billing.dunning_funnel GROUP BY 2
$$;
GRANT EXECUTE ON FUNCTION report_totals() TO PUBLIC;
-- the superuser sees both tenants
SELECT * FROM report_totals() ORDER BY 1, 2;
-- the largest rows, exactly
SELECT month, currency, collected, invoiced, outstanding FROM billing.revenue_by_month ORDER BY currency, month;
SELECT account_name, open_due, overdue, balance FROM billing.account_balances
WHERE account_name IN ('Whale 1', 'Weekly whale', 'Small') ORDER BY 1;
SELECT month, mrr, arr FROM billing.mrr_by_month WHERE currency = 'USD' ORDER BY month;
SELECT pg_typeof(total_due) AS ar_aging_money, pg_typeof(collected) AS revenue_money FROM billing.ar_aging, billing.revenue_by_month
LIMIT 1;
-- a reporting role of Globex sees Globex only, and every report returns
SELECT billing.grant_roles('regress_bounds_writer', 'regress_bounds_operator', 'regress_bounds_reporting');
CREATE ROLE regress_bounds_globex_bi LOGIN IN ROLE regress_bounds_reporting;
SELECT billing.bind_role_to_entity('regress_bounds_globex_bi', :globex);
SET ROLE regress_bounds_globex_bi;
SELECT * FROM report_totals() ORDER BY 1, 2;
SELECT account_name, open_due, balance FROM billing.account_balances;
RESET ROLE;

------------------------------------------------------------------------
-- dates_far_from_today_are_refused
------------------------------------------------------------------------
-- The window: 10 years before to 10 years after today (the account's
-- today; today in UTC for a run over every account).  Today is 2026-02-15.
SELECT billing.create_account(:acme, 'Dated') AS dated \gset
SELECT billing.create_price(:product, 'USD', 10.00, cadence => '1 year') AS yearly \gset
SELECT billing.create_price(:product, 'USD', 0.01, scheme => 'per_unit', usage_type => 'metered') AS metered \gset
SELECT billing.subscribe(:dated, :yearly) AS dated_sub \gset
SELECT billing.subscribe(:dated, :metered) AS metered_sub \gset
SELECT subscription_item_id AS metered_item FROM billing.subscription_item WHERE subscription_id = :metered_sub \gset
SELECT q, billing_test_error(q) AS error FROM (VALUES
    (format($$SELECT billing.subscribe(%s, %s, start_date => '4000-01-01 BC')$$, :dated, :yearly)),
    (format($$SELECT billing.subscribe(%s, %s, start_date => '2016-02-14')$$, :dated, :yearly)),
    (format($$SELECT billing.subscribe(%s, %s, start_date => '2036-02-16')$$, :dated, :yearly)),
    (format($$SELECT billing.subscribe(%s, %s, anchor => '1000-01-01')$$, :dated, :yearly)),
    (format($$SELECT billing.subscribe(%s, %s, trial_days => 4000)$$, :dated, :yearly)),
    (format($$SELECT billing.subscribe(%s, %s, trial_days => 2147483647)$$, :dated, :yearly)),
    (format($$SELECT billing.change_subscription(%s, %s, quantity => 2, effective_date => '5874897-12-31')$$, :dated, :dated_sub)),
    (format($$SELECT billing.cancel_subscription(%s, %s, false, cancel_date => '3000-01-01')$$, :dated, :dated_sub)),
    (format($$SELECT billing.resume_subscription(%s, %s, resume_date => '3000-01-01')$$, :dated, :dated_sub)),
    (format($$SELECT billing.apply_payment(%s, '1.00 USD', 'cash', received_on => '5874897-12-31')$$, :dated)),
    (format($$SELECT billing.apply_payment(%s, '1.00 USD', 'cash', received_on => '2016-02-14')$$, :dated)),
    (format($$SELECT billing.record_usage(%s, %s, 1, 'u-far', occurred_at => '3026-02-15 12:00+00')$$, :dated, :metered_item)),
    (format($$SELECT count(*) FROM billing.preview_invoice(%s, as_of => '20000-01-01')$$, :dated)),
    (format($$SELECT count(*) FROM billing.preview_invoice(%s, as_of => '2036-02-16')$$, :dated)),
    (format($$SELECT * FROM billing.create_installment_plan(%s, (SELECT max(invoice_id) FROM billing.invoice WHERE account_id = %s), 2, first_due => '2100-01-01')$$, :dated, :dated)),
    (format($$SELECT * FROM billing.create_installment_plan(%s, (SELECT max(invoice_id) FROM billing.invoice WHERE account_id = %s), 12, '1 year')$$, :dated, :dated)),
    ($$SELECT count(*) FROM billing.claim_collection_attempts('w', 1, as_of => '3000-01-01 00:00+00')$$)
) t(q);
-- the procedures: a run as of a date far away is refused before it logs
-- anything or bills a period
SELECT count(*) AS cycle_runs FROM billing.cycle_run \gset
CALL billing.run_cycle(as_of => '20000-01-01');
CALL billing.run_cycle(at => '1000-01-01 00:00+00');
CALL billing.run_dunning(as_of => '4000-01-01 BC');
SELECT count(*) - :cycle_runs AS new_cycle_runs FROM billing.cycle_run;
-- the edges of the window are inside it; a date there is billed as usual
SELECT billing.apply_payment(:dated, '1.00 USD', 'cash', received_on => '2016-02-15') IS NOT NULL AS paid_ten_years_back,
       billing.apply_payment(:dated, '1.00 USD', 'cash', received_on => '2036-02-15') IS NOT NULL AS paid_ten_years_ahead;
SELECT billing.subscribe(:dated, :yearly, start_date => '2016-02-15') AS old_sub \gset
SELECT count(*) AS invoices_of_ten_years FROM billing.invoice_line WHERE account_id = :dated AND subscription_id = :old_sub
  AND kind = 'subscription';
SELECT count(*) AS lines_to_the_window_end FROM billing.preview_invoice(:dated, :dated_sub, '2036-02-15');
SELECT billing.record_usage(:dated, :metered_item, 1, 'u-now', occurred_at => '2026-02-15 10:00+00') IS NOT NULL AS usage_ok;
-- dates that only choose what is read are not bounded
SELECT count(*) > 0 AS statement_of_everything
FROM billing.account_statement(:dated, '4000-01-01 BC', '5874896-12-31');

------------------------------------------------------------------------
-- time_zones_are_iana_names_only
------------------------------------------------------------------------
-- A name of pg_timezone_names, spelled as it spells it; POSIX strings,
-- abbreviations, the host's 'localtime' and the 'posixrules' template are
-- refused (22023), on every path that stores an account's zone.
SELECT z, billing_test_error(format('SELECT billing.create_account(%s, %L, timezone => %L)', :acme, 'Zoned', z)) AS created
FROM unnest(ARRAY['UTC', 'Etc/GMT-14', 'Etc/GMT+12', 'America/New_York', 'Pacific/Kiritimati', 'EST5EDT',
                  '<+167>-167', '<-167>+167', 'XXX3', 'EST5', '+05', 'PST8PDT,M3.2.0,M11.1.0', 'utc',
                  'europe/berlin', 'localtime', 'posixrules', 'Mars/Olympus', '../../etc/passwd', '']) z;
SELECT billing_test_error(format('SELECT billing.update_account(%s, timezone => %L)', :dated, '<+167>-167')) AS updated,
       (SELECT timezone FROM billing.account WHERE account_id = :dated) AS zone_kept;
-- a direct write, even the owner's, goes through the domain's check
SELECT billing_test_error(format('INSERT INTO billing.account (entity_id, name, currency, timezone) VALUES (%s, %L, %L, %L)',
                                 :acme, 'Direct', 'USD', '<+167>-167')) AS direct_insert,
       billing_test_error(format('UPDATE billing.account SET timezone = %L WHERE account_id = %s', 'XXX3', :dated))
           AS direct_update;
-- the message says what to write instead
SELECT billing.create_account(:acme, 'Lower', timezone => 'america/new_york');
-- every zone pg_timezone_names lists is accepted, but the two files (how
-- many it lists follows the system's tzdata: bookworm's also lists a posix/
-- copy of every zone)
SELECT count(*) >= 400 AS hundreds_listed, count(*) FILTER (WHERE billing_test_error(format('SELECT billing.check_time_zone(%L)', name))
                                             <> 'no error') AS refused,
       array_agg(name ORDER BY name) FILTER (WHERE billing_test_error(format('SELECT billing.check_time_zone(%L)', name))
                                             <> 'no error') AS refused_names
FROM pg_timezone_names;

------------------------------------------------------------------------
-- format_date_prints_bc_with_its_era_and_refuses_past_icu
------------------------------------------------------------------------
-- Years 1 to 9999 print as the locale's style says; before 1 AD with the
-- era; beyond four digits in full (the short style's two digits too); past
-- the end of ICU's calendar (5828963-12-20) a clear 22008, as for infinity.
SELECT d AS date, billing.format_date(d, 'en-US') AS long, billing.format_date(d, 'en-US', 'short') AS short,
       billing.format_date(d, 'de-DE', 'full') AS german, billing.format_date(d, 'ja-JP') AS japanese
FROM unnest(ARRAY['0001-01-01', '0001-12-31 BC', '0002-01-01 BC', '4714-11-24 BC', '1582-10-14', '0999-06-30',
                  '9999-12-31', '10000-01-01', '123456-07-08', '5828963-12-20']::date[]) d;
-- the Buddhist calendar of th-TH is Julian before 1582 in ICU: such a day
-- is written in the locale's Gregorian calendar, on the right day
SELECT billing.format_date('1582-10-14', 'th-TH') AS before_the_switch, billing.format_date('2026-01-31', 'th-TH') AS today;
SELECT q, billing_test_error(q) AS error FROM (VALUES
    ($$SELECT billing.format_date('5828963-12-21', 'en-US')$$),
    ($$SELECT billing.format_date('5874897-12-31', 'de-DE', 'short')$$),
    ($$SELECT billing.format_date('infinity', 'en-US')$$),
    ($$SELECT billing.format_date('-infinity', 'en-US')$$)
) t(q);
SELECT billing.format_date('5874897-12-31', 'en-US');

------------------------------------------------------------------------
-- reporting_reads_under_row_level_security_run_in_parallel
------------------------------------------------------------------------
-- The policies call _acting_role_sees_all() and _acting_role_entities();
-- both, and _may_use_account, are PARALLEL SAFE, so a reporting role's
-- read of a table with row-level security can have a parallel plan.
SELECT p.proname, p.proparallel FROM pg_proc p
WHERE p.oid IN ('billing._acting_role_sees_all()'::regprocedure, 'billing._acting_role_entities()'::regprocedure,
                'billing._may_use_account(bigint)'::regprocedure)
ORDER BY 1;
CREATE ROLE regress_bounds_acme_bi LOGIN IN ROLE regress_bounds_reporting;
SELECT billing.bind_role_to_entity('regress_bounds_acme_bi', :acme);
-- the plan's nodes, without the init plans and their parameters, which
-- PostgreSQL versions print differently
CREATE FUNCTION plan_nodes(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
        CONTINUE WHEN line ~ '^\s*(InitPlan|->  Result$|Params Evaluated)';
        RETURN NEXT regexp_replace(line, 'Filter: .*\(entity_id = ANY .*', 'Filter: the acting role''s entities');
    END LOOP;
END $$;
GRANT EXECUTE ON FUNCTION plan_nodes(text) TO PUBLIC;
SET ROLE regress_bounds_acme_bi;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT * FROM plan_nodes('SELECT count(*) FROM billing.account');
SELECT count(*) AS acme_accounts FROM billing.account;
RESET ROLE;

------------------------------------------------------------------------
-- a_parallel_worker_judges_the_leaders_role
------------------------------------------------------------------------
-- The helpers evaluated per row inside parallel workers only (the leader
-- takes no part): the worker acts as the leader's SET ROLE, and after SET
-- SESSION AUTHORIZATION as the leader's session user, not as the user that
-- connected (a superuser here, who would see everything).
CREATE TABLE account_ids AS SELECT account_id FROM billing.account;
GRANT SELECT ON account_ids TO PUBLIC;
GRANT EXECUTE ON FUNCTION billing._may_use_account(bigint) TO regress_bounds_acme_bi, regress_bounds_globex_bi;
-- the process a row is evaluated in (declared parallel safe for the test:
-- it is meant to run in the workers)
CREATE FUNCTION evaluated_in() RETURNS integer LANGUAGE plpgsql PARALLEL SAFE AS $$ BEGIN RETURN pg_backend_pid(); END $$;
GRANT EXECUTE ON FUNCTION evaluated_in() TO PUBLIC;
SELECT pg_backend_pid() AS leader \gset
CREATE FUNCTION helpers_in_workers(leader integer)
RETURNS TABLE (rows_in_workers bigint, may_use bigint, sees_all bigint, bound_to_acme bigint)
LANGUAGE sql AS $$
    SELECT count(*) FILTER (WHERE evaluated_in() <> leader),
           count(*) FILTER (WHERE billing._may_use_account(account_id)),
           count(*) FILTER (WHERE billing._acting_role_sees_all()),
           -- Acme is entity 1
           count(*) FILTER (WHERE 1 = ANY (billing._acting_role_entities()))
    FROM account_ids
$$;
GRANT EXECUTE ON FUNCTION helpers_in_workers(integer) TO PUBLIC;
-- force_parallel_mode, named debug_parallel_query from PostgreSQL 16 on
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
                       THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END, 'on', false) AS parallel_forced;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT count(*) FILTER (WHERE billing._may_use_account(account_id)) FROM account_ids;
SELECT count(*) AS all_accounts, count(*) FILTER (WHERE a.entity_id = :acme) AS acme_accounts
FROM billing.account a;
SELECT * FROM helpers_in_workers(:leader);
SET ROLE regress_bounds_acme_bi;
SELECT * FROM helpers_in_workers(:leader);
RESET ROLE;
SET SESSION AUTHORIZATION regress_bounds_acme_bi;
SELECT session_user, current_user, billing.acting_role();
SELECT * FROM helpers_in_workers(:leader);
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_bounds_globex_bi;
SELECT * FROM helpers_in_workers(:leader);
RESET SESSION AUTHORIZATION;
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
                       THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END, 'off', false) AS parallel_forced;
RESET parallel_leader_participation;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;

SELECT * FROM billing.check_invariants();

\c contrib_regression
DROP DATABASE bounds_regress;
DROP ROLE regress_bounds_acme_bi, regress_bounds_globex_bi, regress_bounds_writer, regress_bounds_operator,
    regress_bounds_reporting;
