-- Installment plans: what is due on an open invoice split into N dated
-- installments that sum to it exactly (billing.split: the extra minor units
-- go to the first installments).  Payments still apply to the invoice as a
-- whole, oldest due first; billing.installment_status shows, installment by
-- installment, what the invoice's payments since the plan have covered.

CREATE TABLE billing.installment (
    account_id     bigint NOT NULL,
    invoice_id     bigint NOT NULL,
    installment_no integer NOT NULL CHECK (installment_no >= 1),
    due_date       date NOT NULL,
    amount         billing.amount NOT NULL CHECK (billing.to_numeric(amount) > 0),
    created_at     timestamptz NOT NULL DEFAULT billing.now(),
    PRIMARY KEY (account_id, invoice_id, installment_no),
    FOREIGN KEY (account_id, invoice_id) REFERENCES billing.invoice
);
-- no NaN or infinite numbers and dates: NaN sorts above every number (a
-- CHECK "x >= 0" lets it in) and either would stop the cycle or a report
-- later, far from the call that stored it
ALTER TABLE billing.installment ADD CONSTRAINT installment_due_date_finite
    CHECK (isfinite(due_date));
COMMENT ON TABLE billing.installment IS
    'an installment plan of an open invoice: the amount due when the plan was made, split into dated parts that '
    'sum to it exactly';
SELECT pg_catalog.pg_extension_config_dump('billing.installment', '');

CREATE FUNCTION billing.create_installment_plan(account_id bigint, invoice_id bigint, installments integer,
                                                every interval DEFAULT '1 month', first_due date DEFAULT NULL)
RETURNS TABLE (installment_no integer, due_date date, amount billing.amount)
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    a billing.account;
    i billing.invoice;
