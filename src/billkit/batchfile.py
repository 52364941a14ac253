"""Reading a bills file (CSV or JSON Lines) into :class:`~billkit.models.Bill` objects, row by row.

::

    from billkit.batchfile import read_bills

    for parsed in read_bills("march.csv", provider="facturapi"):
        if parsed.errors:
            print(*parsed.errors, sep="\\n")      # row 3, total: '12,50' is not an amount ...
        else:
            client.create(parsed.bill)

What it promises, for the batch runner and the CLI:

* **Every row accounted for**: one :class:`ParsedRow` per data row, in file order, with either a ``bill`` or its
  ``errors`` (every problem of the row, each naming the row and the column). Nothing in a row raises: a bad
  amount, a bad date, a missing required value or a model error (pydantic's, or a
  :class:`~billkit.errors.MoneyError`) becomes a :class:`RowError`.
* **A file that cannot be read at all raises** :class:`FileError` before any row is returned: no such file, empty
  or header only ("no rows"), binary or not UTF-8, a CSV record with more fields than the header, a header with a
  column that has no name, is unknown, is duplicated, or is missing though the provider requires it, and a JSONL
  file of which no line is a JSON object.
* **JSON Lines**: a line that is not a JSON object (or that has an unknown key) is a :class:`RowError` on that
  line (field ``""``, or the key): JSONL has no header, so one bad line does not condemn the others. Only a
  file where *no* line is an object is a :class:`FileError` (it is not JSONL).
* **Exact money**: amounts are read as text into ``Decimal`` (JSON numbers too: never through float), so
  ``"unit_price": 0.1`` is ``Decimal('0.1')``; ``total`` + ``currency`` make a :class:`~billkit.money.Money`,
  which refuses more decimals than the currency has (3 for EUR).
* **Row numbers**: CSV's header is row 0 and the first record after it row 1 (blank records are skipped but keep
  their number, so row N is record N after the header); JSONL rows are 1-based line numbers.

The per-provider rules checked here are only *which columns must have a value* (:data:`REQUIRED_COLUMNS`), so
that a file is refused before anything is sent; everything else (limits, ``provider_options`` names, currencies a
provider takes) is the adapter's, at submit time. The column reference is in docs/cli.md.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from billkit.errors import BillkitError, ConfigurationError, Problem, ValidationError
from billkit.models import Bill, Direction, LineItem
from billkit.money import MAX_DIGITS, Money, exponent, loads_decimal

__all__ = [
    "COLUMNS",
    "PARTY_OPTION_PREFIX",
    "PROVIDER_OPTION_PREFIX",
    "REQUIRED_COLUMNS",
    "FileError",
    "ParsedRow",
    "RowError",
    "read_bills",
]

#: the fixed columns (CSV header names, JSONL keys); besides them any number of ``provider_options.<name>`` and
#: ``counterparty.provider_options.<name>`` columns
COLUMNS: tuple[str, ...] = (
    "reference",
    "description",
    "counterparty_name",
    "counterparty_email",
    "counterparty_tax_id",
    "counterparty_id",
    "counterparty_zip",
    "total",
    "currency",
    "due_date",
    "issue_date",
    "line_items",
)
PROVIDER_OPTION_PREFIX = "provider_options."
PARTY_OPTION_PREFIX = "counterparty.provider_options."

#: the columns each provider needs a value in, on every row (a missing column is a FileError, an empty cell a
#: RowError); on top of these, for every provider, ``currency`` wherever ``total`` or ``line_items`` has a value,
#: and every provider here needs ``total`` or ``line_items``, so a currency alone is refused too
REQUIRED_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "accepteasy": ("reference", "description", "total", "currency", "counterparty_email"),
    "billcom": ("reference", "counterparty_id", "issue_date", "due_date", "line_items"),
    "facturapi": ("counterparty_name", "counterparty_tax_id", "counterparty_zip", "line_items"),
}

#: why a provider needs a column, said in the error
_WHY: Mapping[tuple[str, str], str] = {
    ("accepteasy", "reference"): "the payment reference (AcceptEasy's PaymentReference, at most 36 characters)",
    ("accepteasy", "description"): "AcceptEasy's Description (at most 32 characters)",
    ("accepteasy", "total"): "the amount to pay",
    ("accepteasy", "currency"): "the total's currency (EUR)",
    ("accepteasy", "counterparty_email"): "the payer's e-mail address, where the payment request goes",
    ("billcom", "reference"): "the invoice number",
    ("billcom", "counterparty_id"): "the BILL vendor id (vendorId, begins with 009)",
    ("billcom", "issue_date"): "the invoice date (YYYY-MM-DD)",
    ("billcom", "due_date"): "the due date (YYYY-MM-DD)",
    ("billcom", "line_items"): "a BILL bill is made of line items, whose sum is its amount (a total alone is not "
    'enough: write line_items=[{"description": "...", "unit_price": "100.00"}])',
    ("facturapi", "counterparty_name"): "the customer's legal name (without S.A. de C.V.)",
    ("facturapi", "counterparty_tax_id"): "the customer's RFC",
    ("facturapi", "counterparty_zip"): "the customer's fiscal postal code (5 digits)",
    ("facturapi", "line_items"): "the invoice's items (Facturapi computes the total from them)",
}

#: provider names as billkit.Client takes them
_ALIASES = {"bill": "billcom", "bill.com": "billcom"}
_SUFFIXES: Mapping[str, Literal["csv", "jsonl"]] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_AMOUNT = re.compile(r"^[+-]?\d+(\.\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LINE_KEYS = ("description", "quantity", "unit_price", "taxes", "provider_options")
_PARTY_COLUMNS = {
    "counterparty_name": "name",
    "counterparty_email": "email",
    "counterparty_tax_id": "tax_id",
    "counterparty_id": "provider_id",
}
#: a model's field path -> the column it came from (for errors the models raise)
_MODEL_PATHS = {
    "counterparty.name": "counterparty_name",
    "counterparty.email": "counterparty_email",
    "counterparty.tax_id": "counterparty_tax_id",
    "counterparty.provider_id": "counterparty_id",
    "counterparty.address.postal_code": "counterparty_zip",
    "counterparty.address": "counterparty_zip",
}


@dataclass(frozen=True)
class RowError:
    """One problem of one row: ``row`` (CSV: the header is row 0, the first data row 1; JSONL: the 1-based line),
    ``field`` (the column or key, a path such as ``line_items[0].unit_price``, or ``""`` for the whole row)."""

    row: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, {self.field}: {self.message}" if self.field else f"row {self.row}: {self.message}"


class FileError(ValidationError):
    """The whole file cannot be read. ``path`` names the file; ``column`` the column at fault (a header problem),
    ``row`` the record at fault (a broken CSV record); ``problems`` lists every problem found (each header
    problem with its column as ``field``)."""

    def __init__(self, path: str, problems: str | Sequence[Problem], *, row: int | None = None) -> None:
        found = [Problem("", problems)] if isinstance(problems, str) else list(problems)
        super().__init__(found)
        self.path = path
        self.row = row
        self.column: str | None = next((p.field for p in found if p.field), None)
        listed = "; ".join(f"column {p.field!r}: {p.message}" if p.field else p.message for p in found)
        self.message = f"{path}: {listed}"

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ParsedRow:
    """One data row: its number, and either the ``bill`` or the ``errors`` (never both)."""

    row: int
    bill: Bill | None
    errors: tuple[RowError, ...]


def read_bills(
    path: str | os.PathLike[str],
    *,
    provider: str,
    format: Literal["csv", "jsonl"] | None = None,
) -> list[ParsedRow]:
    """Every data row of the bills file at ``path``, parsed for ``provider``, in file order.

    ``format``: ``"csv"`` or ``"jsonl"``; None reads it from the extension (``.csv``; ``.jsonl`` / ``.ndjson``)
    or else from the content (a first non-blank character ``{`` is JSONL, anything else CSV).

    Raises :class:`~billkit.errors.ConfigurationError` for an unknown provider or format (before reading), and
    :class:`FileError` when the file cannot be read as a whole. A row's problems are in its :class:`ParsedRow`.
    """
    name = _provider(provider)
    if format not in (None, "csv", "jsonl"):
        raise ConfigurationError(f"format must be 'csv', 'jsonl' or None (from the file), not {format!r}")
    where = os.fspath(path)
    text = _read_text(where)
    kind = format or _SUFFIXES.get(Path(where).suffix.lower()) or _sniff(where, text)
    if kind == "csv":
        return _read_csv(where, text, name)
    return _read_jsonl(where, text, name)


def _provider(provider: str) -> str:
    if not isinstance(provider, str):
        raise ConfigurationError(f"a provider is named by a string, not {type(provider).__name__}")
    key = _ALIASES.get(provider.lower(), provider.lower())
    if key not in REQUIRED_COLUMNS:
        raise ConfigurationError(f"unknown provider {provider!r}; billkit knows {', '.join(sorted(REQUIRED_COLUMNS))}")
    return key


# -- the file as text -------------------------------------------------------------------------------------------


def _read_text(path: str) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise FileError(path, f"cannot be read: {exc.strerror or exc}") from exc
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileError(path, "not a CSV or JSONL file: it is UTF-16 text; save it as UTF-8")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise FileError(path, f"not a CSV or JSONL file: binary content (a NUL byte at offset {nul})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileError(
            path,
            f"not a CSV or JSONL file: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8",
        ) from None
    text = text.removeprefix("\ufeff")  # a byte order mark, as spreadsheets write
    if not text.strip():
        raise FileError(path, "no rows: the file is empty")
    return text


def _sniff(path: str, text: str) -> Literal["csv", "jsonl"]:
    first = text.lstrip()[:1]
    if first == "{":
        return "jsonl"
    if first == "[":
        raise FileError(path, "a JSON array is not JSON Lines: write one JSON object per line (or use CSV)")
    return "csv"


# -- CSV --------------------------------------------------------------------------------------------------------


def _read_csv(path: str, text: str, provider: str) -> list[ParsedRow]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    records: list[tuple[int, list[str]]] = []
    number = 0
    try:
        for cells in reader:
            if header is None:
                if not _blank(cells):
                    header = [c.strip() for c in cells]
                    _check_header(path, header, provider)
                continue
            number += 1
            if _blank(cells):
                continue
            if len(cells) > len(header):
                raise FileError(
                    path,
                    f"not a well-formed CSV file: row {number} has {len(cells)} fields but the header has "
                    f"{len(header)} columns (a value with a ',' that is not in quotes?)",
                    row=number,
                )
            records.append((number, cells))
    except csv.Error as exc:
        at = number + 1 if header is not None else 0
        raise FileError(path, f"not a well-formed CSV file: {exc} (line {reader.line_num})", row=at) from None
    if header is None or not records:
        raise FileError(path, "no rows: the file has a header but no data rows")
    out = []
    for number, cells in records:
        values: dict[str, Any] = {}
        options: dict[str, Any] = {}
        party_options: dict[str, Any] = {}
        for column, cell in zip(header, cells, strict=False):  # a short record's missing cells are empty
            value = cell.strip()
            if not value:
                continue  # an empty cell is absent
            if column.startswith(PARTY_OPTION_PREFIX):
                party_options[column[len(PARTY_OPTION_PREFIX) :]] = value
            elif column.startswith(PROVIDER_OPTION_PREFIX):
                options[column[len(PROVIDER_OPTION_PREFIX) :]] = value
            else:
                values[column] = value
        out.append(_row(number, values, options, party_options, provider, [], csv_cells=True))
    return out


def _blank(cells: Sequence[str]) -> bool:
    return all(not c.strip() for c in cells)


def _check_header(path: str, header: Sequence[str], provider: str) -> None:
    problems: list[Problem] = []
    seen: set[str] = set()
    for position, column in enumerate(header, 1):
        if not column:
            problems.append(Problem("", f"column {position} of the header has no name"))
        elif column in seen:
            problems.append(Problem(column, f"the header has it twice (column {position} repeats it)"))
        elif column.startswith((PROVIDER_OPTION_PREFIX, PARTY_OPTION_PREFIX)):
            prefix = PARTY_OPTION_PREFIX if column.startswith(PARTY_OPTION_PREFIX) else PROVIDER_OPTION_PREFIX
            if not column[len(prefix) :].strip():
                problems.append(Problem(column, f"an option column needs a name after {prefix!r}"))
            elif (unknown := _unknown_option(provider, prefix, column[len(prefix) :])) is not None:
                problems.append(Problem(column, unknown))
        elif column not in COLUMNS:
            problems.append(Problem(column, _unknown(column, csv_file=True)))
            if len(header) == 1 and (";" in column or "\t" in column):
                raise FileError(path, problems)  # another separator: the missing columns would only be noise
        seen.add(column)
    for column in REQUIRED_COLUMNS[provider]:
        if column not in seen:
            problems.append(Problem(column, f"missing; {provider} requires it: {_WHY[provider, column]}"))
    if problems:
        raise FileError(path, problems)


def _unknown_option(provider: str, prefix: str, name: str) -> str | None:
    """Why ``name`` is not an option the provider's adapter knows (a misspelt column), or None."""
    from billkit.client import adapter_class

    cls = adapter_class(provider)
    known = cls.party_option_names if prefix == PARTY_OPTION_PREFIX else cls.option_names
    if known is None or name in known:
        return None
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; it knows: {', '.join(sorted(known))}"
    return f"{cls.name} has no option {name!r}{hint}"


def _unknown(name: str, *, csv_file: bool) -> str:
    kind = "column" if csv_file else "key"
    message = f"unknown {kind}"
    for sep, word in ((";", "semicolons"), ("\t", "tabs")):
        if csv_file and sep in name:
            return f"{message}: this file seems separated by {word}; billkit reads comma-separated files"
    if name in ("provider_options", "counterparty.provider_options") and csv_file:
        return f"{message}: write one {name}.<name> column per option"
    close = difflib.get_close_matches(name, [*COLUMNS, "provider_options.<name>"], n=1, cutoff=0.6)
    if close:
        return f"{message} (did you mean {close[0]!r}?)"
    return f"{message}; known: {', '.join(COLUMNS)}, provider_options.<name>, counterparty.provider_options.<name>"


# -- JSON Lines -------------------------------------------------------------------------------------------------


def _read_jsonl(path: str, text: str, provider: str) -> list[ParsedRow]:
    out: list[ParsedRow] = []
    objects = 0
    for number, line in enumerate(text.split("\n"), 1):  # not splitlines(): U+2028 may sit inside a JSON string
        line = line.strip()
        if not line:
            continue
        try:
            data = _loads(line)
        except ValueError as exc:
            out.append(ParsedRow(number, None, (RowError(number, "", f"not a JSON object: {_json_reason(exc)}"),)))
            continue
        if not isinstance(data, dict):
            what = _json_type(data)
            out.append(ParsedRow(number, None, (RowError(number, "", f"expected a JSON object, got {what}"),)))
            continue
        objects += 1
        out.append(_json_row(number, data, provider))
    if not out:
        raise FileError(path, "no rows: the file has only blank lines")
    if not objects:
        first = next(e for r in out for e in r.errors)
        raise FileError(path, f"not a JSONL file: no line is a JSON object (line {first.row}: {first.message})")
    return out


def _json_row(number: int, data: Mapping[str, Any], provider: str) -> ParsedRow:
    errors: list[RowError] = []
    values: dict[str, Any] = {}
    options: dict[str, Any] = {}
    party_options: dict[str, Any] = {}
    for key, value in data.items():
        known = key in COLUMNS or key.startswith((PROVIDER_OPTION_PREFIX, PARTY_OPTION_PREFIX))
        if not known and key not in ("provider_options", "counterparty.provider_options"):
            errors.append(RowError(number, key, _unknown(key, csv_file=False)))
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            continue  # null and "" are absent, as an empty cell
        if key in ("provider_options", "counterparty.provider_options"):
            target = options if key == "provider_options" else party_options
            if not isinstance(value, dict):
                errors.append(RowError(number, key, f"expected a JSON object of options, got {_json_type(value)}"))
                continue
            for name, option in value.items():
                prefix = key + "."
                if not name.strip():
                    errors.append(RowError(number, key, "an option needs a name (the key is empty)"))
                elif (unknown := _unknown_option(provider, prefix, name)) is not None:
                    errors.append(RowError(number, f"{key}.{name}", unknown))
                elif name in target:
                    errors.append(RowError(number, f"{key}.{name}", "given twice (as a dotted key and nested)"))
                else:
                    target[name] = option  # nested values are kept as given
        elif key.startswith((PROVIDER_OPTION_PREFIX, PARTY_OPTION_PREFIX)):
            prefix = PARTY_OPTION_PREFIX if key.startswith(PARTY_OPTION_PREFIX) else PROVIDER_OPTION_PREFIX
            target = party_options if prefix == PARTY_OPTION_PREFIX else options
            name = key[len(prefix) :]
            if not name.strip():
                errors.append(RowError(number, key, f"an option key needs a name after {prefix!r}"))
            elif (unknown := _unknown_option(provider, prefix, name)) is not None:
                errors.append(RowError(number, key, unknown))
            elif name in target:
                errors.append(RowError(number, key, "given twice (as a dotted key and nested)"))
            else:
                target[name] = value.strip() if isinstance(value, str) else value
        else:
            values[key] = value
    return _row(number, values, options, party_options, provider, errors, csv_cells=False)


def _loads(line: str) -> Any:
    """JSON with every number as Decimal or int (never float), refusing NaN, huge exponents and repeated keys."""
    return loads_decimal(line, object_pairs_hook=_object)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} appears twice in one object")
        out[key] = value
    return out


