-- The card-number guard: billing never stores a payment card number.
-- Written once, in C (src/card_number.c over src/core/card_number.c): 13
-- to 19 Unicode decimal digits (any script) that pass the Luhn check, with
-- any non-alphanumeric characters between them (spaces of every kind, tabs,
-- dots, dashes, slashes, ...), also when other numbers of the same run stand
-- next to them (an expiry date).  Every text and jsonb column a caller can
-- fill carries a CHECK constraint named <table>_no_card_number that calls
-- billing._no_card_number on it, so no path can forget it: a function, a
-- direct INSERT by the owner, a restore.
--
-- STABLE, not IMMUTABLE: which characters are decimal digits is ICU's
-- Unicode data, which a library upgrade can extend; nothing may freeze it
-- into an index.  Each returns at once for a text with fewer than 13 digits
-- and for an empty jsonb object or array, what most rows carry.
--
-- Each table's constraint stands with the table, in its own file.
-- billing._no_card_number raises 23514 naming the column and the number's
-- last four digits, with a hint; a NULL column passes.  Left out on
-- purpose: the columns billing composes itself (invoice and line
-- descriptions but a one-off item's, numbers, ledger descriptions, outbox
-- payloads, the cycle and dunning logs) and enumerated ones (a status, a
-- method).  Invoices and their lines are the cycle's hot path; what a
-- caller puts there (void and write-off reasons, in metadata) is checked,
-- billing's own entries in metadata are not: the late-fee entry holds an
-- invoice number, a digit run of the entity's choosing.

CREATE FUNCTION billing.looks_like_card_number(value text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'looks_like_card_number_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing.looks_like_card_number(text) IS
    'true if the text holds 13 to 19 decimal digits of any script that pass the Luhn check, with any '
    'non-alphanumeric separators between them: such values are refused in every column billing stores';

CREATE FUNCTION billing.looks_like_card_number(value jsonb) RETURNS boolean
    AS 'MODULE_PATHNAME', 'looks_like_card_number_jsonb' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing.looks_like_card_number(jsonb) IS
    'true if any key, string or number of the jsonb value, at any depth, looks like a card number '
    '(billing.looks_like_card_number(text))';

-- What the CHECK constraints call: true, or the error 23514 naming the
-- field and the number's last four digits, with a hint.  STRICT: a NULL
-- column is no card number.
CREATE FUNCTION billing._no_card_number(value text, field text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'no_card_number_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing._no_card_number(text, text) IS
    'internal, for CHECK constraints: true, or raises 23514 when the text of field looks like a card number';

CREATE FUNCTION billing._no_card_number(value jsonb, field text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'no_card_number_jsonb' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing._no_card_number(jsonb, text) IS
    'internal, for CHECK constraints: true, or raises 23514 when a key or value of the jsonb field looks like a '
    'card number';