BEGIN
    PERFORM billing._authorize_account(create_installment_plan.account_id);
    a := billing._payment_account(account_id);
    IF installments IS NULL OR installments < 2 OR installments > 120 THEN
        RAISE EXCEPTION 'an installment plan has 2 to 120 installments, not %', coalesce(installments::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Example: installments => 3.';
    END IF;
    IF every IS NULL OR every <= interval '0' OR every > interval '1 year' THEN
        RAISE EXCEPTION 'installments must be a positive interval of up to a year apart, not %',
            coalesce(every::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Example: every => ''1 month''.';
    END IF;
    PERFORM billing._check_date(first_due, 'first_due', billing.today(a.timezone));
    i := billing._lock_invoice(a, invoice_id);
    PERFORM billing._check_date((coalesce(first_due, i.due_date) + every * (installments - 1))::date,
                                'the last installment''s due date', billing.today(a.timezone));
    IF i.status <> 'open' OR billing.to_numeric(i.amount_due) <= 0 THEN
        RAISE EXCEPTION 'invoice % is % with % due: only an open invoice with something due takes a plan',
            i.invoice_id, i.status, i.amount_due
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Nothing is left to spread.';
    END IF;
    IF EXISTS (SELECT FROM billing.installment x WHERE x.account_id = a.account_id AND x.invoice_id = i.invoice_id) THEN
        RAISE EXCEPTION 'invoice % already has an installment plan', i.invoice_id
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'billing.installment_status shows it.';
    END IF;
    IF billing.minor_units(i.amount_due) < installments THEN
        RAISE EXCEPTION 'invoice % has only % due: too little for % installments', i.invoice_id, i.amount_due,
            installments
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Every installment must be at least one minor unit.';
    END IF;
    RETURN QUERY
    INSERT INTO billing.installment AS x (account_id, invoice_id, installment_no, due_date, amount)
    SELECT a.account_id, i.invoice_id, n::integer,
           (coalesce(first_due, i.due_date) + every * (n - 1))::date, part
    FROM unnest(billing.split(i.amount_due, installments)) WITH ORDINALITY s(part, n)
    RETURNING x.installment_no, x.due_date, x.amount;
    PERFORM billing._money_event(a.account_id, 'invoice.installment_plan',
                           jsonb_build_object('invoice_id', i.invoice_id, 'installments', installments));
END $$;
COMMENT ON FUNCTION billing.create_installment_plan(bigint, bigint, integer, interval, date) IS
    'splits what is due on an open invoice into 2 to 120 installments, every interval from first_due (default '
    'the invoice''s due date), that sum to it exactly; returns them';

-- What each installment still asks for: the invoice's payments since the
-- plan cover the installments in order.
CREATE VIEW billing.installment_status AS
SELECT x.account_id, x.invoice_id, i.status AS invoice_status, x.installment_no, x.due_date, x.amount,
       billing.amount(greatest(least(billing.to_numeric(x.amount),
                                     (i.planned - billing.to_numeric(i.amount_due)) - x.before), 0), i.currency) AS paid,
       billing.amount(billing.to_numeric(x.amount)
                      - greatest(least(billing.to_numeric(x.amount),
                                       (i.planned - billing.to_numeric(i.amount_due)) - x.before), 0), i.currency) AS remaining
FROM (SELECT y.*, coalesce(sum(billing.to_numeric(y.amount)) OVER (
                      PARTITION BY y.account_id, y.invoice_id ORDER BY y.installment_no
                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
      FROM billing.installment y) x
JOIN (SELECT inv.account_id, inv.invoice_id, inv.currency, inv.status, inv.amount_due,
             (SELECT sum(billing.to_numeric(z.amount)) FROM billing.installment z
              WHERE z.account_id = inv.account_id AND z.invoice_id = inv.invoice_id) AS planned
      FROM billing.invoice inv) i
  ON i.account_id = x.account_id AND i.invoice_id = x.invoice_id;
COMMENT ON VIEW billing.installment_status IS
    'each installment with what the invoice''s payments since the plan have covered (installments in order) '
    'and what remains';
COMMENT ON COLUMN billing.installment_status.account_id IS 'the account';
COMMENT ON COLUMN billing.installment_status.invoice_id IS 'the invoice split into installments';
COMMENT ON COLUMN billing.installment_status.invoice_status IS 'the invoice''s status';
COMMENT ON COLUMN billing.installment_status.installment_no IS 'the installment''s number, 1 first';
COMMENT ON COLUMN billing.installment_status.due_date IS 'the day the installment is due';
COMMENT ON COLUMN billing.installment_status.amount IS 'the installment''s amount (the installments sum exactly to the invoice)';
COMMENT ON COLUMN billing.installment_status.paid IS 'what payments since the plan have covered of it, installments in order';
COMMENT ON COLUMN billing.installment_status.remaining IS 'amount - paid';

-- The day dunning goes by, written once: the day an open invoice is due,
-- which for an invoice with an installment plan is the due date of its
-- first installment that the payments since the plan have not covered
-- (payments cover the installments in order; the later ones are untouched).
-- A customer who pays each installment on time is never overdue; an
-- installment missed is what gets dunned.
CREATE VIEW billing._invoice_schedule AS
SELECT i.account_id, i.invoice_id, coalesce(p.due_on, i.due_date) AS due_on, p.due_on IS NOT NULL AS by_installments
FROM billing.invoice i
LEFT JOIN LATERAL (
    SELECT min(y.due_date) AS due_on
    FROM (SELECT z.due_date, sum(billing.to_numeric(z.amount)) OVER (ORDER BY z.installment_no) AS through,
                 sum(billing.to_numeric(z.amount)) OVER () AS planned
          FROM billing.installment z WHERE z.account_id = i.account_id AND z.invoice_id = i.invoice_id) y
    WHERE y.through > y.planned - billing.to_numeric(i.amount_due)
) p ON true;
COMMENT ON VIEW billing._invoice_schedule IS
    'internal: the day each invoice is due for dunning: its due date, or that of its first installment not yet '
    'covered by payments';
