#!/bin/sh
# pg_cron really runs billing's jobs (slow: up to two minutes).  pg_cron 1.4
# schedules by the minute.  This scenario's database is not the cron
# database (cron.database_name, contrib_regression on the test cluster), so
# billing.schedule() refuses with the calls to run there; we run exactly
# the statements billing.schedule_commands() returns in the cron database,
# wait for the next minute, and check cron.job_run_details and what the
# jobs did here: the invoices the cycle made and the dunning run's log.
set -eu
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
DB=$PGDATABASE
CRON_DB=$(q -c 'SHOW cron.database_name')
[ "$CRON_DB" != "$DB" ] || fail "the scenario must not run in the cron database"

q -c 'CREATE EXTENSION billing'
# a customer whose subscription started 40 days ago and was never billed:
# the cycle job catches up with the periods due (real time: the job's
# session has no test clock)
q -c "SELECT billing.create_billing_entity('Acme', 'USD')" \
  -c "SELECT billing.create_account(1, 'Alice', payment_terms_days => 0)" \
  -c "SELECT billing.create_product('Pro')" -c "SELECT billing.create_price(1, 'USD', 10.00)" \
  -c "SELECT billing.subscribe(1, 1, start_date => current_date - 40, invoice_now => false)" >/dev/null
[ "$(q -c 'SELECT count(*) FROM billing.invoice')" = 0 ] || fail "invoices before the job ran"

# billing.schedule() here: 55000 and the calls to run in the cron database
out=$(psql -X -q -At -c '\set VERBOSITY verbose' -c "SELECT * FROM billing.schedule('* * * * *', '* * * * *')" 2>&1 || true)
echo "$out" | grep -q "ERROR:  55000: pg_cron runs jobs from database $CRON_DB" || fail "schedule here: $out"
echo "$out" | grep -q "SELECT cron.schedule_in_database('billing-cycle:$DB', '\* \* \* \* \*', 'CALL billing.run_cycle()', '$DB');" \
	|| fail "schedule here gave no call: $out"

# run them in the cron database
q -d "$CRON_DB" -c 'CREATE EXTENSION IF NOT EXISTS pg_cron'
q -c "SELECT * FROM billing.schedule_commands('* * * * *', '* * * * *')" > /tmp/billing_cron_$$.sql
cat /tmp/billing_cron_$$.sql
q -d "$CRON_DB" -f /tmp/billing_cron_$$.sql >/dev/null
rm -f /tmp/billing_cron_$$.sql
# pg_cron connects to cron.host (localhost) with a password this throwaway
# cluster does not give it; the Unix socket uses peer authentication
SOCKET=$(q -c "SELECT split_part(current_setting('unix_socket_directories'), ',', 1)")
q -d "$CRON_DB" -c "UPDATE cron.job SET nodename = '$SOCKET' WHERE database = '$DB'" >/dev/null
[ "$(q -d "$CRON_DB" -c "SELECT count(*) FROM cron.job WHERE database = '$DB'")" = 2 ] || fail "jobs not scheduled"

# wait for both jobs to have succeeded once (the next minute, plus the run)
i=0
while [ "$(q -d "$CRON_DB" -c "SELECT count(DISTINCT r.jobid) FROM cron.job_run_details r JOIN cron.job j USING (jobid)
                                  WHERE j.database = '$DB' AND r.status = 'succeeded'")" != 2 ]; do
	i=$((i + 1))
	[ $i -le 150 ] || fail "no run after 150 s: $(q -d "$CRON_DB" -c 'SELECT * FROM cron.job_run_details')"
	sleep 1
done
echo "both jobs ran after ${i} s:"
q -d "$CRON_DB" -c "SELECT j.jobname, r.status, r.return_message FROM cron.job_run_details r JOIN cron.job j USING (jobid)
                    WHERE j.database = '$DB' ORDER BY r.runid"

# what they did here: the cycle billed the two periods due, dunning logged its run
[ "$(q -c 'SELECT count(*) FROM billing.invoice')" = 2 ] || fail "invoices: $(q -c 'SELECT * FROM billing.invoice')"
[ "$(q -c "SELECT count(*) FROM billing.cycle_run WHERE status = 'done'")" -ge 1 ] || fail "no cycle run logged"
[ "$(q -c "SELECT count(*) FROM billing.dunning_run WHERE status = 'done'")" -ge 1 ] || fail "no dunning run logged"
# the invoices are overdue (due on issue): a dunning run after the cycle's
# (both jobs start on the same minute, so perhaps the next one) takes their steps
i=0
while [ "$(q -c "SELECT count(*) FROM billing.dunning_action")" = 0 ]; do
	i=$((i + 1))
	[ $i -le 130 ] || fail "dunning took no step: $(q -c 'SELECT * FROM billing.dunning_run')"
	sleep 1
done
q -c "SELECT invoice_id, day_offset, action, outcome FROM billing.dunning_action ORDER BY 1, 2"
[ "$(q -c 'SELECT count(*) FROM billing.check_invariants()')" = 0 ] || fail "invariants"

# remove the jobs (the calls schedule_commands gives for NULL schedules)
q -c "SELECT * FROM billing.schedule_commands(NULL, NULL)" | q -d "$CRON_DB" >/dev/null
[ "$(q -d "$CRON_DB" -c "SELECT count(*) FROM cron.job WHERE database = '$DB'")" = 0 ] || fail "jobs left"
echo ok
