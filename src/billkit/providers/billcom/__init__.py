"""BILL (bill.com) v3: payable bills, sessions, all-or-nothing bulk, vendors.

Use it through ``billkit.AsyncClient("billcom", username=..., password=..., organization_id=..., dev_key=...)``
(or ``sandbox=True``); ``client.native`` is :class:`BillcomNative`. See ``docs/providers/billcom.md``.
"""

from billkit.providers.billcom.client import BillcomAdapter, BillcomNative, format_filters
from billkit.providers.billcom.mapping import (
    BillcomAPIError,
    BillcomBulkRejected,
    BillcomConcurrencyLimitError,
    BillcomError,
    BillcomRateLimitError,
    BillcomSessionError,
)
from billkit.providers.billcom.sandbox import (
    UNKNOWN_VENDOR,
    VENDOR_ACME,
    VENDOR_GLOBEX,
    VENDOR_INITECH,
    BillcomSandbox,
)

__all__ = [
    "UNKNOWN_VENDOR",
    "VENDOR_ACME",
    "VENDOR_GLOBEX",
    "VENDOR_INITECH",
    "BillcomAPIError",
    "BillcomAdapter",
    "BillcomBulkRejected",
    "BillcomConcurrencyLimitError",
    "BillcomError",
    "BillcomNative",
    "BillcomRateLimitError",
    "BillcomSandbox",
    "BillcomSessionError",
    "format_filters",
]