def _json_reason(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON ({exc.msg} at column {exc.colno})"
    return str(exc)


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, Decimal)):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    return "null"


# -- one row -> a Bill ------------------------------------------------------------------------------------------


class _Row:
    """The problems of one row, each once per field."""

    def __init__(self, number: int, errors: list[RowError]) -> None:
        self.number = number
        self.errors = errors

    def add(self, field: str, message: str) -> None:
        if not self.failed(field):
            self.errors.append(RowError(self.number, field, message))

    def failed(self, field: str) -> bool:
        return any(e.field == field or e.field.startswith((f"{field}.", f"{field}[")) for e in self.errors)


def _row(
    number: int,
    values: Mapping[str, Any],
    options: dict[str, Any],
    party_options: dict[str, Any],
    provider: str,
    errors: list[RowError],
    *,
    csv_cells: bool,
) -> ParsedRow:
    row = _Row(number, errors)
    text = {k: _text(row, k, values.get(k)) for k in COLUMNS if k not in ("total", "line_items")}
    total = _amount(row, "total", values.get("total"))
    issue_date = _date(row, "issue_date", text["issue_date"])
    due_date = _date(row, "due_date", text["due_date"])
    currency = text["currency"]
    if currency is not None:
        try:
            exponent(currency.upper())
        except BillkitError as exc:
            row.add("currency", exc.message)
    raw_lines = values.get("line_items")
    if csv_cells and isinstance(raw_lines, str):
        try:
            raw_lines = _loads(raw_lines)
        except ValueError as exc:
            row.add("line_items", f"not a JSON array of line items: {_json_reason(exc)}")
    raw_items: list[Any] = []
    if raw_lines is not None and not row.failed("line_items"):
        if isinstance(raw_lines, list):
            raw_items = raw_lines
        else:
            row.add("line_items", f"expected a JSON array of line item objects, got {_json_type(raw_lines)}")

    present = {k for k, v in text.items() if v is not None}
    if total is not None or "total" in values:
        present.add("total")
    if raw_items or row.failed("line_items"):
        present.add("line_items")
    for column in REQUIRED_COLUMNS[provider]:
        if column not in present:
            row.add(column, f"required by {provider}: {_WHY[provider, column]}")
    if currency is None and {"total", "line_items"} & present:
        what = "total: the total's" if "total" in present else "line_items: the unit prices'"
        row.add("currency", f"required with {what} currency, an ISO 4217 code such as EUR")

    usable_currency = currency.upper() if currency is not None and not row.failed("currency") else None
    money: Money | None = None
    if total is not None and usable_currency is not None:
        money = _money(row, "total", total, usable_currency)
    items = [_line_item(row, i, raw, usable_currency) for i, raw in enumerate(raw_items)]

    if row.errors:
        return ParsedRow(number, None, tuple(row.errors))
    party: dict[str, Any] = {field: text[column] for column, field in _PARTY_COLUMNS.items() if text[column]}
    if text["counterparty_zip"]:
        party["address"] = {"postal_code": text["counterparty_zip"]}
    if party_options:
        party["provider_options"] = party_options
    fields: dict[str, Any] = {k: text[k] for k in ("reference", "description") if text[k] is not None}
    fields.update(
        {k: v for k, v in (("issue_date", issue_date), ("due_date", due_date), ("total", money)) if v is not None}
    )
    if provider == "billcom":
        fields["direction"] = Direction.PAYABLE  # BILL's bills are payables; the others' receivables
    if items:
        fields["line_items"] = tuple(items)
    if options:
        fields["provider_options"] = options
    if party:
        fields["counterparty"] = party  # validated with the bill, so its errors carry counterparty.<field>
    try:
        bill = Bill(**fields)
    except (ValidationError, ValueError, TypeError) as exc:
        for field, message in _problems(exc):
            row.add(_column_of(field), message)
        return ParsedRow(number, None, tuple(row.errors))
    return ParsedRow(number, bill, ())


