-- billing.check_invariants() of 90_invariants.sql becomes
-- billing.check_invoicing_invariants(), and billing.check_invariants() is
-- both sets of checks: the invoicing checks stay exactly as that file
-- defines them, whatever it changes later.
ALTER FUNCTION billing.check_invariants() RENAME TO check_invoicing_invariants;
COMMENT ON FUNCTION billing.check_invoicing_invariants() IS
    'the invoicing invariants (invoice totals, invariant 1, numbers, usage), one named check each; '
    'no rows means all hold';

CREATE FUNCTION billing.check_invariants()
RETURNS TABLE (invariant text, detail text)
LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT * FROM billing.check_invoicing_invariants()
    UNION ALL
    SELECT * FROM billing.check_ledger_invariants()
    UNION ALL
    SELECT * FROM billing.check_dunning_invariants()
$$;
COMMENT ON FUNCTION billing.check_invariants() IS
    'every invariant of docs/design.md that can be checked on the tables (invoicing and ledger), one named check '
    'each; no rows means all hold';
