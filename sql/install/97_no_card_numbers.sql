-- No card numbers in what billing stores (25_card_numbers.sql): every text
-- and jsonb column a caller can fill, through a function or directly,
-- carries a CHECK constraint <table>_no_card_number, written here once for
-- the install and the upgrade from 0.1.0 alike (DROP IF EXISTS first: the
-- DDL stays idempotent).  billing._no_card_number raises 23514 naming the
-- column and the number's last four digits, with a hint; a NULL column
-- passes.  A constraint, not a check in each function, so that no path
-- forgets it.
--
-- Left out on purpose: the columns billing composes itself from the ones
-- below (invoice and line descriptions but a one-off item's, numbers, ledger descriptions,
-- outbox payloads, the cycle and dunning logs) and enumerated ones (a
-- status, a method).  Invoices and their lines are the cycle's hot path;
-- what a caller puts there (void and write-off reasons, in metadata) is
-- checked, billing's own entries in metadata are not: the late-fee entry
-- holds an invoice number, a digit run of the entity's choosing.

ALTER TABLE billing.billing_entity DROP CONSTRAINT IF EXISTS billing_entity_no_card_number;
ALTER TABLE billing.billing_entity ADD CONSTRAINT billing_entity_no_card_number CHECK (
    billing._no_card_number(legal_name, 'billing.billing_entity.legal_name')
    AND billing._no_card_number(tax_id, 'billing.billing_entity.tax_id')
    AND billing._no_card_number(address, 'billing.billing_entity.address')
    AND billing._no_card_number(invoice_prefix, 'billing.billing_entity.invoice_prefix')
    AND billing._no_card_number(metadata, 'billing.billing_entity.metadata'));

ALTER TABLE billing.tax_rate DROP CONSTRAINT IF EXISTS tax_rate_no_card_number;
ALTER TABLE billing.tax_rate ADD CONSTRAINT tax_rate_no_card_number CHECK (
    billing._no_card_number(name, 'billing.tax_rate.name')
    AND billing._no_card_number(jurisdiction, 'billing.tax_rate.jurisdiction'));

ALTER TABLE billing.account DROP CONSTRAINT IF EXISTS account_no_card_number;
ALTER TABLE billing.account ADD CONSTRAINT account_no_card_number CHECK (
    billing._no_card_number(name, 'billing.account.name')
    AND billing._no_card_number(locale, 'billing.account.locale')
    AND billing._no_card_number(email, 'billing.account.email')
    AND billing._no_card_number(address, 'billing.account.address')
    AND billing._no_card_number(external_ref, 'billing.account.external_ref')
    AND billing._no_card_number(metadata, 'billing.account.metadata'));

ALTER TABLE billing.product DROP CONSTRAINT IF EXISTS product_no_card_number;
ALTER TABLE billing.product ADD CONSTRAINT product_no_card_number CHECK (
    billing._no_card_number(name, 'billing.product.name')
    AND billing._no_card_number(description, 'billing.product.description')
    AND billing._no_card_number(metadata, 'billing.product.metadata'));

ALTER TABLE billing.price DROP CONSTRAINT IF EXISTS price_no_card_number;
ALTER TABLE billing.price ADD CONSTRAINT price_no_card_number CHECK (
    billing._no_card_number(nickname, 'billing.price.nickname')
    AND billing._no_card_number(metadata, 'billing.price.metadata'));

ALTER TABLE billing.coupon DROP CONSTRAINT IF EXISTS coupon_no_card_number;
ALTER TABLE billing.coupon ADD CONSTRAINT coupon_no_card_number CHECK (
    billing._no_card_number(code, 'billing.coupon.code')
    AND billing._no_card_number(name, 'billing.coupon.name'));

ALTER TABLE billing.subscription DROP CONSTRAINT IF EXISTS subscription_no_card_number;
ALTER TABLE billing.subscription ADD CONSTRAINT subscription_no_card_number CHECK (
    billing._no_card_number(metadata, 'billing.subscription.metadata'));

ALTER TABLE billing.usage_event DROP CONSTRAINT IF EXISTS usage_event_no_card_number;
ALTER TABLE billing.usage_event ADD CONSTRAINT usage_event_no_card_number CHECK (
    billing._no_card_number(value, 'billing.usage_event.value')
    AND billing._no_card_number(idempotency_key, 'billing.usage_event.idempotency_key'));

ALTER TABLE billing.invoice DROP CONSTRAINT IF EXISTS invoice_no_card_number;
ALTER TABLE billing.invoice ADD CONSTRAINT invoice_no_card_number CHECK (
    billing._no_card_number(metadata - 'late_fee_for_number', 'billing.invoice.metadata'));

