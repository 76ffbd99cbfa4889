-- Changes to a running subscription beyond billing.change_subscription:
-- add-ons (items added to and removed from the subscription), scheduled
-- changes in later periods, and the migration of every subscription on a
-- price to another one.
--
-- All of them are items of billing.subscription_item, valid on
-- [started_on, ended_on): the cycle bills the items valid on a bill date
-- (50_invoicing.sql), so an add-on is a line of the subscription's own
-- invoice, and a change dated in a later period is an item that starts on
-- that period's first day, billed by the ordinary cycle from then on with
-- no step of its own.  A change is made by billing.change_subscription
-- (proration at_period_end), so its notice is the price-change notice that
-- billing.run_dunning writes price_change_notice_days before it
-- (78_dunning.sql), and its billing is that of any other item.  What this
-- file adds is the record of which item replaced which
-- (billing.subscription_change), so that a change can be taken back before
-- its period is billed and an add-on is not taken for a price change.

CREATE TABLE billing.subscription_change (
    account_id           bigint NOT NULL,
    -- the new item: an add-on, or the item that starts on the first day of
    -- the period of effective_on
    subscription_item_id bigint NOT NULL,
    subscription_id      bigint NOT NULL,
    kind                 text NOT NULL CHECK (kind IN ('add_on', 'scheduled', 'migration')),
    -- the item a scheduled change or a migration ends (an add-on ends none)
    replaces_item_id     bigint,
    -- the day asked for (a scheduled change takes effect where its period begins)
    effective_on         date NOT NULL,
    canceled_on          date,
    created_at           timestamptz NOT NULL DEFAULT billing.now(),
    PRIMARY KEY (account_id, subscription_item_id),
    FOREIGN KEY (account_id, subscription_item_id) REFERENCES billing.subscription_item,
    FOREIGN KEY (account_id, replaces_item_id) REFERENCES billing.subscription_item,
    FOREIGN KEY (account_id, subscription_id) REFERENCES billing.subscription,
    CHECK ((kind = 'add_on') = (replaces_item_id IS NULL)),
    CHECK (replaces_item_id <> subscription_item_id),
    CHECK (kind <> 'add_on' OR canceled_on IS NULL)
);
COMMENT ON TABLE billing.subscription_change IS
    'the items added to a running subscription: add-ons (billing.add_subscription_item) and changes dated in a '
    'later period (billing.schedule_change, billing.migrate_price) with the item each replaces; canceled_on when '
    'billing.cancel_scheduled_change took a change back';
-- the next phase of a chain, found when the one before it is canceled
CREATE INDEX subscription_change_replaces ON billing.subscription_change (account_id, replaces_item_id)
    WHERE replaces_item_id IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('billing.subscription_change', '');

-- Whether item other is the item that item replaces, for the price-change
-- notices (78_dunning.sql), which pair a new item with the one that ends on
-- its first day: an item that never runs (a change taken back, an add-on
-- removed before it began) and an add-on replace none, a scheduled change
-- or a migration the item it names.
CREATE FUNCTION billing._replaces(acct bigint, item bigint, item_started_on date, item_ended_on date, other bigint)
RETURNS boolean LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT (item_ended_on IS NULL OR item_ended_on > item_started_on)
       AND NOT EXISTS (SELECT FROM billing.subscription_change c
                       WHERE c.account_id = acct AND c.subscription_item_id = item
                         AND c.replaces_item_id IS DISTINCT FROM other)
$$;
COMMENT ON FUNCTION billing._replaces(bigint, bigint, date, date, bigint) IS
    'internal: whether a new item (running from item_started_on to item_ended_on) replaces item other, for the '
    'price-change notices: not when it never runs or is an add-on; a scheduled change the item it names';

