-- Usage in batches: a meter that reports thousands of events at a time
-- sends them in one call, as parallel arrays (element i of each array is
-- event i).  The rules are those of billing.record_usage (40_subscriptions.sql),
-- applied to the whole set by a few statements instead of once per event:
-- every account the acting role may use, every item an item of its account
-- with a metered price, every quantity zero or more, every event a key, its
-- day within the dates billing accepts and within the item's time.  One bad
-- event fails the call and nothing of it is written.  A key already stored
-- (or repeated within the batch) with the same content is a duplicate,
-- counted and not written again; with other content it is an error, as in
-- the single call.
CREATE FUNCTION billing.record_usage_batch(account_ids bigint[], subscription_item_ids bigint[], quantities numeric[],
                                           idempotency_keys text[], occurred_ats timestamptz[] DEFAULT NULL,
                                           usage_values text[] DEFAULT NULL,
                                           OUT inserted bigint, OUT duplicates bigint)
RETURNS record LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_n integer := coalesce(cardinality(account_ids), 0);
    v_now timestamptz := billing.now();
    v_null integer;
    v_ins_accounts bigint[];
    v_ins_keys text[];
    b record;
    r record;
BEGIN
    IF account_ids IS NULL OR subscription_item_ids IS NULL OR quantities IS NULL OR idempotency_keys IS NULL THEN
        RAISE EXCEPTION 'record_usage_batch needs account_ids, subscription_item_ids, quantities and idempotency_keys'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass empty arrays for a batch without events.';
    END IF;
    IF coalesce(array_ndims(account_ids), 1) > 1 OR coalesce(array_ndims(subscription_item_ids), 1) > 1
       OR coalesce(array_ndims(quantities), 1) > 1 OR coalesce(array_ndims(idempotency_keys), 1) > 1
       OR coalesce(array_ndims(occurred_ats), 1) > 1 OR coalesce(array_ndims(usage_values), 1) > 1
       OR cardinality(subscription_item_ids) <> v_n OR cardinality(quantities) <> v_n
       OR cardinality(idempotency_keys) <> v_n OR cardinality(occurred_ats) <> v_n
       OR cardinality(usage_values) <> v_n THEN
        RAISE EXCEPTION 'record_usage_batch needs one-dimensional arrays of one length: % account_ids, % subscription_item_ids, '
                        '% quantities, % idempotency_keys, % occurred_ats, % usage_values',
            v_n, cardinality(subscription_item_ids), cardinality(quantities), cardinality(idempotency_keys),
            coalesce(cardinality(occurred_ats)::text, 'no'), coalesce(cardinality(usage_values)::text, 'no')
            USING ERRCODE = 'array_subscript_error',
                  HINT = 'Element i of every array is event i; leave occurred_ats or usage_values out (NULL) for none.';
    END IF;
    PERFORM billing._authorize_accounts(account_ids);
    IF v_n = 0 THEN
        inserted := 0;
        duplicates := 0;
        RETURN;
    END IF;
    v_null := least(array_position(account_ids, NULL), array_position(subscription_item_ids, NULL));
    IF v_null IS NOT NULL THEN
        RAISE EXCEPTION 'usage event % of the batch: subscription item % of account % does not exist', v_null,
            coalesce(subscription_item_ids[v_null]::text, 'NULL'), coalesce(account_ids[v_null]::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation', HINT = 'billing.subscription_item lists the items.';
    END IF;

    -- Every event against its item, price and account (looked up once per
    -- item of the batch) and against the first event of the batch with its
    -- key, in one pass: the first bad event (by position), the day of each
    -- event, which events are the first of their key, and the first and
    -- last day of the events given a time, per time zone (the window of
    -- dates billing accepts is the account's today plus or minus ten years).
    WITH u AS MATERIALIZED (
        SELECT u.*,
               first_value(u.ord) OVER w AS first_ord,
               first_value(u.item_id) OVER w AS first_item, first_value(u.quantity) OVER w AS first_quantity,
               first_value(u.value) OVER w AS first_value, first_value(coalesce(u.at, v_now)) OVER w AS first_at
        FROM unnest(account_ids, subscription_item_ids, quantities, idempotency_keys, occurred_ats, usage_values)
             WITH ORDINALITY u(account_id, item_id, quantity, key, at, value, ord)
        WINDOW w AS (PARTITION BY u.account_id, u.key ORDER BY u.ord)
    ), items AS MATERIALIZED (
        SELECT k.account_id, k.item_id, i.subscription_item_id IS NOT NULL AS item_found, p.usage_type, a.timezone,
               i.started_on, i.ended_on
        FROM (SELECT DISTINCT u.account_id, u.item_id FROM u) k
        LEFT JOIN billing.subscription_item i ON i.account_id = k.account_id AND i.subscription_item_id = k.item_id
        LEFT JOIN billing.price p ON p.price_id = i.price_id
        LEFT JOIN billing.account a ON a.account_id = i.account_id
    ), checked AS MATERIALIZED (
        SELECT u.*, it.item_found, it.usage_type, it.timezone, it.started_on, it.ended_on, x.d,
               CASE WHEN NOT it.item_found THEN 'item'
                    WHEN it.usage_type <> 'metered' THEN 'licensed'
                    WHEN u.quantity IS NULL OR u.quantity < 0 THEN 'quantity'
                    WHEN u.key IS NULL OR u.key = '' THEN 'key'
                    WHEN x.d < it.started_on OR x.d >= it.ended_on THEN 'period'
                    -- the single call's rule for a key used before: the same
                    -- item, quantity and value, and the same time when one is given
                    WHEN u.ord <> u.first_ord
                         AND (u.first_item <> u.item_id OR u.first_quantity <> u.quantity
                              OR u.first_value IS DISTINCT FROM u.value
                              OR (u.at IS NOT NULL AND u.first_at <> u.at)) THEN 'repeated'
               END AS problem
        FROM u
        JOIN items it ON it.account_id = u.account_id AND it.item_id = u.item_id
        CROSS JOIN LATERAL (SELECT CASE WHEN it.timezone IS NOT NULL
                                        THEN billing.today(it.timezone, coalesce(u.at, v_now)) END AS d) x
    )
    SELECT bad.ord, bad.problem, bad.account_id, bad.item_id, bad.quantity, bad.key, bad.d, bad.started_on,
           bad.ended_on, bad.first_ord, agg.dates, agg.firsts, agg.n_firsts, z.zones, z.first_days, z.last_days
    INTO b
    FROM (SELECT array_agg(c.d ORDER BY c.ord) AS dates, array_agg(c.ord = c.first_ord ORDER BY c.ord) AS firsts,
                 count(*) FILTER (WHERE c.ord = c.first_ord) AS n_firsts
          FROM checked c) agg
    CROSS JOIN (SELECT array_agg(g.timezone) AS zones, array_agg(g.first_day) AS first_days,
                       array_agg(g.last_day) AS last_days
                FROM (SELECT c.timezone, min(c.d) AS first_day, max(c.d) AS last_day
                      FROM checked c WHERE c.at IS NOT NULL AND c.timezone IS NOT NULL GROUP BY c.timezone) g) z
    LEFT JOIN LATERAL (SELECT c.* FROM checked c WHERE c.problem IS NOT NULL ORDER BY c.ord LIMIT 1) bad ON true;

    FOR i IN 1 .. coalesce(cardinality(b.zones), 0) LOOP
        PERFORM billing._check_date(b.first_days[i], 'the day of occurred_at', billing.today(b.zones[i])),
                billing._check_date(b.last_days[i], 'the day of occurred_at', billing.today(b.zones[i]));
    END LOOP;
    IF b.problem = 'item' THEN
        RAISE EXCEPTION 'usage event % of the batch: subscription item % of account % does not exist', b.ord,
            b.item_id, b.account_id
            USING ERRCODE = 'foreign_key_violation', HINT = 'billing.subscription_item lists the items.';
    ELSIF b.problem = 'licensed' THEN
        RAISE EXCEPTION 'usage event % of the batch: subscription item % has a licensed price, not a metered one',
            b.ord, b.item_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Change its quantity with billing.change_subscription.';
    ELSIF b.problem = 'quantity' THEN
        RAISE EXCEPTION 'usage event % of the batch: usage quantity must be zero or more, not %', b.ord,
            coalesce(b.quantity::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Record corrections as credits.';
    ELSIF b.problem = 'key' THEN
        RAISE EXCEPTION 'usage event % of the batch needs an idempotency key', b.ord
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass the id of the event in your system.';
    ELSIF b.problem = 'period' THEN
        RAISE EXCEPTION 'usage event % of the batch: usage on % is outside subscription item %''s time [%, %)',
            b.ord, b.d, b.item_id, b.started_on, coalesce(b.ended_on::text, 'open')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Record it on the item that was current then.';
    ELSIF b.problem = 'repeated' THEN
        RAISE EXCEPTION 'usage event % of the batch: idempotency key "%" is used by event % of the batch for other usage',
            b.ord, b.key, b.first_ord
            USING ERRCODE = 'unique_violation', HINT = 'Use a new key for new usage.';
    END IF;

    -- The first event of each key, in the order of the key they are unique
    -- on; a key stored before (or by another session meanwhile) is skipped
    -- by the unique index and compared below.
    WITH ins AS (
        INSERT INTO billing.usage_event AS x (account_id, subscription_item_id, quantity, value, occurred_at,
                                              usage_date, idempotency_key)
        SELECT u.account_id, u.item_id, u.quantity, u.value, coalesce(u.at, v_now), u.d, u.key
        FROM unnest(account_ids, subscription_item_ids, quantities, idempotency_keys, occurred_ats, usage_values,
                    b.dates, b.firsts) u(account_id, item_id, quantity, key, at, value, d, first)
        WHERE u.first
        ORDER BY u.account_id, u.key
        ON CONFLICT ON CONSTRAINT usage_event_account_id_idempotency_key_key DO NOTHING
        RETURNING x.account_id, x.idempotency_key
    )
    SELECT count(*), array_agg(ins.account_id), array_agg(ins.idempotency_key) INTO inserted, v_ins_accounts, v_ins_keys
    FROM ins;

    IF inserted < b.n_firsts THEN
        -- the keys stored before: the single call's rule for a key used
        -- before (the same item, quantity and value, and the same time when
        -- one is given), against what is stored
        WITH stored AS MATERIALIZED (
            SELECT u.* FROM unnest(account_ids, subscription_item_ids, quantities, idempotency_keys, occurred_ats,
                                   usage_values, b.firsts) WITH ORDINALITY u(account_id, item_id, quantity, key, at, value,
                                                                               first, ord)
            WHERE u.first
              AND NOT EXISTS (SELECT FROM unnest(v_ins_accounts, v_ins_keys) n(account_id, key)
                              WHERE n.account_id = u.account_id AND n.key = u.key)
        )
        SELECT u.ord, u.key, e.usage_event_id INTO r
        FROM stored u
        JOIN billing.usage_event e ON e.account_id = u.account_id AND e.idempotency_key = u.key
        WHERE e.subscription_item_id <> u.item_id OR e.quantity <> u.quantity OR e.value IS DISTINCT FROM u.value
              OR (u.at IS NOT NULL AND e.occurred_at <> u.at)
        ORDER BY u.ord LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'usage event % of the batch: idempotency key "%" was already used for other usage (event %)',
                r.ord, r.key, r.usage_event_id
                USING ERRCODE = 'unique_violation', HINT = 'Use a new key for new usage.';
        END IF;
    END IF;
    duplicates := v_n - inserted;
END $$;
COMMENT ON FUNCTION billing.record_usage_batch(bigint[], bigint[], numeric[], text[], timestamptz[], text[]) IS
    'records many usage events in one call (element i of each array is event i) with the rules of record_usage: '
    'one bad event fails the whole call; returns how many were inserted and how many were duplicates of a key '
    'already stored or repeated in the batch with the same content';
