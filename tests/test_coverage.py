"""The coverage table of docs/fields.md ("Coverage: every operation") against the code.

Every row marked ``common`` or ``native`` names calls (``Client.<method>`` / ``native.<method>``) that must exist:
``Client`` and ``AsyncClient`` for the common ones, the provider's native class (``billkit.providers.<p>.client``,
its mixins included) for the native ones. Native calls whose parameters all have defaults are also made on the
in-process sandbox, where they must not raise ``UnsupportedFeatureError`` or ``NotImplementedError``. Every path and
method of Facturapi's OpenAPI file (``../shared/specs``, as in tests/providers/facturapi/test_spec.py; skipped when
it is absent) must have a row.
"""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

import billkit
from billkit.errors import BillkitError, UnsupportedFeatureError
from billkit.flows import Native

ROOT = Path(__file__).resolve().parent.parent
FIELDS = ROOT / "docs" / "fields.md"
SPEC = Path(__file__).resolve().parents[2] / "shared" / "specs" / "facturapi-openapi-v2.en.yaml"
PROVIDERS = ("accepteasy", "billcom", "facturapi")
HOWS = {"common", "native", "none"}
REASONS = ("not built", "not needed", "unverified", "out of scope")
SECTION = "## Coverage: every operation"
HEADING = re.compile(r"^### .*\(`([a-z]+)`\)\s*$")
CALL = re.compile(r"`(Client|native)\.([A-Za-z_][A-Za-z0-9_]*)`")
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Row:
    provider: str
    operation: str
    how: str
    calls: tuple[tuple[str, str], ...]
    note: str

    def __str__(self) -> str:
        return f"{self.provider}: {self.operation}"


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


@cache
def rows() -> tuple[Row, ...]:
    text = FIELDS.read_text(encoding="utf-8")
    assert SECTION in text, f"{FIELDS} has no {SECTION!r} section"
    found: list[Row] = []
    provider: str | None = None
    for line in text.split(SECTION, 1)[1].splitlines():
        if line.startswith("## "):
            break
        heading = HEADING.match(line)
        if heading:
            provider = heading.group(1)
            continue
        if provider is None or not line.startswith("|"):
            continue
        parts = cells(line)
        if len(parts) != 4:
            raise AssertionError(f"a coverage row needs 4 cells: {line!r}")
        operation, how, call, note = parts
        if operation == "operation" or set(operation) <= {"-"}:
            continue  # the header and the separator
        found.append(Row(provider, operation.strip("`"), how, tuple(CALL.findall(call)), note))
    return tuple(found)


def reachable() -> list[Row]:
    return [row for row in rows() if row.how != "none"]


@cache
def native_class(provider: str) -> type[Any]:
    module = importlib.import_module(f"billkit.providers.{provider}.client")
    classes = [
        obj
        for name, obj in vars(module).items()
        if name.endswith("Native") and inspect.isclass(obj) and issubclass(obj, Native) and obj is not Native
    ]
    assert len(classes) == 1, f"billkit.providers.{provider}.client: native classes {classes}"
    return classes[0]


def test_the_table_covers_every_provider() -> None:
    assert {row.provider for row in rows()} == set(PROVIDERS)
    for provider in PROVIDERS:
        mine = [row for row in rows() if row.provider == provider]
        assert any(row.how != "none" for row in mine), provider
        operations = [row.operation for row in mine]
        assert len(operations) == len(set(operations)), f"{provider}: an operation is listed twice"


@pytest.mark.parametrize("row", rows(), ids=str)
def test_row_is_well_formed(row: Row) -> None:
    assert row.how in HOWS, row.how
    if row.how == "none":
        assert not row.calls, "a row marked none names no call"
        assert row.note.startswith(REASONS), f"a row marked none says why ({' / '.join(REASONS)}): {row.note!r}"
    else:
        assert row.calls, "a reachable row names its billkit call"
        kinds = {kind for kind, _ in row.calls}
        assert ("Client" if row.how == "common" else "native") in kinds, f"{row.how} row without a {row.how} call"


def has_call(cls: type[Any], name: str) -> bool:
    """A method, or a native ``@operation`` / ``@stream`` (a descriptor whose ``flow`` is the method)."""
    attr = getattr(cls, name, None)
    return callable(attr) or callable(getattr(attr, "flow", None))


@pytest.mark.parametrize("row", reachable(), ids=str)
def test_reachable_calls_exist(row: Row) -> None:
    native = native_class(row.provider)
    for kind, name in row.calls:
        if kind == "Client":
            assert has_call(billkit.Client, name), f"Client.{name} does not exist"
            async_name = "aclose" if name == "close" else name  # AsyncClient closes with aclose
            assert has_call(billkit.AsyncClient, async_name), f"AsyncClient.{async_name} does not exist"
        else:
            assert has_call(native, name), f"{native.__name__}.{name} does not exist"


def simple_native_calls() -> list[tuple[str, str]]:
    """The native calls of reachable rows whose parameters all have defaults (callable with no arguments)."""
    seen: dict[tuple[str, str], None] = {}
    for row in reachable():
        for kind, name in row.calls:
            if kind != "native":
                continue
            method = getattr(native_class(row.provider), name)
            params = list(inspect.signature(getattr(method, "flow", method)).parameters.values())[1:]
            if all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
                seen[(row.provider, name)] = None
    return list(seen)


def test_some_native_calls_are_simple() -> None:
    assert {provider for provider, _ in simple_native_calls()} == set(PROVIDERS)


@pytest.mark.parametrize(("provider", "name"), simple_native_calls(), ids=lambda v: str(v))
def test_simple_native_calls_run_on_the_sandbox(provider: str, name: str) -> None:
    client: Any = billkit.Client(provider, sandbox=True)
    try:
        result = getattr(client.native, name)()
        if inspect.isgenerator(result):
            list(result)
    except (UnsupportedFeatureError, NotImplementedError):
        raise
    except BillkitError:
        pass  # the provider's own refusal (e.g. a missing setting) still means the call is there
    finally:
        client.close()


class _Loader(yaml.SafeLoader):
    """SafeLoader without the implicit timestamp resolver (as in tests/providers/facturapi/test_spec.py)."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@pytest.mark.skipif(not SPEC.exists(), reason=f"{SPEC} is not on this machine")
def test_every_facturapi_operation_of_the_spec_is_listed() -> None:
    with SPEC.open(encoding="utf-8") as fh:
        spec: dict[str, Any] = yaml.load(fh, Loader=_Loader)
    wanted = {f"{m.upper()} {path}" for path, item in spec["paths"].items() for m in item if m in METHODS}
    listed = {row.operation for row in rows() if row.provider == "facturapi"}
    assert not wanted - listed, f"spec operations missing from {FIELDS.name}: {sorted(wanted - listed)}"
    assert not {op for op in listed - wanted if op.split(" ", 1)[0] in {m.upper() for m in METHODS}}, (
        f"rows for operations the spec does not have: {sorted(listed - wanted)}"
    )
