"""Facturapi's payments, credits and customers through the common model (``client.record_payment``,
``client.create_credit``, ``client.create_party`` ...): thin translations onto the native client's flows, so every
check and retry rule is the native one (docs/fields.md, "Payments, credits and parties in the common model").

* ``record_payment`` is :meth:`~billkit.providers.facturapi.lifecycle.FacturapiLifecycle.record_payment` (a payment
  complement, CFDI type P, of a PPD invoice): ``method`` is the SAT payment form (required), ``paid_at`` the
  payment's date; ``provider_options`` take the native keywords ``installment``, ``idempotency_key``, ``taxes``,
  ``operation_number``, ``external_id`` and ``series``. The balance, currency, installment and idempotency rules
  are the native ones.
* ``create_credit`` is ``create_credit_note`` with one item of ``amount``, taxes included: by default the taxes of
  the invoice's items (one safe read; they must agree), or ``provider_options["taxes"]``. The CFDI total of that
  item must be ``amount`` exactly (each tax rounded to cents), else it is refused before sending.
  ``provider_options``: ``relationship``, ``payment_form``, ``use``, ``idempotency_key``, ``external_id``,
  ``series``, ``taxes``, ``product_key``.
* parties are customers: ``create_customer``, ``get_customer``, ``update_customer``, ``delete_customer``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from billkit.client import Adapter
from billkit.errors import Problem, ValidationError
from billkit.flows import Flow
from billkit.models import Bill, LineItem, Party, Payment, Tax
from billkit.money import Money
from billkit.providers.facturapi.lifecycle import FacturapiLifecycle, _credit_item, credit_total
from billkit.providers.facturapi.mapping import PROVIDER, customer_party, to_bill
from billkit.providers.facturapi.wire import Customer, parse_datetime
from billkit.providers.facturapi.wire_lifecycle import InvoiceDetail

if TYPE_CHECKING:
    from billkit.flows import AsyncIO, SyncIO
    from billkit.providers.facturapi.client import FacturapiAdapter, FacturapiNative

__all__ = ["CREDIT_OPTIONS", "PAYMENT_OPTIONS", "FacturapiCommonCalls", "payment_of"]

#: the ``provider_options`` of ``record_payment``: the native call's keywords
PAYMENT_OPTIONS = frozenset({"installment", "idempotency_key", "taxes", "operation_number", "external_id", "series"})
#: the ``provider_options`` of ``create_credit``
CREDIT_OPTIONS = frozenset(
    {"relationship", "payment_form", "use", "idempotency_key", "external_id", "series", "taxes", "product_key"}
)
#: Party fields Facturapi's partial ``PUT /customers/{id}`` takes on their own (the others go as the whole customer)
_PARTIAL = {"name": "legal_name", "tax_id": "tax_id", "email": "email", "phone": "phone"}
_CENT = Decimal("0.01")


def _unknown(options: Mapping[str, Any], known: frozenset[str], call: str) -> list[Problem]:
    return [
        Problem(f"provider_options.{name}", f"not an option of Facturapi's {call} (one of {', '.join(sorted(known))})")
        for name in sorted(set(options) - known)
    ]


def _raw(model: Any) -> dict[str, Any]:
    raw: dict[str, Any] = model.model_dump(mode="python", exclude_unset=True)
    return raw


def payment_of(answer: InvoiceDetail, bill_id: str, amount: Money, method: str) -> Payment:
    """The common Payment of a payment complement the native ``record_payment`` returned: the balance after it from
    the one document it pays (``last_balance`` less ``amount``), the date it was paid from its ``pago`` data."""
    docs: list[Mapping[str, Any]] = []
    when: dt.datetime | None = None
    for complement in answer.complements or ():
        data = complement.get("data") if complement.get("type") == "pago" else None
        for pay in data if isinstance(data, list) else ():
            if not isinstance(pay, Mapping):
                continue
            if when is None and isinstance(pay.get("date"), str):
                when = parse_datetime(pay["date"])
            related = pay.get("related_documents")
            if isinstance(related, list):
                docs.extend(d for d in related if isinstance(d, Mapping))
    after: Money | None = None
    if len(docs) == 1:
        before, paid = docs[0].get("last_balance"), docs[0].get("amount")
        if isinstance(before, (int, Decimal)) and isinstance(paid, (int, Decimal)) and not isinstance(before, bool):
            after = Money((Decimal(before) - Decimal(paid)).quantize(_CENT), amount.currency)
    return Payment(
        provider=PROVIDER,
        bill_id=bill_id,
        amount=amount,
        provider_id=answer.id,
        paid_at=when or parse_datetime(answer.date),
        method=method,
        balance_after=after,
        raw=_raw(answer),
    )


def _read(customer: Customer) -> Party:
    return customer_party(customer).read_from(PROVIDER, _raw(customer))


#: the native calls' argument names -> the common calls' (a credit note's one item is the amount)
_CREDIT_NAMES = {"items[0].unit_price": "amount", "items": "amount", "items[0].description": "reason",
                 "items[0].provider_options.product_key": "provider_options.product_key",
                 "items[0].taxes": "provider_options.taxes"}  # fmt: skip
_PAYMENT_NAMES = {"date": "paid_at", "payment_form": "method",
                  **{name: f"provider_options.{name}" for name in PAYMENT_OPTIONS}}  # fmt: skip


def _renamed(exc: ValidationError, names: Mapping[str, str] = _CREDIT_NAMES) -> ValidationError:
    """A native refusal in the words of the common call's arguments."""
    problems = []
    for problem in exc.problems:
        field = names.get(problem.field, problem.field)
        if field.startswith("items[0].taxes"):
            field = "provider_options.taxes"
        problems.append(Problem(field, problem.message))
    return ValidationError(problems, provider=PROVIDER)


