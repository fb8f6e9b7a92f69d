"""Moments as users type them and as the audit commands print them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from reconciler.diagnostics import ReconcilerError
from reconciler.git.objects import EARLIEST, LATEST
from reconciler.times import parse_moment, parse_zone, shown


@pytest.mark.parametrize("text", ["2024-05-14T16:00:00+02:00", "2024-05-14T14:00:00Z",
                                  "2024-05-14 14:00", "2024-05-14T09:30:00-04:30"])
def test_any_offset_names_one_utc_moment(text: str) -> None:
    assert parse_moment(text) == datetime(2024, 5, 14, 14, 0)


def test_now_and_today_are_what_on_call_types() -> None:
    before = datetime.now(UTC).replace(tzinfo=None)
    now = parse_moment(" NOW ")
    assert before <= now <= datetime.now(UTC).replace(tzinfo=None)
    assert parse_moment("today") == now.replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                                  "0001-01-01T05:00:00+05:01"])
def test_a_moment_outside_the_years_utc_can_hold_is_one_clear_error(text: str) -> None:
    with pytest.raises(ReconcilerError, match=r"is outside the years 1 to 9999 in UTC"):
        parse_moment(text)


@pytest.mark.parametrize("text", ["2024-13-45", "", "yesterday", "2024-05-14T13:00+25:00",
                                  "2024-05-14\x1b[31m"])
def test_what_is_not_iso_8601_is_one_clear_error(text: str) -> None:
    with pytest.raises(ReconcilerError, match="is not an ISO-8601 time") as raised:
        parse_moment(text)
    assert "\x1b" not in str(raised.value)


@pytest.mark.parametrize("zone", ["+14:00", "Pacific/Kiritimati", "-12:00", "UTC"])
def test_the_bounds_of_what_a_commit_can_claim_print_in_every_zone(zone: str) -> None:
    # A commit's dates are the pusher's to choose; apply holds them to EARLIEST..LATEST, and
    # the hours a zone would push past year 9999 (or before year 1) print in UTC instead.
    tz = parse_zone(zone)
    for when in (EARLIEST, LATEST):
        text = shown(when, tz)
        back = datetime.fromisoformat(text.replace("Z", "+00:00"))
        assert back.astimezone(UTC).replace(tzinfo=None) == when


def test_a_zone_is_kept_unless_the_moment_has_no_date_in_it() -> None:
    assert shown(LATEST, timezone(timedelta(hours=14))) == "9999-12-31T23:59:59Z"
    assert shown(LATEST, timezone(timedelta(hours=-12))) == "9999-12-31T11:59:59-12:00"
    assert shown(datetime(2024, 5, 14, 14), parse_zone("+02:00")) == "2024-05-14T16:00:00+02:00"
