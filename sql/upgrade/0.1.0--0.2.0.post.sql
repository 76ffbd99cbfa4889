-- billing 0.1.0 -> 0.2.0, step 4 of the upgrade script (see
-- 0.1.0--0.2.0.sql): what needs objects that steps 2 and 3 create.

-- accounts are never deleted (30_accounts_catalog.sql)
CREATE OR REPLACE TRIGGER account_never_deleted BEFORE DELETE OR TRUNCATE ON billing.account
    FOR EACH STATEMENT EXECUTE FUNCTION billing._account_never_deleted();

-- Every routine pins pg_temp last in its search_path (a SECURITY DEFINER
-- body would otherwise find the caller's temporary types and tables before
-- billing's).  The functions above are created that way; this catches the
-- 0.1.0 routines that no step recreates.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT p.oid::regprocedure AS fn, p.prokind, c.cfg
        FROM pg_catalog.pg_proc p
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
             AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'
        JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing'
        CROSS JOIN LATERAL unnest(p.proconfig) c(cfg)
        WHERE c.cfg LIKE 'search\_path=%' AND c.cfg NOT LIKE '%pg\_temp'
    LOOP
        EXECUTE format('ALTER %s %s SET search_path = %s, pg_temp',
                       CASE r.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, r.fn,
                       substr(r.cfg, length('search_path=') + 1));
    END LOOP;
END $$;

-- the guard that replaces the finalization triggers (70_payments.sql)
CREATE OR REPLACE TRIGGER invoice_account_exists AFTER INSERT ON billing.invoice
    REFERENCING NEW TABLE AS new_invoices
    FOR EACH STATEMENT EXECUTE FUNCTION billing._invoice_account_exists();

-- an account's zone is an IANA name (30_accounts_catalog.sql): the domain
-- checks it with billing.check_time_zone, which step 2 created.  An account
-- of 0.1.0 in another zone (a POSIX string such as '<+05>-05') stops the
-- update with its id, rather than failing every later change of the account.
DO $$
DECLARE
    r record;
BEGIN
    SELECT a.account_id, a.timezone INTO r FROM billing.account a
    WHERE a.timezone NOT IN (SELECT z.name FROM pg_catalog.pg_timezone_names z
                             WHERE z.name NOT IN ('localtime', 'posixrules'))
    ORDER BY a.account_id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'account % has the time zone "%", which is not an IANA time zone name', r.account_id, r.timezone
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Set the zone of every such account to a name of pg_timezone_names, then update again.';
    END IF;
END $$;
ALTER DOMAIN billing.time_zone DROP CONSTRAINT time_zone_check;
ALTER DOMAIN billing.time_zone ADD CONSTRAINT time_zone_check CHECK (billing.check_time_zone(VALUE) IS NOT NULL);
COMMENT ON DOMAIN billing.time_zone IS 'an IANA time zone name such as Europe/Berlin (billing.check_time_zone)';

-- document words (80_documents.sql): the shipped languages grow from en, he
-- and de to ru, ar, fr and es too, with the words of the settlement by
-- kind; a row a user added or changed stays (and 0.1.0's amount_paid, which
-- the documents no longer print, with them)
INSERT INTO billing.document_label (language, key, label) SELECT * FROM billing._shipped_document_labels()
ON CONFLICT (language, key) DO NOTHING;
SELECT pg_catalog.pg_extension_config_dump('billing.document_label',
    $$WHERE language NOT IN ('en', 'he', 'de', 'ru', 'ar', 'fr', 'es')$$);