def _text(row: _Row, column: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        row.add(column, f"expected a string (in quotes), got {_json_type(value)}")
        return None
    return value.strip() or None


def _amount(row: _Row, field: str, value: Any) -> Decimal | None:
    """A decimal from text (``1234.50``: digits, a '.' before the decimals) or a JSON number; never a float."""
    if value is None:
        return None
    if isinstance(value, Decimal) or (isinstance(value, int) and not isinstance(value, bool)):
        amount = Decimal(value)
    elif isinstance(value, str) and _AMOUNT.match(value.strip()):
        amount = Decimal(value.strip())
    elif isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+,\d+", text):
            how = f"write a '.' before the decimals, not a ',' ({text.replace(',', '.')})"
        else:
            how = "write digits with a '.' before the decimals, no thousands separator or currency sign, e.g. 1234.50"
        row.add(field, f"{text!r} is not an amount: {how}")
        return None
    else:
        row.add(field, f'expected an amount such as "1234.50", got {_json_type(value)}')
        return None
    exp = amount.as_tuple().exponent
    if isinstance(exp, int) and exp > 0 and amount.adjusted() < MAX_DIGITS:  # 1E+2 from JSON is 100
        amount = amount.quantize(Decimal(1))
    return amount


def _money(row: _Row, field: str, amount: Decimal, currency: str) -> Money | None:
    try:
        return Money(amount, currency)
    except BillkitError as exc:
        row.add(field, _strip_field(exc.message, "amount"))
        return None


def _date(row: _Row, column: str, value: str | None) -> dt.date | None:
    if value is None:
        return None
    if _DATE.match(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:
            row.add(column, f"{value!r} is not a date: {exc}")
            return None
    row.add(column, f"{value!r} is not a date: write it as YYYY-MM-DD, e.g. 2027-01-31")
    return None


def _line_item(row: _Row, index: int, raw: Any, currency: str | None) -> LineItem | None:
    where = f"line_items[{index}]"
    if not isinstance(raw, dict):
        row.add(where, f"expected a line item object, got {_json_type(raw)}")
        return None
    for key in raw:
        if key not in _LINE_KEYS:
            row.add(f"{where}.{key}", f"unknown key; a line item has {', '.join(_LINE_KEYS)}")
    description = raw.get("description")
    if description is None:
        row.add(f"{where}.description", "required: what the line is for")
    elif not isinstance(description, str):
        row.add(f"{where}.description", f"expected a string, got {_json_type(description)}")
    price = raw.get("unit_price")
    amount = None
    if price is None:
        row.add(f"{where}.unit_price", "required: the price of one unit, in the row's currency")
    else:
        amount = _amount(row, f"{where}.unit_price", price)
    unit_price = _money(row, f"{where}.unit_price", amount, currency) if amount is not None and currency else None
    taxes = raw.get("taxes", [])
    if taxes is None:
        taxes = []
    if not isinstance(taxes, list):
        row.add(f"{where}.taxes", f"expected an array of tax objects, got {_json_type(taxes)}")
    options = raw.get("provider_options", {})
    if options is None:
        options = {}
    if not isinstance(options, dict):
        row.add(f"{where}.provider_options", f"expected an object of options, got {_json_type(options)}")
    elif any(not k.strip() for k in options):
        row.add(f"{where}.provider_options", "an option needs a name (the key is empty)")
    if unit_price is None or not isinstance(description, str):
        return None
    # built even when the line has another problem (an unknown key), so that its other problems are listed too
    fields: dict[str, Any] = {"description": description, "unit_price": unit_price, "taxes": taxes}
    if raw.get("quantity") is not None:
        fields["quantity"] = raw["quantity"]
    if options:
        fields["provider_options"] = options
    failed = row.failed(where)
    try:
        item = LineItem(**fields)
    except (ValidationError, ValueError, TypeError) as exc:
        for field, message in _problems(exc):
            row.add(f"{where}.{_brackets(field)}" if field and field != "LineItem" else where, message)
        return None
    return None if failed else item


def _problems(exc: Exception) -> list[tuple[str, str]]:
    """(field path, message) of a model error, the message without a repeat of the field's name."""
    if isinstance(exc, ValidationError) and exc.problems:
        out = []
        for problem in exc.problems:
            last = re.split(r"[.\[]", problem.field)[-1] if problem.field else ""
            out.append((problem.field, _strip_field(problem.message, last)))
        return out
    return [("", str(exc))]


def _strip_field(message: str, name: str) -> str:
    return message[len(name) + 2 :] if name and message.startswith(f"{name}: ") else message


def _brackets(path: str) -> str:
    """``taxes.0.rate`` -> ``taxes[0].rate`` (pydantic's locations in the file's notation)."""
    out = ""
    for part in path.split("."):
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def _column_of(field: str) -> str:
    """The column a Bill field path came from (``counterparty.address.postal_code`` -> ``counterparty_zip``)."""
    if field in _MODEL_PATHS:
        return _MODEL_PATHS[field]
    if field in ("", "Bill"):
        return ""
    return _brackets(field)
