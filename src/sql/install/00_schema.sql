-- The schema itself is created by CREATE EXTENSION (billing.control names
-- it).  Nothing in it is granted to PUBLIC: billing.grant_roles()
-- hands out the documented roles.
COMMENT ON SCHEMA billing IS 'billing: recurring billing inside PostgreSQL';
REVOKE ALL ON SCHEMA billing FROM PUBLIC;
