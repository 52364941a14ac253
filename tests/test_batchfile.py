"""Reading bills files: the shipped examples parse and create on each sandbox, and every bad file or row is refused
with an error naming the file, the row and the field."""

from __future__ import annotations

import pickle
from decimal import Decimal
from pathlib import Path

import pytest

import billkit
from billkit import BillStatus, ConfigurationError, Direction, Money, ValidationError
from billkit.batchfile import REQUIRED_COLUMNS, FileError, ParsedRow, RowError, read_bills
from billkit.providers.billcom.sandbox import VENDOR_ACME, VENDOR_GLOBEX, VENDOR_INITECH

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "data"
AE_HEADER = "reference,description,counterparty_email,total,currency\n"


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def only_error(parsed: ParsedRow) -> RowError:
    assert parsed.bill is None
    assert len(parsed.errors) == 1, parsed.errors
    return parsed.errors[0]


# -- the examples ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", sorted(REQUIRED_COLUMNS))
def test_every_example_row_is_a_bill_that_the_providers_sandbox_creates(provider: str) -> None:
    rows = read_bills(EXAMPLES / f"{provider}.csv", provider=provider)
    assert len(rows) >= 20
    assert [r.row for r in rows] == list(range(1, len(rows) + 1))
    for parsed in rows:
        assert parsed.errors == ()
        assert parsed.bill is not None
        with billkit.Client(provider, sandbox=True) as client:
            created = client.create(parsed.bill)
        assert created.provider == provider
        assert created.provider_id
        assert created.status is BillStatus.OPEN, (parsed.row, created.provider_status)
        assert created.reference == parsed.bill.reference


def test_the_accepteasy_example_reads_as_written() -> None:
    first = read_bills(EXAMPLES / "accepteasy.csv", provider="accepteasy")[0].bill
    assert first is not None
    assert first.reference == "AE-2027-0001"
    assert first.description == "Lidmaatschap 2027 nr 1"
    assert first.total == Money("25.00", "EUR")
    assert first.counterparty is not None and first.counterparty.email == "jansen@example.nl"
    assert first.direction is Direction.RECEIVABLE


def test_the_billcom_example_is_payables_to_the_sandbox_vendors() -> None:
    bills = [r.bill for r in read_bills(EXAMPLES / "billcom.csv", provider="billcom")]
    assert all(b is not None and b.direction is Direction.PAYABLE for b in bills)
    vendors = {b.counterparty.provider_id for b in bills if b is not None and b.counterparty is not None}
    assert vendors == {VENDOR_ACME, VENDOR_GLOBEX, VENDOR_INITECH}
    first = bills[0]
    assert first is not None
    assert first.reference == "INV-4100"
    assert str(first.issue_date) == "2026-12-01" and str(first.due_date) == "2027-01-01"
    assert [i.unit_price for i in first.line_items] == [Money("45.90", "USD"), Money("720.00", "USD")]
    assert first.total == Money("765.90", "USD") and first.line_total() == Decimal("765.90")


def test_the_facturapi_example_carries_its_provider_options() -> None:
    bill = read_bills(EXAMPLES / "facturapi.csv", provider="facturapi")[0].bill
    assert bill is not None and bill.counterparty is not None
    assert bill.counterparty.tax_id == "EKU9003173C9"
    assert bill.counterparty.address is not None and bill.counterparty.address.postal_code == "42501"
    assert dict(bill.counterparty.provider_options) == {"tax_system": "601"}
    assert dict(bill.provider_options) == {"payment_form": "03", "use": "G03"}
    item = bill.line_items[0]
    assert item.description == "Servicio de consultoría 1"
    assert item.unit_price == Money("1000.00", "MXN")
    assert item.taxes[0].type == "IVA" and item.taxes[0].rate == Decimal("0.16")
    assert dict(item.provider_options) == {"product_key": "80111600", "unit_key": "E48"}
    assert bill.total is None  # Facturapi computes it


# -- bad rows ----------------------------------------------------------------------------------------------------


