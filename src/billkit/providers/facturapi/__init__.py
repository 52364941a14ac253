"""Facturapi v2 (Mexican CFDI invoices): adapter, wire models, mapping, sandbox and webhooks."""
