--
-- The bad-input survey: malformed values thrown at every public
-- function and procedure of the extension: NULLs, empty strings, huge
-- numbers, unknown currencies, dates out of range, injection strings in
-- names and references.  Each call must end in a clean error (its SQLSTATE
-- is shown, never XX000) or a safe result, and change no row: every call
-- runs on the same data and is rolled back, and the digest of every billing
-- table is compared before and after it.  The survey must name every
-- function of the extension: a function without an entry fails below.
--
CREATE DATABASE bad_input_regress;
\c bad_input_regress
\i test/regress_own_database.sql
\i test/regress_digest.sql

-- The world the calls run against: one seller, two customers, an invoice,
-- a payment, a method on file, a metered item, a coupon.
SELECT billing.create_billing_entity('Acme', 'USD');
SELECT billing.create_tax_rate('VAT', 20);
SELECT billing.create_account(1, 'Alice', tax_rate_id => 1);
SELECT billing.create_account(1, 'Yuki', currency => 'JPY');
SELECT billing.create_product('Pro');
SELECT billing.create_price(1, 'USD', 10.00);
SELECT billing.create_price(1, 'USD', 0.01, scheme => 'per_unit', usage_type => 'metered');
SELECT billing.create_coupon('TEN', 'once', percent_off => 10);
SELECT billing.subscribe(1, 1);
SELECT billing.subscribe(1, 2);
SELECT billing.apply_payment(1, '5.00 USD', 'cash', idempotency_key => 'k1');
SELECT billing.add_payment_method(1, 'card', 'pm_alice');
SELECT billing.record_usage(1, 2, 3, 'u1');
SELECT billing.create_feature('api', 'API access');
SELECT billing.create_feature('storage', 'Storage', 'limit');
SELECT billing.set_price_feature(1, 'storage', '100');

-- A table for the parallel aggregate plan (partial sums are serialized,
-- combined and deserialized) and for binary input.
CREATE TABLE amounts (x billing.amount);
INSERT INTO amounts SELECT CASE WHEN i % 2 = 0 THEN '1.00 USD' ELSE '1.00 EUR' END::billing.amount FROM generate_series(1, 1000) i;
ALTER TABLE amounts SET (parallel_workers = 2);
ANALYZE amounts;

CREATE TABLE survey (id serial PRIMARY KEY, function regprocedure NOT NULL, call text NOT NULL,
                     parallel boolean NOT NULL DEFAULT false);
