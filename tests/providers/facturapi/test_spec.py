"""The adapter against Facturapi's official OpenAPI file (``../shared/specs``; skipped when it is absent).

Request bodies are validated with jsonschema (Draft 2020-12, which OpenAPI 3.1 schemas are) against the schema the
body's ``type`` selects, ``InvoiceIngresoInput``, not the ``oneOf`` of ``InvoiceCreateInput``: that ``oneOf``
differs only by a discriminator, which jsonschema ignores, so every body would match all five options and fail.
``use`` (invoice) and ``unit_key`` (product) are dropped from ``required`` because the spec also gives them defaults
and Facturapi's own examples omit them (both known defects listed in the specs README).

Responses: the file has few whole-object examples, so each response schema's example is assembled from its
properties' own ``example`` values (as mock servers do) and parsed with the wire models.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import BaseModel

from billkit import Address, LineItem, Money, Party, Tax
from billkit.providers.facturapi.mapping import build_request, customer_input, error_from_response, to_bill
from billkit.providers.facturapi.webhooks import parse_event
from billkit.providers.facturapi.wire import Customer, ErrorBody, Invoice, SearchResult, WebhookEvent
from billkit.transport import Response, dumps

from .conftest import invoice, party

SPEC = Path(__file__).resolve().parents[4] / "shared" / "specs" / "facturapi-openapi-v2.en.yaml"
pytestmark = pytest.mark.skipif(not SPEC.exists(), reason=f"{SPEC} is not on this machine")
TODAY = dt.date(2026, 11, 24)


class _Loader(yaml.SafeLoader):
    """SafeLoader without the implicit timestamp resolver (bare example dates in the file are not all valid)."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@cache
def spec() -> dict[str, Any]:
    with SPEC.open(encoding="utf-8") as fh:
        loaded: dict[str, Any] = yaml.load(fh, Loader=_Loader)
    return loaded