def test_a_bad_amount_is_a_row_error_on_total_and_the_other_rows_still_parse(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bills.csv",
        AE_HEADER + 'R1,Dues,a@example.nl,"12,50",EUR\nR2,Dues,b@example.nl,abc,EUR\nR3,Dues,c@example.nl,12.50,EUR\n',
    )
    rows = read_bills(path, provider="accepteasy")
    assert [r.row for r in rows] == [1, 2, 3]
    comma, letters = only_error(rows[0]), only_error(rows[1])
    assert (comma.row, comma.field) == (1, "total")
    assert str(comma) == "row 1, total: '12,50' is not an amount: write a '.' before the decimals, not a ',' (12.50)"
    assert (letters.row, letters.field) == (2, "total")
    assert "'abc' is not an amount" in letters.message and "1234.50" in letters.message
    assert rows[2].bill is not None and rows[2].bill.total == Money("12.50", "EUR")


def test_a_total_with_three_decimals_in_eur_is_refused_on_total(tmp_path: Path) -> None:
    path = write(
        tmp_path, "bills.csv", AE_HEADER + "R1,Dues,a@example.nl,12.345,EUR\nR2,Dues,b@example.nl,12.340,EUR\n"
    )
    three, trailing_zero = read_bills(path, provider="accepteasy")
    error = only_error(three)
    assert (error.row, error.field) == (1, "total")
    assert error.message == "12.345 has more than 2 decimals, which EUR does not have"
    assert trailing_zero.bill is not None and trailing_zero.bill.total == Money("12.34", "EUR")


def test_a_total_without_currency_names_the_currency(tmp_path: Path) -> None:
    path = write(tmp_path, "bills.csv", AE_HEADER + "R1,Dues,a@example.nl,12.50,\n")
    error = only_error(read_bills(path, provider="accepteasy")[0])
    assert (error.row, error.field) == (1, "currency")
    assert "required by accepteasy" in error.message

    lines = '"[{""description"": ""Paper"", ""unit_price"": ""4.50""}]"'
    billcom = write(
        tmp_path,
        "payables.csv",
        "reference,counterparty_id,issue_date,due_date,line_items,currency,total\n"
        f"I-1,{VENDOR_ACME},2026-12-01,2027-01-01,{lines},,\n"
        f"I-2,{VENDOR_ACME},2026-12-01,2027-01-01,{lines},USD,4.5\n",
    )
    without, with_currency = read_bills(billcom, provider="billcom")
    error = only_error(without)
    assert (error.row, error.field) == (1, "currency")
    assert error.message.startswith("required with line_items")
    assert with_currency.bill is not None and with_currency.bill.total == Money("4.50", "USD")


def test_an_empty_required_cell_names_its_column_and_every_problem_of_the_row_is_listed(tmp_path: Path) -> None:
    path = write(tmp_path, "bills.csv", AE_HEADER + ",Dues,,1x,EUR\n")
    (parsed,) = read_bills(path, provider="accepteasy")
    assert parsed.bill is None
    assert [(e.row, e.field) for e in parsed.errors] == [(1, "total"), (1, "reference"), (1, "counterparty_email")]
    assert "required by accepteasy" in parsed.errors[1].message


def test_bad_dates_are_row_errors_on_their_column(tmp_path: Path) -> None:
    lines = '"[{""description"": ""Paper"", ""unit_price"": ""4.50""}]"'
    path = write(
        tmp_path,
        "payables.csv",
        "reference,counterparty_id,issue_date,due_date,line_items,currency\n"
        f"I-1,{VENDOR_ACME},31/12/2026,2027-02-30,{lines},USD\n",
    )
    (parsed,) = read_bills(path, provider="billcom")
    assert [e.field for e in parsed.errors] == ["issue_date", "due_date"]
    assert "write it as YYYY-MM-DD" in parsed.errors[0].message
    assert "'2027-02-30' is not a date" in parsed.errors[1].message


def test_billcom_needs_line_items_not_only_a_total(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "payables.csv",
        f"reference,counterparty_id,issue_date,due_date,line_items,currency,total\nI-1,{VENDOR_ACME},2026-12-01,"
        "2027-01-01,,USD,100.00\n",
    )
    error = only_error(read_bills(path, provider="billcom")[0])
    assert (error.row, error.field) == (1, "line_items")
    assert "a total alone is not enough" in error.message


