"""The typed surface: ``mypy --strict`` over every docs code block and every example, and probes of what is typed.

Each doc's ```python blocks are checked as one module, in order, as tests/test_docs.py runs them (with
``allow-redefinition``: a doc reuses names from block to block); the examples as they are. Two probes run in the
same mypy call: one that must check clean (``assert_type`` of the native clients, webhook events, resumed
operations, gather, credentials mapping), one whose every line marked ``# E`` must be an error (a misspelt option).
mypy's cache lives in the temp dir, so a second run takes about a second.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import tempfile
from pathlib import Path

import pytest
from typing_extensions import get_overloads

import billkit
from billkit import ConfigurationError
from billkit.client import AsyncClient, Client, adapter_class
from tests.test_docs import FILES, ROOT, blocks

EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
CACHE = Path(tempfile.gettempdir()) / f"billkit-mypy-{sys.version_info[0]}{sys.version_info[1]}"

GOOD_PROBE = """
from __future__ import annotations

from typing_extensions import assert_type

import billkit
from billkit import Bill, BillkitError, BulkOperation, BulkResult, Operation
from billkit.flows import AsyncMode, SyncMode
from billkit.providers.accepteasy import AcceptEasyNative, PaidEvent
from billkit.providers.accepteasy.webhooks import WebhookEvent as AcceptEasyEvent
from billkit.providers.billcom import BillcomAsyncClient, BillcomNative
from billkit.providers.billcom.webhooks import WebhookEvent as BillcomEvent
from billkit.providers.facturapi import FacturapiAsyncClient, FacturapiClient, FacturapiNative
from billkit.providers.facturapi.wire import Invoice, WebhookEvent as FacturapiEvent


async def probe(body: bytes, headers: dict[str, str], name: str, token: str) -> None:
    async with billkit.AsyncClient("facturapi", api_key="sk_test_x") as fa:
        assert_type(fa, FacturapiAsyncClient)
        assert_type(fa.native, FacturapiNative[AsyncMode])
        assert_type(await fa.native.get_invoice("inv_1"), Invoice)
        assert_type(fa.verify_webhook(body, headers, "whsec"), FacturapiEvent)
        assert_type(await fa.resume(token, bulk=False), Operation[Bill])
        assert_type(await fa.resume(token, bulk=True), BulkOperation)
        assert_type(await fa.resume(token), Operation[Bill] | BulkOperation)
        assert_type(fa.with_options(retry=billkit.RetryPolicy.none()), FacturapiAsyncClient)
        assert_type(fa.with_options(timeout=5, headers={"x-trace": "1"}, idempotency_key="k"), FacturapiAsyncClient)
        raw = await fa.with_raw_response.create(Bill(reference="R"))
        assert_type(raw, billkit.RawResponse[Bill])
        assert_type(raw.parse(), Bill)
        assert_type(raw.parse().response, billkit.ResponseInfo | None)
        assert_type(raw.request_id, str | None)
        assert_type(raw.headers.get("x-facturapi-log-id"), str | None)
        assert_type((await fa.with_raw_response.submit(Bill(reference="S"))).parse(), Operation[Bill])
        assert_type((await fa.with_raw_response.submit_many([Bill(reference="T")])).parse(), BulkOperation)
        one = await fa.submit(Bill(reference="A"))
        many = await fa.submit_many([Bill(reference="B")])
        assert_type(await billkit.gather(one, many), list[Bill | BulkResult])
        assert_type(await billkit.gather(one, one, one), list[Bill])
        assert_type(await billkit.gather(one, return_exceptions=True), list[Bill | BillkitError])
    async with billkit.AsyncClient("accepteasy", key_name="k", key="s") as ae:
        assert_type(ae.native, AcceptEasyNative[AsyncMode])
        event = ae.verify_webhook(body, headers, "user:password")
        assert_type(event, AcceptEasyEvent)
        if isinstance(event, PaidEvent):  # the union narrows to one event
            assert_type(event, PaidEvent)
    async with billkit.AsyncClient("billcom", username="u", password="p", organization_id="o", dev_key="d") as bc:
        assert_type(bc, BillcomAsyncClient)
        assert_type(bc.native, BillcomNative[AsyncMode])
        assert_type(bc.verify_webhook(body, headers, "key"), BillcomEvent)
    # a provider named at run time: credentials as a mapping, the native client narrowed
    async with billkit.AsyncClient(name, credentials={"api_key": "sk_test_x"}) as any_client:
        native = any_client.native
        if isinstance(native, FacturapiNative):
            assert_type(await native.get_invoice("inv_1"), Invoice)
    generic: billkit.AsyncClient = fa  # a bare annotation still takes any provider's client
    assert generic is fa


