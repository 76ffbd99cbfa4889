#!/bin/sh
# ALTER EXTENSION billing UPDATE from the previous release (0.1.0, frozen in
# src/sql/versions/) to the current one.  Installs 0.1.0, makes data in every
# table and runs a cycle, updates, and then proves:
#   1. the extension's objects equal those of a fresh install of the current
#      version (test/scenarios/_extension_catalog.psql, diffed), and the rows
#      a fresh install seeds (ledger accounts, document labels) are there;
#   2. every row of every table survived (the columns 0.1.0 had, digested
#      before and after; the document labels, which an update adds to, by
#      every row of before being there after);
#   3. billing works after it: a cycle, a payment, a refund, and
#      billing.check_invariants() empty.
# Run by test/cluster.sh with PGDATABASE set to a fresh database.
set -eu
cd "$(dirname "$0")"
OLD=$PGDATABASE
FRESH=${PGDATABASE}_fresh
PREV=0.1.0
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PSQL="psql -X -q -v ON_ERROR_STOP=1"
fail() { echo "FAILED: $*"; exit 1; }

CUR=$($PSQL -A -t -d "$OLD" -c "SELECT default_version FROM pg_available_extensions WHERE name = 'billing'")
[ "$CUR" != "$PREV" ] || fail "the current version is still $PREV"
echo "upgrade $PREV -> $CUR"

$PSQL -d "$OLD" -v prev="$PREV" <<'SQL' >/dev/null
CREATE EXTENSION billing VERSION :'prev';
SET search_path = public, billing;
SET billing.clock = '2024-01-01 12:00+00';
SELECT create_billing_entity('Upgrade GmbH', 'EUR');
SELECT create_tax_rate('VAT', 19);
SELECT create_account(1, 'Anna', tax_rate_id => 1), create_account(1, 'Bob', currency => 'USD'),
       create_account(1, 'Cleo', metadata => '{"address": "1 Old Road, Oldtown"}');
SELECT create_product('Plan');
SELECT create_price(1, 'EUR', 10.00, setup_fee => 5), create_price(1, 'USD', 0.01, scheme => 'per_unit', usage_type => 'metered');
SELECT create_coupon('HALF', 'once', percent_off => 50);
SELECT create_price(1, 'EUR', scheme => 'graduated', tiers => '[{"up_to": 5, "unit_amount": 2}, {"up_to": null, "unit_amount": 1}]');
SELECT subscribe(1, 1, coupon => 'HALF'), subscribe(2, 2), subscribe(3, 3, quantity => 7);
SELECT record_usage(2, 2, 123, 'u1', '2024-01-10 10:00+00');
SELECT add_payment_method(1, 'card', 'pm_upgrade'), set_early_payment_discount(2, 2, 10),
       set_collection_retry_days('{1,2}');
SET billing.clock = '2024-03-01 12:00+00';
CALL run_cycle();
SELECT apply_payment(2, '100.00 USD', 'bank_transfer', idempotency_key => 'upgrade-1') AS p \gset
SELECT refund_payment(2, :p, '1.00 USD');
SELECT issue_credit_note(1, (SELECT min(invoice_id) FROM invoice WHERE account_id = 1 AND status = 'open'),
                         '1.00 EUR', method => 'credit_balance');
SELECT create_installment_plan(1, (SELECT max(invoice_id) FROM invoice WHERE account_id = 1 AND status = 'open'), 2);
SELECT claim_collection_attempts('worker-1', 1);
DO $$ BEGIN
    IF (SELECT count(*) FROM billing.check_invariants()) > 0 THEN RAISE EXCEPTION 'FAILED invariants before the update'; END IF;
END $$;
SQL
[ "$($PSQL -A -t -d "$OLD" -c "SELECT extversion FROM pg_extension WHERE extname = 'billing'")" = "$PREV" ] \
	|| fail "CREATE EXTENSION billing VERSION '$PREV' did not install $PREV"

