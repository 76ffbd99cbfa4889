-- invoice_line (account_id, invoice_id) -> invoice: a line of an unknown
-- invoice, and an invoice that would leave its lines behind, are refused
-- with SQLSTATE 23503 (whatever enforces the key: a regression guard for
-- changes that replace the foreign key for speed).
\set ON_ERROR_STOP 1
\ir _helpers.psql

SET billing.clock = '2024-01-01 12:00+00';
SELECT create_billing_entity('Keys Inc', 'USD') AS e \gset
SELECT create_product('Plan') AS prod \gset
SELECT create_price(:prod, 'USD', 10) AS price \gset
SELECT create_account(:e, 'Keys', currency => 'USD') AS acct \gset
SELECT subscribe(:acct, :price, invoice_now => false) AS sub \gset
CALL run_cycle(as_of => '2024-01-01');
SELECT invoice_id AS inv FROM billing.invoice WHERE subscription_id = :sub \gset
SELECT expect('one invoice with a line', (SELECT count(*) FROM billing.invoice_line WHERE invoice_id = :inv), 1::bigint);

CREATE FUNCTION sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;

SELECT expect('a line of an unknown invoice', sqlstate_of(format(
    $$INSERT INTO billing.invoice_line (account_id, invoice_id, kind, description, amount)
      VALUES (%s, -1, 'credit', 'x', '1.00 USD')$$, :acct)), '23503');
SELECT expect('a line of another account''s invoice', sqlstate_of(format(
    $$INSERT INTO billing.invoice_line (account_id, invoice_id, kind, description, amount)
      VALUES (%s, %s, 'credit', 'x', '1.00 USD')$$, :acct + 1000, :inv)), '23503');
SELECT expect('a line moved to an unknown invoice', sqlstate_of(format(
    $$UPDATE billing.invoice_line SET invoice_id = -1 WHERE invoice_id = %s$$, :inv)), '23503');
SELECT expect('an invoice with lines deleted', sqlstate_of(format(
    $$DELETE FROM billing.invoice WHERE invoice_id = %s$$, :inv)), '23503');
SELECT expect('an invoice with lines re-keyed', sqlstate_of(format(
    $$UPDATE billing.invoice SET invoice_id = -1 WHERE invoice_id = %s$$, :inv)), '23503');
SELECT expect('an invoice updated, keys kept', sqlstate_of(format(
    $$UPDATE billing.invoice SET metadata = '{"k": 1}' WHERE invoice_id = %s$$, :inv)), 'no error');
SELECT expect('a line of a known invoice', sqlstate_of(format(
    $$INSERT INTO billing.invoice_line (account_id, invoice_id, kind, description, amount)
      VALUES (%s, %s, 'credit', 'x', '0.00 USD')$$, :acct, :inv)), 'no error');
SELECT expect('lines intact', (SELECT count(*) FROM billing.invoice_line WHERE invoice_id = :inv), 2::bigint);

-- billing._bill defers the key while it writes an invoice's lines before the
-- invoice, and makes it immediate again before it returns: later in the same
-- transaction a line of an unknown invoice is refused at once, not at commit
CREATE FUNCTION bad_line_after_bill(acct bigint, price bigint) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM billing.subscribe(acct, price, invoice_now => true);
    INSERT INTO billing.invoice_line (account_id, invoice_id, kind, description, amount)
    VALUES (acct, -2, 'credit', 'x', '1.00 USD');
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;
SELECT expect('a line of an unknown invoice, after billing in the same transaction',
              bad_line_after_bill(:acct, :price), '23503');
SELECT expect('that transaction left nothing', (SELECT count(*) FROM billing.subscription WHERE account_id = :acct),
              1::bigint);
