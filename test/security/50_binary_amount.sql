-- Attack 5: amounts in binary, with a scale their currency does not have.
--
-- Text input refuses '1.005 USD' (USD has 2 decimals); the binary form
-- (int64 minor units, the code, a scale byte) carries the scale itself.  As
-- atk_writer (and atk_admin for the shared catalog's functions), binary
-- COPY files with one amount each (written by COPY of a bytea: its binary
-- field is exactly the amount's bytes) are loaded into a temporary table
-- of type billing.amount, and the value is passed to every argument of
-- type billing.amount of every writer function (from the catalog), and to
-- apply_payment for a new account with nothing due (the payment becomes
-- credit).  Pass: the value is refused with a data exception (class 22),
-- at the COPY or at the call, and no row changes.  The control, 1.00 USD
-- in the same form, must load, read as 1.00 USD and go through every one of
-- those calls: it proves the files are well formed and the calls
-- plausible.  (When the COPY refuses a value, one line says so instead of
-- one per call.)
\set ON_ERROR_STOP 1

-- Every call with an amount argument, that argument from pg_temp.<source>.
-- shared: the functions of what every entity shares (atk_admin's),
-- else those of an account or entity (atk_writer's).
CREATE FUNCTION atk.amount_calls(source text, shared boolean)
RETURNS TABLE (label text, stmt text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT r.name || '.' || a.name,
           atk.call_sql(r.fn, 'A', '{}', pg_catalog.jsonb_build_object(a.name,
                        pg_catalog.format('(SELECT x.a FROM pg_temp.%I x)', source))
                        -- a coupon takes percent_off or amount_off
                        || CASE WHEN r.name = 'create_coupon' THEN '{"percent_off": null}' ELSE '{}' END::jsonb)
    FROM atk.routine r, atk.in_args(r.fn) a
    WHERE r.kind = 'writer' AND a.typ = 'billing.amount'::regtype AND r.name <> 'refund_credit'
      AND shared = NOT EXISTS (SELECT FROM atk.in_args(r.fn) x WHERE x.name IN ('account_id', 'entity_id'))
    UNION ALL
    -- a refund of credit needs credit: an account that overpaid first
    SELECT 'refund_credit.amount',
           pg_catalog.format('WITH acc AS (SELECT billing.create_account(%s, ''binary refunder'') AS id), '
                             'paid AS (SELECT billing.apply_payment(acc.id, ''5.00 USD'', ''cash'') AS p FROM acc) '
                             'SELECT billing.refund_credit(acc.id, (SELECT x.a FROM pg_temp.%I x)) FROM acc, paid',
                             atk.id('A', 'entity'), source)
    WHERE NOT shared
    UNION ALL
    SELECT 'apply_payment_to_a_new_account.amount',
           pg_catalog.format('SELECT billing.apply_payment(billing.create_account(%s, ''binary payer''), '
                             '(SELECT x.a FROM pg_temp.%I x), ''cash'')', atk.id('A', 'entity'), source)
    WHERE NOT shared
    ORDER BY 1
$$;

CREATE FUNCTION atk.binary_amount(value text, shared boolean) RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c record;
    control text;
BEGIN
    FOR c IN SELECT * FROM atk.amount_calls('bin_control', shared) LOOP
        IF value IS NULL THEN
            control := atk.attempt(c.stmt);
            RETURN QUERY SELECT * FROM atk.report(pg_catalog.format('binary_amount:control_1.00_USD:%s', c.label),
                                                  control = '00000', c.stmt || ': ' || control);
        ELSE
            RETURN QUERY SELECT * FROM atk.expect(pg_catalog.format('binary_amount:%s:%s', value, c.label),
                                                  pg_catalog.replace(c.stmt, 'bin_control', 'bin_amount'),
                                                  '{22000,22003,22023,22P02,22P03}');
        END IF;
    END LOOP;
END $$;

\c - atk_writer
SELECT atk.id('A', 'account') AS a1 \gset
CREATE TEMP TABLE bin_control (a billing.amount);
CREATE TEMP TABLE bin_amount (a billing.amount);
-- the control: 100 minor units, USD, scale 2
COPY (SELECT '\x000000000000006455534402'::bytea) TO STDOUT (FORMAT binary) \g log/security/amount_control.bin
\copy bin_control FROM 'log/security/amount_control.bin' (FORMAT binary)
SELECT * FROM atk.report('binary_amount:control_1.00_USD_loads',
                         (SELECT a::text FROM bin_control) = '1.00 USD', 'read as ' || (SELECT a::text FROM bin_control));
SELECT * FROM atk.binary_amount(NULL, false);
-- 1005 minor units at scale 3: 1.005 USD
\set label 1.005_USD
\set bytes '\\x00000000000003ed55534403'
\set shared false
\ir binary_amount_case.psql
-- 100001 at scale 4: 10.0001 USD
\set label 10.0001_USD
\set bytes '\\x00000000000186a155534404'
\ir binary_amount_case.psql

\c - atk_admin
CREATE TEMP TABLE bin_control (a billing.amount);
CREATE TEMP TABLE bin_amount (a billing.amount);
\copy bin_control FROM 'log/security/amount_control.bin' (FORMAT binary)
-- the shared catalog's functions, which atk_writer may not call
SELECT * FROM atk.binary_amount(NULL, true);
\set label 1.005_USD
\set bytes '\\x00000000000003ed55534403'
\set shared true
\ir binary_amount_case.psql