class FacturapiCommonCalls(Adapter):
    """The common calls of :class:`~billkit.providers.facturapi.client.FacturapiAdapter` (mixed into it)."""

    def _view(self) -> FacturapiNative[Any]:
        """The native client whose flows these calls run, as ``FacturapiNative.<method>.flow(view, ...)``: on the
        driver of the client that makes the call, so the view is bound to none (a native client keeps its driver
        only to run a method read from it, which these calls never do)."""
        view: FacturapiNative[Any] | None = self.__dict__.get("_common_view")
        if view is None:
            from billkit.providers.facturapi.client import FacturapiNative

            view = FacturapiNative(cast("FacturapiAdapter", self), cast("AsyncIO | SyncIO", None))
            self.__dict__["_common_view"] = view
        return view

    # -- payments ----------------------------------------------------------------------------------------------------
    def record_payment(
        self, bill_id: str, amount: Money, *, paid_at: dt.date | dt.datetime | None, method: str | None,
        options: Mapping[str, Any],
    ) -> Flow[Payment]:  # fmt: skip
        """A payment complement of PPD invoice ``bill_id`` (the native ``record_payment``)."""
        problems = _unknown(options, PAYMENT_OPTIONS, "record_payment")
        if method is None:
            problems.append(Problem("method", "required at Facturapi: the SAT payment form the payment came in "
                                              "('03' transfer, '28' debit card, ...)"))  # fmt: skip
        if problems:
            raise ValidationError(problems, provider=PROVIDER)
        assert method is not None
        try:
            answer: InvoiceDetail = yield from FacturapiLifecycle.record_payment.flow(
                self._view(), bill_id, amount=amount, payment_form=method, date=paid_at, **options
            )
        except ValidationError as exc:
            raise _renamed(exc, _PAYMENT_NAMES) from None
        return payment_of(answer, bill_id, amount, method)

    # -- credits -----------------------------------------------------------------------------------------------------
    def _credit_taxes(self, bill_id: str, options: Mapping[str, Any]) -> Flow[tuple[Tax, ...]]:
        given = options.get("taxes")
        if given is not None:
            if not isinstance(given, Sequence) or not all(isinstance(t, Tax) for t in given):
                raise ValidationError([Problem("provider_options.taxes", "a sequence of billkit.Tax")],
                                      provider=PROVIDER)  # fmt: skip
            return tuple(given)
        original = yield from self.get(bill_id)
        found = {tuple((t.type.upper(), t.rate, t.withholding) for t in item.taxes) for item in original.line_items}
        if len(found) != 1:
            why = "its items carry different taxes" if found else "billkit cannot read its items' taxes"
            raise ValidationError([Problem("provider_options.taxes", f"invoice {bill_id}: {why}; say which taxes the "
                                           "credit includes (a sequence of billkit.Tax)")],
                                  provider=PROVIDER)  # fmt: skip
        return tuple(Tax(type=kind, rate=rate, withholding=held) for kind, rate, held in found.pop())

    def create_credit(self, bill_id: str, amount: Money, *, reason: str | None,
                      options: Mapping[str, Any]) -> Flow[Bill]:  # fmt: skip
        """A credit note (CFDI type E) of ``amount``, taxes included, related to income invoice ``bill_id``."""
        problems = _unknown(options, CREDIT_OPTIONS, "create_credit")
        if problems:
            raise ValidationError(problems, provider=PROVIDER)
        taxes = yield from self._credit_taxes(bill_id, options)
        item = LineItem(
            description=reason or "Nota de crédito",
            unit_price=amount,
            taxes=tuple(t.model_copy(update={"included": not t.withholding}) for t in taxes),
            provider_options={"product_key": options["product_key"]} if "product_key" in options else {},
        )
        built = _credit_item(item, "items[0]", amount.currency, problems)
        if built is None:
            raise _renamed(ValidationError(problems, provider=PROVIDER))
        total = credit_total([built])
        if total != amount.amount:
            raise ValidationError([Problem("amount", f"with the taxes {', '.join(f'{t.type} {t.rate}' for t in taxes)}"
                                           f" included, a credit note of {amount.amount} totals {total} (each tax is "
                                           "rounded to cents): give an amount it can reach exactly")],
                                  provider=PROVIDER)  # fmt: skip
        keywords = {k: options[k] for k in CREDIT_OPTIONS - {"taxes", "product_key"} if k in options}
        try:
            answer: InvoiceDetail = yield from FacturapiLifecycle.create_credit_note.flow(
                self._view(), bill_id, [item], **keywords
            )
        except ValidationError as exc:
            raise _renamed(exc) from None
        return to_bill(_raw(answer))

    # -- parties: customers ------------------------------------------------------------------------------------------
    def create_party(self, party: Party) -> Flow[Party]:
        from billkit.providers.facturapi.client import FacturapiNative

        return _read((yield from FacturapiNative.create_customer.flow(self._view(), party)))

    def get_party(self, party_id: str) -> Flow[Party]:
        from billkit.providers.facturapi.client import FacturapiNative

        return _read((yield from FacturapiNative.get_customer.flow(self._view(), party_id)))

    def update_party(self, party_id: str, changes: Party | Mapping[str, Any]) -> Flow[Party]:
        """A Party setting only name / tax_id / email / phone changes only those (Facturapi's PUT is partial);
        one with an address or options is sent as the whole customer (the native rule); a mapping as it is."""
        body: Party | Mapping[str, Any] = changes
        if isinstance(changes, Party):
            if changes.provider_id and changes.provider_id != party_id:
                raise ValidationError([Problem("provider_id", f"the party is customer {changes.provider_id}, not "
                                               f"{party_id}")], provider=PROVIDER)  # fmt: skip
            chosen = changes.model_fields_set - {"provider_id"}
            if chosen and chosen <= _PARTIAL.keys():
                body = {_PARTIAL[name]: getattr(changes, name) for name in sorted(chosen)}
        answer = yield from FacturapiLifecycle.update_customer.flow(self._view(), party_id, body)
        return _read(answer)

    def delete_party(self, party_id: str) -> Flow[Party]:
        return _read((yield from FacturapiLifecycle.delete_customer.flow(self._view(), party_id)))
