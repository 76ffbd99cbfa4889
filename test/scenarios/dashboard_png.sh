#!/bin/sh
# Renders the finance dashboard (billing.dashboard_html) of a six-month
# world (test/dashboard/world.sql) with headless Chromium, in English and in
# Hebrew, and checks the pictures: PNGs of the window's size, not blank, not
# the same.  With DASHBOARD_PNG_DIR set, the English picture is copied there
# (docs/images/dashboard.png is made so).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -c 'CREATE EXTENSION billing CASCADE' > /dev/null
q -f "$here/dashboard/world.sql" > /dev/null
out=$(mktemp -d)
q -c "SET billing.clock = '2026-06-25 12:00+00'" -c "SELECT billing.dashboard_html(1, months => 6)" > "$out/dashboard-en.html"
q -c "SET billing.clock = '2026-06-25 12:00+00'" -c "SELECT billing.dashboard_html(1, months => 6, locale => 'he-IL')" > "$out/dashboard-he.html"
for lang in en he; do
	profile=$(mktemp -d)
	timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$profile" --hide-scrollbars --window-size=1000,1900 \
		--screenshot="$out/dashboard-$lang.png" "file://$out/dashboard-$lang.html" > "$profile.log" 2>&1 \
		|| { cat "$profile.log"; exit 1; }
	rm -rf "$profile" "$profile.log"
	[ "$(head -c 8 "$out/dashboard-$lang.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] \
		|| { echo "dashboard-$lang.png is not a PNG"; exit 1; }
	dims=$(od -An -tu1 -j16 -N8 "$out/dashboard-$lang.png" | awk '{print $3*256+$4 "x" $7*256+$8}')
	[ "$dims" = "1000x1900" ] || { echo "dashboard-$lang.png is $dims"; exit 1; }
	# a blank page of that size is a few kB; charts, tables and text are far more
	size=$(wc -c < "$out/dashboard-$lang.png")
	[ "$size" -gt 40000 ] || { echo "dashboard-$lang.png has only $size bytes"; exit 1; }
	echo "dashboard-$lang.png: $dims, $size bytes"
done
grep -q '<html lang="he-IL" dir="rtl">' "$out/dashboard-he.html" || { echo "Hebrew dashboard is not rtl"; exit 1; }
grep -q '&lt;script&gt;' "$out/dashboard-en.html" || { echo "customer name not escaped"; exit 1; }
if grep -q '<script' "$out/dashboard-en.html"; then echo "a script in the page"; exit 1; fi
if grep -q 'Hidden customer\|Other seller' "$out/dashboard-en.html"; then echo "the other seller shows"; exit 1; fi
[ "$(grep -o '<rect ' "$out/dashboard-en.html" | wc -l)" -ge 20 ] || { echo "too few bars"; exit 1; }
cmp -s "$out/dashboard-en.png" "$out/dashboard-he.png" && { echo "both pictures are the same"; exit 1; }
if [ -n "${DASHBOARD_PNG_DIR:-}" ]; then cp "$out/dashboard-en.png" "$DASHBOARD_PNG_DIR/dashboard.png"; fi
rm -rf "$out"
echo "dashboard rendered"
