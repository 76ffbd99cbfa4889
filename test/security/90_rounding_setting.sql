-- Attack 9: the session's billing.rounding against what is invoiced.
--
-- billing.rounding is a setting any session may change.  What a customer
-- is invoiced must not depend on the session that happens to create the
-- invoice.  Tenant A's account Rita pays 7.25% tax on 10.00 USD: 0.725, a
-- tie that every rounding mode rounds its own way.
--   subscribe  as atk_writer, a new account like Rita subscribes under
--              each mode (SET billing.rounding, undone afterwards): the
--              invoice's tax and total must be those of the session that
--              left the setting alone;
--   run_cycle  as atk_operator, in a copy of the database, the next cycle
--              runs under each mode that differs from the default on this
--              tie: Rita's new invoice must have the tax and total of her
--              first one, invoiced at setup with the default.
\set ON_ERROR_STOP 1

-- What subscribing a new account with Rita's tax rate to Rita's price
-- invoices (tax and total), with billing.rounding = mode for the session
-- (NULL: untouched); undone at once.
CREATE FUNCTION atk.invoiced_under(mode text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    acct bigint;
    sub bigint;
    result text;
BEGIN
    BEGIN
        IF mode IS NOT NULL THEN
            PERFORM pg_catalog.set_config('billing.rounding', mode, false);
        END IF;
        acct := billing.create_account(atk.id('A', 'entity'), 'rounding probe',
                                       tax_rate_id => (SELECT a.tax_rate_id FROM billing.account a
                                                       WHERE a.account_id = atk.id('A', 'rounding_account')));
        sub := billing.subscribe(acct, atk.id('A', 'price'));
        SELECT i.tax::text || ' tax, ' || i.total::text || ' total' INTO result
        FROM billing.invoice i WHERE i.account_id = acct AND i.subscription_id = sub;
        RAISE EXCEPTION USING ERRCODE = 'AT999';
    EXCEPTION WHEN SQLSTATE 'AT999' THEN
        NULL;
    WHEN OTHERS THEN
        result := SQLSTATE || ' ' || SQLERRM;
    END;
    RETURN result;
END $$;

CREATE TABLE atk.modes (mode text PRIMARY KEY);
INSERT INTO atk.modes VALUES ('half_up'), ('half_even'), ('half_down'), ('up'), ('down'), ('ceiling'), ('floor');
GRANT SELECT ON atk.modes TO PUBLIC;

\c - atk_writer
SELECT atk.invoiced_under(NULL) AS plain \gset
SELECT x.* FROM atk.modes m,
LATERAL atk.report('rounding_setting:subscribe:' || m.mode, atk.invoiced_under(m.mode) = :'plain',
                   format('with SET billing.rounding = %s the invoice has %s; without it %s',
                          m.mode, atk.invoiced_under(m.mode), :'plain')) x
ORDER BY m.mode;

-- the cycle: one copy of the database per mode
\c :db :super
SELECT i.tax::text || ' tax, ' || i.total::text || ' total' AS first_invoice
FROM billing.invoice i WHERE i.account_id = atk.id('A', 'rounding_account') ORDER BY i.invoice_id LIMIT 1 \gset
\set mode half_even
\ir rounding_cycle_case.psql
\set mode down
\ir rounding_cycle_case.psql
\set mode floor
\ir rounding_cycle_case.psql
