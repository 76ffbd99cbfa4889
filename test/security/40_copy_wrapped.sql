-- Attack 4: billing's functions called inside COPY.
--
-- As atk_writer, each call runs once as a plain SELECT and once wrapped:
--   copy            COPY (SELECT billing.f(...)) TO STDOUT
--   copy_lowercase  the same in lower case after blanks
--   copy_then_call  COPY (SELECT 1) TO STDOUT; SELECT billing.f(...) sent as
--                   one query string, so the client's query text starts
--                   with COPY although the call is a plain SELECT
-- Each run is undone afterwards and the sequences set back, so both start
-- from the same rows and hand out the same ids.  Pass: every billing table
-- holds exactly the rows the plain call left (its invoice posted to the
-- ledger, its payment applied), and billing.check_invariants() finds
-- nothing after the wrapped call.  The database must never decide by the
-- text of the client's query.
\set ON_ERROR_STOP 1
\c - atk_writer
SELECT atk.id('A', 'account') AS a1, atk.id('A', 'account2') AS a2, atk.id('A', 'subscription2') AS sa2,
       atk.id('A', 'invoice') AS inva, atk.id('A', 'invoice2') AS inva2, atk.id('A', 'payment') AS paya,
       atk.id('A', 'price') AS pa, atk.id('A', 'price2') AS pa2 \gset

\set label subscribe
\set call 'SELECT billing.subscribe(' :a2 ', ' :pa ')'
\ir copy_wrapped_case.psql
\set label apply_payment
\set call 'SELECT billing.apply_payment(' :a1 ', ''5.00 USD'', ''card'')'
\ir copy_wrapped_case.psql
\set label change_subscription_prorate_now
\set call 'SELECT billing.change_subscription(' :a2 ', ' :sa2 ', price_id => ' :pa2 ', proration => ''prorate_now'')'
\ir copy_wrapped_case.psql
\set label cancel_subscription_now
\set call 'SELECT billing.cancel_subscription(' :a2 ', ' :sa2 ', at_period_end => false, prorate => true)'
\ir copy_wrapped_case.psql
\set label issue_credit_note
\set call 'SELECT billing.issue_credit_note(' :a1 ', ' :inva ', ''1.00 USD'')'
\ir copy_wrapped_case.psql
\set label refund_payment
\set call 'SELECT billing.refund_payment(' :a1 ', ' :paya ', ''1.00 USD'')'
\ir copy_wrapped_case.psql
\set label write_off_invoice
\set call 'SELECT billing.write_off_invoice(' :a2 ', ' :inva2 ')'
\ir copy_wrapped_case.psql
