-- bench/dunning.sql - billing.run_dunning over 100k overdue invoices: the
-- first run catches up with four steps each (two reminders, one of them
-- superseded, a retry, a late-fee invoice) and moves 100k subscriptions to
-- past_due; the second run, the same day, finds nothing to do.  Run by
-- bench/run.sh: sh test/run.sh bench dunning.  Prints
--   BENCH dunning_100k_first_run_seconds <s>
--   BENCH dunning_floor_seconds <s>    the rows the first run wrote, by plain statements
--   BENCH dunning_vs_floor <r> x       first run / floor
--   BENCH dunning_100k_second_run_seconds <s>
--   BENCH dunning_steps_taken <n>
--   BENCH dunning_broken_invariants <n>
-- (psql -v n=N for a smaller run)
\if :{?n}
\else
\set n 100000
\endif
\pset format unaligned
\pset tuples_only on
SELECT billing.create_dunning_policy('standard', NULL, true) IS NOT NULL AS policy \gset
SELECT billing.create_billing_entity('Bench Inc', 'USD') \g /dev/null
SELECT billing.create_product('Plan') \g /dev/null
SELECT billing.create_price(1, 'USD', 10.00) \g /dev/null
INSERT INTO billing.account (account_id, entity_id, name, currency, payment_terms_days)
SELECT i, 1, 'customer ' || i, 'USD', 14 FROM generate_series(1, :n) i;
INSERT INTO billing.subscription (account_id, subscription_id, status, anchor, cadence, start_date, next_bill_date)
SELECT i, i, 'active', '2024-01-01', '1 month', '2024-01-01', '2024-01-01' FROM generate_series(1, :n) i;
INSERT INTO billing.subscription_item (account_id, subscription_item_id, subscription_id, price_id, quantity, started_on)
SELECT i, i, i, 1, 1, '2024-01-01' FROM generate_series(1, :n) i;
SET billing.clock = '2024-01-01 12:00+00';
CALL billing.run_cycle(as_of => '2024-01-01', batch_size => 10000);
VACUUM ANALYZE;
-- The floor's database: a copy of this one as the first run finds it.
SELECT current_database() AS db, current_database() || '_floor' AS floor_db \gset
\c postgres
DROP DATABASE IF EXISTS :"floor_db";
CREATE DATABASE :"floor_db" TEMPLATE :"db";
\c :"db"
-- Every billing table's rows before the run (untimed), to tell afterwards
-- the rows the run inserted and the rows it changed.
CREATE SCHEMA bench_pre;
CREATE TEMP VIEW bench_tables AS
SELECT c.oid::regclass AS t, c.relname::text AS name,
       (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.o)
        FROM pg_constraint x, unnest(x.conkey) WITH ORDINALITY k(n, o), pg_attribute a
        WHERE x.conrelid = c.oid AND x.contype = 'p' AND a.attrelid = c.oid AND a.attnum = k.n) AS pk,
       (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '') AS cols
FROM pg_class c
JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing'
WHERE c.relkind = 'r';
SELECT format('CREATE TABLE bench_pre.%I AS SELECT %s FROM %s', name, cols, t) FROM bench_tables WHERE pk IS NOT NULL
\gexec
SET billing.clock = '2024-01-23 12:00+00';
SELECT clock_timestamp() AS t0 \gset
CALL billing.run_dunning(batch_size => 10000);
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz), 1) AS first_run \gset
SELECT 'BENCH dunning_100k_first_run_seconds ' || :first_run;
-- What the run wrote, table by table: the rows whose key is new, and the
-- rows whose key was there with other values (untimed), to files the
-- floor's database reads.
SELECT format($$COPY (SELECT %2$s FROM %1$s x WHERE NOT EXISTS (SELECT FROM bench_pre.%3$I p WHERE (%4$s) = (%5$s)))
                 TO %6$L$$, t, cols, name, (SELECT string_agg('p.' || c, ', ') FROM regexp_split_to_table(pk, ', ') c),
              (SELECT string_agg('x.' || c, ', ') FROM regexp_split_to_table(pk, ', ') c),
              '/tmp/' || :'db' || '_' || name || '_new.copy'),
       format($$COPY (SELECT %2$s FROM %1$s x WHERE EXISTS (SELECT FROM bench_pre.%3$I p WHERE (%4$s) = (%5$s))
                      EXCEPT ALL SELECT %2$s FROM bench_pre.%3$I)
                 TO %6$L$$, t, cols, name, (SELECT string_agg('p.' || c, ', ') FROM regexp_split_to_table(pk, ', ') c),
              (SELECT string_agg('x.' || c, ', ') FROM regexp_split_to_table(pk, ', ') c),
              '/tmp/' || :'db' || '_' || name || '_changed.copy')
