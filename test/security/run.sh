#!/bin/sh
# test/security/run.sh - the security attack suite (CONTRIBUTING.md,
# Security suite).  Run by test/cluster.sh inside a throwaway cluster, or
# alone against any cluster where the installed extension may be created
# (PGHOST, PGPORT, PGUSER a superuser, PGPASSWORD if it needs one).
#
# It creates the database security_attack, the attack roles (ordinary login
# roles, members of the roles billing.grant_roles creates) and two tenants
# with data (setup.sql), then runs each attack file test/security/NN_*.sql.
# The files log in as those roles and print one line per attack,
# "attack <name> ... ok" or "... FAILED" with what happened under it.  It
# prints the totals, appends "security <passed> <failed>" to $RESULTS when
# that is set, drops what it created (not with ATK_KEEP=1), and exits
# non-zero on any failure.
set -u
cd "$(dirname "$0")/../.."
DB=security_attack
SUPER=${PGUSER:-postgres}
LOGDIR=log/security
mkdir -p "$LOGDIR"
ROLES="atk_writer atk_writer_b atk_admin atk_canary atk_reader atk_operator"
GROUP_ROLES="atk_grp_writer atk_grp_operator atk_grp_reporting"

# The attack roles log in with a password (pg_virtualenv's cluster asks for
# one over TCP; a cluster that trusts local connections ignores it): one
# password file for them and the superuser, so every psql below finds its own.
PW=${ATK_PASSWORD:-atk-$$-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')}
PASSFILE=$(mktemp)
trap 'rm -f "$PASSFILE"' EXIT
chmod 600 "$PASSFILE"
for r in $ROLES; do echo "*:*:*:$r:$PW" >> "$PASSFILE"; done
[ -n "${PGPASSWORD:-}" ] && echo "*:*:*:$SUPER:$PGPASSWORD" >> "$PASSFILE"
# and the superuser's password where the caller keeps it
cat "${PGPASSFILE:-$HOME/.pgpass}" >> "$PASSFILE" 2>/dev/null
export PGPASSFILE="$PASSFILE"
unset PGPASSWORD PGDATABASE
# the test clock of every session (setup.sql moves it where it needs to):
# some days before the next cycle, so that upcoming_invoices has rows
export PGOPTIONS='-c billing.clock=2026-02-25\ 12:00+00'

su_psql() { psql -X -q -v ON_ERROR_STOP=1 -U "$SUPER" "$@"; }

cleanup() {
	su_psql -d postgres > "$LOGDIR/cleanup.out" 2>&1 <<-EOF
	SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname LIKE 'security_attack%' AND pid <> pg_backend_pid();
	$(for d in $DB ${DB}_base ${DB}_hijack ${DB}_scratch; do echo "DROP DATABASE IF EXISTS $d;"; done)
	DO \$\$
	DECLARE r text;
	BEGIN
	    FOREACH r IN ARRAY string_to_array('$ROLES $GROUP_ROLES', ' ') LOOP
	        IF EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
	            IF EXISTS (SELECT FROM pg_parameter_acl) THEN
	                EXECUTE format('REVOKE ALL ON PARAMETER billing.clock FROM %I', r);
	            END IF;
	            EXECUTE format('DROP ROLE %I', r);
	        END IF;
	    END LOOP;
	END \$\$;
	EOF
}

start=$(date +%s)
cleanup || { echo "security: could not drop what a previous run left (see $LOGDIR/cleanup.out)"; cat "$LOGDIR/cleanup.out"; }
su_psql -d postgres -c "CREATE DATABASE $DB" > "$LOGDIR/setup.out" 2>&1 &&
su_psql -d "$DB" -v pw="$PW" -v super="$SUPER" -f test/security/setup.sql >> "$LOGDIR/setup.out" 2>&1
setup=$?
# ATK_AFTER_SETUP=<file.sql>: run as the superuser after the setup, to
# plant a bug in the extension and see which attacks catch it
if [ $setup -eq 0 ] && [ -n "${ATK_AFTER_SETUP:-}" ]; then
	su_psql -d "$DB" -f "$ATK_AFTER_SETUP" >> "$LOGDIR/setup.out" 2>&1
	setup=$?
fi
if [ $setup -ne 0 ]; then
	echo "attack setup ... FAILED"; tail -30 "$LOGDIR/setup.out"
	[ -n "${RESULTS:-}" ] && echo "security 0 1" >> "$RESULTS"
	cleanup; exit 1
fi

ok=0; bad=0
for f in test/security/[0-9]*.sql; do
	[ -f "$f" ] || continue
	name=$(basename "$f" .sql)
	psql -X -q -At -v ON_ERROR_STOP=1 -v super="$SUPER" -v db="$DB" -U "$SUPER" -d "$DB" -f "$f" \
		> "$LOGDIR/$name.out" 2>&1
	rc=$?
	grep -E '^(attack |      )' "$LOGDIR/$name.out"
	n_ok=$(grep -cE '^attack .* \.\.\. ok$' "$LOGDIR/$name.out")
	n_bad=$(grep -cE '^attack .* \.\.\. FAILED$' "$LOGDIR/$name.out")
	if [ $rc -ne 0 ]; then
		# an attack file that stopped early may have skipped attacks
		echo "attack $name:ran_to_the_end ... FAILED"
		echo "      psql exited with $rc; the end of $LOGDIR/$name.out:"
		tail -8 "$LOGDIR/$name.out" | sed 's/^/      /'
		n_bad=$((n_bad + 1))
	fi
	ok=$((ok + n_ok)); bad=$((bad + n_bad))
done
# ATK_KEEP=1 keeps the database and the roles, to look at them afterwards
[ -n "${ATK_KEEP:-}" ] || cleanup
echo "security: $ok attacks passed, $bad failed ($(($(date +%s) - start)) s)"
[ -n "${RESULTS:-}" ] && echo "security $ok $bad" >> "$RESULTS"
[ "$bad" -eq 0 ] && [ "$ok" -gt 0 ]
