"""billkit.isodates: the ISO 8601 forms providers write parse the same on Python 3.10 as on 3.11+."""

from __future__ import annotations

import datetime as dt

import pytest

from billkit.isodates import _for_310, datetime_from_iso

UTC = dt.timezone.utc


def offset(hours: int) -> dt.timezone:
    return dt.timezone(dt.timedelta(hours=hours))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-03-04T22:47:51.77+00:00", dt.datetime(2027, 3, 4, 22, 47, 51, 770000, tzinfo=UTC)),
        ("2027-03-04T22:47:51.770Z", dt.datetime(2027, 3, 4, 22, 47, 51, 770000, tzinfo=UTC)),
        ("2027-03-04T22:47:51.1234567Z", dt.datetime(2027, 3, 4, 22, 47, 51, 123456, tzinfo=UTC)),
        ("2027-03-04T22:47:51Z", dt.datetime(2027, 3, 4, 22, 47, 51, tzinfo=UTC)),
        ("2027-03-04 22:47", dt.datetime(2027, 3, 4, 22, 47)),
        ("2027-03-04T22:47:51,5-0600", dt.datetime(2027, 3, 4, 22, 47, 51, 500000, tzinfo=offset(-6))),
        ("2027-03-04T22:47:51+05", dt.datetime(2027, 3, 4, 22, 47, 51, tzinfo=offset(5))),
        ("2027-03-04", dt.datetime(2027, 3, 4)),
    ],
)
def test_provider_timestamps_parse_on_every_python(text: str, expected: dt.datetime) -> None:
    assert datetime_from_iso(text) == expected
    assert dt.datetime.fromisoformat(_for_310(text)) == expected  # what 3.10 reads, checked on every Python


@pytest.mark.parametrize("text", ["", "yesterday", "2027-13-01T00:00:00Z", "2027-03-04T25:00Z"])
def test_a_bad_timestamp_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        datetime_from_iso(text)
    with pytest.raises(ValueError):
        dt.datetime.fromisoformat(_for_310(text))