-- a one-off item's description is the caller's (billing.add_invoice_item);
-- the kind is tested first, so the cycle's lines cost no scan
ALTER TABLE billing.invoice_line DROP CONSTRAINT IF EXISTS invoice_line_no_card_number;
ALTER TABLE billing.invoice_line ADD CONSTRAINT invoice_line_no_card_number CHECK (
    kind <> 'one_off' OR billing._no_card_number(description, 'billing.invoice_line.description'));

ALTER TABLE billing.pending_item DROP CONSTRAINT IF EXISTS pending_item_no_card_number;
ALTER TABLE billing.pending_item ADD CONSTRAINT pending_item_no_card_number CHECK (
    kind <> 'one_off' OR billing._no_card_number(description, 'billing.pending_item.description'));

ALTER TABLE billing.ledger_account DROP CONSTRAINT IF EXISTS ledger_account_no_card_number;
ALTER TABLE billing.ledger_account ADD CONSTRAINT ledger_account_no_card_number CHECK (
    billing._no_card_number(code, 'billing.ledger_account.code')
    AND billing._no_card_number(name, 'billing.ledger_account.name')
    AND billing._no_card_number(description, 'billing.ledger_account.description'));

ALTER TABLE billing.payment DROP CONSTRAINT IF EXISTS payment_no_card_number;
ALTER TABLE billing.payment ADD CONSTRAINT payment_no_card_number CHECK (
    billing._no_card_number(reference, 'billing.payment.reference')
    AND billing._no_card_number(idempotency_key, 'billing.payment.idempotency_key'));

ALTER TABLE billing.refund DROP CONSTRAINT IF EXISTS refund_no_card_number;
ALTER TABLE billing.refund ADD CONSTRAINT refund_no_card_number CHECK (
    billing._no_card_number(reason, 'billing.refund.reason')
    AND billing._no_card_number(idempotency_key, 'billing.refund.idempotency_key'));

ALTER TABLE billing.credit_note DROP CONSTRAINT IF EXISTS credit_note_no_card_number;
ALTER TABLE billing.credit_note ADD CONSTRAINT credit_note_no_card_number CHECK (
    billing._no_card_number(reason, 'billing.credit_note.reason'));

ALTER TABLE billing.payment_method DROP CONSTRAINT IF EXISTS payment_method_no_card_number;
ALTER TABLE billing.payment_method ADD CONSTRAINT payment_method_no_card_number CHECK (
    billing._no_card_number(token, 'billing.payment_method.token'));

ALTER TABLE billing.collection_attempt DROP CONSTRAINT IF EXISTS collection_attempt_no_card_number;
ALTER TABLE billing.collection_attempt ADD CONSTRAINT collection_attempt_no_card_number CHECK (
    billing._no_card_number(worker, 'billing.collection_attempt.worker')
    AND billing._no_card_number(provider_reference, 'billing.collection_attempt.provider_reference')
    AND billing._no_card_number(failure_code, 'billing.collection_attempt.failure_code')
    AND billing._no_card_number(failure_message, 'billing.collection_attempt.failure_message'));

ALTER TABLE billing.dunning_policy DROP CONSTRAINT IF EXISTS dunning_policy_no_card_number;
ALTER TABLE billing.dunning_policy ADD CONSTRAINT dunning_policy_no_card_number CHECK (
    billing._no_card_number(name, 'billing.dunning_policy.name')
    AND billing._no_card_number(description, 'billing.dunning_policy.description'));

ALTER TABLE billing.dunning_step DROP CONSTRAINT IF EXISTS dunning_step_no_card_number;
ALTER TABLE billing.dunning_step ADD CONSTRAINT dunning_step_no_card_number CHECK (
    billing._no_card_number(name, 'billing.dunning_step.name'));

ALTER TABLE billing.dunning_case DROP CONSTRAINT IF EXISTS dunning_case_no_card_number;
ALTER TABLE billing.dunning_case ADD CONSTRAINT dunning_case_no_card_number CHECK (
    billing._no_card_number(close_reason, 'billing.dunning_case.close_reason'));

ALTER TABLE billing.document_label DROP CONSTRAINT IF EXISTS document_label_no_card_number;
ALTER TABLE billing.document_label ADD CONSTRAINT document_label_no_card_number CHECK (
    billing._no_card_number(key, 'billing.document_label.key')
    AND billing._no_card_number(label, 'billing.document_label.label'));

ALTER TABLE billing.role_binding DROP CONSTRAINT IF EXISTS role_binding_no_card_number;
ALTER TABLE billing.role_binding ADD CONSTRAINT role_binding_no_card_number CHECK (
    billing._no_card_number(role_name::text, 'billing.role_binding.role_name'));
