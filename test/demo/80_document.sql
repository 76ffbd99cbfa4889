\echo
\echo '== 8. The invoice the customer receives'
\echo '   billing.invoice_document renders an invoice as HTML, text or JSON in the customer''s locale.'
\echo '   Anna''s February invoice (de-DE) as text: her lines, the credit note and her payment:'
SELECT invoice_document(invoice_id, 'text') AS document
FROM invoice WHERE account_id = :anna AND issue_date = '2026-02-01' AND billing_reason = 'subscription_cycle';
\echo '   The same invoice as HTML (a print-ready page with its own style sheet): its table of lines:'
WITH t AS (
    SELECT l, n FROM invoice, regexp_split_to_table(invoice_document(invoice_id, 'html'), E'\n') WITH ORDINALITY AS t(l, n)
    WHERE account_id = :anna AND issue_date = '2026-02-01' AND billing_reason = 'subscription_cycle')
SELECT string_agg(l, E'\n' ORDER BY n) AS html
FROM t WHERE n BETWEEN (SELECT min(n) FROM t WHERE l LIKE '<table class="lines">%')
                   AND (SELECT min(n) FROM t WHERE l LIKE '</tbody>%');

\echo
\echo '== 9. In production: pg_cron runs the cycle daily at 02:00 and dunning at 09:00 (GMT)'
RESET billing.clock;
SELECT job_name, schedule, command FROM schedule();
SELECT job_name FROM unschedule();
\echo '   (unscheduled again: this demo ran on the test clock.)'
