-- Dunning: nobody has paid since January.  The standard policy (plus a
-- final notice added with one INSERT), pg_cron jobs for the cycle and
-- dunning, a first run that catches up, a month of daily runs in which Bob
-- pays and is restored while Anna is suspended and written off, and the
-- funnel.
\echo '== Dunning policy: the standard steps, and one more by INSERT'
SET billing.clock = '2026-02-16 09:00+00';
SELECT create_dunning_policy('standard', is_default => true) AS standard \gset
INSERT INTO dunning_step (policy_id, day_offset, action, name) VALUES (:standard, 21, 'remind', 'final_notice');
SELECT day_offset, action, name, fee_fixed, fee_percent, fee_cap FROM dunning_step ORDER BY day_offset;

\echo '== Scheduling: pg_cron runs the cycle daily at 02:00 and dunning at 09:00 (GMT)'
SELECT job_name, schedule, command, action FROM schedule();
SELECT job_name, schedule, active, last_run_status FROM schedule_status();

\echo '== The first dunning run catches up on every step due since the January invoices (due Jan 31 and Feb 15)'
CALL run_dunning();
SELECT a.name, i.number, i.due_date, x.day_offset, x.action, x.outcome, x.amount_due
FROM dunning_action x JOIN invoice i USING (account_id, invoice_id) JOIN account a USING (account_id)
ORDER BY a.name, i.number, x.day_offset;
\echo '== A reminder as the email worker reads it from the outbox'
SELECT jsonb_pretty(payload) AS reminder FROM outbox WHERE event_type = 'dunning.reminder' ORDER BY event_id LIMIT 1;

\echo '== A month of daily cycles and dunning runs; Bob pays everything on Feb 20'
DO $$
DECLARE
    v_due numeric;
BEGIN
    FOR d IN 17 .. 48 LOOP
        PERFORM set_config('billing.clock', (date '2026-02-01' + d - 1) || ' 09:00+00', false);
        IF d = 20 THEN
            SELECT sum(billing.to_numeric(amount_due)) INTO v_due FROM billing.invoice
            WHERE account_id = 2 AND status = 'open';
            PERFORM billing.apply_payment(2, billing.amount(v_due, 'USD'), 'card', reference => 'ch_demo');
        END IF;
        COMMIT;
        CALL billing.run_cycle();
        CALL billing.run_dunning();
    END LOOP;
END $$;
SELECT a.name, s.status, s.next_bill_date FROM subscription s JOIN account a USING (account_id) ORDER BY 1;
SELECT a.name, o.event_type, o.payload->>'on' AS on_day
FROM outbox o JOIN account a USING (account_id)
WHERE o.event_type IN ('subscription.past_due', 'subscription.suspended', 'subscription.restored',
                       'subscription.current', 'dunning.recovered', 'invoice.uncollectible')
ORDER BY o.event_id;
\echo '== Late fees are invoices of their own'
SELECT i.number, a.name, i.status, i.issue_date, i.due_date, i.total, i.metadata->>'late_fee_for_number' AS for_invoice
FROM invoice i JOIN account a USING (account_id) WHERE i.billing_reason = 'late_fee' ORDER BY i.number;

\echo '== The dunning funnel: how many invoices reached each step, and how many were paid after it'
SELECT day_offset, action, currency, invoices, amount_due, recovered, recovered_amount, recovery_rate, written_off
FROM dunning_funnel ORDER BY currency, day_offset;
SELECT count(*) AS dunning_runs, sum(actions) AS steps_taken, sum(status_changes) AS status_changes,
       count(*) FILTER (WHERE status <> 'done') AS failed
FROM dunning_run;
SELECT count(*) AS invariant_violations FROM check_invariants();
SELECT job_name FROM unschedule();
RESET billing.clock;
