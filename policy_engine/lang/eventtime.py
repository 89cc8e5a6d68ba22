"""Event time in a policy's time zone: zones, times of day, trading days.

A policy reads time only from events (``intent.time``, a declared input of type
``time``), never from a clock. What a risk owner means by "21:55" or "Saturday"
is local to a place, so every reading goes through the policy's ``timezone``
(a canonical IANA name from the pinned ``tzdata`` package's zone list, its rules read from
that package too, never from the host's ``/usr/share/zoneinfo``: one policy decides the same
on every machine; ``localtime``, ``posixrules``, ``posix/...``, ``right/...`` and paths
follow the host and are refused).
Conversions are DST-correct: an aware timestamp converted to the zone gives the
local wall clock of that instant.

The trading day is read the same way: a day runs from one rollover (a local
time of day, ``HH:MM``) to the next, and :class:`TradingDay` finds the day of an
instant and the next instant worth checking, so that the control core tests a
rollover with one comparison per event. Everything here is pure: a zone is
loaded once, when the policy loads.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import cache, lru_cache
from importlib import resources
from zoneinfo import ZoneInfo

from ..diagnostics import PolicyEngineError

# The instants an event may carry: a TTL added to any of them stays a valid datetime.
MIN_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2200, 1, 1, tzinfo=UTC)

_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
MINUTES_PER_DAY = 24 * 60


class TimeError(PolicyEngineError, ValueError):
    """A zone or a time of day that does not exist."""


class HostZoneError(TimeError):
    """A zone name the host resolves but that is not a canonical IANA zone (``localtime``,
    ``posixrules``, ``posix/...``, ``right/...``, a path): it would decide differently on
    two machines."""


# Names that zoneinfo resolves from the host's database but that are not zones of their own.
_HOST_NAMES = ("localtime", "posixrules", "posix/", "right/", "/", ".")


@cache
def _canonical() -> frozenset[str]:
    """The zone names of the pinned ``tzdata`` package (its ``zones`` list)."""
    text = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


@lru_cache(maxsize=64)
def zone(name: str) -> tzinfo:
    """The time zone ``name`` (IANA, such as ``Europe/London``; ``UTC`` needs no database),
    its rules read from the ``tzdata`` package. Raises :class:`HostZoneError` for a name that
    depends on the host, :class:`TimeError` when there is no such zone."""
    if name == "UTC":
        return UTC
    if name not in _canonical():
        if name.startswith(_HOST_NAMES) or ".." in name:
            raise HostZoneError(
                f"time zone `{name}` depends on the machine it runs on: "
                f"use a canonical IANA name such as `Europe/London`"
            )
        raise TimeError(f"unknown time zone `{name}`")
    try:
        with resources.files("tzdata.zoneinfo").joinpath(*name.split("/")).open("rb") as data:
            found = ZoneInfo.from_file(data, key=name)
        MIN_TIME.astimezone(found)
    except OSError as exc:
        raise TimeError(f"time zone `{name}` cannot be read from tzdata: {exc}") from None
    except Exception:
        # A sandbox that restricts zoneinfo (Temporal's default restrictions do) refuses
        # `from_file` or hands out a proxy that datetime refuses, each with its own error
        # type: say so at load time rather than fail on the first event.
        raise TimeError(
            f"time zone `{name}` cannot be used here: this interpreter wraps `zoneinfo` "
            f"(in a Temporal workflow, lift the sandbox's `zoneinfo` restriction)"
        ) from None
    return found


def zone_names() -> list[str]:
    """Every canonical IANA zone name (for did-you-mean hints)."""
    return sorted(_canonical() | {"UTC"})


def minutes_of(text: str) -> int:
    """``"21:55"`` -> 1315; :class:`TimeError` unless it is a time of day ``HH:MM``."""
    m = _HHMM.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise TimeError(f'not a time of day "HH:MM" (00:00 to 23:59): {text!r}')
    return int(m.group(1)) * 60 + int(m.group(2))


_minutes = lru_cache(maxsize=256)(minutes_of)  # the same few window bounds, read per decision


def weekday(t: datetime, tz: tzinfo) -> int:
    """The local day of the week of ``t``: 0 is Monday, 6 is Sunday."""
    return t.astimezone(tz).weekday()


def time_of_day(t: datetime, tz: tzinfo) -> float:
    """Local minutes since midnight, seconds as a fraction (21:55:30 is 1315.5)."""
    local = t.astimezone(tz)
    whole = local.hour * 60 + local.minute
    if local.second or local.microsecond:
        return whole + (local.second + local.microsecond / 1_000_000) / 60
    return float(whole)


def in_window(t: datetime, start: str, end: str, tz: tzinfo) -> bool:
    """Whether the local time of ``t`` lies in ``[start, end)``; a window whose end is not
    after its start wraps past midnight (``"22:00"`` to ``"06:00"``)."""
    lo, hi = _minutes(start), _minutes(end)
    now = time_of_day(t, tz)
    if lo < hi:
        return lo <= now < hi
    return now >= lo or now < hi


class TradingDay:
    """Trading days that start at a local time of day (``rollover``) in a zone.

    The day of an instant is the local date of that instant moved back by the rollover
    time: with a 17:00 rollover, Tuesday 16:59 belongs to Monday's day and Tuesday 17:00
    to Tuesday's. On a day when the rollover's local time does not exist (a DST gap) the
    day starts with the first instant after the gap; when it exists twice (the fall-back
    hour) it starts at the first.
    """

    __slots__ = ("minutes", "tz")

    def __init__(self, tz: tzinfo, rollover: str = "00:00") -> None:
        self.tz = tz
        self.minutes = minutes_of(rollover)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TradingDay) and self.tz is other.tz and self.minutes == other.minutes
        )

    def __hash__(self) -> int:
        return hash((id(self.tz), self.minutes))

    @property
    def rollover(self) -> str:
        """The rollover as written, ``HH:MM``."""
        return f"{self.minutes // 60:02}:{self.minutes % 60:02}"

    def day_of(self, t: datetime) -> date:
        """The trading day ``t`` belongs to (named by the local date it started on)."""
        local = t.astimezone(self.tz).replace(tzinfo=None)
        return (local - timedelta(minutes=self.minutes)).date()

    def check_from(self, day: date) -> datetime:
        """An instant at or before the start of the day after ``day`` (aware, UTC): until an
        event reaches it the day cannot have changed, so one comparison per event suffices."""
        nxt = day + timedelta(days=1)
        wall = datetime(nxt.year, nxt.month, nxt.day) + timedelta(minutes=self.minutes)
        # Either reading of a local time that is skipped or repeated; the earlier is safe.
        early = min(wall.replace(tzinfo=self.tz, fold=f).astimezone(UTC) for f in (0, 1))
        return early


__all__ = [
    "MAX_TIME",
    "MINUTES_PER_DAY",
    "MIN_TIME",
    "TimeError",
    "TradingDay",
    "in_window",
    "minutes_of",
    "time_of_day",
    "weekday",
    "zone",
    "zone_names",
]
