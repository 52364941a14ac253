"""billkit.durable.refused: which bills of a refused submission fail, shared by the journal and the DBOS engine."""

from __future__ import annotations

from billkit.durable import problem_index, refused
from billkit.errors import BulkRejected, Problem, ValidationError


def test_the_bills_a_validation_error_names_fail_with_their_own_problems() -> None:
    exc = ValidationError([Problem("[1].total", "too big"), Problem("[3].description", "too long"),
                           Problem("[1].due_date", "in the past")], provider="accepteasy")  # fmt: skip
    failed = refused(exc, 5)
    assert sorted(failed) == [1, 3]
    assert failed[1] == ("ValidationError", "[1].total: too big; [1].due_date: in the past")
    assert failed[3] == ("ValidationError", "[3].description: too long")


def test_a_problem_of_the_whole_submission_fails_every_bill() -> None:
    exc = ValidationError([Problem("[1].total", "too big"), Problem("bills", "too many")], provider="billcom")
    failed = refused(exc, 3)
    assert sorted(failed) == [0, 1, 2]
    assert failed[1][1] == "[1].total: too big" and failed[0][1] == exc.message


def test_a_bulk_rejection_fails_the_items_it_names_with_their_errors() -> None:
    item = ValidationError("vendor is archived", provider="billcom")
    exc = BulkRejected("bulk refused", item_errors={2: item}, provider="billcom")
    assert refused(exc, 4) == {2: ("ValidationError", item.message)}
    assert sorted(refused(BulkRejected("refused", item_errors={}, provider="billcom"), 2)) == [0, 1]


def test_problem_index_reads_both_prefixes() -> None:
    assert problem_index("[3].total") == 3 and problem_index("bills[12].line_items") == 12
    assert problem_index("total") is None
