-- test/citus/distributed.sql: after billing.distribute(), run by
-- test/citus/run.sh on the coordinator.  Raises at the first thing wrong.
\set ON_ERROR_STOP 1
DO $$
DECLARE
    bad text;
BEGIN
    -- every table of the plan is distributed as planned
    SELECT string_agg(p.table_name::text || ' ' || p.kind, ', ') INTO bad
    FROM billing.distribution_plan() p
    LEFT JOIN pg_dist_partition d ON d.logicalrelid = p.table_name
    WHERE d.logicalrelid IS NULL
       OR (p.kind = 'reference') <> (d.partmethod = 'n')
       OR (p.kind = 'distributed' AND d.colocationid <> (SELECT colocationid FROM pg_dist_partition
                                                          WHERE logicalrelid = 'billing.account'::regclass));
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'not distributed as planned: %', bad;
    END IF;
    -- distributed by account_id
    SELECT string_agg(d.logicalrelid::text, ', ') INTO bad FROM pg_dist_partition d
    WHERE d.partmethod = 'h' AND d.logicalrelid::text LIKE 'billing.%'
      AND column_to_column_name(d.logicalrelid, d.partkey) <> 'account_id';
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'distributed by another column: %', bad;
    END IF;
    -- no policy with a subquery is left
    SELECT string_agg(polrelid::regclass::text, ', ') INTO bad FROM pg_policy
    WHERE pg_get_expr(polqual, polrelid) ~* 'SELECT';
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'policies with subqueries left: %', bad;
    END IF;
    -- the guards that would query other tables from a shard: the ledger's
    -- trigger checks the balance alone, foreign keys the rest
    IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'billing.ledger_entry'::regclass
                   AND tgname = 'ledger_entry_balanced' AND tgnargs = 1)
       OR EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'billing.invoice'::regclass
                  AND tgname = 'invoice_account_exists')
       OR (SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conname IN
           ('ledger_entry_account_id_txn_id_fkey', 'ledger_transaction_account_id_fkey', 'invoice_account_id_fkey')) <> 3 THEN
        RAISE EXCEPTION 'the ledger and invoice guards are not those of a distributed install';
    END IF;
    -- shards on both workers
    IF (SELECT count(DISTINCT nodeport) FROM pg_dist_shard_placement p JOIN pg_dist_shard s USING (shardid)
        WHERE s.logicalrelid = 'billing.account'::regclass) < 2 THEN
        RAISE EXCEPTION 'billing.account is not spread over the workers';
    END IF;
END $$;
-- a second call does nothing and says nothing
SELECT count(*) = 0 AS second_call_empty FROM billing.distribute() \gset
\if :second_call_empty
\else
  DO $$ BEGIN RAISE EXCEPTION 'a second billing.distribute() did something'; END $$;
\endif
