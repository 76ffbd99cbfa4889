\echo '== Anna''s February invoice as the customer reads it (billing.invoice_document, text; html and json too)'
SELECT invoice_document(invoice_id, 'text') AS document
FROM invoice WHERE account_id = :anna AND issue_date = '2026-02-01' LIMIT 1;