def test_line_item_problems_name_the_item_and_its_field(tmp_path: Path) -> None:
    items = (
        '[{"description": "Paper", "unit_price": "1.005", "colour": "red"},'
        ' {"description": "Pens", "unit_price": 2, "quantity": "0.1234567", "taxes": [{"type": "IVA", "rate": "x"}]},'
        ' {"unit_price": "1"}, "nope"]'
    )
    cell = '"' + items.replace('"', '""') + '"'
    path = write(
        tmp_path,
        "invoices.csv",
        f"counterparty_name,counterparty_tax_id,counterparty_zip,currency,line_items\nACME,EKU9003173C9,42501,MXN,{cell}\n",
    )
    (parsed,) = read_bills(path, provider="facturapi")
    assert parsed.bill is None
    assert [(e.field, e.message) for e in parsed.errors] == [
        (
            "line_items[0].colour",
            "unknown key; a line item has description, quantity, unit_price, taxes, provider_options",
        ),
        ("line_items[0].unit_price", "1.005 has more than 2 decimals, which MXN does not have"),
        ("line_items[1].quantity", "0.1234567 has more than 6 decimals"),
        ("line_items[1].taxes[0].rate", "'x' is not a decimal number"),
        ("line_items[2].description", "required: what the line is for"),
        ("line_items[3]", "expected a line item object, got a string"),
    ]


def test_line_items_that_are_not_json_are_a_row_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "invoices.csv",
        "counterparty_name,counterparty_tax_id,counterparty_zip,currency,line_items\n"
        'ACME,EKU9003173C9,42501,MXN,"[{description: 1}]"\nACME,EKU9003173C9,42501,MXN,"{""a"": 1}"\n',
    )
    broken, an_object = read_bills(path, provider="facturapi")
    assert only_error(broken).field == "line_items"
    assert only_error(broken).message.startswith("not a JSON array of line items: invalid JSON")
    assert only_error(an_object).message == "expected a JSON array of line item objects, got an object"


def test_a_float_looking_price_stays_an_exact_decimal(tmp_path: Path) -> None:
    items = '[{"description": "Bolt", "quantity": 3, "unit_price": 0.1}, {"description": "Nut", "unit_price": 19.99}]'
    cell = '"' + items.replace('"', '""') + '"'
    path = write(
        tmp_path,
        "payables.csv",
        f"reference,counterparty_id,issue_date,due_date,line_items,currency\nI-1,{VENDOR_ACME},2026-12-01,"
        f"2027-01-01,{cell},USD\n",
    )
    bill = read_bills(path, provider="billcom")[0].bill
    assert bill is not None
    bolt, nut = bill.line_items
    assert type(bolt.unit_price.amount) is Decimal
    assert str(bolt.unit_price.amount) == "0.1" and str(nut.unit_price.amount) == "19.99"
    assert bill.line_total() == Decimal("20.29")  # 3 x 0.1 + 19.99, which floats make 20.290000000000003


def test_provider_option_columns_are_strings_and_an_empty_cell_is_absent(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bills.csv",
        AE_HEADER.rstrip("\n") + ",provider_options.AETemplateID,provider_options.CountdownDays,"
        "counterparty.provider_options.Language\nR1,Dues,a@example.nl,5.00,EUR,tpl-1,3,nl\nR2,Dues,b@example.nl,5.00,EUR,,,\n",
    )
    first, second = (r.bill for r in read_bills(path, provider="accepteasy"))
    assert first is not None and second is not None
    assert dict(first.provider_options) == {"AETemplateID": "tpl-1", "CountdownDays": "3"}
    assert first.counterparty is not None and dict(first.counterparty.provider_options) == {"Language": "nl"}
    assert dict(second.provider_options) == {}
    assert second.counterparty is not None and dict(second.counterparty.provider_options) == {}


# -- bad files ---------------------------------------------------------------------------------------------------


def test_a_missing_required_column_is_a_file_error_naming_the_file_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "bills.csv", "reference,description,total,currency\nR1,Dues,5.00,EUR\n")
    with pytest.raises(FileError) as caught:
        read_bills(path, provider="accepteasy")
    error = caught.value
    assert isinstance(error, ValidationError)
    assert error.path == str(path) and error.column == "counterparty_email"
    assert str(error).startswith(f"{path}: column 'counterparty_email': missing; accepteasy requires it")


@pytest.mark.parametrize("content", ["", "\n  \n"], ids=["empty", "blank lines"])
def test_an_empty_file_has_no_rows(tmp_path: Path, content: str) -> None:
    path = write(tmp_path, "bills.csv", content)
    with pytest.raises(FileError, match="no rows: the file is empty") as caught:
        read_bills(path, provider="accepteasy")
    assert str(caught.value).startswith(str(path))


