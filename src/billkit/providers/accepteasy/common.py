"""AcceptEasy's payments through the common model: ``client.record_payment`` marks an open bill paid, through the
native ``mark_paid`` (``PATCH /v2/Bill/{ATID}`` with ``Status: Paid``), so its rules are the native one: sent once
(AcceptEasy documents no idempotency for a PATCH; a lost answer is :class:`~billkit.errors.OutcomeUnknownError`,
read the bill to see whether it took).

What AcceptEasy documents ([SER] ``billPatch.md``, provider notes section 3): a PATCH "changes the status of an open
bill to cancelled, paid or expired". It has no amount, date or method, and no partial payment. So, checked before the
PATCH (after one safe read of the bill): ``amount`` must be the whole amount due, in EUR (less raises
:class:`~billkit.errors.UnsupportedFeatureError`, ``partial payments``; more or another currency
:class:`~billkit.errors.ValidationError`); the bill must read ``Open`` or ``CountDown`` (a ``Pending`` or ``Done``
bill has the payer's own payment under way: refused, not marked paid on top of it). ``paid_at``, ``method`` and any
``provider_options`` raise UnsupportedFeatureError before anything is sent. The status string ``Paid`` is the
documents' word; that AcceptEasy accepts exactly it is unverified (the native ``set_status`` says so).

Credits and parties are not reachable: AcceptEasy has no credit document and no customer resource (a payer is an
e-mail address or phone number on each bill), so they keep the adapter's default (UnsupportedFeatureError).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from billkit.client import Adapter
from billkit.errors import APIError, Problem, UnsupportedFeatureError, ValidationError
from billkit.flows import Flow
from billkit.models import Payment
from billkit.money import Money
from billkit.providers.accepteasy.mapping import CURRENCY, PROVIDER
from billkit.providers.accepteasy.wire import PatchResponse

if TYPE_CHECKING:
    from billkit.flows import AsyncIO, SyncIO
    from billkit.providers.accepteasy.client import AcceptEasyAdapter, AcceptEasyNative

__all__ = ["MARKABLE", "AcceptEasyCommonCalls"]

#: the bill statuses ``record_payment`` marks paid (open, nothing of the payer's own under way)
MARKABLE = frozenset({"Open", "CountDown"})


class AcceptEasyCommonCalls(Adapter):
    """The common calls of :class:`~billkit.providers.accepteasy.client.AcceptEasyAdapter` (mixed into it)."""

    def _view(self) -> AcceptEasyNative[Any]:
        """The native client whose flows these calls run, as ``AcceptEasyNative.<method>.flow(view, ...)`` on the
        driver of the client making the call (so the view is bound to none)."""
        view: AcceptEasyNative[Any] | None = self.__dict__.get("_common_view")
        if view is None:
            from billkit.providers.accepteasy.client import AcceptEasyNative

            view = AcceptEasyNative(cast("AcceptEasyAdapter", self), cast("AsyncIO | SyncIO", None))
            self.__dict__["_common_view"] = view
        return view

    def record_payment(
        self, bill_id: str, amount: Money, *, paid_at: dt.date | dt.datetime | None, method: str | None,
        options: Mapping[str, Any],
    ) -> Flow[Payment]:  # fmt: skip
        """Mark open bill ``bill_id`` paid for its whole amount (see the module docstring)."""
        why = "AcceptEasy's PATCH /v2/Bill/{ATID} sets the bill's status only"
        for name, value in (("paid_at", paid_at), ("method", method)):
            if value is not None:
                raise UnsupportedFeatureError(PROVIDER, name, why)
        if options:
            raise UnsupportedFeatureError(PROVIDER, f"provider_options.{sorted(options)[0]}", why)
        if amount.currency != CURRENCY:
            raise ValidationError([Problem("amount", f"{amount.currency}: AcceptEasy bills are in {CURRENCY}")],
                                  provider=PROVIDER)  # fmt: skip
        bill = yield from self.get(bill_id)
        if bill.provider_status not in MARKABLE:
            raise ValidationError([Problem("bill_id", f"bill {bill_id} is {bill.provider_status!r}: only an open "
                                           "bill (Open, CountDown) is marked paid")], provider=PROVIDER)  # fmt: skip
        due = bill.amount_due or bill.total
        if due is None:
            raise ValidationError([Problem("bill_id", f"bill {bill_id} has no amount to compare")], provider=PROVIDER)
        if amount.amount < due.amount:
            raise UnsupportedFeatureError(PROVIDER, "partial payments", f"AcceptEasy marks a bill paid whole; bill "
                                          f"{bill_id} has {due.amount} {due.currency} due")  # fmt: skip
        if amount.amount > due.amount:
            raise ValidationError([Problem("amount", f"{amount.amount} is more than the {due.amount} due on bill "
                                           f"{bill_id}")], provider=PROVIDER)  # fmt: skip
        from billkit.providers.accepteasy.client import AcceptEasyNative

        answer: PatchResponse = yield from AcceptEasyNative.mark_paid.flow(self._view(), bill_id)
        status = answer.Bill.Status if answer.Bill is not None else None
        if answer.Status not in (None, "Succeeded") or status not in (None, "Paid"):
            message = f"AcceptEasy answered the PATCH of bill {bill_id} with {answer.Status!r}, the bill {status!r}"
            raise APIError(message, provider=PROVIDER, raw=answer.model_dump(mode="python"))
        return Payment(
            provider=PROVIDER,
            bill_id=bill_id,
            amount=amount,
            balance_after=Money(due.amount - amount.amount, due.currency),
            raw=answer.model_dump(mode="python", exclude_unset=True),
        )
