-- Last in the install script: nothing of billing is usable by PUBLIC.
-- Functions are created executable by PUBLIC by default; take that back for
-- every function the files above created.  The DBA grants what each role
-- needs (README, Operations: Roles and row-level security).
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA billing FROM PUBLIC;
REVOKE EXECUTE ON ALL PROCEDURES IN SCHEMA billing FROM PUBLIC;
