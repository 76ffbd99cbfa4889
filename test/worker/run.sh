#!/bin/sh
# test/worker/run.sh - the delivery worker (worker/) end to end, in a
# server that PGHOST/PGPORT name, where billing is installed (test/cluster.sh
# runs it in the suite's throwaway cluster).
# Builds the worker with -Werror under AddressSanitizer and UBSan, starts
# an SMTP sink and a webhook receiver (test/worker/receivers.py), and checks:
# invoice e-mails with their PDF, a reminder and a price-change notice in
# the account's locale, an account without an address skipped with its
# reason, signed webhooks (the receiver checks every signature), a receiver
# that fails then succeeds, one that always fails (dead letters), two
# workers at once (nothing sent twice), and a worker killed with -9
# mid-delivery (its delivery taken over after the lease, processed once).
# Appends "worker <passed> <failed>" to $RESULTS when it is set.
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
: "${PG_CONFIG:=/usr/lib/postgresql/15/bin/pg_config}"
DB=worker_test
T=$(mktemp -d)
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "FAILED - $1"; }
check() { # $1 description, $2 expected, $3 actual
	if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: expected [$2], got [$3]"; fi
}
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
	for r in worker_test_login worker_test_writer worker_test_operator worker_test_reporting; do
		psql -X -q -d postgres -c "DROP ROLE IF EXISTS $r" >/dev/null 2>&1
	done
	rm -rf "$T"
}
trap cleanup EXIT
finish() {
	echo "worker: $pass passed, $fail failed"
	[ -n "${RESULTS:-}" ] && echo "worker $pass $fail" >> "$RESULTS"
	[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
	exit $?
}

# the worker, as the tests build C: warnings are errors, sanitizers on
if make -s -C worker clean >/dev/null && make -s -C worker SAN=1 WERROR=-Werror PG_CONFIG="$PG_CONFIG" >"$T/build.log" 2>&1; then
	ok "worker builds with -Wall -Wextra -Werror under ASan and UBSan"
else
	cat "$T/build.log"; bad "worker builds"; finish
fi
W=$ROOT/worker/billing-worker
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=99
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# --- the database: an operator login role runs the worker ----------------
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null || { bad "createdb"; finish; }
q -c "SET client_min_messages = warning; CREATE EXTENSION billing CASCADE" || { bad "create extension"; finish; }
q >/dev/null <<'SQL'
SELECT billing.grant_roles('worker_test_writer', 'worker_test_operator', 'worker_test_reporting');
CREATE ROLE worker_test_login LOGIN IN ROLE worker_test_operator;
SELECT billing.create_billing_entity('Acme GmbH', 'EUR');
SELECT billing.create_account(1, 'Alice', currency => 'EUR', email => 'alice@example.test', locale => 'de-DE');
SELECT billing.create_account(1, 'Bob', currency => 'EUR');
SELECT billing.create_product('Pro');
SELECT billing.create_price(1, 'EUR', 1234.50);
SELECT billing.subscribe(1, 1);
SELECT billing.subscribe(2, 1);
-- a reminder and a price-change notice, as dunning and the price-change
-- step write them
INSERT INTO billing.outbox (account_id, event_type, payload) VALUES
    (1, 'dunning.reminder', jsonb_build_object('number', 'INV-7', 'issue_date', '2026-01-31', 'due_date', '2026-02-28',
                                              'amount_due', '1234.50 EUR')),
    (1, 'subscription.price_change_notice', jsonb_build_object('effective_date', '2026-03-01', 'new_price_id', 1,
                                              'old_amount', '10.00 EUR', 'new_amount', '12.00 EUR'));
SQL
[ $? -eq 0 ] || { bad "setup"; finish; }
events=$(q -c "SELECT count(*) FROM billing.outbox")
check "six outbox events to deliver" 6 "$events"

# --- the receivers ------------------------------------------------------
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$T/secret"
chmod 600 "$T/secret"
python3 test/worker/receivers.py smtp "$T" 2>"$T/smtp.err" & PIDS="$PIDS $!"
python3 test/worker/receivers.py http "$T" 2>"$T/http.err" & PIDS="$PIDS $!"
for i in $(seq 50); do [ -s "$T/smtp.port" ] && [ -s "$T/http.port" ] && break; sleep 0.1; done
SMTP_PORT=$(cat "$T/smtp.port"); HTTP_PORT=$(cat "$T/http.port")
H=http://127.0.0.1:$HTTP_PORT
CONN="host=${PGHOST:-localhost} port=${PGPORT:-5432} dbname=$DB user=worker_test_login"
[ -n "${PGPASSWORD:-}" ] && q -c "ALTER ROLE worker_test_login PASSWORD '$PGPASSWORD'" && CONN="$CONN password=$PGPASSWORD"

cat > "$T/a.conf" <<CONF
# phase 1: e-mail and three webhooks
conninfo = $CONN
smtp_url = smtp://127.0.0.1:$SMTP_PORT
smtp_from = billing@acme.test
webhook.good = $H/good
webhook.flaky = $H/flaky
webhook.dead = $H/dead
webhook_secret_file = $T/secret
max_tries = 3
backoff_seconds = 1
max_backoff_seconds = 2
lease_seconds = 60
batch_size = 1
http_timeout_seconds = 5
smtp_timeout_seconds = 20
pdf_timeout_seconds = 30
CONF

# a configuration that would lose leases, or has no secret, is refused
sed 's/^lease_seconds = .*/lease_seconds = 5/' "$T/a.conf" > "$T/bad1.conf"
sed '/^webhook_secret_file/d' "$T/a.conf" > "$T/bad2.conf"
"$W" --until-idle "$T/bad1.conf" 2>"$T/bad1.err"; r1=$?
"$W" --until-idle "$T/bad2.conf" 2>"$T/bad2.err"; r2=$?
check "a lease shorter than a delivery's timeouts is refused" "2 lease_seconds" "$r1 $(grep -o lease_seconds "$T/bad1.err" | head -1)"
check "webhooks without a secret file are refused" "2 webhook_secret_file" "$r2 $(grep -o webhook_secret_file "$T/bad2.err" | head -1)"

# --- phase 1: two workers at once ----------------------------------------
sed 's/^# phase 1.*/worker_name = w1/' "$T/a.conf" > "$T/w1.conf"
sed 's/^# phase 1.*/worker_name = w2/' "$T/a.conf" > "$T/w2.conf"
timeout 180 "$W" --until-idle "$T/w1.conf" 2>"$T/w1.log" & p1=$!
timeout 180 "$W" --until-idle "$T/w2.conf" 2>"$T/w2.log" & p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
check "two workers run until idle and exit cleanly (no sanitizer report)" "0 0" "$r1 $r2"
grep -l "ERROR: AddressSanitizer\|runtime error" "$T"/w1.log "$T"/w2.log && bad "sanitizer reports"
check "both workers delivered" 2 "$(q -c "SELECT count(DISTINCT worker) FROM billing.delivery_attempt")"

check "every event is processed" 0 "$(q -c "SELECT count(*) FROM billing.outbox WHERE processed_at IS NULL")"
check "nothing left pending or claimed" 0 "$(q -c "SELECT count(*) FROM billing.delivery WHERE status IN ('pending', 'claimed')")"

# e-mails: Alice's three, one each; Bob's skipped with the reason
check "three e-mails sent, one per event" 3 "$(ls "$T"/mail/*.eml 2>/dev/null | wc -l)"
check "Bob's invoice e-mail skipped, reason recorded" "skipped|the account has no e-mail address" \
	"$(q -c "SELECT d.status || '|' || d.reason FROM billing.delivery d JOIN billing.outbox o USING (account_id, event_id)
	         WHERE o.account_id = 2 AND o.event_type = 'invoice.finalized' AND d.channel = 'email'")"
check "e-mails delivered" "3" "$(q -c "SELECT count(*) FROM billing.delivery WHERE channel = 'email' AND status = 'delivered'")"
python3 - "$T" > "$T/mail.check" <<'PY'
import email, email.policy, glob, sys
mails = {}
for p in sorted(glob.glob(sys.argv[1] + "/mail/*.eml")):
    m = email.message_from_binary_file(open(p, "rb"), policy=email.policy.default)
    mails[str(m["Subject"])] = m
inv = [m for s, m in mails.items() if s.startswith("Rechnung INV-")]
print("invoice_subject", len(inv))
if inv:
    m = inv[0]
    print("invoice_to", m["To"])
    print("invoice_type", m.get_content_type())
    html = m.get_body(("html",)).get_content()
    text = m.get_body(("plain",)).get_content()
    print("invoice_html", "Rechnung" in html and "1.234,50" in html)
    print("invoice_text", "1.234,50" in text)
    pdfs = [p for p in m.iter_attachments() if p.get_content_type() == "application/pdf"]
    print("invoice_pdf", len(pdfs), pdfs[0].get_content()[:5] == b"%PDF-" if pdfs else False,
          pdfs[0].get_filename().startswith("invoice-") if pdfs else False)
    print("invoice_event_id", bool(m["Billing-Event-Id"]), m["Message-ID"].startswith("<billing-event-"))
r = mails.get("Zahlungserinnerung: Rechnung INV-7")
# ICU puts a no-break space between the figure and the currency sign
print("reminder", r is not None and "1.234,50\u00a0€" in r.get_body(("plain",)).get_content()
      and "28. Februar 2026" in r.get_body(("html",)).get_content())
p = mails.get("Ihr Preis ändert sich")
print("price", p is not None and "12,00\u00a0€ statt 10,00\u00a0€" in p.get_body(("plain",)).get_content())
PY
m() { sed -n "s/^$1 //p" "$T/mail.check"; }
check "the invoice e-mail's subject is German, with its number" 1 "$(m invoice_subject)"
check "the invoice e-mail goes to the account's address" "alice@example.test" "$(m invoice_to)"
check "the invoice e-mail is multipart/mixed" "multipart/mixed" "$(m invoice_type)"
check "its HTML body is the invoice document, in German" True "$(m invoice_html)"
check "its text body is the text document" True "$(m invoice_text)"
check "a PDF of the invoice is attached" "1 True True" "$(m invoice_pdf)"
check "the e-mail names its event (Billing-Event-Id, Message-ID)" "True True" "$(m invoice_event_id)"
check "the reminder is German, amounts and dates formatted" True "$(m reminder)"
check "the price-change notice is German" True "$(m price)"

# webhooks: signatures checked by the receiver, nothing sent twice
hl() { python3 -c "
import json,sys
rows=[json.loads(l) for l in open('$T/http.log') if '\"sleeping\"' not in l]
print($1)"; }
check "every webhook request carried a valid signature" 0 "$(hl "sum(1 for r in rows if not r['sig_ok'] or not r['body_ok'])")"
check "/good got each of the six events once (two workers, no double delivery)" "6 6" \
	"$(hl "len([r for r in rows if r['path']=='/good']), len({r['event'] for r in rows if r['path']=='/good'})" | tr -d '(),')"
check "/flaky: two failures then success, for each event" "18 6" \
	"$(hl "len([r for r in rows if r['path']=='/flaky']), len([r for r in rows if r['path']=='/flaky' and r['status']==200])" | tr -d '(),')"
check "/flaky deliveries delivered on the third try" "6" \
	"$(q -c "SELECT count(*) FROM billing.delivery WHERE channel = 'webhook:flaky' AND status = 'delivered' AND tries = 3")"
check "/dead: three tries each (max_tries)" 18 "$(hl "len([r for r in rows if r['path']=='/dead'])")"
check "/dead: dead letters with the receiver's answer" 6 \
	"$(q -c "SELECT count(*) FROM billing.delivery WHERE channel = 'webhook:dead' AND status = 'dead' AND tries = 3 AND reason LIKE 'HTTP 500%'")"
check "the attempt numbers sent match the database's" 0 \
	"$(hl "sum(1 for r in rows if r['path']=='/flaky' and r['attempt']!=str(r['n']))")"
# the backoff: the second try of a flaky delivery came a second after the first at least
check "retries waited for the backoff" 0 "$(q -c "
	SELECT count(*) FROM billing.delivery_attempt a JOIN billing.delivery_attempt b
	  ON b.account_id = a.account_id AND b.event_id = a.event_id AND b.channel = a.channel AND b.try = a.try + 1
	WHERE a.channel = 'webhook:flaky' AND b.started_at - a.finished_at < interval '0.9 seconds'")"
# a receiver refuses a forged signature
forged=$(curl -s -o /dev/null -w '%{http_code}' -H 'Billing-Event-Id: 1' -H "Billing-Signature: t=$(date +%s),v1=00" \
	-H 'Content-Type: application/json' --data '{"id":1}' "$H/good")
check "the receiver refuses a forged signature" 401 "$forged"

# --- phase 2: a worker killed mid-delivery ---------------------------------
cat > "$T/b.conf" <<CONF
conninfo = $CONN
worker_name = w3
webhook.slow = $H/slow
webhook_secret_file = $T/secret
max_tries = 5
backoff_seconds = 1
lease_seconds = 6
batch_size = 1
http_timeout_seconds = 5
CONF
q -c "SELECT billing.create_account(1, 'Carla', currency => 'EUR', email => 'carla@example.test', locale => 'fr-FR');
      SELECT billing.subscribe(3, 1)" >/dev/null
"$W" "$T/b.conf" 2>"$T/w3.log" & p3=$!
for i in $(seq 100); do grep -q '"sleeping"' "$T/http.log" 2>/dev/null && break; sleep 0.1; done
kill -9 $p3; wait $p3 2>/dev/null
killed=$(python3 -c "
import json
print([json.loads(l)['event'] for l in open('$T/http.log') if '\"sleeping\"' in l][0])")
check "the killed worker's delivery is still claimed" "claimed" \
	"$(q -c "SELECT status FROM billing.delivery WHERE event_id = $killed AND channel = 'webhook:slow'")"
sed 's/^worker_name = w3/worker_name = w4/' "$T/b.conf" > "$T/b4.conf"
timeout 60 "$W" --until-idle "$T/b4.conf" 2>"$T/w4.log"; r4=$?
check "the restarted worker runs until idle" 0 "$r4"
check "the killed delivery was taken over after its lease and delivered" "delivered 2" \
	"$(q -c "SELECT status || ' ' || tries FROM billing.delivery WHERE event_id = $killed AND channel = 'webhook:slow'")"
check "its first try is recorded as lease_expired" "1 w3 lease_expired|2 w4 delivered" \
	"$(q -c "SELECT string_agg(try || ' ' || worker || ' ' || outcome, '|' ORDER BY try) FROM billing.delivery_attempt
	         WHERE event_id = $killed AND channel = 'webhook:slow'")"
check "the receiver got it twice and processed it once (event id deduplication)" "2 1" \
	"$(python3 -c "
import json
rows=[json.loads(l) for l in open('$T/http.log') if '\"sleeping\"' not in l]
done=[json.loads(l) for l in open('$T/processed.log')]
print(len([r for r in rows if r['path']=='/slow' and r['event']=='$killed']), len([d for d in done if d['path']=='/slow' and d['event']=='$killed']))")"
check "every delivery of phase 2 done" 0 "$(q -c "SELECT count(*) FROM billing.outbox WHERE processed_at IS NULL")"
grep -q "AddressSanitizer\|runtime error" "$T"/w4.log && bad "sanitizer report in w4"

# --- the worker's own NOTIFY wake-up: a running worker sends a new event at once
sed 's/^worker_name = w3/worker_name = w5/; s#^webhook.slow = .*#webhook.good = '"$H"'/good\nwebhook.card = '"$H"'/card#' "$T/b.conf" > "$T/b5.conf"
"$W" "$T/b5.conf" 2>"$T/w5.log" & p5=$!
sleep 1
q -c "SELECT billing.create_account(1, 'Dora', currency => 'EUR'); SELECT billing.subscribe(4, 1)" >/dev/null
start=$(date +%s)
for i in $(seq 100); do
	[ "$(q -c "SELECT count(*) FROM billing.outbox WHERE processed_at IS NULL")" = 0 ] \
		&& [ "$(q -c "SELECT count(*) FROM billing.delivery WHERE channel = 'webhook:good' AND status = 'delivered'")" = 8 ] && break
	sleep 0.1
done
kill -TERM $p5; wait $p5; r5=$?
check "a NOTIFY wakes the daemon: the new events delivered within seconds" "8" \
	"$(q -c "SELECT count(*) FROM billing.delivery WHERE channel = 'webhook:good' AND status = 'delivered'")"
check "SIGTERM stops the daemon cleanly" 0 "$r5"
check "a receiver's answer with a card number is not stored, the delivery still counts" \
	"2 the receiver's answer was not kept (it looked like a card number)" \
	"$(q -c "SELECT count(*) || ' ' || min(a.detail) FROM billing.delivery d JOIN billing.delivery_attempt a USING (account_id, event_id, channel)
	         WHERE d.channel = 'webhook:card' AND d.status = 'delivered'")"
[ $(( $(date +%s) - start )) -le 10 ] && ok "delivered in $(( $(date +%s) - start ))s, before the 30s poll" || bad "not woken by NOTIFY"

if [ "$fail" -gt 0 ]; then
	for f in w1 w2 w3 w4 w5; do echo "== $f.log"; tail -20 "$T/$f.log"; done
	echo "== http.err"; tail -20 "$T/http.err"; echo "== smtp.err"; tail -20 "$T/smtp.err"
fi
finish