def test_a_header_only_file_has_no_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "bills.csv", AE_HEADER + "\n,,,,\n")
    with pytest.raises(FileError, match="no rows: the file has a header but no data rows"):
        read_bills(path, provider="accepteasy")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary content (a NUL byte at offset 8)"),
        (AE_HEADER.encode() + "R1,Caf\xe9,a@example.nl,1.00,EUR\n".encode("latin-1"), "not UTF-8 text (byte 0xe9"),
        ("reference\nR1\n".encode("utf-16"), "UTF-16"),
    ],
    ids=["binary", "latin-1", "utf-16"],
)
def test_a_file_that_is_not_text_is_a_file_error(tmp_path: Path, content: bytes, reason: str) -> None:
    path = write(tmp_path, "bills.csv", content)
    with pytest.raises(FileError) as caught:
        read_bills(path, provider="accepteasy")
    assert reason in str(caught.value) and str(caught.value).startswith(f"{path}: not a CSV or JSONL file")


def test_a_record_with_more_fields_than_the_header_is_a_file_error(tmp_path: Path) -> None:
    path = write(tmp_path, "bills.csv", AE_HEADER + "R1,Dues,a@example.nl,5.00,EUR\nR2,Dues,b@example.nl,12,50,EUR\n")
    with pytest.raises(FileError) as caught:
        read_bills(path, provider="accepteasy")
    assert caught.value.row == 2
    assert "row 2 has 6 fields but the header has 5 columns" in str(caught.value)


def test_broken_quoting_is_a_file_error(tmp_path: Path) -> None:
    path = write(tmp_path, "bills.csv", AE_HEADER + 'R1,"Dues"x,a@example.nl,5.00,EUR\n')
    with pytest.raises(FileError, match="not a well-formed CSV file") as caught:
        read_bills(path, provider="accepteasy")
    assert caught.value.row == 1


def test_an_unknown_column_is_a_file_error_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "bills.csv", AE_HEADER.rstrip("\n") + ",due_dat\nR1,Dues,a@example.nl,5.00,EUR,\n")
    with pytest.raises(FileError) as caught:
        read_bills(path, provider="accepteasy")
    assert caught.value.column == "due_dat"
    assert str(caught.value) == f"{path}: column 'due_dat': unknown column (did you mean 'due_date'?)"


def test_a_semicolon_separated_file_is_told_so(tmp_path: Path) -> None:
    path = write(tmp_path, "bills.csv", "reference;description;total\nR1;Dues;5,00\n")
    with pytest.raises(FileError, match="seems separated by semicolons; billkit reads comma-separated files"):
        read_bills(path, provider="accepteasy")


@pytest.mark.parametrize(
    ("header", "column", "message"),
    [
        (AE_HEADER.rstrip("\n") + ",total", "total", "the header has it twice (column 6 repeats it)"),
        (AE_HEADER.rstrip("\n") + ",provider_options.", "provider_options.", "an option column needs a name"),
        (AE_HEADER.rstrip("\n") + ",provider_options", "provider_options", "write one provider_options.<name> column"),
    ],
    ids=["duplicated", "empty option name", "bare provider_options"],
)
def test_header_problems_name_the_column(tmp_path: Path, header: str, column: str, message: str) -> None:
    path = write(tmp_path, "bills.csv", header + "\nR1,Dues,a@example.nl,5.00,EUR,x\n")
    with pytest.raises(FileError) as caught:
        read_bills(path, provider="accepteasy")
    assert caught.value.column == column
    assert message in str(caught.value)


def test_a_file_that_cannot_be_opened_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(FileError, match="cannot be read"):
        read_bills(tmp_path / "missing.csv", provider="accepteasy")


def test_an_unknown_provider_or_format_is_a_configuration_error_before_the_file_is_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown provider 'stripe'; billkit knows accepteasy, billcom"):
        read_bills(tmp_path / "missing.csv", provider="stripe")
    with pytest.raises(ConfigurationError, match="format must be"):
        read_bills(tmp_path / "missing.csv", provider="accepteasy", format="xlsx")  # type: ignore[arg-type]


def test_file_errors_pickle(tmp_path: Path) -> None:
    path = write(tmp_path, "bills.csv", "")
    with pytest.raises(FileError) as caught:
        read_bills(path, provider="accepteasy")
    again = pickle.loads(pickle.dumps(caught.value))
    assert type(again) is FileError and str(again) == str(caught.value) and again.path == str(path)


