-- The floor of the cycle: the rows billing.run_cycle writes for a monthly
-- subscription of one flat item, written by plain set-based statements, in
-- committed batches like the cycle's, with nothing computed: per
-- subscription an invoice (numbered, open), its line and, for a taxed
-- account, its tax line, a ledger transaction with its 2 or 3 entries, an
-- outbox event, and the subscription advanced by a month.  The tables keep
-- their keys, indexes and foreign keys; billing's own triggers (the
-- invoice's ledger posting, the ledger's balance check) are switched off
-- for the run, because the statements write those rows themselves.  No
-- row lock on the number series either.  What it measures is what these
-- rows cost in these tables on this machine, below which no cycle can go.
--
-- bench/cycle.sh loads this file into schema bench_floor and calls
--   CALL bench_floor.run(first_account, count, batch_size)
-- in two sessions at once (with search_path billing, bench_floor; a
-- procedure that COMMITs cannot have a SET clause).  Each call adds its
-- seconds per statement to bench_floor.part.
CREATE SCHEMA bench_floor;
CREATE TABLE bench_floor.part (part text, seconds numeric);

CREATE PROCEDURE bench_floor.run(first bigint, n bigint, batch integer)
LANGUAGE plpgsql AS $$
DECLARE
    lo bigint := first;
    t timestamptz;
    secs numeric[] := array_fill(0, ARRAY[8]);
    names text[] := ARRAY['pick', 'lines', 'invoices', 'ledger_transactions', 'ledger_entries', 'outbox',
                          'subscriptions', 'line_keys'];
BEGIN
    CREATE TEMP TABLE ids (account_id bigint, subscription_id bigint, invoice_id bigint, txn_id bigint,
                           taxed boolean) ON COMMIT DELETE ROWS;
    WHILE lo < first + n LOOP
        SET CONSTRAINTS billing.invoice_line_account_id_invoice_id_fkey DEFERRED;
        -- ids has no statistics: without these the update below would hash
        -- the whole subscription table once per batch
        SET LOCAL enable_hashjoin = off;
        SET LOCAL enable_mergejoin = off;
        t := clock_timestamp();
        INSERT INTO ids
        SELECT s.account_id, s.subscription_id, nextval('billing.invoice_invoice_id_seq'),
               nextval(pg_get_serial_sequence('billing.ledger_transaction', 'txn_id')), a.tax_rate_id IS NOT NULL
        FROM (SELECT * FROM billing.subscription s
              WHERE s.account_id >= lo AND s.account_id < least(lo + batch, first + n)
              FOR UPDATE) s
        JOIN billing.account a ON a.account_id = s.account_id;
        secs[1] := secs[1] + extract(epoch FROM clock_timestamp() - t); t := clock_timestamp();
        INSERT INTO billing.invoice_line (account_id, invoice_id, kind, description, subscription_id,
                                          subscription_item_id, price_id, quantity, unit_amount, amount,
                                          period_start, period_end, tax_rate_id, source)
        SELECT account_id, invoice_id, 'subscription', 'Plan', subscription_id, subscription_id, 1, 1, 19.99,
               '19.99 USD'::billing.amount, '2024-02-01'::date, '2024-03-01'::date, CASE WHEN taxed THEN 1 END,
               'cycle'
        FROM ids
        UNION ALL
        SELECT account_id, invoice_id, 'tax', 'Sales tax 8.875%', NULL, NULL, NULL, NULL, 8.875,
               '1.77 USD'::billing.amount, NULL, NULL, 1, 'tax_rate 1'
        FROM ids WHERE taxed
        ORDER BY 2;
        secs[2] := secs[2] + extract(epoch FROM clock_timestamp() - t); t := clock_timestamp();
        INSERT INTO billing.invoice (account_id, invoice_id, entity_id, subscription_id, number, status,
                                     billing_reason, currency, subtotal, discount, tax, total, amount_paid,
                                     amount_due, issue_date, due_date, period_start, period_end, finalized_at)
        SELECT account_id, invoice_id, 1, subscription_id, 'FLOOR-' || lpad(invoice_id::text, 7, '0'), 'open',
               'subscription_cycle', 'USD', '19.99 USD', '0.00 USD',
               CASE WHEN taxed THEN '1.77 USD' ELSE '0.00 USD' END::billing.amount,
               CASE WHEN taxed THEN '21.76 USD' ELSE '19.99 USD' END::billing.amount, '0.00 USD',
               CASE WHEN taxed THEN '21.76 USD' ELSE '19.99 USD' END::billing.amount,
               '2024-02-01', '2024-03-02', '2024-02-01', '2024-03-01', now()
        FROM ids;
        secs[3] := secs[3] + extract(epoch FROM clock_timestamp() - t); t := clock_timestamp();
        INSERT INTO billing.ledger_transaction (account_id, txn_id, kind, posted_on, invoice_id, description)
        SELECT account_id, txn_id, 'invoice_finalized', '2024-02-01', invoice_id,
               'invoice FLOOR-' || lpad(invoice_id::text, 7, '0')
        FROM ids;
        secs[4] := secs[4] + extract(epoch FROM clock_timestamp() - t); t := clock_timestamp();
        INSERT INTO billing.ledger_entry (account_id, txn_id, ledger_account, amount)
        SELECT i.account_id, i.txn_id, e.ledger_account, e.amount::billing.amount
        FROM ids i
        CROSS JOIN LATERAL (VALUES ('receivable', CASE WHEN i.taxed THEN '21.76 USD' ELSE '19.99 USD' END),
                                   ('revenue', '-19.99 USD'),
                                   ('tax_payable', CASE WHEN i.taxed THEN '-1.77 USD' END)) e(ledger_account, amount)
        WHERE e.amount IS NOT NULL;
        secs[5] := secs[5] + extract(epoch FROM clock_timestamp() - t); t := clock_timestamp();
        INSERT INTO billing.outbox (account_id, event_type, payload)
        SELECT account_id, 'invoice.finalized',
               jsonb_build_object('invoice_id', invoice_id, 'number', 'FLOOR-' || lpad(invoice_id::text, 7, '0'),
                                  'subscription_id', subscription_id,
                                  'total', CASE WHEN taxed THEN '21.76 USD' ELSE '19.99 USD' END,
                                  'due_date', '2024-03-02'::date)
        FROM ids;
        secs[6] := secs[6] + extract(epoch FROM clock_timestamp() - t); t := clock_timestamp();
        UPDATE billing.subscription s
        SET next_bill_date = '2024-03-01', current_period_start = '2024-02-01', current_period_end = '2024-03-01',
            updated_at = now()
        FROM ids
        WHERE s.account_id = ids.account_id AND s.subscription_id = ids.subscription_id;
        secs[7] := secs[7] + extract(epoch FROM clock_timestamp() - t); t := clock_timestamp();
        SET CONSTRAINTS billing.invoice_line_account_id_invoice_id_fkey IMMEDIATE;
        secs[8] := secs[8] + extract(epoch FROM clock_timestamp() - t);
        COMMIT;
        lo := lo + batch;
    END LOOP;
    INSERT INTO bench_floor.part SELECT * FROM unnest(names, secs);
    DROP TABLE ids;
END $$;
