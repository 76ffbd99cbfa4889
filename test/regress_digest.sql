-- Included (\i) by sql/security.sql and sql/bad_input.sql: billing_digest()
-- returns every billing table's row count and an md5 of its rows, so a test
-- can assert that nothing changed (compare a saved copy with EXCEPT).
CREATE FUNCTION billing_digest() RETURNS TABLE (tbl text, row_count bigint, digest text)
LANGUAGE plpgsql AS $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT c.oid::regclass FROM pg_class c
             JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
             JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing'
             WHERE c.relkind = 'r' ORDER BY c.oid::regclass::text LOOP
        RETURN QUERY EXECUTE format('SELECT %L::text, count(*), md5(coalesce(string_agg(x::text, %L ORDER BY x::text), %L)) FROM %s x',
                                    t::text, E'\n', '', t);
    END LOOP;
END $$;