# -- JSON Lines --------------------------------------------------------------------------------------------------


def test_jsonl_rows_are_line_numbers_and_a_bad_line_is_a_row_error(tmp_path: Path) -> None:
    good = (
        '{"reference": "R1", "description": "Dues", "counterparty_email": "a@example.nl", "total": 12.5, '
        '"currency": "EUR", "provider_options": {"RecordData": {"Name": "Anna"}, "CountdownDays": 3}, '
        '"provider_options.AETemplateID": "tpl-1"}'
    )
    path = write(tmp_path, "bills.jsonl", f'{good}\n\n{{"reference": "R2", oops}}\n[1, 2]\n{good}\n')
    rows = read_bills(path, provider="accepteasy")
    assert [r.row for r in rows] == [1, 3, 4, 5]
    first = rows[0].bill
    assert first is not None and first.total == Money("12.50", "EUR")
    assert dict(first.provider_options) == {"RecordData": {"Name": "Anna"}, "CountdownDays": 3, "AETemplateID": "tpl-1"}
    assert str(only_error(rows[1])).startswith("row 3: not a JSON object: invalid JSON (Expecting property name")
    assert str(only_error(rows[2])) == "row 4: expected a JSON object, got an array"
    assert rows[3].bill == first


def test_jsonl_key_problems_name_the_key(tmp_path: Path) -> None:
    line = (
        '{"reference": 1001, "description": "Dues", "counterparty_email": "a@example.nl", "totl": "5.00", '
        '"total": "5.00", "currency": "EUR", "provider_options": {"SRRID": "x"}, "provider_options.SRRID": "y"}'
    )
    path = write(tmp_path, "bills.ndjson", line + "\n")
    (parsed,) = read_bills(path, provider="accepteasy")
    assert [(e.field, e.message) for e in parsed.errors] == [
        ("totl", "unknown key (did you mean 'total'?)"),
        ("provider_options.SRRID", "given twice (as a dotted key and nested)"),
        ("reference", "expected a string (in quotes), got a number"),
    ]


def test_jsonl_numbers_never_go_through_float(tmp_path: Path) -> None:
    line = (
        '{"counterparty_name": "ACME", "counterparty_tax_id": "EKU9003173C9", "counterparty_zip": "42501", '
        '"currency": "MXN", "line_items": [{"description": "Consultoría", "quantity": 1.5, "unit_price": 1000.10, '
        '"taxes": [{"type": "IVA", "rate": 0.16}]}]}'
    )
    bill = read_bills(write(tmp_path, "invoices.jsonl", line), provider="facturapi")[0].bill
    assert bill is not None
    item = bill.line_items[0]
    assert item.unit_price == Money("1000.10", "MXN") and item.quantity == Decimal("1.5")
    assert item.taxes[0].rate == Decimal("0.16") and type(item.taxes[0].rate) is Decimal
    assert bill.line_total() == Decimal("1500.15")


def test_a_file_where_no_line_is_a_json_object_is_not_jsonl(tmp_path: Path) -> None:
    path = write(tmp_path, "bills.jsonl", "reference,total\nR1,5.00\n")
    with pytest.raises(FileError, match="not a JSONL file: no line is a JSON object"):
        read_bills(path, provider="accepteasy")


def test_the_format_comes_from_the_extension_else_from_the_content(tmp_path: Path) -> None:
    line = (
        '{"reference": "R1", "description": "Dues", "counterparty_email": "a@example.nl", "total": "5", '
        '"currency": "EUR"}'
    )
    sniffed = read_bills(write(tmp_path, "bills.txt", "\n  " + line + "\n"), provider="accepteasy")
    assert sniffed[0].row == 2 and sniffed[0].bill is not None
    csv_text = AE_HEADER + "R1,Dues,a@example.nl,5.00,EUR\n"
    forced = read_bills(write(tmp_path, "bills.jsonl", csv_text), provider="accepteasy", format="csv")
    assert forced[0].bill is not None and forced[0].bill.reference == "R1"
    with pytest.raises(FileError, match="a JSON array is not JSON Lines"):
        read_bills(write(tmp_path, "bills.json", "[" + line + "]"), provider="accepteasy")


def test_row_error_strings() -> None:
    assert str(RowError(3, "total", "bad")) == "row 3, total: bad"
    assert str(RowError(4, "", "not a JSON object")) == "row 4: not a JSON object"
