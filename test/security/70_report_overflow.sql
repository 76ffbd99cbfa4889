-- Attack 7: one tenant's huge amounts against another tenant's reports.
--
-- As atk_writer_b (tenant B), two payments of the largest amount
-- (1,000,000,000,000.00 EUR each, on B's two accounts), committed in
-- a copy of the database: any sum over both overflows the amount's range.
-- Then, as atk_reader (tenant A), every view of the extension (every
-- column of every row) and billing.check_invariants() must still return:
-- B's numbers must not take A's reports down.  A note lists what fails for
-- roles that see B's rows (B's writer, the owner): there an error
-- (22003, never a wrapped or rounded sum) is the amount's rule.
\set ON_ERROR_STOP 1

-- Every view, all of its columns, and check_invariants(), as the session's
-- role: one line each, or (notes_only) one note naming those that fail.
CREATE FUNCTION atk.read_reports(name_prefix text, notes_only boolean) RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v regclass;
    result text;
    failing text[] := '{}';
BEGIN
    FOR v IN SELECT c.oid::regclass FROM pg_class c
             JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
             JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing'
             WHERE c.relkind = 'v' ORDER BY 1::text LOOP
        result := atk.attempt(format('SELECT pg_catalog.md5(pg_catalog.string_agg(x::pg_catalog.text, '''')) FROM %s x', v));
        IF notes_only THEN
            IF result <> '00000' THEN failing := failing || (v::text || ' ' || pg_catalog.left(result, 5)); END IF;
        ELSE
            RETURN QUERY SELECT * FROM atk.report(format('%s:%s', name_prefix, v), result = '00000', result);
        END IF;
    END LOOP;
    result := atk.attempt('SELECT pg_catalog.count(*) FROM billing.check_invariants()');
    IF notes_only THEN
        IF result <> '00000' THEN failing := failing || ('billing.check_invariants() ' || pg_catalog.left(result, 5)); END IF;
        RETURN QUERY SELECT * FROM atk.note(format('%s: %s', name_prefix,
                                                   coalesce(nullif(pg_catalog.array_to_string(failing, ', '), ''),
                                                            'every view returns')));
    ELSE
        RETURN QUERY SELECT * FROM atk.report(format('%s:billing.check_invariants()', name_prefix), result = '00000', result);
    END IF;
END $$;

\c postgres :super
DROP DATABASE IF EXISTS security_attack_scratch;
CREATE DATABASE security_attack_scratch TEMPLATE :db;

\c security_attack_scratch atk_writer_b
SELECT atk.id('B', 'account') AS b1, atk.id('B', 'account2') AS b2 \gset
\set ON_ERROR_STOP 0
SELECT billing.apply_payment(:b1, '1000000000000.00 EUR', 'bank_transfer', idempotency_key => 'huge-1') AS huge1 \gset
SELECT billing.apply_payment(:b2, '1000000000000.00 EUR', 'bank_transfer', idempotency_key => 'huge-2') AS huge2 \gset
\set ON_ERROR_STOP 1
SELECT * FROM atk.report('report_overflow:setup_two_near_maximum_payments',
                         (SELECT count(*) FROM billing.payment WHERE idempotency_key IN ('huge-1', 'huge-2')) = 2,
                         'B''s writer could not take the two payments (see the log)');

SELECT * FROM atk.read_reports('what fails for B''s own writer', true);
\c security_attack_scratch :super
SELECT * FROM atk.read_reports('what fails for the owner', true);

\c security_attack_scratch atk_reader
SELECT * FROM atk.read_reports('report_overflow:atk_reader', false);
\c postgres :super
DROP DATABASE security_attack_scratch;