def resolve(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def validator(schema_name: str, *, optional: dict[str, set[str]]) -> Any:
    from jsonschema import Draft202012Validator

    document = copy.deepcopy(spec())
    schemas = document["components"]["schemas"]
    for name, fields in optional.items():
        _drop_required(schemas[name], fields)
    return Draft202012Validator({"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]})


def _drop_required(node: Any, fields: set[str]) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("required"), list):
            node["required"] = [f for f in node["required"] if f not in fields]
        for value in node.values():
            _drop_required(value, fields)
    elif isinstance(node, list):
        for value in node:
            _drop_required(value, fields)


@cache
def invoice_validator() -> Any:
    return validator(
        "InvoiceIngresoInput", optional={"InvoiceIngresoInput": {"use"}, "ProductProperties": {"unit_key"}}
    )


def as_json(body: Any) -> Any:
    """The body exactly as it goes on the wire (billkit's exact Decimal JSON), read back with floats for jsonschema."""
    return json.loads(dumps(body))


BODIES = {
    "minimal": invoice(),
    "withholding and included IVA": invoice(
        line_items=(
            LineItem(
                description="Honorarios",
                quantity="2.5",
                unit_price=Money("1160.00", "MXN"),
                taxes=(Tax(type="IVA", rate="0.16", included=True), Tax(type="ISR", rate="0.10", withholding=True)),
                provider_options={"product_key": "80111600", "unit_key": "E48", "sku": "HON-1", "discount": "10"},
            ),
        )
    ),
    "no taxes": invoice(
        line_items=(
            LineItem(description="Libro", unit_price=Money("250", "MXN"), provider_options={"product_key": "55101500"}),
        )
    ),
    "dollars with exchange": invoice(currency="USD", provider_options={"exchange": Decimal("17.2345")}),
    "saved customer": invoice(counterparty=Party(provider_id="58e93bd8e86eb318b0197456")),
    "full address and options": invoice(
        counterparty=party(
            address=Address(postal_code="06600", line1="Av. Reforma", city="CDMX", region="CDMX", country="MX"),
            phone="5555555555",
            provider_options={"tax_system": "601", "exterior": "222", "neighborhood": "Juárez"},
        ),
        provider_options={
            "payment_method": "PPD",
            "payment_form": "99",
            "series": "F",
            "conditions": "30 días",
            "folio_number": 1201,
        },
        issue_date=dt.date(2026, 11, 23),
    ),
}


@pytest.mark.parametrize("name", sorted(BODIES))
def test_every_request_body_validates_against_the_income_schema(name: str) -> None:
    body = as_json(build_request(BODIES[name], today=TODAY).to_json())
    errors = sorted(invoice_validator().iter_errors(body), key=str)
    assert errors == [], "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    assert body["idempotency_key"].startswith("bk-")


def test_the_validator_does_reject_a_body_the_spec_forbids() -> None:
    body = as_json(build_request(invoice(), today=TODAY).to_json())
    body["payment_form"] = "003"  # maxLength 2
    del body["items"][0]["product"]["description"]
    found = {tuple(e.absolute_path) for e in invoice_validator().iter_errors(body)}
    assert ("payment_form",) in found
    assert any(path[:3] == ("items", 0, "product") for path in found)


def test_customer_body_validates_against_customer_create_input() -> None:
    check = validator("CustomerCreateInput", optional={})
    body = as_json(customer_input(party(phone="5555555555")).to_json())
    assert list(check.iter_errors(body)) == []


# -- responses -------------------------------------------------------------------------------------------


def example_of(schema: Any, depth: int = 0) -> Any:
    """An instance of ``schema`` assembled from the examples, defaults and enums it declares."""
    schema = resolve(schema)
    if not isinstance(schema, dict) or depth > 12:
        return None
    if "example" in schema:
        return schema["example"]
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            value = example_of(part, depth + 1)
            if isinstance(value, dict):
                merged.update(value)
        return merged
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return example_of(schema[key][0], depth + 1)
    if "properties" in schema:
        return {name: example_of(prop, depth + 1) for name, prop in schema["properties"].items()}
    if schema.get("type") == "array":
        item = example_of(schema.get("items"), depth + 1)
        return [] if item is None else [item]
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    return {"string": "text", "integer": 1, "number": 1, "boolean": True}.get(str(schema.get("type")))


MODELS: dict[str, type[BaseModel]] = {
    "Invoice": Invoice,
    "InvoiceDraft": Invoice,
    "InvoiceSearchResult": SearchResult,
    "Customer": Customer,
    "CustomerSearchResult": SearchResult,
    "GenericError": ErrorBody,
}


def response_examples() -> Iterator[tuple[str, str, Any]]:
    for path in ("/invoices", "/invoices/{invoice_id}", "/customers", "/customers/{customer_id}"):
        for method, op in spec()["paths"][path].items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            for status, answer in op["responses"].items():
                content = resolve(answer).get("content", {}).get("application/json")
                if content is None:
                    continue
                ref = content.get("schema", {}).get("$ref", "")
                name = ref.rsplit("/", 1)[-1] or ("Invoice" if path == "/invoices" else "")
                if "example" in content:
                    yield f"{method} {path} {status} (example)", name, content["example"]
                if name in MODELS:
                    yield f"{method} {path} {status}", name, example_of({"$ref": f"#/components/schemas/{name}"})


def test_every_response_example_parses_into_the_wire_models() -> None:
    seen = 0
    for label, name, example in response_examples():
        model = MODELS.get(name) or (ErrorBody if "message" in example else Invoice)
        parsed = model.model_validate(example)
        seen += 1
        if isinstance(parsed, Invoice):
            assert parsed.id == example.get("id"), label
            bill = to_bill(example)
            assert bill.provider_id == example.get("id") and bill.provider_status == example.get("status"), label
        elif isinstance(parsed, ErrorBody):
            err = error_from_response(Response(int(label.split()[2]), httpx.Headers(), json.dumps(example).encode()))
            assert err.message.startswith(str(example["message"])), label
        elif isinstance(parsed, SearchResult):
            assert len(parsed.data) == len(example.get("data") or []), label
        else:
            assert parsed.model_dump(exclude_none=True), label
    assert seen >= 40


def test_every_webhook_example_parses_into_an_event() -> None:
    hooks = spec()["x-webhooks"]
    seen = 0
    for name, hook in hooks.items():
        schema = hook["post"]["requestBody"]["content"]["application/json"]["schema"]
        example = example_of(schema)
        event = parse_event(json.dumps(example).encode())
        assert isinstance(event, WebhookEvent)
        assert event.type == example.get("type"), name
        seen += 1
    assert seen == len(hooks) >= 5


# -- query strings ------------------------------------------------------------------------------------------------


def _parameters(path: str) -> dict[str, Any]:
    params = {}
    for param in spec()["paths"][path]["get"]["parameters"]:
        param = resolve(param)
        params[param["name"]] = resolve(param.get("schema", {}))
    return params


def _check_query(path: str, query: dict[str, Any]) -> None:
    """Every parameter of ``query`` is one ``GET path`` declares, and its value validates against its schema (a
    date-time must be RFC 3339: with an offset). Values are strings on the wire; integers are read back."""
    from jsonschema import Draft202012Validator

    declared = _parameters(path)
    for name, value in query.items():
        if name.startswith("date["):
            schema = resolve(declared["date"])["properties"][name[5:-1]]
        else:
            assert name in declared, f"{name} is not a parameter of GET {path}"
            schema = declared[name]
        if schema.get("type") == "integer":
            value = int(value)
        errors = list(Draft202012Validator({**schema, "components": spec()["components"]}).iter_errors(value))
        assert not errors, (name, value, [e.message for e in errors])
        if schema.get("format") == "date-time":
            assert dt.datetime.fromisoformat(value).tzinfo is not None, (name, value)


QUERIES: dict[str, dict[str, Any]] = {
    "plain": {},
    "by reference": {"external_id": "FA-0001"},
    "every filter": {
        "q": "KEMPER", "customer": "58e93bd8e86eb318b0197456", "series": "F", "type": "I", "payment_method": "PPD",
        "payment_status": "unpaid", "issuer_type": "issuing", "folio_number": 12,
        "uuid": "39c85a3f-275b-4341-b259-e8971d9f8a94", "cancellation_status": ["pending", "accepted"],
        "date_from": dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
        "date_to": dt.datetime(2026, 12, 1, tzinfo=dt.timezone(dt.timedelta(hours=-6))),
    },
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(QUERIES))
@pytest.mark.anyio
async def test_every_invoice_search_the_adapter_sends_validates_against_the_spec(name: str) -> None:
    import billkit
    from billkit.providers.facturapi.sandbox import FacturapiSandbox

    box = FacturapiSandbox()
    async with billkit.AsyncClient("facturapi", sandbox=box) as client:
        await client.create(invoice())
        [item async for item in client.native.list_invoices(limit=50, **QUERIES[name])]
        [item async for item in client.native.list_customers("KEMPER")]
    searches = [r for r in box.requests if r.method == "GET" and r.path in ("/invoices", "/customers")]
    assert searches
    for request in searches:
        query: dict[str, Any] = dict(request.params)
        if "cancellation_status" in query:  # repeated keys on the wire: the recorded dict keeps the last one
            query["cancellation_status"] = [query["cancellation_status"]]
        _check_query(request.path, query)


@pytest.mark.anyio
async def test_the_email_and_cancel_requests_validate_against_the_spec() -> None:
    from jsonschema import Draft202012Validator

    import billkit
    from billkit.providers.facturapi.sandbox import FacturapiSandbox

    box = FacturapiSandbox()
    async with billkit.AsyncClient("facturapi", sandbox=box) as client:
        created = await client.create(invoice())
        assert created.provider_id is not None
        await client.native.send_by_email(created.provider_id, ["a@example.mx", "b@example.mx"])
        await client.native.send_by_email(created.provider_id, "c@example.mx")
        await client.native.cancel(created.provider_id, "02")
    operation = spec()["paths"]["/invoices/{invoice_id}/email"]["post"]
    schema = resolve(operation["requestBody"])["content"]["application/json"]["schema"]
    check = Draft202012Validator({**schema, "components": spec()["components"]})
    bodies = [r.body for r in box.received("POST") if r.path.endswith("/email")]
    assert len(bodies) == 2 and all(not list(check.iter_errors(as_json(b))) for b in bodies)
    deletes = {r.params["motive"] for r in box.received("DELETE")}
    params = {resolve(p)["name"]: resolve(p) for p in spec()["paths"]["/invoices/{invoice_id}"]["delete"]["parameters"]}
    assert deletes <= set(resolve(params["motive"]["schema"])["enum"])