CREATE FUNCTION s(f regprocedure, VARIADIC calls text[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO survey (function, call) SELECT f, c FROM unnest(calls) WITH ORDINALITY x(c, n) ORDER BY n
$$;

-- amounts: text, binary, comparisons, arithmetic, aggregates
SELECT s('billing.amount_in(cstring)',
    $q$SELECT billing.amount_in('')$q$, $q$SELECT billing.amount_in('abc')$q$,
    $q$SELECT billing.amount_in('1.00')$q$, $q$SELECT billing.amount_in('1.00 XYZ')$q$,
    $q$SELECT billing.amount_in('1.00 usd')$q$, $q$SELECT billing.amount_in('1.005 USD')$q$,
    $q$SELECT billing.amount_in('99999999999999999999 USD')$q$, $q$SELECT billing.amount_in('1e400 USD')$q$,
    $q$SELECT billing.amount_in('NaN USD')$q$, $q$SELECT billing.amount_in('Infinity USD')$q$,
    $q$SELECT billing.amount_in('1.00 USD''); DROP TABLE billing.invoice; --')$q$,
    $q$SELECT billing.amount_in(NULL)$q$);
SELECT s('billing.amount_out(billing.amount)', $q$SELECT billing.amount_out(NULL)$q$);
SELECT s('billing.amount_recv(internal)',
    $q$COPY amounts FROM PROGRAM 'printf ''PGCOPY\n\377\r\n\000\000\000\000\000\000\000\000\000\000\001\000\000\000\014\000\000\000\000\000\000\000\144XYZ\002\377\377''' WITH (FORMAT binary)$q$,
    $q$COPY amounts FROM PROGRAM 'printf ''PGCOPY\n\377\r\n\000\000\000\000\000\000\000\000\000\000\001\000\000\000\014\177\377\377\377\377\377\377\377USD\002\377\377''' WITH (FORMAT binary)$q$,
    $q$COPY amounts FROM PROGRAM 'printf ''PGCOPY\n\377\r\n\000\000\000\000\000\000\000\000\000\000\001\000\000\000\014\000\000\000\000\000\000\000\144USD\077\377\377''' WITH (FORMAT binary)$q$,
    $q$COPY amounts FROM PROGRAM 'printf ''PGCOPY\n\377\r\n\000\000\000\000\000\000\000\000\000\000\001\000\000\000\003USD\377\377''' WITH (FORMAT binary)$q$);
SELECT s('billing.amount_send(billing.amount)', $q$SELECT billing.amount_send(NULL)$q$);
SELECT s('billing.amount_eq(billing.amount,billing.amount)', $q$SELECT billing.amount_eq('1 USD', '1 EUR')$q$, $q$SELECT billing.amount_eq(NULL, '1 USD')$q$);
SELECT s('billing.amount_ne(billing.amount,billing.amount)', $q$SELECT billing.amount_ne('1 USD', '1 EUR')$q$);
SELECT s('billing.amount_lt(billing.amount,billing.amount)', $q$SELECT billing.amount_lt('1 USD', '1 EUR')$q$);
SELECT s('billing.amount_le(billing.amount,billing.amount)', $q$SELECT billing.amount_le('1 USD', '1 EUR')$q$);
SELECT s('billing.amount_gt(billing.amount,billing.amount)', $q$SELECT billing.amount_gt('1 USD', '1 EUR')$q$);
SELECT s('billing.amount_ge(billing.amount,billing.amount)', $q$SELECT billing.amount_ge('1 USD', '1 EUR')$q$);
SELECT s('billing.amount_order_lt(billing.amount,billing.amount)', $q$SELECT billing.amount_order_lt('1 USD', '1 EUR')$q$);
SELECT s('billing.amount_order_le(billing.amount,billing.amount)', $q$SELECT billing.amount_order_le('1 USD', '1 EUR')$q$);
SELECT s('billing.amount_order_gt(billing.amount,billing.amount)', $q$SELECT billing.amount_order_gt('1 USD', '1 EUR')$q$);
SELECT s('billing.amount_order_ge(billing.amount,billing.amount)', $q$SELECT billing.amount_order_ge('1 USD', '1 EUR')$q$);
SELECT s('billing.amount_cmp(billing.amount,billing.amount)', $q$SELECT billing.amount_cmp('1 USD', '1 EUR')$q$);
SELECT s('billing.amount_sortsupport(internal)', $q$SELECT array_agg(x ORDER BY x) FROM (VALUES ('1.00 USD'::billing.amount), ('1 JPY'), ('-5.000 KWD'), ('1.00 EUR')) v(x)$q$);
SELECT s('billing.amount_hash(billing.amount)', $q$SELECT billing.amount_hash(NULL)$q$);
SELECT s('billing.amount_hash_extended(billing.amount,bigint)', $q$SELECT billing.amount_hash_extended('1 USD', NULL)$q$, $q$SELECT billing.amount_hash_extended('1 USD', -9223372036854775808)$q$);
SELECT s('billing.amount_pl(billing.amount,billing.amount)', $q$SELECT billing.amount_pl('1 USD', '1 EUR')$q$,
    $q$SELECT billing.amount_pl(billing.from_minor_units(100000000000000, 'USD'), '0.01 USD')$q$);
SELECT s('billing.amount_mi(billing.amount,billing.amount)', $q$SELECT billing.amount_mi('1 USD', '1 EUR')$q$,
    $q$SELECT billing.amount_mi(billing.from_minor_units(-100000000000000, 'USD'), '0.02 USD')$q$);
SELECT s('billing.amount_um(billing.amount)', $q$SELECT billing.amount_um(billing.from_minor_units(-9223372036854775808, 'USD'))$q$);
SELECT s('billing.amount_mul(billing.amount,bigint)', $q$SELECT billing.amount_mul('1.00 USD'::billing.amount, 9223372036854775807::bigint)$q$);
SELECT s('billing.amount_mul(bigint,billing.amount)', $q$SELECT billing.amount_mul(-9223372036854775808::bigint, '-0.01 USD'::billing.amount)$q$);
SELECT s('billing.amount_mul(billing.amount,integer)', $q$SELECT billing.amount_mul(billing.from_minor_units(100000000000000, 'USD'), 2::integer)$q$);
SELECT s('billing.amount_mul(integer,billing.amount)', $q$SELECT billing.amount_mul(2147483647::integer, billing.from_minor_units(100000000000000, 'USD'))$q$);
SELECT s('billing.amount_mul(billing.amount,numeric)', $q$SELECT billing.amount_mul('1.00 USD'::billing.amount, 'NaN'::numeric)$q$,
    $q$SELECT billing.amount_mul('1.00 USD'::billing.amount, 1e300::numeric)$q$, $q$SELECT billing.amount_mul('1.00 USD'::billing.amount, 'Infinity'::numeric)$q$);
SELECT s('billing.amount_mul(numeric,billing.amount)', $q$SELECT billing.amount_mul('-Infinity'::numeric, '1.00 USD'::billing.amount)$q$);
SELECT s('billing.amount_div(billing.amount,bigint)', $q$SELECT billing.amount_div('1.00 USD'::billing.amount, 0::bigint)$q$,
    $q$SELECT billing.amount_div(billing.from_minor_units(-9223372036854775808, 'USD'), -1::bigint)$q$);
SELECT s('billing.amount_div(billing.amount,integer)', $q$SELECT billing.amount_div('1.00 USD'::billing.amount, 0::integer)$q$);
SELECT s('billing.amount_div(billing.amount,numeric)', $q$SELECT billing.amount_div('1.00 USD'::billing.amount, 0::numeric)$q$,
    $q$SELECT billing.amount_div('1.00 USD'::billing.amount, 'NaN'::numeric)$q$, $q$SELECT billing.amount_div('1.00 USD'::billing.amount, 1e-300::numeric)$q$);
SELECT s('billing.amount_div(billing.amount,billing.amount)', $q$SELECT billing.amount_div('1.00 USD'::billing.amount, '0.00 USD'::billing.amount)$q$,
    $q$SELECT billing.amount_div('1.00 USD'::billing.amount, '1.00 EUR'::billing.amount)$q$);
SELECT s('billing.amount_sum_accum(internal,billing.amount)', $q$SELECT billing.sum(x) FROM (VALUES ('1 USD'::billing.amount), ('1 EUR')) v(x)$q$);
SELECT s('billing.amount_sum_combine(internal,internal)', $q$SELECT billing.sum(x) FROM amounts$q$);
SELECT s('billing.amount_sum_serialize(internal)', $q$SELECT billing.sum(x) FROM amounts WHERE billing.currency(x) = 'USD'$q$);
SELECT s('billing.amount_sum_deserialize(bytea,internal)', $q$SELECT billing.avg(x) FROM amounts WHERE billing.currency(x) = 'EUR'$q$);
SELECT s('billing.amount_sum_final(internal)', $q$SELECT billing.sum(x) FROM (VALUES (billing.from_minor_units(100000000000000, 'USD')), ('0.01 USD')) v(x)$q$,
    $q$SELECT billing.sum(x) FROM (VALUES (NULL::billing.amount)) v(x)$q$);
SELECT s('billing.amount_avg_final(internal)', $q$SELECT billing.avg(x) FROM (VALUES (NULL::billing.amount)) v(x)$q$,
    $q$SELECT billing.avg(x) FROM (VALUES ('1 USD'::billing.amount), ('1 EUR')) v(x)$q$);
SELECT s('billing.amount_smaller(billing.amount,billing.amount)', $q$SELECT billing.amount_smaller('1 USD', '1 EUR')$q$);
SELECT s('billing.amount_larger(billing.amount,billing.amount)', $q$SELECT billing.amount_larger('1 USD', '1 EUR')$q$);
SELECT s('billing.sum(billing.amount)', $q$SELECT billing.sum(x) FROM (VALUES ('1 USD'::billing.amount), ('1 JPY')) v(x)$q$);
SELECT s('billing.amount_sum_numeric_final(internal)', $q$SELECT billing.sum_numeric(x) FROM (VALUES (NULL::billing.amount)) v(x)$q$,
    $q$SELECT billing.sum_numeric(x) FROM (VALUES (billing.from_minor_units(100000000000000, 'USD')), ('0.01 USD')) v(x)$q$);
SELECT s('billing.sum_numeric(billing.amount)', $q$SELECT billing.sum_numeric(x) FROM (VALUES ('1 USD'::billing.amount), ('1 JPY')) v(x)$q$,
    $q$SELECT billing.sum_numeric(x) FROM amounts$q$);
SELECT s('billing.avg(billing.amount)', $q$SELECT billing.avg(x) FROM (VALUES ('1 USD'::billing.amount), ('1 JPY')) v(x)$q$);
SELECT s('billing.min(billing.amount)', $q$SELECT billing.min(x) FROM (VALUES ('1 USD'::billing.amount), ('1 JPY')) v(x)$q$);
SELECT s('billing.max(billing.amount)', $q$SELECT billing.max(x) FROM (VALUES ('1 USD'::billing.amount), ('1 JPY')) v(x)$q$);
SELECT s('billing.amount(numeric,text)', $q$SELECT billing.amount(1, 'XYZ')$q$, $q$SELECT billing.amount(1, '')$q$,
    $q$SELECT billing.amount(1.001, 'USD')$q$, $q$SELECT billing.amount(1e30, 'USD')$q$, $q$SELECT billing.amount('NaN', 'USD')$q$,
    $q$SELECT billing.amount(1, 'USD''; DROP TABLE billing.invoice; --')$q$, $q$SELECT billing.amount(NULL, 'USD')$q$);
SELECT s('billing.round_amount(numeric,text,text)', $q$SELECT billing.round_amount(1.005, 'USD', 'sideways')$q$,
    $q$SELECT billing.round_amount(1.005, 'USD', '')$q$, $q$SELECT billing.round_amount('Infinity', 'USD', 'half_up')$q$,
    $q$SELECT billing.round_amount(1e30, 'USD', 'half_up')$q$);
SELECT s('billing.round_amount(numeric,text)', $q$SELECT billing.round_amount(1.005, 'XXX')$q$, $q$SELECT billing.round_amount('-Infinity', 'USD')$q$);
SELECT s('billing.round_money(numeric,text,text)', $q$SELECT billing.round_money(1.005, 'USD', 'bankers')$q$,
    $q$SELECT billing.round_money('Infinity', 'USD', 'half_up')$q$, $q$SELECT billing.round_money(1.005, 'XYZ', 'half_up')$q$);
SELECT s('billing.round_money(numeric,text)', $q$SELECT billing.round_money('NaN', 'USD')$q$,
    $q$SELECT billing.round_money(1, 'XYZ')$q$, $q$SELECT billing.round_money(1e300, 'USD') > 0$q$,
    $q$SELECT billing.round_money(1, 'USD''; DROP TABLE billing.invoice; --')$q$);
SELECT s('billing.from_minor_units(bigint,text)', $q$SELECT billing.from_minor_units(1, 'XYZ')$q$, $q$SELECT billing.from_minor_units(1, NULL)$q$,
    $q$SELECT billing.from_minor_units(-9223372036854775808, 'KWD')$q$);
SELECT s('billing.minor_units(billing.amount)', $q$SELECT billing.minor_units(NULL)$q$);
SELECT s('billing.currency(billing.amount)', $q$SELECT billing.currency(NULL)$q$);
SELECT s('billing.scale(billing.amount)', $q$SELECT billing.scale(NULL)$q$);
SELECT s('billing.to_numeric(billing.amount)', $q$SELECT billing.to_numeric(NULL)$q$);
SELECT s('billing.allocate(billing.amount,numeric[])', $q$SELECT billing.allocate('1.00 USD', '{}')$q$,
    $q$SELECT billing.allocate('1.00 USD', '{0,0}')$q$, $q$SELECT billing.allocate('1.00 USD', '{-1,2}')$q$,
    $q$SELECT billing.allocate('1.00 USD', '{1,NULL}')$q$, $q$SELECT billing.allocate('1.00 USD', '{NaN,1}')$q$,
    $q$SELECT billing.allocate('1.00 USD', '{1e300,1}')$q$, $q$SELECT billing.allocate('1.00 USD', array_fill(1::numeric, ARRAY[100000]))$q$);
SELECT s('billing.split(billing.amount,integer)', $q$SELECT billing.split('1.00 USD', 0)$q$, $q$SELECT billing.split('1.00 USD', -1)$q$,
    $q$SELECT billing.split('1.00 USD', 2147483647)$q$);
SELECT s('billing.format_amount(billing.amount,text)', $q$SELECT billing.format_amount('1.00 USD', '')$q$,
    $q$SELECT billing.format_amount('1.00 USD', 'xx-YY-not-a-locale''); DROP TABLE billing.invoice; --')$q$,
    $q$SELECT billing.format_amount('1.00 USD', repeat('a', 100000))$q$);
SELECT s('billing.currency_list()', $q$SELECT count(*) > 100 FROM billing.currency_list()$q$);

-- periods and the clock
SELECT s('billing.period_containing(date,interval,date)', $q$SELECT billing.period_containing('2026-01-31', '0 days', '2026-02-01')$q$,
    $q$SELECT billing.period_containing('2026-01-31', '-1 month', '2026-02-01')$q$, $q$SELECT billing.period_containing('2026-01-31', '1 hour', '2026-02-01')$q$,
    $q$SELECT billing.period_containing('infinity', '1 month', '2026-02-01')$q$, $q$SELECT billing.period_containing('2026-01-31', '1 month', 'infinity')$q$,
    $q$SELECT billing.period_containing('4713-01-01 BC', '1 month', '5874897-12-31')$q$, $q$SELECT billing.period_containing('2026-01-31', '1 month 1 day', '2026-02-01')$q$);
SELECT s('billing.periods_between(date,interval,daterange)', $q$SELECT count(*) FROM billing.periods_between('2026-01-01', '1 day', '[2026-01-01,infinity)')$q$,
    $q$SELECT count(*) FROM billing.periods_between('2026-01-01', '1 day', '(,)')$q$, $q$SELECT count(*) FROM billing.periods_between('2026-01-01', '1 day', 'empty')$q$,
    $q$SELECT billing.periods_between('2026-01-01', '1 day', '[4713-01-01 BC,5874897-12-31)') LIMIT 3$q$);
SELECT s('billing.next_period(date,interval,daterange)', $q$SELECT billing.next_period('2026-01-01', '1 month', 'empty')$q$,
    $q$SELECT billing.next_period('2026-01-01', '1 month', '[2026-01-01,)')$q$, $q$SELECT billing.next_period('2026-01-01', '1 year', '[5874897-01-01,5874897-12-31)')$q$);
SELECT s('billing.prorate(billing.amount,daterange,daterange,text)', $q$SELECT billing.prorate('30.00 USD', '[2026-01-01,2026-02-01)', '[2026-01-10,2026-03-01)')$q$,
    $q$SELECT billing.prorate('30.00 USD', 'empty', 'empty')$q$, $q$SELECT billing.prorate('30.00 USD', '[2026-01-01,)', '[2026-01-10,2026-02-01)')$q$,
    $q$SELECT billing.prorate('30.00 USD', '[2026-01-01,2026-02-01)', '[2026-01-10,2026-02-01)', 'thirty')$q$,
    $q$SELECT billing.prorate(billing.from_minor_units(100000000000000, 'USD'), '[2026-01-01,2026-02-01)', '[2026-01-10,2026-02-01)')$q$);
SELECT s('billing.prorate(billing.amount,daterange,daterange,text,text)',
    $q$SELECT billing.prorate('30.00 USD', '[2026-01-01,2026-02-01)', '[2026-01-10,2026-02-01)', 'actual', NULL)$q$,
    $q$SELECT billing.prorate('30.00 USD', '[2026-01-01,2026-02-01)', '[2026-01-10,2026-02-01)', 'actual', 'HALF_UP')$q$,
    $q$SELECT billing.prorate('30.00 USD', '[2026-01-01,2026-02-01)', '[2026-01-10,2026-02-01)', 'actual', '')$q$);
SELECT s('billing.now()', $q$SELECT billing.now() = '2026-01-01 12:00+00'$q$);
SELECT s('billing.today(text,timestamp with time zone)', $q$SELECT billing.today('Mars/Olympus_Mons')$q$, $q$SELECT billing.today('')$q$,
    $q$SELECT billing.today('UTC', 'infinity')$q$, $q$SELECT billing.today('../../etc/passwd')$q$, $q$SELECT billing.today(NULL)$q$);
SELECT s('billing.check_time_zone(text)', $q$SELECT billing.check_time_zone('<+167>-167')$q$,
    $q$SELECT billing.check_time_zone('../../etc/passwd')$q$, $q$SELECT billing.check_time_zone('')$q$,
    $q$SELECT billing.check_time_zone('europe/berlin')$q$, $q$SELECT billing.check_time_zone(repeat('x', 100000))$q$,
    $q$SELECT billing.check_time_zone(NULL)$q$);

-- accounts and the catalog
SELECT s('billing.create_billing_entity(text,text,text,text,text,boolean,integer,jsonb,text)',
    $q$SELECT billing.create_billing_entity(NULL, 'USD')$q$, $q$SELECT billing.create_billing_entity('', 'USD')$q$,
    $q$SELECT billing.create_billing_entity('X', 'XYZ')$q$, $q$SELECT billing.create_billing_entity('X', NULL)$q$,
    $q$SELECT billing.create_billing_entity('X', 'USD', invoice_prefix => 'INV''; DROP TABLE billing.invoice; --')$q$,
    $q$SELECT billing.create_billing_entity('X', 'USD', number_digits => 2147483647)$q$,
    $q$SELECT billing.create_billing_entity('Acme''); DROP TABLE billing.invoice; --', 'USD')$q$,
    $q$SELECT billing.create_billing_entity('X', 'USD', rounding => NULL)$q$,
    $q$SELECT billing.create_billing_entity('X', 'USD', rounding => 'bankers')$q$);
SELECT s('billing.update_billing_entity(bigint,text,text,text,text,jsonb,text)', $q$SELECT billing.update_billing_entity(NULL)$q$,
    $q$SELECT billing.update_billing_entity(9223372036854775807, legal_name => 'X')$q$, $q$SELECT billing.update_billing_entity(1, legal_name => '')$q$,
    $q$SELECT billing.update_billing_entity(1, default_currency => 'XYZ')$q$,
    $q$SELECT billing.update_billing_entity(1, rounding => 'HALF_EVEN')$q$);
SELECT s('billing.create_tax_rate(text,numeric,boolean,text)', $q$SELECT billing.create_tax_rate(NULL, 20)$q$,
    $q$SELECT billing.create_tax_rate('VAT', NULL)$q$, $q$SELECT billing.create_tax_rate('VAT', -1)$q$, $q$SELECT billing.create_tax_rate('VAT', 1e300)$q$,
    $q$SELECT billing.create_tax_rate('VAT', 'NaN')$q$);
SELECT s('billing.create_account(bigint,text,text,text,integer,text,text,text,bigint,boolean,jsonb,text)',
    $q$SELECT billing.create_account(NULL, 'X')$q$, $q$SELECT billing.create_account(9223372036854775807, 'X')$q$,
    $q$SELECT billing.create_account(1, NULL)$q$, $q$SELECT billing.create_account(1, '')$q$, $q$SELECT billing.create_account(1, 'X', currency => 'XYZ')$q$,
    $q$SELECT billing.create_account(1, 'X', currency => '')$q$, $q$SELECT billing.create_account(1, 'X', timezone => 'Mars/Base')$q$,
    $q$SELECT billing.create_account(1, 'X', timezone => '<+167>-167')$q$,
    $q$SELECT billing.create_account(1, 'X', payment_terms_days => -1)$q$, $q$SELECT billing.create_account(1, 'X', payment_terms_days => 2147483647)$q$,
    $q$SELECT billing.create_account(1, 'X', tax_rate_id => 999)$q$,
    $q$SELECT billing.create_account(1, 'X', locale => 'xx-YY')$q$, $q$SELECT billing.create_account(1, 'X', locale => '')$q$,
    $q$SELECT billing.create_account(1, 'Robert''); DROP TABLE billing.invoice; --', external_ref => ''' OR ''1''=''1', email => '<script>alert(1)</script>')$q$);
SELECT s('billing.update_account(bigint,text,text,integer,text,text,text,bigint,boolean,jsonb,text)',
    $q$SELECT billing.update_account(NULL, name => 'X')$q$, $q$SELECT billing.update_account(999, name => 'X')$q$,
    $q$SELECT billing.update_account(1, name => '')$q$, $q$SELECT billing.update_account(1, timezone => '')$q$,
    $q$SELECT billing.update_account(1, payment_terms_days => 99999)$q$, $q$SELECT billing.update_account(1, tax_rate_id => -1)$q$,
    $q$SELECT billing.update_account(1, locale => 'xx-YY')$q$);
SELECT s('billing.create_product(text,text,jsonb)', $q$SELECT billing.create_product(NULL)$q$, $q$SELECT billing.create_product('')$q$);
SELECT s('billing.update_product(bigint,text,text,boolean,jsonb)', $q$SELECT billing.update_product(NULL)$q$,
    $q$SELECT billing.update_product(999, name => 'X')$q$, $q$SELECT billing.update_product(1, name => '')$q$);
SELECT s('billing.create_price(bigint,text,numeric,text,interval,text,text,numeric,jsonb,numeric,integer,bigint,text,jsonb,boolean)',
    $q$SELECT billing.create_price(NULL, 'USD', 1)$q$, $q$SELECT billing.create_price(1, 'XYZ', 1)$q$, $q$SELECT billing.create_price(1, NULL, 1)$q$,
    $q$SELECT billing.create_price(1, 'USD', -1)$q$, $q$SELECT billing.create_price(1, 'USD', 'NaN')$q$, $q$SELECT billing.create_price(1, 'USD', 'Infinity')$q$,
    $q$SELECT billing.create_price(1, 'USD', 1, scheme => '')$q$, $q$SELECT billing.create_price(1, 'USD', 1, cadence => '0 days')$q$,
    $q$SELECT billing.create_price(1, 'USD', 1, cadence => '-1 month')$q$, $q$SELECT billing.create_price(1, 'USD', 1, cadence => NULL)$q$,
    $q$SELECT billing.create_price(1, 'USD', scheme => 'graduated', tiers => '{"up_to": 1}')$q$,
    $q$SELECT billing.create_price(1, 'USD', scheme => 'graduated', tiers => '[{"up_to": "x", "unit_amount": 1}, {"up_to": null, "unit_amount": 1}]')$q$,
    $q$SELECT billing.create_price(1, 'USD', scheme => 'graduated', tiers => '[{"up_to": null, "unit_amount": -1}]')$q$,
    $q$SELECT billing.create_price(1, 'USD', 1, trial_days => -1)$q$, $q$SELECT billing.create_price(1, 'USD', 1, setup_fee => 'NaN')$q$,
    $q$SELECT billing.create_price(1, 'USD', 1, scheme => 'package', package_size => 'Infinity')$q$,
    $q$SELECT billing.create_price(1, 'USD', scheme => 'volume', tiers => '[{"up_to": null, "unit_amount": "NaN"}]')$q$);
SELECT s('billing.update_price(bigint,text,boolean,bigint,integer,jsonb,boolean)', $q$SELECT billing.update_price(NULL)$q$,
    $q$SELECT billing.update_price(999, active => false)$q$, $q$SELECT billing.update_price(1, trial_days => -5)$q$,
    $q$SELECT billing.update_price(1, tax_rate_id => 999)$q$);
SELECT s('billing.price_amount(bigint,numeric,text)', $q$SELECT billing.price_amount(NULL)$q$, $q$SELECT billing.price_amount(1, -1)$q$,
    $q$SELECT billing.price_amount(2, 1e300)$q$, $q$SELECT billing.price_amount(2, 'NaN')$q$, $q$SELECT billing.price_amount(999)$q$,
    $q$SELECT billing.price_amount(1, 1, NULL)$q$, $q$SELECT billing.price_amount(1, 1, 'nearest')$q$);
SELECT s('billing.create_coupon(text,text,numeric,billing.amount,integer,text)', $q$SELECT billing.create_coupon(NULL, 'once', 10)$q$,
    $q$SELECT billing.create_coupon('', 'once', 10)$q$, $q$SELECT billing.create_coupon('X', 'once')$q$, $q$SELECT billing.create_coupon('X', 'once', 101)$q$,
    $q$SELECT billing.create_coupon('X', 'once', 'NaN')$q$, $q$SELECT billing.create_coupon('X', 'sometimes', 10)$q$,
    $q$SELECT billing.create_coupon('X', 'repeating', 10, duration_periods => -1)$q$,
    $q$SELECT billing.create_coupon('X', 'once', amount_off => '-1.00 USD')$q$, $q$SELECT billing.create_coupon('TEN', 'once', 10)$q$);
SELECT s('billing.create_coupon(text,text,numeric,text,integer,text)',
    $q$SELECT billing.create_coupon('X', 'once', amount_off => 10, currency => NULL)$q$,
    $q$SELECT billing.create_coupon('X', 'once', amount_off => 10, currency => 'XYZ')$q$,
    $q$SELECT billing.create_coupon('X', 'once', amount_off => 1.005, currency => 'USD')$q$,
    $q$SELECT billing.create_coupon('X', 'once', amount_off => -1, currency => 'USD')$q$,
    $q$SELECT billing.create_coupon('X', 'once', amount_off => 0, currency => 'USD')$q$,
    $q$SELECT billing.create_coupon('X', 'once', amount_off => 'Infinity', currency => 'USD')$q$,
    $q$SELECT billing.create_coupon('X', 'once', amount_off => 1e13, currency => 'USD')$q$,
    $q$SELECT billing.create_coupon('X', 'once', amount_off => NULL::numeric, currency => 'USD')$q$);

-- subscriptions and usage
SELECT s('billing.subscribe(bigint,bigint,numeric,date,date,integer,text,jsonb,boolean,jsonb)',
    $q$SELECT billing.subscribe(NULL, 1)$q$, $q$SELECT billing.subscribe(1, NULL)$q$, $q$SELECT billing.subscribe(1, 999)$q$,
    $q$SELECT billing.subscribe(2, 1)$q$, $q$SELECT billing.subscribe(1, 1, quantity => -1)$q$, $q$SELECT billing.subscribe(1, 1, quantity => 'NaN')$q$,
    $q$SELECT billing.subscribe(1, 1, start_date => 'infinity')$q$, $q$SELECT billing.subscribe(1, 1, start_date => '-infinity')$q$,
    $q$SELECT billing.subscribe(1, 1, anchor => 'infinity')$q$,
    $q$SELECT billing.subscribe(1, 1, trial_days => -1)$q$, $q$SELECT billing.subscribe(1, 1, trial_days => 2147483647)$q$,
    $q$SELECT billing.subscribe(1, 1, coupon => 'NOPE''; DROP TABLE billing.invoice; --')$q$,
    $q$SELECT billing.subscribe(1, items => '{}')$q$, $q$SELECT billing.subscribe(1, items => '[{"price_id": "x"}]')$q$);
SELECT s('billing.apply_coupon(bigint,bigint,text,boolean)', $q$SELECT billing.apply_coupon(1, 1, NULL)$q$, $q$SELECT billing.apply_coupon(1, 1, '')$q$,
    $q$SELECT billing.apply_coupon(1, 999, 'TEN')$q$, $q$SELECT billing.apply_coupon(1, 1, ''' OR ''1''=''1')$q$);
SELECT s('billing.change_subscription(bigint,bigint,bigint,numeric,text,date,bigint)',
    $q$SELECT billing.change_subscription(1, NULL, quantity => 2)$q$, $q$SELECT billing.change_subscription(1, 1, quantity => -2)$q$,
    $q$SELECT billing.change_subscription(1, 1, price_id => 999)$q$, $q$SELECT billing.change_subscription(1, 1, quantity => 2, proration => '')$q$,
    $q$SELECT billing.change_subscription(1, 1, quantity => 2, effective_date => 'infinity')$q$,
    $q$SELECT billing.change_subscription(1, 1, quantity => 2, effective_date => '-infinity')$q$,
    $q$SELECT billing.change_subscription(1, 1, quantity => 'Infinity')$q$, $q$SELECT billing.change_subscription(1, 1)$q$);
SELECT s('billing.add_subscription_item(bigint,bigint,bigint,numeric,text,date)',
    $q$SELECT billing.add_subscription_item(1, NULL, 2)$q$, $q$SELECT billing.add_subscription_item(1, 1, NULL)$q$,
    $q$SELECT billing.add_subscription_item(1, 1, 2, -1)$q$, $q$SELECT billing.add_subscription_item(1, 1, 2, 'NaN')$q$,
    $q$SELECT billing.add_subscription_item(1, 1, 2, 'Infinity')$q$, $q$SELECT billing.add_subscription_item(1, 1, 1)$q$,
    $q$SELECT billing.add_subscription_item(1, 1, 999)$q$, $q$SELECT billing.add_subscription_item(2, 1, 2)$q$,
    $q$SELECT billing.add_subscription_item(1, 1, 2, proration => ''' OR ''1''=''1')$q$,
    $q$SELECT billing.add_subscription_item(1, 1, 2, effective_date => 'infinity')$q$,
    $q$SELECT billing.add_subscription_item(1, 1, 2, effective_date => '-infinity')$q$,
    $q$SELECT billing.add_subscription_item(1, 1, 2, proration => 'at_period_end', effective_date => '2026-01-15')$q$);
SELECT s('billing.remove_subscription_item(bigint,bigint,text,date)',
    $q$SELECT billing.remove_subscription_item(1, NULL)$q$, $q$SELECT billing.remove_subscription_item(NULL, 1)$q$,
    $q$SELECT billing.remove_subscription_item(1, 1)$q$, $q$SELECT billing.remove_subscription_item(1, 999)$q$,
    $q$SELECT billing.remove_subscription_item(2, 1)$q$, $q$SELECT billing.remove_subscription_item(1, 1, NULL)$q$,
    $q$SELECT billing.remove_subscription_item(1, 1, effective_date => 'infinity')$q$);
SELECT s('billing.schedule_change(bigint,bigint,date,bigint,numeric,bigint)',
    $q$SELECT billing.schedule_change(1, 1, NULL, 1)$q$, $q$SELECT billing.schedule_change(1, 1, 'infinity', 1)$q$,
    $q$SELECT billing.schedule_change(1, 1, '-infinity', 1)$q$, $q$SELECT billing.schedule_change(1, 1, '2026-01-01', 1)$q$,
    $q$SELECT billing.schedule_change(1, 1, '2026-03-01', 999)$q$, $q$SELECT billing.schedule_change(1, 1, '2026-03-01', quantity => -1)$q$,
    $q$SELECT billing.schedule_change(1, 1, '2026-03-01', quantity => 'NaN')$q$, $q$SELECT billing.schedule_change(1, 1, '2026-03-01')$q$,
    $q$SELECT billing.schedule_change(1, 999, '2026-03-01', 1)$q$, $q$SELECT billing.schedule_change(2, 1, '2026-03-01', 1)$q$,
    $q$SELECT billing.schedule_change(1, 1, '2026-03-01', 1, subscription_item_id => 2)$q$);
SELECT s('billing.cancel_scheduled_change(bigint,bigint)',
    $q$SELECT billing.cancel_scheduled_change(1, NULL)$q$, $q$SELECT billing.cancel_scheduled_change(NULL, 1)$q$,
    $q$SELECT billing.cancel_scheduled_change(1, 1)$q$, $q$SELECT billing.cancel_scheduled_change(2, 1)$q$);
SELECT s('billing.migrate_price(bigint,bigint,integer,bigint[])',
    $q$SELECT billing.migrate_price(NULL, 1)$q$, $q$SELECT billing.migrate_price(1, NULL)$q$,
    $q$SELECT billing.migrate_price(1, 1)$q$, $q$SELECT billing.migrate_price(1, 2)$q$, $q$SELECT billing.migrate_price(1, 999)$q$,
    $q$SELECT billing.migrate_price(1, 1, -1)$q$, $q$SELECT billing.migrate_price(999, 1)$q$,
    $q$SELECT billing.migrate_price(2, 1, 2147483647)$q$, $q$SELECT billing.migrate_price(1, 2, account_ids => '{NULL}')$q$);
SELECT s('billing.cancel_subscription(bigint,bigint,boolean,boolean,date)', $q$SELECT billing.cancel_subscription(NULL, 1)$q$,
    $q$SELECT billing.cancel_subscription(1, 999)$q$, $q$SELECT billing.cancel_subscription(1, 1, false, cancel_date => 'infinity')$q$,
    $q$SELECT billing.cancel_subscription(1, 1, false, cancel_date => '-infinity')$q$, $q$SELECT billing.cancel_subscription(1, 1, NULL)$q$);
SELECT s('billing.pause_subscription(bigint,bigint)', $q$SELECT billing.pause_subscription(NULL, NULL)$q$, $q$SELECT billing.pause_subscription(1, -1)$q$);
SELECT s('billing.resume_subscription(bigint,bigint,date)', $q$SELECT billing.resume_subscription(1, 1)$q$,
    $q$SELECT billing.resume_subscription(1, 1, 'infinity')$q$, $q$SELECT billing.resume_subscription(1, NULL)$q$);
SELECT s('billing.record_usage(bigint,bigint,numeric,text,timestamp with time zone,text)', $q$SELECT billing.record_usage(1, 2, 1, NULL)$q$,
    $q$SELECT billing.record_usage(1, 2, 1, '')$q$, $q$SELECT billing.record_usage(1, 2, -1, 'u2')$q$, $q$SELECT billing.record_usage(1, 2, 'NaN', 'u2')$q$,
    $q$SELECT billing.record_usage(1, 2, 1, 'u2', occurred_at => 'infinity')$q$, $q$SELECT billing.record_usage(1, 2, 1, 'u2', occurred_at => '-infinity')$q$,
    $q$SELECT billing.record_usage(1, 1, 1, 'u2')$q$, $q$SELECT billing.record_usage(1, 999, 1, 'u2')$q$, $q$SELECT billing.record_usage(1, 2, 2, 'u1')$q$,
    $q$SELECT billing.record_usage(1, 2, 1, 'u2''); DROP TABLE billing.usage_event; --', value => repeat('x', 1000000))$q$);
SELECT s('billing.record_usage_batch(bigint[],bigint[],numeric[],text[],timestamp with time zone[],text[])',
    $q$SELECT billing.record_usage_batch(NULL, NULL, NULL, NULL)$q$, $q$SELECT billing.record_usage_batch('{1}', '{2}', '{1}', '{NULL}')$q$,
    $q$SELECT billing.record_usage_batch('{1}', '{2}', '{1}', '{""}')$q$, $q$SELECT billing.record_usage_batch('{1}', '{2}', '{-1}', '{u2}')$q$,
    $q$SELECT billing.record_usage_batch('{1}', '{2}', '{NaN}', '{u2}')$q$, $q$SELECT billing.record_usage_batch('{1}', '{2}', '{NULL}', '{u2}')$q$,
    $q$SELECT billing.record_usage_batch('{1,1}', '{2}', '{1,1}', '{u2,u3}')$q$, $q$SELECT billing.record_usage_batch('{{1}}', '{{2}}', '{{1}}', '{{u2}}')$q$,
    $q$SELECT billing.record_usage_batch('{1}', '{2}', '{1}', '{u2}', '{infinity}')$q$, $q$SELECT billing.record_usage_batch('{1}', '{2}', '{1}', '{u2}', '{-infinity}')$q$,
    $q$SELECT billing.record_usage_batch('{1}', '{1}', '{1}', '{u2}')$q$, $q$SELECT billing.record_usage_batch('{1}', '{999}', '{1}', '{u2}')$q$,
    $q$SELECT billing.record_usage_batch('{1,NULL}', '{2,2}', '{1,1}', '{u2,u3}')$q$, $q$SELECT billing.record_usage_batch('{1}', '{2}', '{2}', '{u1}')$q$,
    $q$SELECT billing.record_usage_batch('{1,1}', '{2,2}', '{1,2}', '{u2,u2}')$q$,
    $q$SELECT billing.record_usage_batch('{1}', '{2}', '{1e400}', '{u2}')$q$,
    $q$SELECT billing.record_usage_batch('{1}', '{2}', '{1}', ARRAY['u2''); DROP TABLE billing.usage_event; --'], usage_values => ARRAY[repeat('x', 1000000)])$q$);

-- invoicing
SELECT s('billing.run_cycle(date,integer,timestamp with time zone)', $q$CALL billing.run_cycle(batch_size => 0)$q$,
    $q$CALL billing.run_cycle(batch_size => NULL)$q$, $q$CALL billing.run_cycle(batch_size => -2147483648)$q$);
SELECT s('billing.preview_invoice(bigint,bigint,date)', $q$SELECT * FROM billing.preview_invoice(NULL)$q$,
    $q$SELECT * FROM billing.preview_invoice(999)$q$, $q$SELECT * FROM billing.preview_invoice(1, 999)$q$,
    $q$SELECT count(*) FROM billing.preview_invoice(1, as_of => 'infinity')$q$, $q$SELECT count(*) FROM billing.preview_invoice(1, as_of => '-infinity')$q$,
    $q$SELECT count(*) FROM billing.preview_invoice(1, as_of => '5874897-12-31')$q$);
SELECT s('billing.mark_events_done(bigint[])', $q$SELECT billing.mark_events_done(NULL)$q$, $q$SELECT billing.mark_events_done('{}')$q$,
    $q$SELECT billing.mark_events_done('{NULL,-1,9223372036854775807}')$q$);

-- payments, credits, collection
SELECT s('billing.looks_like_card_number(text)', $q$SELECT billing.looks_like_card_number(NULL)$q$, $q$SELECT billing.looks_like_card_number('')$q$,
    $q$SELECT billing.looks_like_card_number(repeat('4242 ', 100000))$q$);
SELECT s('billing.looks_like_card_number(jsonb)', $q$SELECT billing.looks_like_card_number(NULL::jsonb)$q$,
    $q$SELECT billing.looks_like_card_number('{}'::jsonb)$q$,
    $q$SELECT billing.looks_like_card_number(('[' || repeat('{"a": ["4242 4242", 4242], "4242": 1}, ', 50000) || '1]')::jsonb)$q$);
SELECT s('billing.set_early_payment_discount(bigint,numeric,integer)', $q$SELECT billing.set_early_payment_discount(999, 2, 10)$q$,
    $q$SELECT billing.set_early_payment_discount(1, 100, 10)$q$, $q$SELECT billing.set_early_payment_discount(1, 'NaN', 10)$q$,
    $q$SELECT billing.set_early_payment_discount(1, 2, NULL)$q$, $q$SELECT billing.set_early_payment_discount(1, 2, -1)$q$);
SELECT s('billing.apply_payment(bigint,billing.amount,text,text,text,date,bigint[])',
    $q$SELECT billing.apply_payment(NULL, '1.00 USD', 'cash')$q$, $q$SELECT billing.apply_payment(999, '1.00 USD', 'cash')$q$,
    $q$SELECT billing.apply_payment(1, NULL, 'cash')$q$, $q$SELECT billing.apply_payment(1, '1.00 EUR', 'cash')$q$,
    $q$SELECT billing.apply_payment(1, '0.00 USD', 'cash')$q$, $q$SELECT billing.apply_payment(1, '-1.00 USD', 'cash')$q$,
    $q$SELECT billing.apply_payment(1, billing.from_minor_units(100000000000000, 'USD'), 'cash')$q$,
    $q$SELECT billing.apply_payment(1, '1.00 USD', NULL)$q$, $q$SELECT billing.apply_payment(1, '1.00 USD', '')$q$,
    $q$SELECT billing.apply_payment(1, '1.00 USD', 'card', reference => '4242 4242 4242 4242')$q$,
    $q$SELECT billing.apply_payment(1, '1.00 USD', 'cash', idempotency_key => '')$q$,
    $q$SELECT billing.apply_payment(1, '1.00 USD', 'cash', idempotency_key => 'k1')$q$,
    $q$SELECT billing.apply_payment(1, '1.00 USD', 'cash', received_on => 'infinity')$q$,
    $q$SELECT billing.apply_payment(1, '1.00 USD', 'cash', received_on => '-infinity')$q$,
    $q$SELECT billing.apply_payment(1, '1.00 USD', 'cash', invoice_ids => '{999,NULL}')$q$,
    $q$SELECT billing.apply_payment(1, '1.00 USD', 'cash', reference => 'x''); DROP TABLE billing.payment; --', idempotency_key => ''' OR 1=1 --')$q$);
SELECT s('billing.apply_payment(bigint,numeric,text,text,text,date,bigint[])',
    $q$SELECT billing.apply_payment(1, 1.005, 'cash')$q$, $q$SELECT billing.apply_payment(1, 0, 'cash')$q$,
    $q$SELECT billing.apply_payment(1, -1, 'cash')$q$, $q$SELECT billing.apply_payment(1, NULL::numeric, 'cash')$q$,
    $q$SELECT billing.apply_payment(1, 'NaN'::numeric, 'cash')$q$, $q$SELECT billing.apply_payment(1, 1e13, 'cash')$q$,
    $q$SELECT billing.apply_payment(999, 1, 'cash')$q$, $q$SELECT billing.apply_payment(NULL, 1, 'cash')$q$,
    $q$SELECT billing.apply_payment(2, 1.5, 'cash')$q$);
SELECT s('billing.refund_credit(bigint,billing.amount,text,text)', $q$SELECT billing.refund_credit(NULL)$q$,
    $q$SELECT billing.refund_credit(999)$q$, $q$SELECT billing.refund_credit(1, '92233720368547758.07 USD')$q$,
    $q$SELECT billing.refund_credit(1, '-1.00 USD')$q$, $q$SELECT billing.refund_credit(1, '1.00 EUR')$q$,
    $q$SELECT billing.refund_credit(1, idempotency_key => '')$q$, $q$SELECT billing.refund_credit(1)$q$);
SELECT s('billing.refund_credit(bigint,numeric,text,text)', $q$SELECT billing.refund_credit(1, 1e20)$q$,
    $q$SELECT billing.refund_credit(1, -1)$q$, $q$SELECT billing.refund_credit(1, 0.001)$q$,
    $q$SELECT billing.refund_credit(999, 1)$q$, $q$SELECT billing.refund_credit(1, 1000)$q$);
SELECT s('billing.refund_payment(bigint,bigint,billing.amount,text,text)', $q$SELECT billing.refund_payment(1, NULL)$q$,
    $q$SELECT billing.refund_payment(1, 999)$q$, $q$SELECT billing.refund_payment(1, 1, '6.00 USD')$q$, $q$SELECT billing.refund_payment(1, 1, '-1.00 USD')$q$,
    $q$SELECT billing.refund_payment(1, 1, '1.00 EUR')$q$, $q$SELECT billing.refund_payment(1, 1, idempotency_key => '')$q$);
SELECT s('billing.refund_payment(bigint,bigint,numeric,text,text)', $q$SELECT billing.refund_payment(1, 1, 6.00)$q$,
    $q$SELECT billing.refund_payment(1, 1, -1)$q$, $q$SELECT billing.refund_payment(1, 1, 0.001)$q$,
    $q$SELECT billing.refund_payment(1, 999, 1)$q$, $q$SELECT billing.refund_payment(999, 1, 1)$q$);
SELECT s('billing.record_chargeback(bigint,bigint,billing.amount,text,text)', $q$SELECT billing.record_chargeback(NULL, 1)$q$,
    $q$SELECT billing.record_chargeback(1, 1, '0.00 USD')$q$, $q$SELECT billing.record_chargeback(1, 1, reason => '4242424242424242')$q$);
SELECT s('billing.record_chargeback(bigint,bigint,numeric,text,text)', $q$SELECT billing.record_chargeback(NULL, 1, 1)$q$,
    $q$SELECT billing.record_chargeback(1, 1, 0)$q$, $q$SELECT billing.record_chargeback(1, 1, 99.999)$q$);
SELECT s('billing.issue_credit_note(bigint,bigint,billing.amount,text,text)', $q$SELECT billing.issue_credit_note(1, 1, NULL)$q$,
    $q$SELECT billing.issue_credit_note(1, 1, '100.00 USD')$q$, $q$SELECT billing.issue_credit_note(1, 1, '1.00 JPY')$q$,
    $q$SELECT billing.issue_credit_note(1, 1, '1.00 USD', '')$q$, $q$SELECT billing.issue_credit_note(1, 999, '1.00 USD')$q$,
    $q$SELECT billing.issue_credit_note(1, 1, '1.00 USD', reason => '4111-1111-1111-1111')$q$);
SELECT s('billing.issue_credit_note(bigint,bigint,numeric,text,text)', $q$SELECT billing.issue_credit_note(1, 1, 100)$q$,
    $q$SELECT billing.issue_credit_note(1, 1, 0.001)$q$, $q$SELECT billing.issue_credit_note(1, 999, 1)$q$,
    $q$SELECT billing.issue_credit_note(1, 1, -1)$q$);
SELECT s('billing.void_invoice(bigint,bigint,text)', $q$SELECT billing.void_invoice(1, NULL)$q$, $q$SELECT billing.void_invoice(1, 1)$q$,
    $q$SELECT billing.void_invoice(2, 1)$q$);
SELECT s('billing.write_off_invoice(bigint,bigint,text)', $q$SELECT billing.write_off_invoice(NULL, 1)$q$, $q$SELECT billing.write_off_invoice(1, 999)$q$);
SELECT s('billing.finalize_invoice(bigint,bigint)', $q$SELECT billing.finalize_invoice(1, NULL)$q$,
    $q$SELECT billing.finalize_invoice(NULL, 1)$q$, $q$SELECT billing.finalize_invoice(1, 1)$q$,
    $q$SELECT billing.finalize_invoice(2, 1)$q$, $q$SELECT billing.finalize_invoice(1, 999)$q$);
SELECT s('billing.add_invoice_item(bigint,billing.amount,text,bigint,bigint,boolean)',
    $q$SELECT billing.add_invoice_item(1, NULL, 'x')$q$, $q$SELECT billing.add_invoice_item(1, '0.00 USD', 'x')$q$,
    $q$SELECT billing.add_invoice_item(1, '-1.00 USD', 'x')$q$, $q$SELECT billing.add_invoice_item(1, '1.00 EUR', 'x')$q$,
    $q$SELECT billing.add_invoice_item(1, '1000000000000.00 USD', 'x', invoice_now => true)$q$,
    $q$SELECT billing.add_invoice_item(1, '1.00 USD', NULL)$q$, $q$SELECT billing.add_invoice_item(1, '1.00 USD', ' ')$q$,
    $q$SELECT billing.add_invoice_item(1, '1.00 USD', '4242 4242 4242 4242', invoice_now => true)$q$,
    $q$SELECT billing.add_invoice_item(1, '1.00 USD', 'x', invoice_id => 1)$q$,
    $q$SELECT billing.add_invoice_item(1, '1.00 USD', 'x', invoice_id => 999)$q$,
    $q$SELECT billing.add_invoice_item(1, '1.00 USD', 'x', invoice_id => 1, invoice_now => true)$q$,
    $q$SELECT billing.add_invoice_item(1, '1.00 USD', 'x''); DROP TABLE billing.invoice; --')$q$,
    $q$SELECT billing.add_invoice_item(1, '1.00 USD', 'x', subscription_id => 999)$q$,
    $q$SELECT billing.add_invoice_item(2, '1 JPY', 'x')$q$, $q$SELECT billing.add_invoice_item(999, '1.00 USD', 'x')$q$);
SELECT s('billing.add_invoice_item(bigint,numeric,text,bigint,bigint,boolean)',
    $q$SELECT billing.add_invoice_item(1, 1.005, 'x')$q$, $q$SELECT billing.add_invoice_item(1, 0, 'x')$q$,
    $q$SELECT billing.add_invoice_item(1, -1, 'x')$q$, $q$SELECT billing.add_invoice_item(999, 1, 'x')$q$,
    $q$SELECT billing.add_invoice_item(2, 1.5, 'x')$q$, $q$SELECT billing.add_invoice_item(1, 1e13, 'x')$q$);
SELECT s('billing.remove_invoice_item(bigint,bigint,bigint)', $q$SELECT billing.remove_invoice_item(1, NULL, 1)$q$,
    $q$SELECT billing.remove_invoice_item(1, 1, NULL)$q$, $q$SELECT billing.remove_invoice_item(1, 1, 1)$q$,
    $q$SELECT billing.remove_invoice_item(1, 999, 1)$q$);
SELECT s('billing.set_entity_draft_days(bigint,integer)', $q$SELECT billing.set_entity_draft_days(1, NULL)$q$,
    $q$SELECT billing.set_entity_draft_days(1, -1)$q$, $q$SELECT billing.set_entity_draft_days(1, 2147483647)$q$,
    $q$SELECT billing.set_entity_draft_days(999, 1)$q$, $q$SELECT billing.set_entity_draft_days(NULL, 1)$q$);
SELECT s('billing.set_account_draft_days(bigint,integer)', $q$SELECT billing.set_account_draft_days(1, -2147483648)$q$,
    $q$SELECT billing.set_account_draft_days(1, 91)$q$, $q$SELECT billing.set_account_draft_days(999, 1)$q$,
    $q$SELECT billing.set_account_draft_days(NULL, 1)$q$);
SELECT s('billing.add_payment_method(bigint,text,text,boolean)', $q$SELECT billing.add_payment_method(1, 'card', NULL)$q$,
    $q$SELECT billing.add_payment_method(1, 'card', '')$q$, $q$SELECT billing.add_payment_method(1, 'crypto', 'tok')$q$,
    $q$SELECT billing.add_payment_method(1, 'card', '4242424242424242')$q$, $q$SELECT billing.add_payment_method(999, 'card', 'tok')$q$);
SELECT s('billing.remove_payment_method(bigint,bigint)', $q$SELECT billing.remove_payment_method(1, NULL)$q$,
    $q$SELECT billing.remove_payment_method(1, 999)$q$, $q$SELECT billing.remove_payment_method(2, 1)$q$);
SELECT s('billing.set_collection_retry_days(integer[])', $q$SELECT billing.set_collection_retry_days(NULL)$q$,
    $q$SELECT billing.set_collection_retry_days('{1,NULL}')$q$, $q$SELECT billing.set_collection_retry_days('{0}')$q$,
    $q$SELECT billing.set_collection_retry_days(array_fill(1, ARRAY[51]))$q$);
SELECT s('billing.claim_collection_attempts(text,integer,timestamp with time zone)', $q$SELECT * FROM billing.claim_collection_attempts(NULL)$q$,
    $q$SELECT * FROM billing.claim_collection_attempts('')$q$, $q$SELECT * FROM billing.claim_collection_attempts('w', 0)$q$,
    $q$SELECT * FROM billing.claim_collection_attempts('w', 2147483647)$q$);
SELECT s('billing.report_collection_result(bigint,bigint,boolean,text,text,text)', $q$SELECT billing.report_collection_result(1, NULL, true)$q$,
    $q$SELECT billing.report_collection_result(1, 999, true)$q$, $q$SELECT billing.report_collection_result(1, 1, NULL)$q$,
    $q$SELECT billing.report_collection_result(1, 1, true, provider_reference => '4242424242424242')$q$);
SELECT s('billing.claim_deliveries(text,text[],integer,interval,integer)', $q$SELECT * FROM billing.claim_deliveries(NULL, '{email}')$q$,
    $q$SELECT * FROM billing.claim_deliveries('', '{email}')$q$, $q$SELECT * FROM billing.claim_deliveries('w', NULL)$q$,
    $q$SELECT * FROM billing.claim_deliveries('w', '{}')$q$, $q$SELECT * FROM billing.claim_deliveries('w', '{"webhook:x''); DROP TABLE billing.delivery; --"}')$q$,
    $q$SELECT * FROM billing.claim_deliveries('w', ARRAY[NULL::text])$q$, $q$SELECT * FROM billing.claim_deliveries('w', '{email}', 0)$q$,
    $q$SELECT * FROM billing.claim_deliveries('w', '{email}', 2147483647)$q$, $q$SELECT * FROM billing.claim_deliveries('w', '{email}', 1, '-1 second')$q$,
    $q$SELECT * FROM billing.claim_deliveries('w', '{email}', 1, '1000000 years')$q$, $q$SELECT * FROM billing.claim_deliveries('w', '{email}', 1, '1 minute', -1)$q$,
    $q$SELECT * FROM billing.claim_deliveries('4242424242424242', '{email}')$q$);
SELECT s('billing.finish_delivery(bigint,bigint,text,text,text,text,integer,interval,interval)', $q$SELECT billing.finish_delivery(1, NULL, 'email', 'w', 'delivered')$q$,
    $q$SELECT billing.finish_delivery(1, 1, 'email', 'w', 'delivered')$q$, $q$SELECT billing.finish_delivery(1, 1, 'email', 'w', 'lost')$q$,
    $q$SELECT billing.finish_delivery(1, 1, 'email', 'w', NULL)$q$, $q$SELECT billing.finish_delivery(999, 1, 'email', 'w', 'failed')$q$,
    $q$SELECT billing.finish_delivery(1, 1, 'email', 'w', 'failed', max_tries => 0)$q$,
    $q$SELECT billing.finish_delivery(1, 1, 'email', 'w', 'failed', backoff => '-1 minute')$q$,
    $q$SELECT billing.finish_delivery(1, 1, 'email', 'w', 'failed', max_backoff => '1000000 years')$q$,
    $q$SELECT billing.finish_delivery(1, 1, 'email', 'w', 'failed', '4242 4242 4242 4242')$q$);
SELECT s('billing.delivery_email(bigint,bigint)', $q$SELECT * FROM billing.delivery_email(1, NULL)$q$,
    $q$SELECT * FROM billing.delivery_email(NULL, 1)$q$, $q$SELECT * FROM billing.delivery_email(1, 1)$q$,
    $q$SELECT * FROM billing.delivery_email(999, 1)$q$, $q$SELECT * FROM billing.delivery_email(1, -1)$q$);
SELECT s('billing.create_installment_plan(bigint,bigint,integer,interval,date)', $q$SELECT * FROM billing.create_installment_plan(1, 1, NULL)$q$,
    $q$SELECT * FROM billing.create_installment_plan(1, 1, 1)$q$, $q$SELECT * FROM billing.create_installment_plan(1, 1, 2147483647)$q$,
    $q$SELECT * FROM billing.create_installment_plan(1, 1, 2, '-1 month')$q$, $q$SELECT * FROM billing.create_installment_plan(1, 1, 2, '100 years')$q$,
    $q$SELECT * FROM billing.create_installment_plan(1, 1, 2, first_due => 'infinity')$q$,
    $q$SELECT * FROM billing.create_installment_plan(1, 1, 2, first_due => '-infinity')$q$, $q$SELECT * FROM billing.create_installment_plan(1, 999, 2)$q$);

-- reports, documents, invariants
SELECT s('billing.check_invariants()', $q$SELECT count(*) FROM billing.check_invariants()$q$);
SELECT s('billing.check_ledger_invariants()', $q$SELECT count(*) FROM billing.check_ledger_invariants()$q$);
SELECT s('billing.check_invoicing_invariants()', $q$SELECT count(*) FROM billing.check_invoicing_invariants()$q$);
SELECT s('billing.account_balance(bigint,date)', $q$SELECT billing.account_balance(NULL)$q$, $q$SELECT billing.account_balance(1, 'infinity')$q$,
    $q$SELECT billing.account_balance(1, '-infinity')$q$);
SELECT s('billing.account_statement(bigint,date,date)', $q$SELECT count(*) FROM billing.account_statement(1, NULL, '2026-12-31')$q$,
    $q$SELECT count(*) FROM billing.account_statement(1, '2026-12-31', '2026-01-01')$q$,
    $q$SELECT count(*) FROM billing.account_statement(1, '-infinity', 'infinity')$q$,
    $q$SELECT count(*) FROM billing.account_statement(1, '4713-01-01 BC', '5874897-12-31')$q$);
SELECT s('billing.format_date(date,text,text)', $q$SELECT billing.format_date('2026-01-01', 'en-US', 'huge')$q$,
    $q$SELECT billing.format_date('infinity', 'en-US')$q$, $q$SELECT billing.format_date('2026-01-01', '')$q$,
    $q$SELECT billing.format_date('2026-01-01', 'de-DE''; DROP TABLE billing.invoice; --')$q$);
SELECT s('billing.locale_direction(text)', $q$SELECT billing.locale_direction('')$q$, $q$SELECT billing.locale_direction(repeat('x', 100000))$q$);
SELECT s('billing.format_number(numeric,text)', $q$SELECT billing.format_number('NaN', 'en-US')$q$,
    $q$SELECT billing.format_number(1, 'de-DE''; DROP TABLE billing.invoice; --')$q$, $q$SELECT billing.format_number(1, '')$q$,
    $q$SELECT billing.format_number(repeat('9', 1000)::numeric, 'en-US')$q$);
SELECT s('billing.html_escape(text)', $q$SELECT billing.html_escape(NULL)$q$, $q$SELECT billing.html_escape('<img src=x onerror="alert(1)">''&')$q$);
SELECT s('billing.invoice_document(bigint,text)', $q$SELECT billing.invoice_document(NULL)$q$, $q$SELECT billing.invoice_document(999)$q$,
    $q$SELECT billing.invoice_document(1, 'pdf')$q$, $q$SELECT billing.invoice_document(1, NULL)$q$);

-- reports
SELECT s('billing.monthly_factor(interval)', $q$SELECT billing.monthly_factor('0 days')$q$,
    $q$SELECT billing.monthly_factor('1 hour')$q$, $q$SELECT billing.monthly_factor('-1 month')$q$,
    $q$SELECT billing.monthly_factor('178000000 years')$q$, $q$SELECT billing.monthly_factor(NULL)$q$);
SELECT s('billing.days_sales_outstanding(integer)', $q$SELECT * FROM billing.days_sales_outstanding(NULL)$q$,
    $q$SELECT * FROM billing.days_sales_outstanding(-1)$q$, $q$SELECT * FROM billing.days_sales_outstanding(2147483647)$q$);
SELECT s('billing.upcoming_invoices(integer)', $q$SELECT * FROM billing.upcoming_invoices(NULL)$q$,
    $q$SELECT * FROM billing.upcoming_invoices(-1)$q$, $q$SELECT * FROM billing.upcoming_invoices(2147483647)$q$);
SELECT s('billing.dashboard_html(bigint,text,integer,text)', $q$SELECT billing.dashboard_html(NULL)$q$,
    $q$SELECT billing.dashboard_html(999)$q$, $q$SELECT billing.dashboard_html(1, 'XYZ')$q$,
    $q$SELECT billing.dashboard_html(1, '''); DROP TABLE billing.invoice; --')$q$,
    $q$SELECT billing.dashboard_html(1, months => 0)$q$, $q$SELECT billing.dashboard_html(1, months => 2147483647)$q$,
    $q$SELECT billing.dashboard_html(1, months => NULL)$q$, $q$SELECT billing.dashboard_html(1, locale => '"><script>')$q$,
    $q$SELECT length(billing.dashboard_html(1, 'JPY', 1, 'he-IL')) > 0$q$);

-- revenue recognition and reporting currencies
SELECT s('billing.set_exchange_rate(text,text,numeric,date)', $q$SELECT billing.set_exchange_rate(NULL, 'USD', 1, '2026-01-01')$q$,
    $q$SELECT billing.set_exchange_rate('EUR', 'usd', 1, '2026-01-01')$q$, $q$SELECT billing.set_exchange_rate('EUR', 'EUR', 1, '2026-01-01')$q$,
    $q$SELECT billing.set_exchange_rate('EUR', 'USD', 'NaN', '2026-01-01')$q$, $q$SELECT billing.set_exchange_rate('EUR', 'USD', 1e9, '2026-01-01')$q$,
    $q$SELECT billing.set_exchange_rate('EUR', 'USD', -1, '2026-01-01')$q$, $q$SELECT billing.set_exchange_rate('EUR', 'USD', 1, 'infinity')$q$,
    $q$SELECT billing.set_exchange_rate('EUR''; DROP TABLE billing.invoice; --', 'USD', 1, '2026-01-01')$q$);
SELECT s('billing.exchange_rate_on(text,text,date)', $q$SELECT billing.exchange_rate_on(NULL, 'USD', '2026-01-01')$q$,
    $q$SELECT billing.exchange_rate_on('EUR', 'USD', '2026-01-01')$q$, $q$SELECT billing.exchange_rate_on('EUR', 'USD', 'infinity')$q$);
SELECT s('billing.convert_amount(billing.amount,text,date)', $q$SELECT billing.convert_amount(NULL, 'USD', '2026-01-01')$q$,
    $q$SELECT billing.convert_amount('1.00 EUR', 'XYZ', '2026-01-01')$q$, $q$SELECT billing.convert_amount('1.00 EUR', 'USD', NULL)$q$);
SELECT s('billing.mrr_in(text,date)', $q$SELECT * FROM billing.mrr_in(NULL, '2026-01-01')$q$,
    $q$SELECT * FROM billing.mrr_in('EUR', '2026-01-01')$q$, $q$SELECT * FROM billing.mrr_in('USD', 'infinity')$q$);
SELECT s('billing.aging_in(text)', $q$SELECT * FROM billing.aging_in(NULL)$q$, $q$SELECT * FROM billing.aging_in('EUR')$q$,
    $q$SELECT * FROM billing.aging_in(repeat('x', 10000))$q$);
SELECT s('billing.revenue_in(text,date,date)', $q$SELECT * FROM billing.revenue_in('USD', NULL, NULL)$q$,
    $q$SELECT * FROM billing.revenue_in('EUR', '2020-01-01', '2030-01-01')$q$,
    $q$SELECT * FROM billing.revenue_in('USD', '2026-02-01', '2026-01-01')$q$);
SELECT s('billing.revenue_by_price_in(text,date,date)', $q$SELECT * FROM billing.revenue_by_price_in(NULL, '2026-01-01', '2026-01-01')$q$,
    $q$SELECT * FROM billing.revenue_by_price_in('EUR', '2026-01-01', '2026-12-01')$q$,
    $q$SELECT * FROM billing.revenue_by_price_in('USD', '-infinity', '2026-01-01')$q$);

-- dunning and scheduling
SELECT s('billing.create_dunning_policy(text,jsonb,boolean,text)', $q$SELECT billing.create_dunning_policy(NULL)$q$,
    $q$SELECT billing.create_dunning_policy('')$q$, $q$SELECT billing.create_dunning_policy('x', '{}')$q$,
    $q$SELECT billing.create_dunning_policy('x', '[{"day_offset": 5, "action": "shout"}]')$q$,
    $q$SELECT billing.create_dunning_policy('x', '[{"day_offset": 2147483648, "action": "remind"}]')$q$,
    $q$SELECT billing.create_dunning_policy('x', '[{"day_offset": "NaN", "action": "remind"}]')$q$,
    $q$SELECT billing.create_dunning_policy('x', '[]')$q$);
SELECT s('billing.set_dunning_policy(bigint,text)', $q$SELECT billing.set_dunning_policy(999, 'standard')$q$,
    $q$SELECT billing.set_dunning_policy(1, 'nope''; DROP TABLE billing.dunning_case; --')$q$, $q$SELECT billing.set_dunning_policy(1, '')$q$);
SELECT s('billing.set_price_change_notice_days(integer)', $q$SELECT billing.set_price_change_notice_days(NULL)$q$,
    $q$SELECT billing.set_price_change_notice_days(-1)$q$, $q$SELECT billing.set_price_change_notice_days(2147483647)$q$);
SELECT s('billing.close_dunning(bigint,bigint,text)', $q$SELECT billing.close_dunning(1, NULL)$q$,
    $q$SELECT billing.close_dunning(1, 999)$q$, $q$SELECT billing.close_dunning(NULL, 1)$q$);
SELECT s('billing.run_dunning(date,integer,timestamp with time zone)', $q$CALL billing.run_dunning(batch_size => 0)$q$,
    $q$CALL billing.run_dunning(batch_size => NULL)$q$);
SELECT s('billing.standard_dunning_steps()', $q$SELECT jsonb_typeof(billing.standard_dunning_steps())$q$);
SELECT s('billing.check_dunning_invariants()', $q$SELECT count(*) FROM billing.check_dunning_invariants()$q$);
SELECT s('billing.schedule_commands(text,text)', $q$SELECT billing.schedule_commands('', '')$q$,
    $q$SELECT billing.schedule_commands(NULL, NULL)$q$, $q$SELECT billing.schedule_commands('* * * * *''); DROP TABLE billing.invoice; --')$q$,
    $q$SELECT billing.schedule_commands('61 * * * *')$q$);
SELECT s('billing.schedule(text,text)', $q$SELECT * FROM billing.schedule('', '')$q$,
    $q$SELECT * FROM billing.schedule('* * * * *''); DROP TABLE billing.invoice; --')$q$);
SELECT s('billing.unschedule()', $q$SELECT * FROM billing.unschedule()$q$);
SELECT s('billing.schedule_status()', $q$SELECT count(*) FROM billing.schedule_status()$q$);

-- roles and bindings
SELECT s('billing.acting_role()', $q$SELECT billing.acting_role() = session_user$q$);
SELECT s('billing.bind_role_to_entity(name,bigint)', $q$SELECT billing.bind_role_to_entity(NULL, 1)$q$,
    $q$SELECT billing.bind_role_to_entity('', 1)$q$, $q$SELECT billing.bind_role_to_entity('nobody"; DROP ROLE postgres; --', 1)$q$,
    $q$SELECT billing.bind_role_to_entity(session_user, 999)$q$);
SELECT s('billing.unbind_role_from_entity(name,bigint)', $q$SELECT billing.unbind_role_from_entity(NULL, NULL)$q$,
    $q$SELECT billing.unbind_role_from_entity('x''; DELETE FROM billing.role_binding; --', 1)$q$);
SELECT s('billing.grant_roles(name,name,name)', $q$SELECT billing.grant_roles(NULL, 'b', 'c')$q$,
    $q$SELECT billing.grant_roles('a', 'b', '')$q$, $q$SELECT billing.grant_roles('pg_a', 'b', 'c')$q$);
SELECT s('billing.role_functions()', $q$SELECT count(*) > 0 FROM billing.role_functions()$q$);

-- entitlements
SELECT s('billing.create_feature(text,text,text,text)', $q$SELECT billing.create_feature(NULL, 'x')$q$,
    $q$SELECT billing.create_feature('', 'x')$q$, $q$SELECT billing.create_feature('Bad Key', 'x')$q$,
    $q$SELECT billing.create_feature(repeat('a', 64), 'x')$q$, $q$SELECT billing.create_feature('x', NULL)$q$,
    $q$SELECT billing.create_feature('x', '')$q$, $q$SELECT billing.create_feature('x', 'x', 'money')$q$,
    $q$SELECT billing.create_feature('api', 'again')$q$,
    $q$SELECT billing.create_feature('x', '4242 4242 4242 4242')$q$,
    $q$SELECT billing.create_feature('x''); DROP TABLE billing.feature; --', 'x')$q$);
SELECT s('billing.set_price_feature(bigint,text,text,boolean)', $q$SELECT billing.set_price_feature(1, NULL)$q$,
    $q$SELECT billing.set_price_feature(1, 'nope')$q$, $q$SELECT billing.set_price_feature(999, 'api')$q$,
    $q$SELECT billing.set_price_feature(NULL, 'api')$q$, $q$SELECT billing.set_price_feature(1, 'api', 'maybe')$q$,
    $q$SELECT billing.set_price_feature(1, 'api', per_unit => true)$q$,
    $q$SELECT billing.set_price_feature(1, 'storage')$q$, $q$SELECT billing.set_price_feature(1, 'storage', '-1')$q$,
    $q$SELECT billing.set_price_feature(1, 'storage', '1e400')$q$,
    $q$SELECT billing.set_price_feature(1, 'storage', '9999999999999999')$q$,
    $q$SELECT billing.set_price_feature(1, 'storage', 'NaN')$q$);
SELECT s('billing.remove_price_feature(bigint,text)', $q$SELECT billing.remove_price_feature(1, NULL)$q$,
    $q$SELECT billing.remove_price_feature(999, 'api')$q$, $q$SELECT billing.remove_price_feature(1, 'nope')$q$);
SELECT s('billing.set_subscription_feature(bigint,bigint,text,text)',
    $q$SELECT billing.set_subscription_feature(1, 999, 'api')$q$,
    $q$SELECT billing.set_subscription_feature(2, 1, 'api')$q$,
    $q$SELECT billing.set_subscription_feature(999, 1, 'api')$q$,
    $q$SELECT billing.set_subscription_feature(1, 1, 'storage', NULL)$q$,
    $q$SELECT billing.set_subscription_feature(1, 1, 'storage', 'lots')$q$,
    $q$SELECT billing.set_subscription_feature(1, 1, 'nope', 'true')$q$);
SELECT s('billing.remove_subscription_feature(bigint,bigint,text)',
    $q$SELECT billing.remove_subscription_feature(999, 1, 'api')$q$,
    $q$SELECT billing.remove_subscription_feature(1, 1, NULL)$q$,
    $q$SELECT billing.remove_subscription_feature(1, 1, 'api')$q$);
SELECT s('billing.entitled(bigint,text)', $q$SELECT billing.entitled(NULL, 'api')$q$,
    $q$SELECT billing.entitled(999, 'api')$q$, $q$SELECT billing.entitled(1, NULL)$q$,
    $q$SELECT billing.entitled(1, 'nope')$q$, $q$SELECT billing.entitled(1, 'storage')$q$);
SELECT s('billing.entitlement(bigint,text)', $q$SELECT billing.entitlement(999, 'api')$q$,
    $q$SELECT billing.entitlement(1, repeat('x', 10000))$q$, $q$SELECT billing.entitlement(1, 'storage')$q$);
SELECT s('billing.entitlements(bigint)', $q$SELECT count(*) FROM billing.entitlements(NULL)$q$,
    $q$SELECT count(*) FROM billing.entitlements(999)$q$, $q$SELECT count(*) FROM billing.entitlements(1)$q$);

-- scale-out: without Citus, a clean refusal; the plan is a read
SELECT s('billing.distribute()', $q$SELECT count(*) FROM billing.distribute()$q$);
SELECT s('billing.distribution_plan()', $q$SELECT count(*) FROM billing.distribution_plan()$q$);

-- Every function of the extension has an entry.
SELECT p.oid::regprocedure AS function_without_entry
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing'
WHERE p.proname !~ '^_' AND p.oid NOT IN (SELECT function FROM survey)
ORDER BY 1::text;
SELECT count(DISTINCT function) AS functions, count(*) AS calls FROM survey;

-- The run: each call on its own, as a statement of its own (so that a call
-- that hangs would be stopped by statement_timeout and show), then undone.
-- A call that fails is rolled back with its subtransaction; one that
-- succeeds is compared with the digest of every table first.
CREATE TABLE survey_result (id integer PRIMARY KEY, result text, changed boolean);
CREATE FUNCTION survey_run(id integer, call text, parallel boolean, baseline text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_result text;
    v_changed boolean := false;
BEGIN
    BEGIN
        IF parallel THEN
            -- a parallel plan: partial sums serialized, combined, deserialized
            PERFORM set_config('parallel_setup_cost', '0', true), set_config('parallel_tuple_cost', '0', true),
                    set_config('min_parallel_table_scan_size', '0', true),
                    set_config('max_parallel_workers_per_gather', '2', true);
        END IF;
        v_result := billing_test_error(call);
        IF v_result = 'no error' THEN
            v_changed := baseline IS DISTINCT FROM
                         (SELECT md5(string_agg(tbl || row_count || digest, ',' ORDER BY tbl)) FROM billing_digest());
        END IF;
        RAISE EXCEPTION 'undo' USING ERRCODE = 'S0001';
    EXCEPTION WHEN SQLSTATE 'S0001' THEN
        NULL;
    END;
    INSERT INTO survey_result VALUES (id, v_result, v_changed);
END $$;
CREATE TEMP TABLE digest_before AS SELECT * FROM billing_digest();
SELECT md5(string_agg(tbl || row_count || digest, ',' ORDER BY tbl)) AS baseline FROM digest_before \gset
UPDATE survey SET parallel = true WHERE call ~ 'FROM amounts';
SET statement_timeout = '30s';
SET client_min_messages = warning;
\set ECHO none
\o /dev/null
SELECT format('SELECT survey_run(%s, %L, %L, %L)', id, call, parallel, :'baseline') FROM survey ORDER BY id \gexec
\o
\set ECHO all
RESET statement_timeout;
RESET client_min_messages;

-- Every call ended in a clean error or a safe result.  (The scheduling
-- functions' messages describe the server's pg_cron set-up: only their
-- SQLSTATE is shown.)
SELECT s.id, regexp_replace(s.function::text, '\(.*', '') AS function, s.call,
       CASE WHEN s.function::text ~ '^(billing\.)?(schedule|unschedule|schedule_status)\(' THEN left(r.result, 6)
            ELSE left(r.result, 160) END AS result, r.changed
FROM survey s JOIN survey_result r USING (id) ORDER BY s.id;
-- No internal error, no crash, nothing left undone.
SELECT count(*) AS calls_run FROM survey_result;
SELECT s.id, r.result FROM survey s JOIN survey_result r USING (id) WHERE r.result ~ '^(XX|58|57)';
-- What changed rows: the injection strings, stored as data (verbatim, below),
-- the largest payment an amount can hold (a trillion dollars: a valid
-- amount) and a dunning policy without steps (one that never chases: valid).
-- Nothing else was accepted.
SELECT s.id, s.call FROM survey s JOIN survey_result r USING (id) WHERE r.changed ORDER BY s.id;
-- The parallel plan the combine/serialize entries ran under.
BEGIN;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT billing.sum(x) FROM amounts;
ROLLBACK;
SELECT * FROM digest_before EXCEPT SELECT * FROM billing_digest();

-- Injection strings are data: stored and returned verbatim, escaped in
-- documents, and nothing else happens.
BEGIN;
SELECT billing.create_account(1, 'Robert''); DROP TABLE billing.invoice; --', external_ref => ''' OR ''1''=''1',
                              email => '<script>alert(1)</script>') AS evil \gset
SELECT name, external_ref, email FROM billing.account WHERE account_id = :evil;
SELECT billing.create_billing_entity('Acme''); DROP TABLE billing.invoice; --', 'USD') AS evil_entity \gset
SELECT legal_name FROM billing.billing_entity WHERE entity_id = :evil_entity;
SELECT billing.subscribe(:evil, 1) IS NOT NULL AS subscribed;
SELECT position('Robert&#39;); DROP TABLE billing.invoice; --' IN billing.invoice_document(i.invoice_id)) > 0 AS escaped,
       position('<script>' IN billing.invoice_document(i.invoice_id)) = 0 AS no_script
FROM billing.invoice i WHERE i.account_id = :evil;
SELECT billing.apply_payment(:evil, '1.00 USD', 'cash', reference => 'x''); DROP TABLE billing.payment; --',
                             idempotency_key => ''' OR 1=1 --') AS evil_pay \gset
SELECT reference, idempotency_key FROM billing.payment WHERE payment_id = :evil_pay;
SELECT count(*) AS tables FROM pg_tables WHERE schemaname = 'billing';
SELECT * FROM billing.check_invariants();
ROLLBACK;
-- A role name with quotes is a name, not SQL.
BEGIN;
SELECT billing.grant_roles('regress_w"; DROP ROLE postgres; --', 'regress_o', 'regress_r');
SELECT rolname FROM pg_roles WHERE rolname LIKE 'regress\_%' ORDER BY 1;
ROLLBACK;

\c contrib_regression
DROP DATABASE bad_input_regress;
