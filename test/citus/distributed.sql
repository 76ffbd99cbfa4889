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
