#!/bin/sh
# Renders an English and a Hebrew invoice with headless Chromium and checks
# the pictures (test/documents/render.sh).
set -eu
psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION billing'
out=$(mktemp -d)
sh "$(dirname "$0")/../documents/render.sh" "$out"
rm -rf "$out"
