#!/bin/sh
# README's Installation and Getting started, run as pasted: every SQL block
# between "## Installation" and "## Invoicing", in order, in one
# psql session that stops at the first error; then the values the README's
# comments promise are checked against what the database holds.  pg_cron
# runs in the suite's own database only, so the two pg_cron lines (the
# extension and schedule(), which the pg_cron scenarios cover) are left
# out, and `shop` is this scenario's database.
set -eu
cd "$(dirname "$0")/../.."
fail() { echo "FAIL: $*"; exit 1; }
db=${PGDATABASE:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

awk '/^## Installation$/ { on = 1 } /^## Invoicing$/ { on = 0 }
     on && /^```sql$/ { inside = 1; next } inside && /^```$/ { inside = 0; next } on && inside { print }' README.md \
	| grep -v 'CREATE EXTENSION pg_cron;' | grep -v 'FROM schedule()' \
	| sed "s/ALTER DATABASE shop /ALTER DATABASE $db /" > "$tmp/readme.sql"
[ "$(grep -c 'create_billing_entity' "$tmp/readme.sql")" -ge 1 ] || fail "no Getting started SQL found in README.md"

psql -X -v ON_ERROR_STOP=1 -d "$db" -f "$tmp/readme.sql" > "$tmp/out" 2>&1 \
	|| { cat "$tmp/out"; fail "README's Getting started stops with an error"; }

# what the comments say, read back (the clock example moved time three
# months on, so its invoices are checked too)
got=$(psql -X -At -d "$db" -c "SELECT number || ' ' || total FROM billing.invoice ORDER BY invoice_id LIMIT 1")
[ "$got" = "INV-$(date -u +%Y)-000001 58.31 EUR" ] || fail "first invoice is '$got', README says INV-....-000001 58.31 EUR"
grep -q '{"33.34 USD","33.33 USD","33.33 USD"}' "$tmp/out" || fail "split prints otherwise than README says"
grep -q '1\.234,50.*€' "$tmp/out" || fail "format_amount prints otherwise than README says"
grep -q '21.29 USD' "$tmp/out" || fail "prorate prints otherwise than README says"
n=$(psql -X -At -d "$db" -c "SELECT count(*) FROM billing.invoice")
[ "$n" -ge 4 ] || fail "the clock example billed $n invoices, three months on should make at least 4"
echo "README Getting started: $(wc -l < "$tmp/readme.sql") lines of SQL ran, $n invoices"
