-- Included (\i) by the pg_regress files in sql/: billing_test_error(query)
-- runs one statement and returns 'no error' or 'SQLSTATE: message', so each
-- bad input shows its SQLSTATE in the expected output.
CREATE OR REPLACE FUNCTION billing_test_error(query text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