FROM bench_tables WHERE pk IS NOT NULL
\gexec
SELECT count(*) AS floor_tables FROM bench_tables WHERE pk IS NOT NULL \gset
-- The floor: the same rows written into the same tables of the copy by
-- plain statements (an INSERT ... SELECT per table for the new rows, an
-- UPDATE ... FROM per table for the changed ones, every column but the
-- key set), keys, indexes and foreign keys in place, billing's own
-- triggers off (they would compute what the rows already hold).  Each
-- statement commits on its own; the run committed per batch of 10,000.
\c :"floor_db"
CREATE SCHEMA bench_stage;
CREATE TEMP VIEW bench_tables AS
SELECT c.oid::regclass AS t, c.relname::text AS name,
       (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.o)
        FROM pg_constraint x, unnest(x.conkey) WITH ORDINALITY k(n, o), pg_attribute a
        WHERE x.conrelid = c.oid AND x.contype = 'p' AND a.attrelid = c.oid AND a.attnum = k.n) AS pk,
       (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '') AS cols,
       (SELECT string_agg(format('%1$I = s.%1$I', a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
          AND a.attnum <> ALL ((SELECT x.conkey FROM pg_constraint x WHERE x.conrelid = c.oid AND x.contype = 'p')::int2[]))
        AS sets
FROM pg_class c
JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing'
WHERE c.relkind = 'r' AND (SELECT count(*) FROM pg_constraint x WHERE x.conrelid = c.oid AND x.contype = 'p') = 1;
SELECT format('CREATE TABLE bench_stage.%1$I AS SELECT %2$s FROM %3$s WITH NO DATA', name || '_new', cols, t),
       format('CREATE TABLE bench_stage.%1$I AS SELECT %2$s FROM %3$s WITH NO DATA', name || '_changed', cols, t),
       format('COPY bench_stage.%I FROM %L', name || '_new', '/tmp/' || :'db' || '_' || name || '_new.copy'),
       format('COPY bench_stage.%I FROM %L', name || '_changed', '/tmp/' || :'db' || '_' || name || '_changed.copy'),
       format('ALTER TABLE %s DISABLE TRIGGER USER', t)
FROM bench_tables
\gexec
VACUUM ANALYZE;
SELECT string_agg(format('%s %s new, %s changed', name, n, u), '; ' ORDER BY name) AS floor_rows
FROM (SELECT name, (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM bench_stage.%I', name || '_new'), false, true, '')))[1]::text AS n,
             (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM bench_stage.%I', name || '_changed'), false, true, '')))[1]::text AS u
      FROM bench_tables) x WHERE n <> '0' OR u <> '0';
CHECKPOINT;
SELECT clock_timestamp() AS t0 \gset
SELECT format('INSERT INTO %s (%s) SELECT %s FROM bench_stage.%I ORDER BY %s', t, cols, cols, name || '_new', pk),
       format('UPDATE %s x SET %s FROM bench_stage.%I s WHERE (%s) = (%s)', t, sets, name || '_changed',
              (SELECT string_agg('x.' || c, ', ') FROM regexp_split_to_table(pk, ', ') c),
              (SELECT string_agg('s.' || c, ', ') FROM regexp_split_to_table(pk, ', ') c))
FROM bench_tables
\gexec
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz), 1) AS floor_run \gset
SELECT 'BENCH dunning_floor_seconds ' || :floor_run;
SELECT 'BENCH dunning_vs_floor ' || round(:first_run / nullif(:floor_run, 0), 2) || ' x';
\c :"db"
\c postgres
DROP DATABASE :"floor_db";
\c :"db"
SET billing.clock = '2024-01-23 12:00+00';
SELECT clock_timestamp() AS t0 \gset
CALL billing.run_dunning(batch_size => 10000);
SELECT 'BENCH dunning_100k_second_run_seconds ' || round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz), 1);
SELECT 'BENCH dunning_steps_taken ' || count(*) FROM billing.dunning_action;
SELECT 'BENCH dunning_broken_invariants ' || count(*) FROM billing.check_invariants();
