"""BILL's vendors through the common model (``client.create_party``, ``get_party``, ``update_party``,
``delete_party``): thin translations onto the native client's flows, so every check and retry rule is the native one
(docs/fields.md, "Payments, credits and parties in the common model").

* ``create_party`` is ``native.create_vendor(party)`` (no idempotency key: a lost answer is settled by one listing,
  else :class:`~billkit.errors.OutcomeUnknownError`); ``get_party`` is ``GET /v3/vendors/{id}``;
  ``update_party`` is ``native.update_vendor`` (only the fields set; a lost answer settled by a read);
  ``delete_party`` is ``native.archive_vendor``: BILL has no DELETE for vendors, archiving is its documented soft
  delete (``restore_vendor`` undoes it), sent once.
* Payments and credits are not reachable: BILL's payments need MFA-trusted sessions (and mass payments are out of
  scope, provider notes section 8) and its notes document no credit document, so ``record_payment`` and
  ``create_credit`` keep the adapter's default (:class:`~billkit.errors.UnsupportedFeatureError`, nothing sent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from billkit.client import Adapter
from billkit.flows import Flow
from billkit.models import Party
from billkit.providers.billcom.mapping import PROVIDER, vendor_party
from billkit.providers.billcom.wire import VendorResponse

if TYPE_CHECKING:
    from billkit.flows import AsyncIO, SyncIO
    from billkit.providers.billcom.client import BillcomAdapter, BillcomNative

__all__ = ["BillcomCommonCalls"]


def _read(vendor: VendorResponse) -> Party:
    raw: dict[str, Any] = vendor.model_dump(mode="python", by_alias=True, exclude_unset=True)
    return vendor_party(vendor).read_from(PROVIDER, raw)


class BillcomCommonCalls(Adapter):
    """The common calls of :class:`~billkit.providers.billcom.client.BillcomAdapter` (mixed into it)."""

    def _view(self) -> BillcomNative[Any]:
        """The native client whose flows these calls run, as ``BillcomNative.<method>.flow(view, ...)`` on the
        driver of the client making the call (so the view is bound to none)."""
        view: BillcomNative[Any] | None = self.__dict__.get("_common_view")
        if view is None:
            from billkit.providers.billcom.client import BillcomNative

            view = BillcomNative(cast("BillcomAdapter", self), cast("AsyncIO | SyncIO", None))
            self.__dict__["_common_view"] = view
        return view

    def create_party(self, party: Party) -> Flow[Party]:
        from billkit.providers.billcom.client import BillcomNative

        return _read((yield from BillcomNative.create_vendor.flow(self._view(), party)))

    def get_party(self, party_id: str) -> Flow[Party]:
        from billkit.providers.billcom.client import BillcomNative

        return _read((yield from BillcomNative.get_vendor.flow(self._view(), party_id)))

    def update_party(self, party_id: str, changes: Party | Mapping[str, Any]) -> Flow[Party]:
        from billkit.providers.billcom.client import BillcomNative

        return _read((yield from BillcomNative.update_vendor.flow(self._view(), party_id, changes)))

    def delete_party(self, party_id: str) -> Flow[Party]:
        """BILL's soft delete: ``POST /v3/vendors/{id}/archive`` (the party reads ``archived`` in ``raw``)."""
        from billkit.providers.billcom.client import BillcomNative

        return _read((yield from BillcomNative.archive_vendor.flow(self._view(), party_id)))
