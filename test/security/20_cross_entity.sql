-- Attack 2: the other tenant's ids through every function the role may call.
--
-- atk_writer and atk_reader are bound to tenant A.  For every function of
-- billing.role_functions() they may execute (from the catalog, so a new
-- function is covered), every argument that names a tenant's object
-- (account_id, invoice_id, payment_id, subscription_id, entity_id, ... and
-- their arrays) is given tenant B's id:
--   B       every such argument B's: refused with 42501;
--   mixed   one argument B's, the others A's own (A's account with B's
--           invoice, say): refused with 42501, or refused exactly as an id
--           that exists nowhere is (same SQLSTATE, same message but for
--           the numbers in it), so that the other tenant's ids cannot be
--           probed;
--   shared  a function without such an argument changes what every entity
--           shares (the catalog, settings): 42501 for a role bound to one
--           entity.
-- Every call must change no row of any table (digest before and after).
-- Arguments neither known as a tenant's nor as shared (products, prices,
-- tax rates, runs) fail the attack until they are classified here.
\set ON_ERROR_STOP 1

CREATE FUNCTION atk.cross_entity(kinds text[]) RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    scoped constant text[] := '{account_id,accounts,account_ids,invoice_id,invoice_ids,invoice_line_id,payment_id,subscription_id,'
                              'subscription_item_id,subscription_item_ids,payment_method_id,attempt_id,entity_id,event_ids}';
    shared constant text[] := '{price_id,from_price_id,to_price_id,product_id,tax_rate_id,cycle_run_id,run_id,default_policy,'
                              'after_account,after_subscription,after_invoice}';
    r record;
    ids text[];
    unknown text[];
    s text;
    stmt text;
    b_value text;
    nowhere text;
    mixed text;
    same boolean;
    want text[];
    as_nowhere text[] := '{}';
BEGIN
    FOR r IN SELECT x.fn, x.name,
                    ARRAY(SELECT a.name FROM atk.in_args(x.fn) a WHERE a.name = ANY (scoped) ORDER BY a.pos) AS ids,
                    ARRAY(SELECT a.name FROM atk.in_args(x.fn) a
                          WHERE a.typ IN ('bigint'::regtype, 'bigint[]'::regtype)
                            AND a.name <> ALL (scoped) AND a.name <> ALL (shared) ORDER BY a.pos) AS unknown
             FROM atk.routine x
             WHERE x.kind = ANY (kinds) AND x.prokind = 'f'
               AND pg_catalog.has_function_privilege(x.fn, 'EXECUTE')
             ORDER BY x.fn::text LOOP
        IF pg_catalog.cardinality(r.unknown) > 0 THEN
            RETURN QUERY SELECT * FROM atk.report(pg_catalog.format('cross_entity:%s:classified', r.name), false,
                pg_catalog.format('%s: arguments %s are neither known tenant ids nor shared ids; classify them in %s',
                                  r.fn, r.unknown, 'test/security/20_cross_entity.sql'));
        END IF;
        IF atk.call_sql(r.fn, 'B') IS NULL THEN
            RETURN QUERY SELECT * FROM atk.report(pg_catalog.format('cross_entity:%s:callable', r.name), false,
                pg_catalog.format('%s: no value for %s (atk.arg_value)', r.fn, atk.unmapped(r.fn)));
            CONTINUE;
        END IF;
        IF pg_catalog.cardinality(r.ids) = 0 THEN
            -- the shared catalog and settings; price_amount reads the
            -- shared catalog
            want := CASE WHEN r.name = 'price_amount' THEN '{00000}' ELSE '{42501}' END;
            RETURN QUERY SELECT * FROM atk.expect(pg_catalog.format('cross_entity:%s:shared', r.name),
                                                  atk.call_sql(r.fn, 'A'), want);
            CONTINUE;
        END IF;
        -- every id the other tenant's; mark_events_done marks only the
        -- caller's own events and says how many (0 here)
        want := CASE WHEN r.name = 'mark_events_done' THEN '{00000}' ELSE '{42501}' END;
        RETURN QUERY SELECT * FROM atk.expect(pg_catalog.format('cross_entity:%s:B', r.name),
                                              atk.call_sql(r.fn, 'B'), want);
        IF r.name = 'mark_events_done' THEN
            RETURN QUERY SELECT * FROM atk.report('cross_entity:mark_events_done:B_marks_none',
                atk.attempt_value(atk.call_sql(r.fn, 'B')) = '0',
                'mark_events_done of the other tenant''s event returned ' || atk.attempt_value(atk.call_sql(r.fn, 'B')));
        END IF;
        IF pg_catalog.cardinality(r.ids) < 2 THEN
            CONTINUE;
        END IF;
        FOREACH s IN ARRAY r.ids LOOP
            -- B's id for s; where the plausible call leaves s out, the
            -- usual id of its name
            b_value := coalesce(atk.arg_value(r.name, s, 'bigint'::regtype, 'B'),
                                atk.arg_value('', s, 'bigint'::regtype, 'B'));
            stmt := atk.call_sql(r.fn, 'A', '{}', pg_catalog.jsonb_build_object(s,
                        pg_catalog.format('%L::%s', b_value,
                                          CASE WHEN b_value LIKE '{%' THEN 'pg_catalog.int8[]' ELSE 'pg_catalog.int8' END)));
            nowhere := atk.attempt(atk.call_sql(r.fn, 'A', '{}', pg_catalog.jsonb_build_object(s,
                           pg_catalog.format('%L::%s', CASE WHEN b_value LIKE '{%' THEN '{999999999}' ELSE '999999999' END,
                                             CASE WHEN b_value LIKE '{%' THEN 'pg_catalog.int8[]' ELSE 'pg_catalog.int8' END))));
            mixed := atk.attempt(stmt);
            -- the same answer: the same SQLSTATE and the same message but
            -- for the numbers in it (the ids)
            same := pg_catalog.left(mixed, 5) = pg_catalog.left(nowhere, 5)
                    AND pg_catalog.regexp_replace(pg_catalog.substr(mixed, 6), '[0-9]+', '#', 'g')
                        = pg_catalog.regexp_replace(pg_catalog.substr(nowhere, 6), '[0-9]+', '#', 'g');
            RETURN QUERY SELECT * FROM atk.expect(pg_catalog.format('cross_entity:%s:mixed_%s', r.name, s), stmt,
                                                  CASE WHEN same THEN ARRAY['42501', pg_catalog.left(nowhere, 5)]
                                                       ELSE '{42501}' END);
            IF same AND pg_catalog.left(nowhere, 5) <> '42501' THEN
                as_nowhere := as_nowhere || pg_catalog.format('%s(%s: %s)', r.name, s, pg_catalog.left(nowhere, 5));
            END IF;
        END LOOP;
    END LOOP;
    IF pg_catalog.cardinality(as_nowhere) > 0 THEN
        RETURN QUERY SELECT * FROM atk.note('other tenant''s ids refused as ids that exist nowhere, not with 42501: '
                                            || pg_catalog.array_to_string(as_nowhere, ', '));
    END IF;
END $$;

\c - atk_writer
SELECT * FROM atk.cross_entity('{reader,writer}');
\c - atk_reader
SELECT * FROM atk.cross_entity('{reader}');
