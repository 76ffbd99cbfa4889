#!/bin/sh
# test/documents/render.sh OUTDIR - builds two invoices (English, Hebrew)
# in the current database (PGDATABASE, extension created), renders their
# HTML with headless Chromium to OUTDIR/invoice-en.png and invoice-he.png,
# and checks the pictures.  Used by the scenario test and to refresh the
# README's pictures (docs/images).
set -eu
out=$1
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

q -f "$here/invoices.sql" > /dev/null
for lang in en he; do
	q -c "SELECT billing.invoice_document(invoice_id, 'html') FROM billing.invoice i
	      JOIN billing.account a USING (account_id) WHERE a.external_ref = 'doc-$lang'" > "$out/invoice-$lang.html"
	profile=$(mktemp -d)
	timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$profile" --hide-scrollbars --window-size=1000,1300 \
		--screenshot="$out/invoice-$lang.png" "file://$out/invoice-$lang.html" > "$profile.log" 2>&1 \
		|| { cat "$profile.log"; exit 1; }
	rm -rf "$profile" "$profile.log"
	# a PNG of the window's size with real content (a blank page is ~3 kB)
	[ "$(head -c 8 "$out/invoice-$lang.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] \
		|| { echo "invoice-$lang.png is not a PNG"; exit 1; }
	dims=$(od -An -tu1 -j16 -N8 "$out/invoice-$lang.png" | awk '{print $3*256+$4 "x" $7*256+$8}')
	[ "$dims" = "1000x1300" ] || { echo "invoice-$lang.png is $dims"; exit 1; }
	size=$(wc -c < "$out/invoice-$lang.png")
	[ "$size" -gt 20000 ] || { echo "invoice-$lang.png has only $size bytes"; exit 1; }
done
grep -q '<html lang="he-IL" dir="rtl">' "$out/invoice-he.html" || { echo "Hebrew invoice is not rtl"; exit 1; }
grep -q '<html lang="en-US" dir="ltr">' "$out/invoice-en.html" || { echo "English invoice is not ltr"; exit 1; }
grep -q '&lt;script&gt;' "$out/invoice-en.html" || { echo "customer name not escaped"; exit 1; }
if grep -q '<script>' "$out/invoice-en.html"; then echo "raw <script> in the page"; exit 1; fi
cmp -s "$out/invoice-en.png" "$out/invoice-he.png" && { echo "both pictures are the same"; exit 1; }
echo "rendered $out/invoice-en.png and $out/invoice-he.png"
