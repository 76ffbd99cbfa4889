-- billing 0.1.0 -> 0.2.0, step 4 of the upgrade script (see
-- 0.1.0--0.2.0.sql): what needs objects that steps 2 and 3 create.

-- accounts are never deleted (30_accounts_catalog.sql)
CREATE OR REPLACE TRIGGER account_never_deleted BEFORE DELETE OR TRUNCATE ON billing.account
    FOR EACH STATEMENT EXECUTE FUNCTION billing._account_never_deleted();
