"""Moments as users type them (ISO-8601, any offset) and as the audit commands print them.

The database stores naive UTC datetimes (git's times, converted when read): every moment a
user gives is converted to that before it is compared, so `2024-05-14T16:00:00+02:00`,
`2024-05-14T14:00:00Z` and `2024-05-14 14:00` name the same moment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo

from reconciler.diagnostics import ReconcilerError, printable

HELP = ("an ISO-8601 time, e.g. 2024-05-14T16:00:00+02:00, 2024-05-14T14:00Z or 2024-05-14 "
        "(no offset: UTC), or now, or today (its midnight, UTC)")


def parse_moment(text: str) -> datetime:
    """The naive UTC datetime an ISO-8601 time names (no offset: UTC); `now` and `today` (the
    first thing on-call types) are this moment and this UTC day's midnight."""
    word = text.strip().lower()
    if word in ("now", "today"):
        now = datetime.now(UTC).replace(tzinfo=None)
        return now if word == "now" else now.replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ReconcilerError(f"'{printable(text)}' is not {HELP}") from None
    if when.tzinfo is not None:
        try:
            when = when.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # 0001-01-01T00:00+14:00 is in year 0 in UTC
            raise ReconcilerError(f"'{printable(text)}' is outside the years 1 to 9999 in "
                                  "UTC") from None
    return when


def parse_zone(text: str | None) -> tzinfo:
    """A zone for printing: None or UTC, an offset (+02:00) or an IANA name (Europe/Paris)."""
    if text is None or text.upper() in ("UTC", "Z"):
        return UTC
    if text[:1] in "+-":
        try:
            hours, _, minutes = text[1:].partition(":")
            offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
            return timezone(-offset if text[0] == "-" else offset)
        except ValueError:
            pass
    else:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            return ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise ReconcilerError(f"--tz '{printable(text)}' is not a time zone: give UTC, an offset "
                          "such as +02:00, or a name such as Europe/Paris")


def shown(when: datetime | None, zone: tzinfo = UTC) -> str:
    """A stored (naive UTC) datetime as ISO-8601 in zone; UTC is written with Z."""
    if when is None:
        return ""
    moment = when.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(zone)
    except OverflowError:
        # A commit may claim any time git can hold (apply keeps them in the years 1000 to
        # 9999): its last hours of 9999 have no date east of UTC, so they are shown in UTC.
        zone = UTC
    text = moment.isoformat(timespec="seconds")
    return text[:-6] + "Z" if zone is UTC else text
