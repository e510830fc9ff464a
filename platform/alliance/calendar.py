"""Business dates: the alliance's days are those of its business time zone (ALLIANCE_TIME_ZONE), not UTC's."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from alliance.settings import get_settings


def business_date(at: datetime | None = None) -> date:
    """The business day `at` (default: now) falls on."""
    return (at or datetime.now(UTC)).astimezone(ZoneInfo(get_settings().time_zone)).date()