def blocking(token: str) -> None:
    with billkit.Client("facturapi", sandbox=True) as fa:
        assert_type(fa, FacturapiClient)
        assert_type(fa.native, FacturapiNative[SyncMode])
        assert_type(fa.native.get_invoice("inv_1"), Invoice)
        assert_type(fa.resume(token, bulk=False).result(), Bill)
        assert_type(fa.resume(token, bulk=True).result(), BulkResult)
        assert_type(fa.with_raw_response.get("inv_1").status_code, int)
        assert_type(fa.with_raw_response.submit(Bill(reference="A")).parse().result(), Bill)
        one, many = fa.submit(Bill(reference="A")), fa.submit_many([Bill(reference="B")])
        assert_type(billkit.gather(one, many), list[Bill | BulkResult])
"""

BAD_PROBE = """
import billkit

billkit.Client("facturapi", api_kye="sk_test_x")  # E
billkit.AsyncClient("accepteasy", key_name="k", kye="s")  # E
billkit.AsyncClient("billcom", usename="u")  # E
billkit.Client("facturapi", retyr=billkit.RetryPolicy.none())  # E
billkit.Client("facturapi", sandbox=True, timeout="30")  # E
billkit.AsyncClient("facturapi", key="x")  # E
billkit.Client("some" + "name", api_key="x")  # E
billkit.Client("facturapi", sandbox=True).with_options(idempotency="k")  # E
billkit.Client("facturapi", sandbox=True).with_options(headers=[("x-a", "1")])  # E
"""


def _mypy(paths: list[Path]) -> str:
    from mypy import api

    out, err, _ = api.run(
        ["--config-file", str(ROOT / "pyproject.toml"), "--strict", "--cache-dir", str(CACHE),
         "--no-error-summary", "--show-error-codes", *map(str, paths)]
    )  # fmt: skip
    return out + err


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, list[str]]:
    """Errors per checked file (docs by their .md path), from one mypy run."""
    folder = tmp_path_factory.mktemp("typing")
    sources: dict[Path, Path] = {}
    for doc in FILES:
        code = blocks(doc)
        if code and any("import httpx2" in block for block in code) and importlib.util.find_spec("httpx2") is None:
            continue  # httpx2 (the billkit[httpx2] extra) needs Python 3.11+: its page is checked where it installs
        if code:
            name = re.sub(r"\W", "_", str(doc.relative_to(ROOT).with_suffix("")))
            module = folder / f"doc_{name}.py"
            module.write_text("# mypy: allow-redefinition\n" + "\n".join(code), encoding="utf-8")
            sources[module] = doc
    for probe, text in (("probe_good", GOOD_PROBE), ("probe_bad", BAD_PROBE)):
        (folder / f"{probe}.py").write_text(text, encoding="utf-8")
        sources[folder / f"{probe}.py"] = folder / f"{probe}.py"
    cwd = os.getcwd()
    os.chdir(ROOT)  # examples import their *_common helpers as top-level modules
    try:
        output = _mypy([*sources, *EXAMPLES])
    finally:
        os.chdir(cwd)
    found: dict[Path, list[str]] = {}
    for line in output.splitlines():
        path, sep, _ = line.partition(":")
        if not sep or ": error:" not in line:
            continue
        key = Path(path) if Path(path).is_absolute() else ROOT / path
        found.setdefault(sources.get(key, key), []).append(line)
    unexpected = [line for line in output.splitlines() if "error:" in line and ": error:" not in line]
    assert not unexpected, output
    return found


def _not_clean(found: dict[Path, list[str]], paths: list[Path]) -> str:
    errors = [line for path in paths for line in found.get(path, [])]
    return "\n".join(errors)


def test_docs_code_blocks_type_check(mypy_output: dict[Path, list[str]]) -> None:
    docs = [doc for doc in FILES if blocks(doc)]
    assert len(docs) >= 8
    errors = _not_clean(mypy_output, docs)
    assert not errors, f"mypy --strict over the docs' code blocks:\n{errors}"


def test_examples_type_check(mypy_output: dict[Path, list[str]]) -> None:
    errors = _not_clean(mypy_output, EXAMPLES)
    assert not errors, f"mypy --strict over examples/:\n{errors}"


def test_the_typed_surface_is_what_the_probe_says(mypy_output: dict[Path, list[str]]) -> None:
    good = [path for path in mypy_output if path.name == "probe_good.py"]
    assert not good, "\n".join(mypy_output[good[0]])


def test_a_misspelt_option_fails_the_type_check(mypy_output: dict[Path, list[str]]) -> None:
    bad = next((path for path in mypy_output if path.name == "probe_bad.py"), None)
    assert bad is not None, "the misspelt options type-checked"
    failing = {int(line.split(":")[1]) for line in mypy_output[bad]}
    marked = {n for n, line in enumerate(BAD_PROBE.splitlines(), 1) if line.endswith("# E")}
    assert failing == marked, "\n".join(mypy_output[bad])


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_each_providers_overload_takes_exactly_its_credentials(cls: type) -> None:
    by_provider: dict[str, set[str]] = {}
    for fn in get_overloads(vars(cls)["__init__"]):
        params = fn.__code__.co_varnames[: fn.__code__.co_argcount + fn.__code__.co_kwonlyargcount]
        provider = fn.__annotations__["provider"]
        names = set(params) - {"self", "provider", "credentials"}
        for literal in re.findall(r"""['"]([^'"]+)['"]""", provider):
            by_provider[literal] = names
    shipped = ("accepteasy", "billcom", "facturapi")
    assert set(by_provider) >= {*shipped, "bill", "bill.com"}
    for provider in shipped:
        assert by_provider[provider] == {c.name for c in adapter_class(provider).credentials}, provider


def test_public_methods_do_not_return_any() -> None:
    """Return annotations of the public names, read as written: none is ``Any`` (a parameter may be)."""
    leaks = []
    for name in billkit.__all__:
        obj = getattr(billkit, name)
        members = vars(obj).items() if isinstance(obj, type) else [(name, obj)]
        for attr, member in members:
            fn = member.fget if isinstance(member, property) else member
            if attr.startswith("_") and attr not in ("__await__", "__aenter__", "__enter__"):
                continue
            if not callable(fn):
                continue
            for one in get_overloads(fn) or [fn]:  # an overloaded function is typed by its overloads
                returns = getattr(one, "__annotations__", {}).get("return")
                if isinstance(returns, str) and re.search(r"\bAny\b", returns.replace("Generator[Any, ", "")):
                    leaks.append(f"{name}.{attr} -> {returns}")
    assert not leaks, leaks


# -- credentials as a mapping, for a provider named at run time ------------------------------------------------


def test_credentials_mapping_is_the_provider_agnostic_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACTURAPI_API_KEY", raising=False)
    provider = os.environ.get("BILLKIT_TEST_PROVIDER", "facturapi")  # a name from configuration: a plain str
    credentials = {"api_key": "sk_test_from_config"}
    with billkit.Client(provider, credentials=credentials) as client:
        assert client.provider == "facturapi"
        assert client._ctx.secret("api_key") == "sk_test_from_config"
        assert "sk_test_from_config" not in repr(client._ctx)
    with billkit.Client("billcom", credentials={"username": "u", "password": "p", "organization_id": "o"},
                        dev_key="d") as client:  # fmt: skip
        assert client._ctx.secret("dev_key") == "d" and client._ctx.secret("username") == "u"


def test_credentials_mapping_falls_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCEPTEASY_KEY", "from-env")
    with billkit.Client("accepteasy", credentials={"key_name": "name"}) as client:
        assert client._ctx.secret("key") == "from-env"


def test_credentials_mapping_refuses_what_the_keywords_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACTURAPI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="does not take api_kye"):
        billkit.Client("facturapi", credentials={"api_kye": "x"})
    with pytest.raises(ConfigurationError, match="does not take api_kye"):
        billkit.Client("facturapi", api_kye="x")  # type: ignore[call-overload]
    with pytest.raises(ConfigurationError, match="api_key given both"):
        billkit.Client("facturapi", api_key="a", credentials={"api_key": "b"})
    with pytest.raises(ConfigurationError, match="needs api_key"):
        billkit.Client("facturapi", credentials={})
    with pytest.raises(ConfigurationError, match="takes a mapping"):
        billkit.Client("facturapi", credentials=[("api_key", "x")])  # type: ignore[call-overload]


def test_resume_with_the_wrong_kind_raises_token_error() -> None:
    with billkit.Client("accepteasy", sandbox=True) as client:
        op = client.submit(billkit.Bill(reference="R-1", description="x", total=billkit.Money("1", "EUR")))
        bulk = client.submit_many([billkit.Bill(reference="R-2", description="x", total=billkit.Money("1", "EUR"))])
        assert isinstance(client.resume(op.token, bulk=False), billkit.BlockingOperation)
        assert isinstance(client.resume(bulk.token, bulk=True), billkit.BlockingBulkOperation)
        with pytest.raises(billkit.TokenError, match="expects a token of a bulk operation"):
            client.resume(op.token, bulk=True)
        with pytest.raises(billkit.TokenError, match="expects a token of a single operation"):
            client.resume(bulk.token, bulk=False)