# The digest of every table and sequence, over the columns 0.1.0 has (an
# update may add columns and tables, and rename a column, which keeps its
# number): the columns are kept by number before, and each digest query is
# written from their names of the moment, before and after.
$PSQL -A -t -d "$OLD" -c "SELECT string_agg(c.relname || ':' || a.attnum, ',' ORDER BY c.relname, a.attnum)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = 'billing' AND c.relkind = 'r' AND c.relname <> 'document_label'" > "$TMP/columns"
$PSQL -A -t -d "$OLD" -c "SELECT string_agg(sequencename, ',') FROM pg_sequences WHERE schemaname = 'billing'" > "$TMP/sequences"
digest() {
	$PSQL -A -t -d "$OLD" -v columns="$(cat "$TMP/columns")" -v sequences="$(cat "$TMP/sequences")" > "$TMP/digest.sql" <<'SQL'
WITH k AS (SELECT split_part(x, ':', 1) AS rel, split_part(x, ':', 2)::int AS att
           FROM unnest(string_to_array(:'columns', ',')) x)
SELECT format('SELECT %L || '' '' || count(*) || '' '' || md5(coalesce(string_agg(t::text, E''\n'' ORDER BY t::text), '''')) FROM (SELECT %s FROM billing.%I) t;',
              c.relname, string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum), c.relname)
FROM k JOIN pg_class c ON c.relname = k.rel
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'billing'
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.att AND NOT a.attisdropped
GROUP BY c.relname ORDER BY c.relname;
SELECT format('SELECT ''seq %s '' || coalesce(last_value, 0) FROM pg_sequences WHERE schemaname = ''billing'' AND sequencename = %L;',
              sequencename, sequencename)
FROM pg_sequences WHERE schemaname = 'billing' AND sequencename = ANY (string_to_array(:'sequences', ','))
ORDER BY sequencename;
SQL
	$PSQL -A -t -d "$OLD" -f "$TMP/digest.sql"
}
digest > "$TMP/before"
labels="SELECT language || ' ' || key || ' ' || label FROM billing.document_label"
$PSQL -A -t -d "$OLD" -c "$labels" | sort > "$TMP/labels.before"
[ -s "$TMP/labels.before" ] || fail "no document labels before the update"
if grep -E '^[a-z_]+ 0 ' "$TMP/before"; then
	fail "a table above is empty before the update, so the test proves nothing for it"
fi

$PSQL -d "$OLD" -c "ALTER EXTENSION billing UPDATE"
[ "$($PSQL -A -t -d "$OLD" -c "SELECT extversion FROM pg_extension WHERE extname = 'billing'")" = "$CUR" ] \
	|| fail "ALTER EXTENSION billing UPDATE did not reach $CUR"

# 2. the data survived
digest > "$TMP/after"
diff "$TMP/before" "$TMP/after" || fail "rows changed in the update (< before, > after)"
$PSQL -A -t -d "$OLD" -c "$labels" | sort > "$TMP/labels.after"
if [ -n "$(comm -23 "$TMP/labels.before" "$TMP/labels.after")" ]; then
	comm -23 "$TMP/labels.before" "$TMP/labels.after"
	fail "document labels above were lost or changed in the update"
fi
echo "data: $(wc -l < "$TMP/before") tables and sequences, same rows"

# 1. the same objects as a fresh install
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $FRESH" -c "CREATE DATABASE $FRESH"
$PSQL -d "$FRESH" -c "CREATE EXTENSION billing"
$PSQL -d "$OLD" -f _extension_catalog.psql > "$TMP/updated.catalog"
$PSQL -d "$FRESH" -f _extension_catalog.psql > "$TMP/fresh.catalog"
[ "$(grep -c '^member ' "$TMP/fresh.catalog")" -gt 100 ] || fail "the catalog description lists no members"
if ! diff -u "$TMP/fresh.catalog" "$TMP/updated.catalog" > "$TMP/catalog.diff"; then
	cat "$TMP/catalog.diff"
	fail "the updated extension differs from a fresh $CUR install (- fresh, + updated): see CONTRIBUTING.md, Upgrades"
fi
echo "catalog: $(wc -l < "$TMP/fresh.catalog") facts, the same after the update as in a fresh install"

# ... and the rows a fresh install seeds
$PSQL -A -t -d "$FRESH" > "$TMP/seed.sql" <<'SQL'
SELECT format('SELECT %L || '' '' || t::text FROM (SELECT %s FROM billing.%I) t;', c.relname,
              string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum), c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = 'billing' AND c.relkind = 'r'
GROUP BY c.relname ORDER BY c.relname;
SQL
$PSQL -A -t -d "$FRESH" -f "$TMP/seed.sql" | sort > "$TMP/seed.fresh"
$PSQL -A -t -d "$OLD" -f "$TMP/seed.sql" | sort > "$TMP/seed.updated"
[ -s "$TMP/seed.fresh" ] || fail "a fresh install seeds no rows: the seed check proves nothing"
if [ -n "$(comm -23 "$TMP/seed.fresh" "$TMP/seed.updated")" ]; then
	comm -23 "$TMP/seed.fresh" "$TMP/seed.updated"
	fail "rows above are seeded by a fresh install but missing after the update"
fi
echo "seeded rows: $(wc -l < "$TMP/seed.fresh"), all present after the update"

# 3. billing works after the update
$PSQL -d "$OLD" <<'SQL' >/dev/null
SET search_path = public, billing;
SET billing.clock = '2024-04-01 12:00+00';
SELECT create_account(1, 'Dora');
SELECT subscribe(4, 1);
CALL run_cycle();
SELECT apply_payment(1, '5.00 EUR', 'cash', idempotency_key => 'upgrade-2') AS p \gset
SELECT refund_payment(1, :p, '1.00 EUR');
DO $$ BEGIN
    IF (SELECT status FROM billing.cycle_run ORDER BY cycle_run_id DESC LIMIT 1) <> 'done' THEN
        RAISE EXCEPTION 'FAILED the cycle after the update did not finish';
    END IF;
    IF (SELECT count(*) FROM billing.invoice WHERE account_id = 4) <> 1 THEN
        RAISE EXCEPTION 'FAILED the new subscription was not invoiced after the update';
    END IF;
    IF (SELECT count(*) FROM billing.invoice WHERE period_start = '2024-04-01') < 3 THEN
        RAISE EXCEPTION 'FAILED the old subscriptions were not billed for April after the update';
    END IF;
    IF (SELECT address FROM billing.account WHERE name = 'Cleo') IS DISTINCT FROM '1 Old Road, Oldtown' THEN
        RAISE EXCEPTION 'FAILED the address 0.1.0 kept in the account''s metadata is not its address column';
    END IF;
    IF (SELECT count(*) FROM billing.check_invariants()) > 0 THEN
        RAISE EXCEPTION 'FAILED invariants after the update: %',
            (SELECT string_agg(invariant || ': ' || detail, '; ') FROM billing.check_invariants());
    END IF;
END $$;
SQL
psql -X -q -d postgres -c "DROP DATABASE $FRESH"
echo "upgrade $PREV -> $CUR: same objects as a fresh install, same rows, billing goes on"
