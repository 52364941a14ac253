"""This month's invoices as one ZIP (a monthly ZIP request, waited for and downloaded), the organisation's folio
series, the PDF preview of an invoice that is not sent, and a webhook endpoint whose secret never shows.

Runs on the in-process sandbox by default (the ZIP is prepared on its virtual clock, so the wait takes no real
time); on Facturapi's API when FACTURAPI_API_KEY is set. ZIP requests and series need a live key (Facturapi answers
a test key with 402 / 401): the example then says so and goes on.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import anyio
from facturapi_common import invoice, live, make_client, run_id

from billkit.errors import AuthenticationError, PermissionDeniedError

MEXICO_CITY = dt.timezone(dt.timedelta(hours=-6))


async def main() -> None:
    async with make_client() as facturapi:
        native = facturapi.native
        # 1. two invoices this month, then the month as one ZIP (XML and PDF of each)
        for n in (1, 2):
            await facturapi.create(invoice(f"FA-{run_id()}-Z{n}"))
        today = dt.datetime.now(MEXICO_CITY)
        try:
            request = await native.create_zip_request(today.year, today.month, invoice_types=["I"])
            assert request.id is not None
            print(f"ZIP request {request.id}: {request.status}, {request.document_count} invoices")
            data = await native.wait_and_download_zip_request(request.id, timeout=1800)
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
            print(f"{today:%Y-%m}.zip: {len(data)} bytes, {len(names)} files, e.g. {names[0]}")
            assert len(names) >= 4
        except PermissionDeniedError as exc:
            print(f"ZIP requests need a live key with a subscription: {exc.code}")

        # 2. the organisation's series: create one, move its folio, make it the default for income invoices
        organization = await native.get_organization()
        print(f"organization {organization.id} ({organization.timezone})")
        name = f"EX{run_id()}"
        try:
            made = await native.create_series(name, next_folio=100, next_folio_test=1)
            print(f"series {made.series}: next folio {made.next_folio} (test {made.next_folio_test})")
            moved = await native.update_series(name, next_folio_test=50)
            print(f"series {moved.series}: next test folio now {moved.next_folio_test}")
            await native.set_default_series("I", name)
            print(f"series: {[s.series for s in await native.list_series()]}")
            await native.delete_series(name)
        except AuthenticationError as exc:
            print(f"the series need a live or user key: {exc.code}")

        # 3. what the PDF would look like, without stamping anything
        pdf = await native.preview_invoice_pdf(invoice(f"FA-{run_id()}-PREVIEW"))
        print(f"preview: {len(pdf)} bytes of PDF ({pdf[:8]!r}), nothing stamped")
        assert pdf.startswith(b"%PDF")

        # 4. a webhook endpoint: the secret signs the deliveries and never shows in a repr or a log
        hook = await native.create_webhook(
            f"https://hooks.example.com/facturapi/{run_id()}?token=keep-me-out-of-logs",
            ["invoice.status_updated", "invoice.cancellation_status_updated"],
        )
        print(f"webhook {hook.id}: {hook.state.value}, secret {hook.secret!r}")
        assert hook.secret is None or "keep" not in repr(hook.secret)
        hook = await native.update_webhook(str(hook.id), status="disabled")
        print(f"webhook {hook.id}: {hook.state.value}, events {hook.enabled_events}")
        await native.delete_webhook(str(hook.id))
        print("webhook deleted" + ("" if live() else " (sandbox)"))


if __name__ == "__main__":
    anyio.run(main)
