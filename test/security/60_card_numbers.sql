-- Attack 6: card numbers in every text billing stores.
--
-- A Luhn-valid card number (4111 1111 1111 1111) written as people and
-- systems paste it: plain, with spaces, dots, tabs, no-break spaces, in
-- full-width digits, and inside a longer text.  It goes into every text and
-- jsonb argument of every writer function (and of the operator's functions
-- that store text: collection results, worker names), one argument at a
-- time, the other arguments plausible: names, descriptions, references,
-- reasons, external refs, e-mails, tokens, idempotency and usage keys,
-- metadata (as a value, as a key, nested), dunning step names.  Pass: every
-- form is refused with a data exception or a constraint violation (class 22
-- or 23) and no row changes.  An argument is attacked only when the same
-- call with ordinary free text in it goes through (so the refusal is the
-- card's, not the call's); arguments that take no free text (currency
-- codes, time zones, schemes, enumerations) are listed in a note.
\set ON_ERROR_STOP 1

CREATE TABLE atk.card_form (form text PRIMARY KEY, digits text);
INSERT INTO atk.card_form VALUES
    ('plain', '4111111111111111'),
    ('spaces', '4111 1111 1111 1111'),
    ('dots', '4111.1111.1111.1111'),
    ('tabs', E'4111\t1111\t1111\t1111'),
    ('no_break_spaces', U&'4111\00A01111\00A01111\00A01111'),
    ('full_width', U&'\FF14\FF11\FF11\FF11\FF11\FF11\FF11\FF11\FF11\FF11\FF11\FF11\FF11\FF11\FF11\FF11');
GRANT SELECT ON atk.card_form TO PUBLIC;

-- The value of an argument with free text t in it, as SQL.
CREATE FUNCTION atk.with_text(fn text, arg text, typ oid, t text, shape text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN typ = 'jsonb'::regtype AND arg = 'steps'
        THEN pg_catalog.format('%L::pg_catalog.jsonb', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                 'day_offset', 1, 'action', 'remind', 'name', t))::text)
        WHEN typ = 'jsonb'::regtype AND shape = 'key'
        THEN pg_catalog.format('%L::pg_catalog.jsonb', pg_catalog.jsonb_build_object(t, 'x')::text)
        WHEN typ = 'jsonb'::regtype AND shape = 'nested'
        THEN pg_catalog.format('%L::pg_catalog.jsonb', pg_catalog.jsonb_build_object('a',
                 pg_catalog.jsonb_build_object('b', pg_catalog.jsonb_build_array(t)))::text)
        WHEN typ = 'jsonb'::regtype
        THEN pg_catalog.format('%L::pg_catalog.jsonb', pg_catalog.jsonb_build_object('note', t)::text)
        WHEN arg = 'email' THEN pg_catalog.format('%L::pg_catalog.text', pg_catalog.replace(t, ' ', '.') || '@example.com')
        WHEN shape = 'alone' THEN pg_catalog.format('%L::pg_catalog.text', t)
        ELSE pg_catalog.format('%L::pg_catalog.text', 'paid with ' || t || ' thanks')
    END
$$;

-- shared: the functions of what every entity shares (atk_admin's), else
-- those of an account or entity; kinds: writer, or operator.
CREATE FUNCTION atk.card_numbers(kinds text[], shared boolean) RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    a record;
    f record;
    shape text;
    benign text;
    stmts text[];
    not_free text[] := '{}';
BEGIN
    FOR r IN SELECT x.fn, x.name FROM atk.routine x
             WHERE x.kind = ANY (kinds) AND x.prokind = 'f' AND x.name !~ '^_'
               AND pg_catalog.has_function_privilege(x.fn, 'EXECUTE')
               AND shared = NOT EXISTS (SELECT FROM atk.in_args(x.fn) y WHERE y.name IN ('account_id', 'entity_id'))
             ORDER BY x.fn::text LOOP
        FOR a IN SELECT * FROM atk.in_args(r.fn) x WHERE x.typ IN ('text'::regtype, 'jsonb'::regtype) ORDER BY x.pos LOOP
            stmts := '{}';
            FOREACH shape IN ARRAY CASE WHEN a.typ = 'jsonb'::regtype AND a.name <> 'steps'
                                        THEN ARRAY['value', 'key', 'nested'] ELSE ARRAY['embedded', 'alone'] END LOOP
                benign := atk.attempt(atk.call_sql(r.fn, 'A', '{}', pg_catalog.jsonb_build_object(a.name,
                              atk.with_text(r.name, a.name, a.typ, 'order 12345', shape))));
                IF benign = '00000' THEN
                    stmts := stmts || ARRAY(SELECT atk.call_sql(r.fn, 'A', '{}', pg_catalog.jsonb_build_object(a.name,
                                                       atk.with_text(r.name, a.name, a.typ, c.digits, shape)))
                                            FROM atk.card_form c ORDER BY c.form);
                END IF;
            END LOOP;
            IF pg_catalog.cardinality(stmts) = 0 THEN
                not_free := not_free || (r.name || '.' || a.name);
            ELSE
                RETURN QUERY SELECT * FROM atk.expect_all(pg_catalog.format('card_number:%s.%s', r.name, a.name),
                                                          stmts, '{22%,23%}');
            END IF;
        END LOOP;
    END LOOP;
    IF pg_catalog.cardinality(not_free) > 0 THEN
        RETURN QUERY SELECT * FROM atk.note('no free text (refused with ''order 12345''), not attacked: '
                                            || pg_catalog.array_to_string(not_free, ', '));
    END IF;
END $$;

\c - atk_writer
SELECT * FROM atk.card_numbers('{writer}', shared => false);
\c - atk_admin
SELECT * FROM atk.card_numbers('{writer}', shared => true);
\c - atk_operator
SELECT * FROM atk.card_numbers('{operator}', shared => false);
SELECT * FROM atk.card_numbers('{operator}', shared => true);
