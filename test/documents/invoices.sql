-- Two invoices for the document pictures: an English one in USD with tax
-- added, and a Hebrew one in ILS with VAT included.
SET search_path = public, billing;
SET billing.clock = '2026-03-01 09:00+00';
SELECT billing.create_billing_entity(
    legal_name => 'Northwind Networks Ltd', default_currency => 'USD', tax_id => 'US-98-7654321',
    address => E'500 Market Street\nSan Francisco, CA 94105',
    metadata => '{"payment_instructions": "Bank transfer to IBAN US00 NWND 0000 1234 5678, reference your invoice number."}')
    AS entity \gset
SELECT billing.create_tax_rate(name => 'Sales tax', percentage => 8.625) AS sales_tax \gset
SELECT billing.create_tax_rate(name => 'מע"מ', percentage => 17, inclusive => true) AS vat \gset
SELECT billing.create_account(entity_id => :entity, name => '<script>alert(1)</script> & Sons Inc.',
    currency => 'USD', locale => 'en-US', email => 'ap@example.com', external_ref => 'doc-en',
    tax_rate_id => :sales_tax, address => E'12 Harbor Road\nBoston, MA 02110') AS en \gset
SELECT billing.create_account(entity_id => :entity, name => 'דנה כהן בע"מ', currency => 'ILS',
    locale => 'he-IL', timezone => 'Asia/Jerusalem', email => 'dana@example.co.il', external_ref => 'doc-he',
    tax_rate_id => :vat, address => E'רחוב הרצל 10\nתל אביב') AS he \gset
SELECT billing.create_product(name => 'Fiber 1 Gbps') AS fiber \gset
SELECT billing.create_product(name => 'Static IP address') AS ip \gset
SELECT billing.create_product(name => 'סיב אופטי 1 ג׳יגה') AS fiber_he \gset
SELECT billing.create_price(product_id => :fiber, currency => 'USD', unit_amount => 79.99) AS fiber_usd \gset
SELECT billing.create_price(product_id => :ip, currency => 'USD', unit_amount => 4.50, scheme => 'per_unit') AS ip_usd \gset
SELECT billing.create_price(product_id => :fiber_he, currency => 'ILS', unit_amount => 129.90) AS fiber_ils \gset
SELECT billing.subscribe(account_id => :en,
    items => jsonb_build_array(jsonb_build_object('price_id', :fiber_usd),
                               jsonb_build_object('price_id', :ip_usd, 'quantity', 3))) AS sub_en \gset
SELECT billing.subscribe(account_id => :he, price_id => :fiber_ils) AS sub_he \gset
