#!/bin/sh
# billing.clock is a superuser setting (it moves "now" for payments and due
# dates), grantable with GRANT SET ON PARAMETER; and a bad value stored for a
# database while billing is not loaded must not break later sessions.
set -eu
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
fail() { echo "FAIL: $*"; exit 1; }

q -c 'CREATE EXTENSION billing'
q -c 'DROP ROLE IF EXISTS billing_clock_app' -c 'CREATE ROLE billing_clock_app'

# a role without the grant cannot move the clock ...
out=$(psql -X -q -At -c "LOAD 'billing'" -c 'SET ROLE billing_clock_app' \
	-c "SET billing.clock = '2024-01-31 00:00+00'" 2>&1 || true)
echo "$out" | grep -q 'permission denied to set parameter "billing.clock"' || fail "app role set the clock: $out"
# nor by setting it before billing is loaded: the value is dropped on load
out=$(psql -X -q -At -c 'SET ROLE billing_clock_app' -c "SET billing.clock = '2024-01-31 00:00+00'" \
	-c 'RESET ROLE' -c 'SELECT billing.now() = now()' 2>&1)
echo "$out" | grep -q '^t$' || fail "app role set the clock before load: $out"
# ... until the DBA grants it (PostgreSQL 15 parameter privileges)
q -c 'GRANT SET ON PARAMETER billing.clock TO billing_clock_app'
out=$(psql -X -q -At -c 'SET ROLE billing_clock_app' -c "SET billing.clock = '2024-01-31 00:00+00'" \
	-c 'RESET ROLE' -c 'SELECT billing.now()' 2>&1)
[ "$out" = "2024-01-31 00:00:00+00" ] || fail "granted role: $out"

# a value with an unknown time zone is refused with 22007, not a crash
out=$(psql -X -q -At -c '\set VERBOSITY sqlstate' -c "LOAD 'billing'" -c "SET billing.clock = '2024-01-31 23:30 Foo/Bar'" 2>&1 || true)
[ "$out" = "ERROR:  22007" ] || fail "bad zone: $out"
# a one-word zone that is none, and a zone name with a date and time run into it
for v in '2024-01-31 23:30 Atlantis' '2024-01-31 23:30 Mars/Olympus_Mons' '20240131T2330 Foo/Bar'; do
	out=$(psql -X -q -At -c '\set VERBOSITY sqlstate' -c "LOAD 'billing'" -c "SET billing.clock = '$v'" 2>&1 || true)
	[ "$out" = "ERROR:  22007" ] || fail "bad zone in '$v': $out"
done
# a real zone, spelled in any case, is read as that zone
out=$(psql -X -q -At -c "SET billing.clock = '2024-01-31 23:30 europe/BERLIN'" -c "SET TimeZone = 'UTC'" -c 'SELECT billing.now()' 2>&1)
[ "$out" = "2024-01-31 22:30:00+00" ] || fail "zone in lower case: $out"

# stored for the database by a session that has not loaded billing: the next
# sessions warn, keep real time, and work
q -c "ALTER DATABASE \"$PGDATABASE\" SET billing.clock = '2024-01-31 23:30 Foo/Bar'"
for i in 1 2; do
	out=$(q -c "SELECT billing.now() = now(), billing.split('1.00 USD', 2)::text" 2>&1)
	echo "$out" | grep -q '^t|{"0.50 USD","0.50 USD"}$' || fail "session $i after bad database setting: $out"
done
q -c "ALTER DATABASE \"$PGDATABASE\" RESET billing.clock"

# the element type of split/allocate survives DROP and CREATE EXTENSION in one session
out=$(q -c "SELECT billing.split('1.00 USD', 2)" -c 'DROP EXTENSION billing' -c 'CREATE EXTENSION billing' \
	-c "SELECT billing.split('1.00 USD', 2)::text, billing.allocate('1.00 USD', '{1,3}')::text")
echo "$out" | tail -1 | grep -q '^{"0.50 USD","0.50 USD"}|{"0.25 USD","0.75 USD"}$' || fail "after re-create: $out"

q -c 'DROP OWNED BY billing_clock_app' -c 'DROP ROLE billing_clock_app'
echo ok