-- The day an item is added or removed, by the proration behaviors of
-- billing.change_subscription: at_period_end the end of the billed period
-- (or a later period's first day), otherwise effective_date (default today)
-- within the current period.
CREATE FUNCTION billing._item_change_date(s billing.subscription, proration text, effective_date date, today date)
RETURNS date LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_d date;
BEGIN
    IF proration IS NULL OR proration NOT IN ('prorate_now', 'prorate_next', 'none', 'at_period_end') THEN
        RAISE EXCEPTION 'unknown proration behavior "%"', proration
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use prorate_now, prorate_next, none or at_period_end.';
    END IF;
    IF proration = 'at_period_end' THEN
        IF effective_date IS NOT NULL AND (effective_date < s.next_bill_date
               OR lower(billing.period_containing(s.anchor, s.cadence, effective_date)) <> effective_date
               OR effective_date > s.next_bill_date + interval '10 years') THEN
            RAISE EXCEPTION 'a change at period end takes effect where a period begins, on % or later (within ten '
                            'years), not on %', s.next_bill_date, effective_date
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Leave effective_date out for the end of the billed period, or pass a later period''s first day.';
        END IF;
        RETURN coalesce(effective_date, s.next_bill_date);
    END IF;
    v_d := coalesce(billing._check_date(effective_date, 'effective_date', today), today);
    IF v_d < coalesce(s.current_period_start, s.start_date) THEN
        RAISE EXCEPTION 'change dated % falls in a closed period (the current one starts on %)',
            v_d, coalesce(s.current_period_start, s.start_date)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Date the change in the current period.';
    END IF;
    IF v_d > s.next_bill_date THEN
        RAISE EXCEPTION 'change dated % is after the current period, which ends on %', v_d, s.next_bill_date
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use proration => ''at_period_end''.';
    END IF;
    RETURN v_d;
END $$;
COMMENT ON FUNCTION billing._item_change_date(billing.subscription, text, date, date) IS
    'internal: the day an item is added or removed under a proration behavior (at_period_end: the next bill date '
    'or a later period''s first day; otherwise effective_date, default today, in the current period); 22023 otherwise';

-- Raises 55000 unless the subscription is billed and not canceled.
CREATE FUNCTION billing._check_changeable(s billing.subscription) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF s.status IN ('canceled', 'paused') OR s.cancel_on IS NOT NULL THEN
        RAISE EXCEPTION 'subscription % is %', s.subscription_id,
            CASE WHEN s.cancel_on IS NOT NULL AND s.status NOT IN ('canceled', 'paused')
                 THEN 'canceled from ' || s.cancel_on ELSE s.status END
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Only a subscription that is billed and not canceled can change.';
    END IF;
END $$;
COMMENT ON FUNCTION billing._check_changeable(billing.subscription) IS
    'internal: raises 55000 when the subscription is canceled, paused or canceled at period end';

-- An add-on: one more item on the subscription, on its invoices.  Its
-- price shares the subscription's currency and cadence (billing._check_price).
-- Prorated (prorate_now, prorate_next), the rest of the billed period is
-- charged as change_subscription charges a new item: billing.prorate of its
-- period amount over the cycle period.  A metered add-on bills its usage
-- from its first day, in arrears like every metered item.
CREATE FUNCTION billing.add_subscription_item(
    account_id bigint, subscription_id bigint, price_id bigint, quantity numeric DEFAULT 1,
    proration text DEFAULT 'prorate_next', effective_date date DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    s billing.subscription;
    a billing.account;
    p billing.price;
    v_rounding text;
    v_d date;
    v_new bigint;
    v_same bigint;
BEGIN
    PERFORM billing._authorize_account(add_subscription_item.account_id);
    s := billing._lock_subscription(account_id, subscription_id);
    SELECT * INTO a FROM billing.account x WHERE x.account_id = s.account_id;
    SELECT e.rounding INTO v_rounding FROM billing.billing_entity e WHERE e.entity_id = a.entity_id;
    PERFORM billing._check_changeable(s);
    p := billing._check_price(add_subscription_item.price_id, a.currency, s.cadence, quantity);
    -- one item per price: more of the same is a quantity change
    SELECT x.subscription_item_id INTO v_same FROM billing.subscription_item x
    WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id AND x.price_id = p.price_id
      AND x.ended_on IS NULL
    ORDER BY x.subscription_item_id LIMIT 1;
    IF v_same IS NOT NULL THEN
        RAISE EXCEPTION 'price % is already on subscription % (item %)', p.price_id, s.subscription_id, v_same
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Change its quantity with billing.change_subscription(subscription_item_id => ...).';
    END IF;
    v_d := billing._item_change_date(s, proration, effective_date, billing.today(a.timezone));
    INSERT INTO billing.subscription_item AS x (account_id, subscription_id, price_id, quantity, started_on)
    VALUES (s.account_id, s.subscription_id, p.price_id, quantity, v_d)
    RETURNING x.subscription_item_id INTO v_new;
    -- the rest of the billed period, when the add-on starts inside it
    IF proration IN ('prorate_now', 'prorate_next') AND p.usage_type = 'licensed' AND s.current_period_end IS NOT NULL
       AND v_d >= s.current_period_start AND v_d < s.current_period_end THEN
        INSERT INTO billing.pending_item (account_id, subscription_id, subscription_item_id, price_id, kind,
                                          description, quantity, unit_amount, amount, period_start, period_end)
        SELECT s.account_id, s.subscription_id, v_new, p.price_id, 'proration',
               'Remaining time on ' || pd.name || coalesce(' (' || p.nickname || ')', '') || ' x '
                   || trim_scale(quantity) || ' from ' || v_d,
               quantity, p.unit_amount,
               billing.prorate(billing.price_amount(p.price_id, quantity, v_rounding),
                               billing.period_containing(s.anchor, s.cadence, v_d),
                               daterange(v_d, s.current_period_end), 'actual', v_rounding),
               v_d, s.current_period_end
        FROM billing.product pd WHERE pd.product_id = p.product_id;
    END IF;
    -- its setup fee, as when the price is subscribed to
    IF p.setup_fee > 0 THEN
        INSERT INTO billing.pending_item (account_id, subscription_id, subscription_item_id, price_id, kind,
                                          description, quantity, unit_amount, amount, period_start)
        SELECT s.account_id, s.subscription_id, v_new, p.price_id, 'setup_fee', pd.name || ' setup fee', 1,
               p.setup_fee, billing.round_amount(p.setup_fee, p.currency, v_rounding), v_d
        FROM billing.product pd WHERE pd.product_id = p.product_id;
    END IF;
    INSERT INTO billing.subscription_change (account_id, subscription_item_id, subscription_id, kind, effective_on)
    VALUES (s.account_id, v_new, s.subscription_id, 'add_on', v_d);
    PERFORM billing._event(s.account_id, 'subscription.updated',
                           jsonb_build_object('subscription_id', s.subscription_id, 'effective_date', v_d,
                                              'added_item', v_new, 'price_id', p.price_id, 'quantity', quantity,
                                              'proration', proration));
    IF proration = 'prorate_now' THEN
        PERFORM billing._bill(ARRAY[s.account_id], ARRAY[s.subscription_id], v_d, billing.now(), 'now');
    END IF;
    RETURN v_new;
END $$;
COMMENT ON FUNCTION billing.add_subscription_item(bigint, bigint, bigint, numeric, text, date) IS
    'adds an item (an add-on: a price in the subscription''s currency and cadence, not already on it) to a running '
    'subscription from effective_date (default today) and returns its id; proration as billing.change_subscription: '
    'prorate_now (charge the rest of the billed period and invoice now), prorate_next, none, or at_period_end';

-- Removes an add-on.  Prorated, the unused part of the billed period is
-- credited as billing.cancel_subscription credits it (only if the item was
-- billed for the period).  The subscription keeps at least one item: to
-- stop billing all of it is a cancellation.
CREATE FUNCTION billing.remove_subscription_item(
    account_id bigint, subscription_item_id bigint, proration text DEFAULT 'prorate_next',
    effective_date date DEFAULT NULL)
RETURNS date LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    s billing.subscription;
    a billing.account;
    i billing.subscription_item;
    p billing.price;
    v_rounding text;
    v_d date;
    v_end date;
BEGIN
    PERFORM billing._authorize_account(remove_subscription_item.account_id);
    SELECT x.subscription_id INTO i.subscription_id FROM billing.subscription_item x
    WHERE x.account_id = remove_subscription_item.account_id
      AND x.subscription_item_id = remove_subscription_item.subscription_item_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'subscription item % of account % does not exist', coalesce(subscription_item_id::text, 'NULL'),
            coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'billing.subscription_item lists the items.';
    END IF;
    s := billing._lock_subscription(account_id, i.subscription_id);
    -- read again under the subscription's lock
    SELECT * INTO i FROM billing.subscription_item x
    WHERE x.account_id = s.account_id AND x.subscription_item_id = remove_subscription_item.subscription_item_id;
    SELECT * INTO a FROM billing.account x WHERE x.account_id = s.account_id;
    SELECT e.rounding INTO v_rounding FROM billing.billing_entity e WHERE e.entity_id = a.entity_id;
    SELECT * INTO p FROM billing.price x WHERE x.price_id = i.price_id;
    PERFORM billing._check_changeable(s);
    IF i.ended_on IS NOT NULL THEN
        RAISE EXCEPTION 'subscription item % already ends on %', i.subscription_item_id, i.ended_on
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = CASE WHEN EXISTS (SELECT FROM billing.subscription_change c
                                           WHERE c.account_id = i.account_id
                                             AND c.replaces_item_id = i.subscription_item_id
                                             AND c.canceled_on IS NULL)
                              THEN 'A scheduled change replaces it then; remove the item that replaces it.'
                              ELSE 'Nothing to do.' END;
    END IF;
    IF EXISTS (SELECT FROM billing.subscription_change c
               WHERE c.account_id = i.account_id AND c.subscription_item_id = i.subscription_item_id
                 AND c.kind <> 'add_on' AND c.canceled_on IS NULL AND i.started_on >= s.next_bill_date) THEN
        RAISE EXCEPTION 'subscription item % is a scheduled change that has not begun', i.subscription_item_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Take it back with billing.cancel_scheduled_change.';
    END IF;
    v_d := billing._item_change_date(s, proration, effective_date, billing.today(a.timezone));
    -- an add-on that has not begun never runs: it ends on its own first day
    v_end := greatest(v_d, i.started_on);
    IF NOT EXISTS (SELECT FROM billing.subscription_item x
                   WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id
                     AND x.subscription_item_id <> i.subscription_item_id
                     AND (x.ended_on IS NULL OR x.ended_on > v_end)) THEN
        RAISE EXCEPTION 'subscription item % is the last item of subscription %', i.subscription_item_id,
            s.subscription_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Cancel the subscription with billing.cancel_subscription.';
    END IF;
    -- the unused part of the billed period, if the item was billed for it
    IF proration IN ('prorate_now', 'prorate_next') AND p.usage_type = 'licensed' AND s.current_period_end IS NOT NULL
       AND v_d >= s.current_period_start AND v_d < s.current_period_end
       AND (i.started_on <= s.current_period_start OR EXISTS (
            SELECT FROM billing.pending_item q
            WHERE q.account_id = s.account_id AND q.subscription_item_id = i.subscription_item_id
              AND q.kind = 'proration' AND q.period_end = s.current_period_end)) THEN
        INSERT INTO billing.pending_item (account_id, subscription_id, subscription_item_id, price_id, kind,
                                          description, quantity, unit_amount, amount, period_start, period_end)
        SELECT s.account_id, s.subscription_id, i.subscription_item_id, p.price_id, 'proration',
               'Unused time on ' || pd.name || coalesce(' (' || p.nickname || ')', '') || ' x '
                   || trim_scale(i.quantity) || ' from ' || v_d,
               i.quantity, p.unit_amount,
               -billing.prorate(billing.price_amount(p.price_id, i.quantity, v_rounding),
                                billing.period_containing(s.anchor, s.cadence, v_d),
                                daterange(v_d, s.current_period_end), 'actual', v_rounding),
               v_d, s.current_period_end
        FROM billing.product pd WHERE pd.product_id = p.product_id;
    END IF;
    UPDATE billing.subscription_item x SET ended_on = v_end
    WHERE x.account_id = i.account_id AND x.subscription_item_id = i.subscription_item_id;
    -- an add-on that never runs owes no setup fee
    IF v_end = i.started_on THEN
        DELETE FROM billing.pending_item q
        WHERE q.account_id = i.account_id AND q.subscription_item_id = i.subscription_item_id
          AND q.kind = 'setup_fee' AND q.invoice_id IS NULL;
    END IF;
    PERFORM billing._event(s.account_id, 'subscription.updated',
                           jsonb_build_object('subscription_id', s.subscription_id, 'effective_date', v_end,
                                              'removed_item', i.subscription_item_id, 'proration', proration));
    IF proration = 'prorate_now' THEN
        PERFORM billing._bill(ARRAY[s.account_id], ARRAY[s.subscription_id], v_d, billing.now(), 'now');
    END IF;
    RETURN v_end;
END $$;
COMMENT ON FUNCTION billing.remove_subscription_item(bigint, bigint, text, date) IS
    'removes an item from a running subscription from effective_date (default today; returns the day it ends); '
    'proration as billing.change_subscription (prorate_now and prorate_next credit the unused part of the billed '
    'period); the subscription''s last item is refused (55000: cancel the subscription instead)';

-- A change dated in a later period: the new item starts on the first day
-- of the period that contains effective_on, by billing.change_subscription
-- at period end, and the cycle bills it from that period on.  Phases go in
-- date order: each names the item of the phase before (the subscription's
-- open item), and a change on or before the start of the last one is
-- refused; take the later one back first.
CREATE FUNCTION billing.schedule_change(
    account_id bigint, subscription_id bigint, effective_on date, price_id bigint DEFAULT NULL,
    quantity numeric DEFAULT NULL, subscription_item_id bigint DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    s billing.subscription;
    a billing.account;
    v_start date;
    v_items integer;
    v_item bigint;
    v_item_start date;
    v_new bigint;
BEGIN
    PERFORM billing._authorize_account(schedule_change.account_id);
    s := billing._lock_subscription(account_id, subscription_id);
    SELECT * INTO a FROM billing.account x WHERE x.account_id = s.account_id;
    PERFORM billing._check_changeable(s);
    IF effective_on IS NULL THEN
        RAISE EXCEPTION 'a scheduled change needs its effective_on date'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass the day the change takes effect.';
    END IF;
    PERFORM billing._check_date(effective_on, 'effective_on', billing.today(a.timezone));
    v_start := lower(billing.period_containing(s.anchor, s.cadence, effective_on));
    IF v_start < s.next_bill_date THEN
        RAISE EXCEPTION 'effective_on % is in a period already billed (the next one starts on %)', effective_on,
            s.next_bill_date
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Change the current period with billing.change_subscription; schedule from the next bill date on.';
    END IF;
    SELECT count(*), max(x.subscription_item_id), max(x.started_on) INTO v_items, v_item, v_item_start
    FROM billing.subscription_item x
    WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id AND x.ended_on IS NULL
      AND (schedule_change.subscription_item_id IS NULL
           OR x.subscription_item_id = schedule_change.subscription_item_id);
    IF v_items = 1 AND v_item_start >= v_start THEN
        RAISE EXCEPTION 'item % starts on %: a change from % would come before it', v_item, v_item_start, v_start
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Phases go in date order: schedule after it, or take it back with billing.cancel_scheduled_change.';
    END IF;
    -- (change_subscription checks the item, the price and the quantity)
    v_new := billing.change_subscription(s.account_id, s.subscription_id, price_id, quantity, 'at_period_end',
                                         v_start, subscription_item_id);
    INSERT INTO billing.subscription_change (account_id, subscription_item_id, subscription_id, kind, replaces_item_id,
                                             effective_on)
    VALUES (s.account_id, v_new, s.subscription_id, 'scheduled', v_item, effective_on);
    RETURN v_new;
END $$;
COMMENT ON FUNCTION billing.schedule_change(bigint, bigint, date, bigint, numeric, bigint) IS
    'schedules a change of price and/or quantity of a subscription''s item (the only open one, or subscription_item_id) '
    'for the period containing effective_on, a period not yet billed; returns the new item''s id; phases go in date '
    'order; its notice is run_dunning''s price-change notice';

-- Takes a scheduled change back until its period is billed: the item it
-- replaced runs on for the change's time, and the change's item ends on
-- its own first day (an empty life, never billed), as a canceled
-- subscription's later items do.
CREATE FUNCTION billing.cancel_scheduled_change(account_id bigint, subscription_item_id bigint)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    c billing.subscription_change;
    s billing.subscription;
    n billing.subscription_item;
    v_today date;
BEGIN
    PERFORM billing._authorize_account(cancel_scheduled_change.account_id);
    SELECT x.subscription_id INTO c.subscription_id FROM billing.subscription_change x
    WHERE x.account_id = cancel_scheduled_change.account_id
      AND x.subscription_item_id = cancel_scheduled_change.subscription_item_id AND x.kind <> 'add_on';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'subscription item % of account % is no scheduled change',
            coalesce(subscription_item_id::text, 'NULL'), coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'billing.subscription_change lists the scheduled changes (kind scheduled or migration).';
    END IF;
    s := billing._lock_subscription(account_id, c.subscription_id);
    SELECT * INTO c FROM billing.subscription_change x
    WHERE x.account_id = s.account_id AND x.subscription_item_id = cancel_scheduled_change.subscription_item_id;
    SELECT * INTO n FROM billing.subscription_item x
    WHERE x.account_id = s.account_id AND x.subscription_item_id = c.subscription_item_id;
    IF c.canceled_on IS NOT NULL THEN
        RAISE EXCEPTION 'the scheduled change of item % was canceled on %', c.subscription_item_id, c.canceled_on
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Nothing to do.';
    END IF;
    PERFORM billing._check_changeable(s);
    IF n.started_on < s.next_bill_date THEN
        RAISE EXCEPTION 'the change of item % took effect on % and its period is billed', n.subscription_item_id,
            n.started_on
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Change the subscription again with billing.change_subscription or billing.schedule_change.';
    END IF;
    SELECT billing.today(a.timezone) INTO v_today FROM billing.account a WHERE a.account_id = s.account_id;
    UPDATE billing.subscription_item x SET ended_on = n.ended_on
    WHERE x.account_id = s.account_id AND x.subscription_item_id = c.replaces_item_id;
    UPDATE billing.subscription_item x SET ended_on = x.started_on
    WHERE x.account_id = s.account_id AND x.subscription_item_id = n.subscription_item_id;
    -- the next phase, if any, now follows the item before this one
    UPDATE billing.subscription_change x SET replaces_item_id = c.replaces_item_id
    WHERE x.account_id = s.account_id AND x.replaces_item_id = n.subscription_item_id AND x.canceled_on IS NULL;
    UPDATE billing.subscription_change x SET canceled_on = v_today
    WHERE x.account_id = s.account_id AND x.subscription_item_id = n.subscription_item_id;
    PERFORM billing._event(s.account_id, 'subscription.updated',
                           jsonb_build_object('subscription_id', s.subscription_id,
                                              'scheduled_change_canceled', n.subscription_item_id,
                                              'effective_date', n.started_on,
                                              'item', c.replaces_item_id,
                                              'notified', EXISTS (SELECT FROM billing.price_change_notice x
                                                                  WHERE x.account_id = s.account_id
                                                                    AND x.subscription_item_id = n.subscription_item_id)));
END $$;
COMMENT ON FUNCTION billing.cancel_scheduled_change(bigint, bigint) IS
    'takes back a scheduled change (its new item''s id) whose period is not billed yet: the item it replaced runs '
    'on; its subscription.updated event says whether its notice was already sent';

-- Every subscription whose open item is on from_price moves to to_price at
-- its next renewal at least notice_days away: the first bill date on or
-- after today + notice_days (the next bill date, or a later period's first
-- day).  Subscriptions are migrated only when asked: a price that is
-- replaced or deactivated keeps billing the subscriptions on it.  One
-- statement for all of them; each move is a scheduled change (kind
-- migration), with run_dunning's price-change notice, and can be taken back
-- one by one with billing.cancel_scheduled_change.
CREATE FUNCTION billing.migrate_price(from_price_id bigint, to_price_id bigint, notice_days integer DEFAULT NULL,
                                      account_ids bigint[] DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    p_from billing.price;
    v_days integer;
    v_moved integer;
BEGIN
    PERFORM billing._authorize_all('migrate a price');
    SELECT * INTO p_from FROM billing.price x WHERE x.price_id = migrate_price.from_price_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'price % does not exist', coalesce(from_price_id::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation', HINT = 'billing.price lists the prices.';
    END IF;
    IF to_price_id = from_price_id THEN
        RAISE EXCEPTION 'price % would migrate to itself', from_price_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Name another price.';
    END IF;
    -- the new price: active, the same currency and cadence (and the same
    -- bounds on the quantities of the items, checked below)
    PERFORM billing._check_price(to_price_id, p_from.currency, p_from.cadence, 0);
    IF (SELECT x.usage_type FROM billing.price x WHERE x.price_id = migrate_price.to_price_id) <> p_from.usage_type THEN
        RAISE EXCEPTION 'price % is %, price % is %', from_price_id, p_from.usage_type, to_price_id,
            (SELECT x.usage_type FROM billing.price x WHERE x.price_id = migrate_price.to_price_id)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Migrate to a price billed the same way.';
    END IF;
    v_days := coalesce(notice_days, (SELECT x.price_change_notice_days FROM billing.dunning_setting x), 30);
    IF v_days < 0 OR v_days > 365 THEN
        RAISE EXCEPTION 'notice_days must be 0 to 365, not %', v_days
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave it out for price_change_notice_days.';
    END IF;
    -- the subscriptions, locked in key order as the cycle takes them
    PERFORM FROM billing.subscription s
    WHERE (account_ids IS NULL OR s.account_id = ANY (account_ids))
      AND EXISTS (SELECT FROM billing.subscription_item i
                  WHERE i.account_id = s.account_id AND i.subscription_id = s.subscription_id
                    AND i.price_id = migrate_price.from_price_id AND i.ended_on IS NULL)
    ORDER BY s.account_id, s.subscription_id
    FOR UPDATE;
    -- every quantity within the bounds of an amount at the new price
    PERFORM billing._check_price(to_price_id, p_from.currency, p_from.cadence, q.quantity)
    FROM (SELECT DISTINCT i.quantity FROM billing.subscription_item i
          WHERE i.price_id = migrate_price.from_price_id AND i.ended_on IS NULL
            AND (account_ids IS NULL OR i.account_id = ANY (account_ids))) q;
    WITH m AS MATERIALIZED (
        SELECT i.account_id, i.subscription_id, i.subscription_item_id AS old_item,
               nextval('billing.subscription_item_subscription_item_id_seq') AS new_item, i.quantity,
               d.eff AS effective_on
        FROM billing.subscription_item i
        JOIN billing.subscription s ON s.account_id = i.account_id AND s.subscription_id = i.subscription_id
        JOIN billing.account a ON a.account_id = s.account_id
        CROSS JOIN LATERAL (SELECT billing.today(a.timezone) + v_days AS earliest) e
        CROSS JOIN LATERAL (SELECT CASE WHEN e.earliest <= s.next_bill_date THEN s.next_bill_date
                                        WHEN lower(pc) = e.earliest THEN lower(pc)
                                        ELSE upper(pc) END AS eff
                            FROM billing.period_containing(s.anchor, s.cadence, e.earliest) pc) d
        WHERE i.price_id = migrate_price.from_price_id AND i.ended_on IS NULL
          AND (account_ids IS NULL OR i.account_id = ANY (account_ids))
          AND s.status NOT IN ('canceled', 'paused') AND s.cancel_on IS NULL
          -- a change to the old price that has not begun keeps it
          AND i.started_on < d.eff
        ORDER BY i.account_id, i.subscription_id, i.subscription_item_id
    ), ended AS (
        UPDATE billing.subscription_item x SET ended_on = m.effective_on
        FROM m
        WHERE x.account_id = m.account_id AND x.subscription_item_id = m.old_item
    ), started AS (
        INSERT INTO billing.subscription_item (account_id, subscription_item_id, subscription_id, price_id,
                                               quantity, started_on)
        SELECT m.account_id, m.new_item, m.subscription_id, to_price_id, m.quantity, m.effective_on
        FROM m ORDER BY m.account_id, m.new_item
    ), recorded AS (
        INSERT INTO billing.subscription_change (account_id, subscription_item_id, subscription_id, kind,
                                                 replaces_item_id, effective_on)
        SELECT m.account_id, m.new_item, m.subscription_id, 'migration', m.old_item, m.effective_on
        FROM m ORDER BY m.account_id, m.new_item
    )
    INSERT INTO billing.outbox (account_id, event_type, payload)
    SELECT m.account_id, 'subscription.updated',
           jsonb_build_object('subscription_id', m.subscription_id, 'effective_date', m.effective_on,
                              'old_item', m.old_item, 'new_item', m.new_item, 'price_id', to_price_id,
                              'quantity', m.quantity, 'migrated_from_price_id', from_price_id)
    FROM m
    ORDER BY m.account_id, m.new_item;
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    IF v_moved > 0 THEN
        PERFORM pg_notify('billing_events', v_moved::text);
    END IF;
    RETURN v_moved;
END $$;
COMMENT ON FUNCTION billing.migrate_price(bigint, bigint, integer, bigint[]) IS
    'moves every running subscription whose open item is on from_price (of account_ids, default all) to to_price '
    '(active, same currency, cadence and usage type) at its first renewal at least notice_days (default '
    'price_change_notice_days) away, as scheduled changes with price-change notices; returns how many; '
    'subscriptions not migrated stay on their price';
