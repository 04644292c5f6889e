"""Triggers: pure values that map an instant to the next fire time.

Exact instants around real DST changes (checked against zoneinfo):

- Europe/Berlin 2026: 03-29 02:00 -> 03:00; 10-25 03:00 -> 02:00.
- America/New_York 2026: 03-08 02:00 -> 03:00; 11-01 02:00 -> 01:00.
- America/Santiago 2026: 04-05 00:00 -> 04-04 23:00 (23:xx repeats);
  09-06 00:00 -> 01:00 (midnight does not exist).
- Australia/Lord_Howe 2026: 04-05 02:00 -> 01:30 (30 minutes repeat);
  10-04 02:00 -> 02:30.
"""

from __future__ import annotations

import calendar
import itertools
import json
import pickle
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import cronsim
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aioscheduler import AnyOf, At, Calendar, Cron, Every
from aioscheduler._trigger import Trigger
from aioscheduler._triggers import trigger_from_dict

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SANTIAGO = ZoneInfo("America/Santiago")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "America/Santiago"]
ZONES += ["Australia/Lord_Howe"]


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def local(
    tz: ZoneInfo,
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    *,
    fold: int = 0,
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=tz, fold=fold)


def as_utc(t: datetime | None) -> datetime | None:
    return None if t is None else t.astimezone(UTC)


def iso(times: list[datetime]) -> list[str]:
    return [t.isoformat() for t in times]


def fires(trigger: Trigger, after: datetime, n: int) -> list[str]:
    return iso(trigger.preview(n, after))


# -- DST: exact instants ------------------------------------------------------------


class TestCronDST:
    @pytest.mark.parametrize("expr", ["30 2 * * *", "0 30 2 * * *"])
    def test_berlin_fixed_time_gap_and_fold(self, expr: str) -> None:
        cron = Cron(expr, tz="Europe/Berlin")
        assert fires(cron, local(BERLIN, 2026, 3, 28, 12), 3) == [
            "2026-03-29T03:00:00+02:00",  # 02:30 does not exist: first instant after
            "2026-03-30T02:30:00+02:00",
            "2026-03-31T02:30:00+02:00",
        ]
        assert fires(cron, local(BERLIN, 2026, 10, 24, 12), 3) == [
            "2026-10-25T02:30:00+02:00",  # twice on the clock: the first only
            "2026-10-26T02:30:00+01:00",
            "2026-10-27T02:30:00+01:00",
        ]

    @pytest.mark.parametrize("expr", ["0-59/30 2 * * *", "0 0-59/30 2 * * *"])
    def test_fixed_range_in_the_gap_fires_once(self, expr: str) -> None:
        cron = Cron(expr, tz="Europe/Berlin")
        assert fires(cron, local(BERLIN, 2026, 3, 29, 1), 2) == [
            "2026-03-29T03:00:00+02:00",  # 02:00 and 02:30 both become 03:00
            "2026-03-30T02:00:00+02:00",
        ]
        assert fires(cron, local(BERLIN, 2026, 10, 25, 1), 3) == [
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:30:00+02:00",
            "2026-10-26T02:00:00+01:00",
        ]

    @pytest.mark.parametrize("expr", ["15 1-3 * * *", "0 15 1-3 * * *"])
    def test_new_york_fixed_hours(self, expr: str) -> None:
        cron = Cron(expr, tz="America/New_York")
        assert fires(cron, local(NEW_YORK, 2026, 3, 8, 0), 3) == [
            "2026-03-08T01:15:00-05:00",
            "2026-03-08T03:00:00-04:00",  # 02:15 is in the gap
            "2026-03-08T03:15:00-04:00",
        ]
        assert fires(cron, local(NEW_YORK, 2026, 11, 1, 0), 4) == [
            "2026-11-01T01:15:00-04:00",  # the first 01:15 only
            "2026-11-01T02:15:00-05:00",
            "2026-11-01T03:15:00-05:00",
            "2026-11-02T01:15:00-05:00",
        ]

    @pytest.mark.parametrize("expr", ["*/30 * * * *", "0 */30 * * * *"])
    def test_berlin_elapsed_time_fires_both_copies(self, expr: str) -> None:
        cron = Cron(expr, tz="Europe/Berlin")
        assert fires(cron, local(BERLIN, 2026, 10, 25, 1, 50), 6) == [
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T02:30:00+01:00",
            "2026-10-25T03:00:00+01:00",
            "2026-10-25T03:30:00+01:00",
        ]
        assert fires(cron, local(BERLIN, 2026, 3, 29, 1, 20), 3) == [
            "2026-03-29T01:30:00+01:00",
            "2026-03-29T03:00:00+02:00",  # 02:00 and 02:30 do not exist
            "2026-03-29T03:30:00+02:00",
        ]

    @pytest.mark.parametrize("expr", ["30 * * * *", "0 30 * * * *"])
    def test_hour_star_is_not_fixed(self, expr: str) -> None:
        cron = Cron(expr, tz="America/New_York")
        assert not cron.fixed
        assert fires(cron, local(NEW_YORK, 2026, 11, 1, 0), 4) == [
            "2026-11-01T00:30:00-04:00",
            "2026-11-01T01:30:00-04:00",
            "2026-11-01T01:30:00-05:00",
            "2026-11-01T02:30:00-05:00",
        ]
        assert fires(cron, local(NEW_YORK, 2026, 3, 8, 1), 2) == [
            "2026-03-08T01:30:00-05:00",
            "2026-03-08T03:30:00-04:00",
        ]

    @pytest.mark.parametrize("expr", ["0 0 * * *", "0 0 0 * * *", "@daily"])
    def test_santiago_midnight_gap(self, expr: str) -> None:
        cron = Cron(expr, tz="America/Santiago")
        assert fires(cron, local(SANTIAGO, 2026, 9, 4, 12), 3) == [
            "2026-09-05T00:00:00-04:00",
            "2026-09-06T01:00:00-03:00",  # midnight does not exist that day
            "2026-09-07T00:00:00-03:00",
        ]

    def test_santiago_fold_before_midnight(self) -> None:
        fixed = Cron("30 23 * * *", tz="America/Santiago")
        assert fires(fixed, local(SANTIAGO, 2026, 4, 4, 12), 2) == [
            "2026-04-04T23:30:00-03:00",
            "2026-04-05T23:30:00-04:00",
        ]
        elapsed = Cron("30 * * * *", tz="America/Santiago")
        assert fires(elapsed, local(SANTIAGO, 2026, 4, 4, 23), 3) == [
            "2026-04-04T23:30:00-03:00",
            "2026-04-04T23:30:00-04:00",
            "2026-04-05T00:30:00-04:00",
        ]

    @pytest.mark.parametrize(
        ("expr", "spring", "autumn"),
        [
            (
                "15 2 * * *",
                ["2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"],
                ["2026-04-05T02:15:00+10:30", "2026-04-06T02:15:00+10:30"],
            ),
            (
                "45 1 * * *",
                ["2026-10-04T01:45:00+10:30", "2026-10-05T01:45:00+11:00"],
                ["2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"],
            ),
            (
                "*/15 * * * *",
                ["2026-10-04T01:45:00+10:30", "2026-10-04T02:30:00+11:00"],
                [
                    "2026-04-05T01:45:00+11:00",
                    "2026-04-05T01:30:00+10:30",
                    "2026-04-05T01:45:00+10:30",
                ],
            ),
        ],
    )
    def test_lord_howe_half_hour_shift(
        self, expr: str, spring: list[str], autumn: list[str]
    ) -> None:
        cron = Cron(expr, tz="Australia/Lord_Howe")
        assert fires(cron, local(LORD_HOWE, 2026, 10, 4, 1, 40), len(spring)) == spring
        assert fires(cron, local(LORD_HOWE, 2026, 4, 5, 1, 40), len(autumn)) == autumn

    def test_after_an_instant_in_the_second_copy(self) -> None:
        cron = Cron("30 2 * * *", tz="Europe/Berlin")
        second_copy = local(BERLIN, 2026, 10, 25, 2, 10, fold=1)
        assert cron.next_after(second_copy) == local(BERLIN, 2026, 10, 26, 2, 30)
        assert cron._last_at_or_before(second_copy) == local(
            BERLIN, 2026, 10, 25, 2, 30
        )
        # Fixed and dense: every second of the repeated hour fired in its first
        # copy, so the next fire after the second copy is where the fold ends.
        per_second = Cron("* 0-59 0-23 * * *", tz="Europe/Berlin")
        assert per_second.next_after(second_copy) == local(BERLIN, 2026, 10, 25, 3)
        assert per_second._last_at_or_before(second_copy) == local(
            BERLIN, 2026, 10, 25, 2, 59, 59
        )

    def test_results_are_in_the_zone_and_unambiguous(self) -> None:
        when = Cron("*/30 * * * *", tz="Europe/Berlin").next_after(
            utc(2026, 10, 25, 0, 45)
        )
        assert when is not None
        assert when.tzinfo is BERLIN
        assert when.fold == 1
        # Python never calls a time in a fold equal to one in another zone
        # (PEP 495): compare instants in UTC.
        assert when != utc(2026, 10, 25, 1, 0)
        assert when.astimezone(UTC) == utc(2026, 10, 25, 1, 0)


class TestCalendarDST:
    def test_gap_and_fold(self) -> None:
        daily = Calendar(days=1, at="02:30", tz="Europe/Berlin")
        assert fires(daily, local(BERLIN, 2026, 3, 28, 12), 2) == [
            "2026-03-29T03:00:00+02:00",
            "2026-03-30T02:30:00+02:00",
        ]
        assert fires(daily, local(BERLIN, 2026, 10, 25, 0), 2) == [
            "2026-10-25T02:30:00+02:00",
            "2026-10-26T02:30:00+01:00",
        ]

    def test_santiago_midnight(self) -> None:
        daily = Calendar(days=1, tz="America/Santiago")
        assert fires(daily, local(SANTIAGO, 2026, 9, 5, 12), 2) == [
            "2026-09-06T01:00:00-03:00",
            "2026-09-07T00:00:00-03:00",
        ]


class TestEveryDST:
    def test_hourly_is_3600_seconds_apart_across_berlin_changes(self) -> None:
        for day in (utc(2026, 3, 28, 22), utc(2026, 10, 24, 22)):
            times = Every(3600).preview(8, day)
            assert [b - a for a, b in itertools.pairwise(times)] == [
                timedelta(hours=1)
            ] * 7
            assert all(t.tzinfo is UTC for t in times)

    def test_daily_keeps_elapsed_time(self) -> None:
        every = Every(timedelta(days=1), start=local(BERLIN, 2026, 3, 28, 2, 30))
        assert every.next_after(utc(2026, 3, 28, 12)) == local(
            BERLIN, 2026, 3, 29, 3, 30
        )


NEW_YEAR = datetime(2026, 1, 1, tzinfo=UTC)


# -- Cron semantics -----------------------------------------------------------------


class TestCronFields:
    def first(self, expr: str, after: datetime = NEW_YEAR) -> list[str]:
        return [
            t.strftime("%Y-%m-%d %a %H:%M:%S") for t in Cron(expr).preview(3, after)
        ]

    def test_day_of_month_or_day_of_week(self) -> None:
        # Both restricted: OR (the 13th, or any Friday).
        assert self.first("0 0 13 * 5") == [
            "2026-01-02 Fri 00:00:00",
            "2026-01-09 Fri 00:00:00",
            "2026-01-13 Tue 00:00:00",
        ]

    def test_and_when_one_starts_with_star(self) -> None:
        # Day-of-month starts with *: AND (every other day that is a Monday).
        assert self.first("0 0 */2 * 1") == [
            "2026-01-05 Mon 00:00:00",
            "2026-01-19 Mon 00:00:00",
            "2026-02-09 Mon 00:00:00",
        ]

    def test_last_day_last_weekday_last_friday_third_friday(self) -> None:
        assert self.first("0 0 L * *")[:2] == [
            "2026-01-31 Sat 00:00:00",
            "2026-02-28 Sat 00:00:00",
        ]
        assert self.first("0 0 LW * *")[:2] == [
            "2026-01-30 Fri 00:00:00",
            "2026-02-27 Fri 00:00:00",
        ]
        assert self.first("0 0 * * 5L")[:2] == [
            "2026-01-30 Fri 00:00:00",
            "2026-02-27 Fri 00:00:00",
        ]
        assert self.first("0 0 * * 5#3")[:2] == [
            "2026-01-16 Fri 00:00:00",
            "2026-02-20 Fri 00:00:00",
        ]

    def test_names_ranges_lists_steps(self) -> None:
        assert self.first("0 9 * jan-feb mon-fri")[:2] == [
            "2026-01-01 Thu 09:00:00",
            "2026-01-02 Fri 09:00:00",
        ]
        assert self.first("5,35 */12 * * *") == [
            "2026-01-01 Thu 00:05:00",
            "2026-01-01 Thu 00:35:00",
            "2026-01-01 Thu 12:05:00",
        ]

    def test_six_fields_seconds_first(self) -> None:
        assert self.first("*/20 0 0 * * *") == [
            "2026-01-01 Thu 00:00:20",
            "2026-01-01 Thu 00:00:40",
            "2026-01-02 Fri 00:00:00",
        ]

    @pytest.mark.parametrize(
        ("macro", "fields"),
        [
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
            ("@monthly", "0 0 1 * *"),
            ("@weekly", "0 0 * * 0"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@HOURLY", "0 * * * *"),
        ],
    )
    def test_macros(self, macro: str, fields: str) -> None:
        start = utc(2026, 5, 17, 13, 7)
        assert Cron(macro).preview(4, start) == Cron(fields).preview(4, start)
        assert Cron(macro).fixed == Cron(fields).fixed
        assert Cron(macro).expr == macro

    @pytest.mark.parametrize(
        ("expr", "field"),
        [
            ("61 * * * *", "minute"),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day-of-month"),
            ("* * * 13 *", "month"),
            ("* * * * 8", "day-of-week"),
            ("* * * * 5#6", "day-of-week"),
            ("60 * * * * *", "second"),
            ("x * * * *", "minute"),
            ("*/0 * * * *", "minute"),
            ("5-1 * * * *", "minute"),
            ("* * 15W * *", "day-of-month"),
        ],
    )
    def test_unparsable_names_the_field(self, expr: str, field: str) -> None:
        with pytest.raises(ValueError, match=f"bad {field} field"):
            Cron(expr)

    @pytest.mark.parametrize("expr", ["0 0 30 2 *", "0 0 31 4,6,9,11 *"])
    def test_never_fires(self, expr: str) -> None:
        with pytest.raises(ValueError, match=r"never fires.*day-of-month"):
            Cron(expr)

    @pytest.mark.parametrize("expr", ["", "* * * *", "* * * * * * *", "@reboot"])
    def test_wrong_shape(self, expr: str) -> None:
        with pytest.raises(ValueError, match=r"fields|macro"):
            Cron(expr)

    def test_bad_types_and_zones(self) -> None:
        with pytest.raises(TypeError):
            Cron(5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="unknown time zone"):
            Cron("* * * * *", tz="Mars/Olympus_Mons")
        with pytest.raises(ValueError, match="unknown time zone"):
            Cron("* * * * *", tz="../etc")
        with pytest.raises(TypeError):
            Cron("* * * * *", tz=3)  # type: ignore[arg-type]

    def test_tzinfo_objects(self) -> None:
        assert Cron("0 9 * * *", tz=BERLIN) == Cron("0 9 * * *", tz="Europe/Berlin")
        assert Cron("0 9 * * *", tz=UTC) == Cron("0 9 * * *")
        plus2 = Cron("0 9 * * *", tz=timezone(timedelta(hours=2)))
        assert plus2.next_after(utc(2026, 1, 1)) == utc(2026, 1, 1, 7)


class TestStartEnd:
    def test_cron_start_end_in_zone(self) -> None:
        cron = Cron(
            "0 9 * * *",
            tz="Europe/Berlin",
            start=datetime(2026, 1, 10, 9),  # naive: read in Berlin
            end=datetime(2026, 1, 12, 9),
        )
        assert cron.start == local(BERLIN, 2026, 1, 10, 9)
        assert fires(cron, utc(2026, 1, 1), 5) == [
            "2026-01-10T09:00:00+01:00",
            "2026-01-11T09:00:00+01:00",
            "2026-01-12T09:00:00+01:00",
        ]
        assert cron.next_after(utc(2026, 1, 12, 8)) is None
        assert cron._last_at_or_before(utc(2026, 1, 10, 7)) is None
        assert cron._last_at_or_before(utc(2030, 1, 1)) == local(BERLIN, 2026, 1, 12, 9)

    def test_naive_start_in_a_gap(self) -> None:
        gap = datetime(2026, 3, 29, 2, 30)
        with pytest.raises(ValueError, match="does not exist"):
            Cron("* * * * *", tz="Europe/Berlin", start=gap)
        with pytest.raises(ValueError, match="does not exist"):
            Calendar(days=1, tz="Europe/Berlin", end=gap)
        # A naive time in a fold is its first occurrence.
        fold = Cron(
            "* * * * *", tz="Europe/Berlin", start=datetime(2026, 10, 25, 2, 30)
        )
        assert as_utc(fold.start) == utc(2026, 10, 25, 0, 30)

    def test_end_before_start(self) -> None:
        with pytest.raises(ValueError, match="before start"):
            Every(1, start=utc(2026, 1, 2), end=utc(2026, 1, 1))
        with pytest.raises(ValueError, match="before start"):
            Cron("* * * * *", start=utc(2026, 1, 2), end=utc(2026, 1, 1))

    def test_naive_start_of_every_and_at_is_utc(self) -> None:
        assert Every(5, start=datetime(2026, 1, 1)).start == utc(2026, 1, 1)
        assert At(datetime(2026, 1, 1)).when == utc(2026, 1, 1)


# -- Calendar -----------------------------------------------------------------------


class TestCalendar:
    def test_months_clamp_from_jan_31_never_drifting(self) -> None:
        monthly = Calendar(months=1, at="09:00", start=datetime(2026, 1, 31))
        days = [t.date().isoformat() for t in monthly.preview(7, utc(2026, 1, 1))]
        assert days == [
            "2026-01-31",
            "2026-02-28",
            "2026-03-31",
            "2026-04-30",
            "2026-05-31",
            "2026-06-30",
            "2026-07-31",
        ]

    def test_years_from_feb_29(self) -> None:
        yearly = Calendar(years=1, at="12:00", start=datetime(2024, 2, 29))
        days = [t.date().isoformat() for t in yearly.preview(5, utc(2024, 1, 1))]
        assert days == [
            "2024-02-29",
            "2025-02-28",
            "2026-02-28",
            "2027-02-28",
            "2028-02-29",
        ]
        every_other = Calendar(months=12, start=datetime(2024, 2, 29))
        assert every_other.preview(5, utc(2024, 1, 1)) == [
            t.replace(hour=0) for t in yearly.preview(5, utc(2024, 1, 1))
        ]

    def test_every_three_months_from_the_31st(self) -> None:
        quarterly = Calendar(months=3, start=datetime(2025, 8, 31, 0, 0))
        days = [t.date().isoformat() for t in quarterly.preview(4, utc(2025, 1, 1))]
        assert days == ["2025-08-31", "2025-11-30", "2026-02-28", "2026-05-31"]

    def test_weeks_and_days(self) -> None:
        fortnightly = Calendar(weeks=2, at="08:15:30", start=datetime(2026, 1, 5))
        assert fires(fortnightly, utc(2026, 1, 1), 3) == [
            "2026-01-05T08:15:30+00:00",
            "2026-01-19T08:15:30+00:00",
            "2026-02-02T08:15:30+00:00",
        ]
        three_days = Calendar(days=3, at=time(6), start=datetime(2026, 1, 1, 7))
        assert fires(three_days, utc(2025, 1, 1), 2) == [
            "2026-01-04T06:00:00+00:00",  # never before start: not Jan 1 06:00
            "2026-01-07T06:00:00+00:00",
        ]

    def test_pure_value_counts_from_ts_day(self) -> None:
        every_other = Calendar(days=2, at="09:00", tz="Europe/Berlin")
        assert every_other.next_after(local(BERLIN, 2026, 5, 1, 8)) == local(
            BERLIN, 2026, 5, 1, 9
        )
        assert every_other.next_after(local(BERLIN, 2026, 5, 1, 10)) == local(
            BERLIN, 2026, 5, 3, 9
        )

    def test_anchored_at_the_add_instant(self) -> None:
        monthly = Calendar(months=1, at="09:00", tz="Europe/Berlin")
        morning = monthly._anchored(local(BERLIN, 2026, 1, 31, 8))
        assert morning.start == local(BERLIN, 2026, 1, 31, 8)
        assert fires(morning, local(BERLIN, 2026, 1, 31, 8), 2) == [
            "2026-01-31T09:00:00+01:00",  # the same day: 09:00 is still ahead
            "2026-02-28T09:00:00+01:00",
        ]
        evening = monthly._anchored(local(BERLIN, 2026, 1, 31, 20))
        assert fires(evening, local(BERLIN, 2026, 1, 31, 20), 2) == [
            "2026-02-28T09:00:00+01:00",
            "2026-03-31T09:00:00+02:00",
        ]
        assert morning._anchored(utc(2030, 1, 1)) is morning

    def test_preview_does_not_drift(self) -> None:
        monthly = Calendar(months=1)
        assert [t.day for t in monthly.preview(3, utc(2026, 1, 31, 12))] == [
            28,
            31,
            30,
        ]

    @pytest.mark.parametrize(
        ("kwargs", "error"),
        [
            ({}, ValueError),
            ({"days": 1, "weeks": 1}, ValueError),
            ({"days": -1}, ValueError),
            ({"days": True}, TypeError),
            ({"days": 1.5}, TypeError),
            ({"days": 1, "at": "25:00"}, ValueError),
            ({"days": 1, "at": "9am"}, ValueError),
            ({"days": 1, "at": 9}, TypeError),
            ({"days": 1, "at": time(9, tzinfo=UTC)}, ValueError),
            ({"days": 1, "tz": "Nowhere/Land"}, ValueError),
        ],
    )
    def test_bad_arguments(
        self, kwargs: dict[str, Any], error: type[Exception]
    ) -> None:
        with pytest.raises(error):
            Calendar(**kwargs)

    def test_last_at_or_before(self) -> None:
        monthly = Calendar(months=1, at="09:00", start=datetime(2026, 1, 31, 9))
        assert monthly._last_at_or_before(utc(2026, 4, 30, 8)) == utc(2026, 3, 31, 9)
        assert monthly._last_at_or_before(utc(2026, 4, 30, 9)) == utc(2026, 4, 30, 9)
        assert monthly._last_at_or_before(utc(2026, 1, 31, 8)) is None
        assert Calendar(days=1)._last_at_or_before(utc(2026, 1, 1)) is None
        far = monthly._last_at_or_before(utc(2226, 1, 1))
        assert far == utc(2225, 12, 31, 9)


# -- Every, At, AnyOf ------------------------------------------------------------------


class TestEvery:
    def test_pure_value_without_start(self) -> None:
        every = Every(timedelta(minutes=5))
        assert every.next_after(local(BERLIN, 2026, 1, 1, 12)) == utc(2026, 1, 1, 11, 5)
        assert every.elapsed
        assert every.period_seconds == 300.0

    def test_with_start(self) -> None:
        every = Every(10, start=utc(2026, 1, 1))
        assert every.next_after(utc(2025, 1, 1)) == utc(2026, 1, 1)
        assert every.next_after(utc(2026, 1, 1)) == utc(2026, 1, 1, 0, 0, 10)
        assert every.next_after(utc(2026, 1, 1, 0, 0, 25)) == utc(2026, 1, 1, 0, 0, 30)
        assert every._last_at_or_before(utc(2026, 1, 1, 0, 0, 25)) == utc(
            2026, 1, 1, 0, 0, 20
        )
        assert every._last_at_or_before(utc(2025, 1, 1)) is None

    def test_end(self) -> None:
        every = Every(10, start=utc(2026, 1, 1), end=utc(2026, 1, 1, 0, 0, 30))
        assert len(every.preview(10, utc(2025, 1, 1))) == 4
        assert Every(10, end=utc(2026, 1, 1)).next_after(utc(2026, 1, 1)) is None

    def test_fractional_period(self) -> None:
        every = Every(0.25, start=utc(2026, 1, 1))
        assert every.next_after(utc(2026, 1, 1, 0, 0, 1)) == datetime(
            2026, 1, 1, 0, 0, 1, 250000, tzinfo=UTC
        )

    def test_anchored(self) -> None:
        every = Every(60)
        anchored = every._anchored(utc(2026, 1, 1))
        assert anchored == Every(60, start=utc(2026, 1, 1, 0, 1))
        assert anchored._anchored(utc(2030, 1, 1)) is anchored
        assert every._last_at_or_before(utc(2026, 1, 1)) is None
        assert every._count_between(utc(2026, 1, 1), utc(2027, 1, 1), 5) == 0

    @pytest.mark.parametrize(
        ("period", "error"),
        [
            (0, ValueError),
            (-1, ValueError),
            (timedelta(0), ValueError),
            (float("nan"), ValueError),
            (float("inf"), ValueError),
            (1e-9, ValueError),
            (True, TypeError),
            ("5", TypeError),
            (None, TypeError),
        ],
    )
    def test_bad_period(self, period: Any, error: type[Exception]) -> None:
        with pytest.raises(error):
            Every(period)


class TestAtAndAnyOf:
    def test_at(self) -> None:
        at = At(utc(2026, 1, 1))
        assert at.next_after(utc(2025, 1, 1)) == utc(2026, 1, 1)
        assert at.next_after(utc(2026, 1, 1)) is None
        assert at._last_at_or_before(utc(2026, 1, 1)) == utc(2026, 1, 1)
        assert at._last_at_or_before(utc(2025, 1, 1)) is None
        assert at._count_between(utc(2025, 1, 1), utc(2027, 1, 1), 10) == 1
        assert at.preview(5, utc(2020, 1, 1)) == [utc(2026, 1, 1)]
        assert At(local(BERLIN, 2026, 1, 1, 1)).when.tzinfo is UTC

    def test_any_of_merges_and_dedupes(self) -> None:
        both = AnyOf(
            Cron("0 */6 * * *"),
            Cron("0 0,12 * * *", tz="Europe/London"),  # winter: same as UTC
            At(utc(2026, 1, 1, 3)),
        )
        assert fires(both, utc(2025, 12, 31, 23), 5) == [
            "2026-01-01T00:00:00+00:00",
            "2026-01-01T03:00:00+00:00",
            "2026-01-01T06:00:00+00:00",
            "2026-01-01T12:00:00+00:00",
            "2026-01-01T18:00:00+00:00",
        ]
        assert both.next_after(utc(2026, 1, 1, 1)) == utc(2026, 1, 1, 3)
        assert both._last_at_or_before(utc(2026, 1, 1, 5)) == utc(2026, 1, 1, 3)
        assert both._count_between(utc(2025, 12, 31, 23), utc(2026, 1, 2), 100) == 6

    def test_any_of_anchors_its_members(self) -> None:
        mixed = AnyOf(Every(60), At(utc(2030, 1, 1)))
        anchored = mixed._anchored(utc(2026, 1, 1))
        assert anchored == AnyOf(
            Every(60, start=utc(2026, 1, 1, 0, 1)), At(utc(2030, 1, 1))
        )
        assert AnyOf(At(utc(2030, 1, 1)))._anchored(utc(2026, 1, 1)) == AnyOf(
            At(utc(2030, 1, 1))
        )
        assert not mixed.elapsed

    def test_any_of_bad_arguments(self) -> None:
        with pytest.raises(ValueError, match="at least one"):
            AnyOf()
        with pytest.raises(TypeError, match="not str"):
            AnyOf("0 * * * *")  # type: ignore[arg-type]


# -- the scheduling side's private interface ------------------------------------------


class TestCatchUp:
    def test_last_at_or_before_200_years_per_second_is_one_step(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls = 0
        real_next = cronsim.CronSim.__next__

        def counting_next(self: cronsim.CronSim) -> datetime:
            nonlocal calls
            calls += 1
            return real_next(self)

        monkeypatch.setattr(cronsim.CronSim, "__next__", counting_next)
        per_second = Cron("* * * * * *", tz="Europe/Berlin")
        jump = datetime(2226, 7, 1, 12, 0, 0, 500000, tzinfo=UTC)
        last = per_second._last_at_or_before(jump)
        assert calls == 1
        assert last == jump.replace(microsecond=0)
        assert per_second.next_after(last - timedelta(microseconds=1)) == last
        assert per_second.next_after(last) == last + timedelta(seconds=1)

    @pytest.mark.parametrize(
        "trigger",
        [
            Cron("*/5 * * * * *"),
            Cron("0 30 2 * * *", tz="Europe/Berlin"),
            Cron("*/30 * * * *", tz="America/New_York"),
        ],
        ids=repr,
    )
    def test_last_at_or_before_is_one_step_for_every_kind_of_cron(
        self, trigger: Cron, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls = 0
        real_next = cronsim.CronSim.__next__

        def counting_next(self: cronsim.CronSim) -> datetime:
            nonlocal calls
            calls += 1
            return real_next(self)

        monkeypatch.setattr(cronsim.CronSim, "__next__", counting_next)
        assert trigger._last_at_or_before(utc(2226, 10, 25, 1, 30)) is not None
        assert calls == 1

    def test_count_between_caps_at_limit(self, monkeypatch: pytest.MonkeyPatch) -> None:
        calls = 0
        real_next = cronsim.CronSim.__next__

        def counting_next(self: cronsim.CronSim) -> datetime:
            nonlocal calls
            calls += 1
            return real_next(self)

        monkeypatch.setattr(cronsim.CronSim, "__next__", counting_next)
        per_second = Cron("* * * * * *")
        assert per_second._count_between(utc(2026, 1, 1), utc(2226, 1, 1), 1000) == 1000
        assert calls <= 1001
        assert (
            per_second._count_between(utc(2026, 1, 1), utc(2026, 1, 1, 0, 1), 1000)
            == 60
        )
        assert per_second._count_between(utc(2026, 1, 1), utc(2026, 1, 1), 10) == 0
        assert per_second._count_between(utc(2026, 1, 1), utc(2026, 1, 2), 0) == 0

    def test_every_counts_by_arithmetic(self) -> None:
        every = Every(1, start=utc(2026, 1, 1))
        assert every._count_between(utc(2025, 1, 1), utc(2226, 1, 1), 10**12) == (
            (utc(2226, 1, 1) - utc(2026, 1, 1)) // timedelta(seconds=1) + 1
        )
        assert (
            every._count_between(utc(2026, 1, 1), utc(2026, 1, 1, 0, 0, 10), 100) == 10
        )
        assert every._count_between(utc(2026, 1, 1), utc(2026, 1, 1, 0, 0, 10), 3) == 3
        bounded = Every(1, start=utc(2026, 1, 1), end=utc(2026, 1, 1, 0, 0, 4))
        assert bounded._count_between(utc(2020, 1, 1), utc(2030, 1, 1), 100) == 5
        assert every._count_between(utc(2020, 1, 1), utc(2025, 1, 1), 100) == 0

    def test_count_gap_collapse_counts_once(self) -> None:
        cron = Cron("0,30 2,3 * * *", tz="Europe/Berlin")
        # 02:00, 02:30 and 03:00 are all 03:00 CEST that day: one instant.
        assert fires(cron, local(BERLIN, 2026, 3, 29, 1), 3) == [
            "2026-03-29T03:00:00+02:00",
            "2026-03-29T03:30:00+02:00",
            "2026-03-30T02:00:00+02:00",
        ]
        assert (
            cron._count_between(
                local(BERLIN, 2026, 3, 29, 1), local(BERLIN, 2026, 3, 29, 4), 100
            )
            == 2
        )


# -- values -------------------------------------------------------------------------

TRIGGERS: list[Trigger] = [
    Every(300),
    Every(0.5, start=utc(2026, 1, 1), end=utc(2027, 1, 1)),
    Cron("0 9 * * mon-fri", tz="Europe/Berlin"),
    Cron("*/10 * * * * *", start=utc(2026, 1, 1), end=utc(2026, 2, 1)),
    Cron(
        "30 1 * * *",
        tz="America/New_York",
        start=local(NEW_YORK, 2026, 11, 1, 1, 30, fold=1),
    ),
    Calendar(months=1, at="09:30", tz="Europe/Berlin", start=datetime(2026, 1, 31)),
    Calendar(days=2, at=time(8, 15, 30, 500)),
    At(utc(2030, 1, 1)),
    AnyOf(Every(60), Cron("@hourly"), AnyOf(At(utc(2030, 1, 1)))),
]


class TestValues:
    @pytest.mark.parametrize("trigger", TRIGGERS, ids=repr)
    def test_json_round_trip(self, trigger: Trigger) -> None:
        data = json.loads(json.dumps(trigger.to_dict()))
        again = trigger_from_dict(data)
        assert again == trigger
        assert hash(again) == hash(trigger)
        assert repr(again) == repr(trigger)
        start = utc(2026, 3, 1)
        assert again.preview(5, start) == trigger.preview(5, start)

    @pytest.mark.parametrize("trigger", TRIGGERS, ids=repr)
    def test_immutable_and_copyable(self, trigger: Trigger) -> None:
        with pytest.raises(AttributeError):
            trigger.start = None
        with pytest.raises(AttributeError):
            trigger.anything = 1
        assert pickle.loads(pickle.dumps(trigger)) == trigger

    def test_equal_by_arguments(self) -> None:
        assert Every(60) == Every(timedelta(minutes=1)) == Every(60.0)
        assert Every(60) != Every(61)
        assert len({Every(60), Every(timedelta(seconds=60)), Every(61)}) == 2
        assert Cron("0  9 * * *") == Cron("0 9 * * *")
        assert Cron("0 9 * * *") != Cron("0 9 * * *", tz="Europe/Berlin")
        assert Cron("0 9 * * *") != Every(60)
        # The two 01:30s of New York's fold are different starts.
        first = local(NEW_YORK, 2026, 11, 1, 1, 30)
        second = local(NEW_YORK, 2026, 11, 1, 1, 30, fold=1)
        assert Cron("* * * * *", tz=NEW_YORK, start=first) != Cron(
            "* * * * *", tz=NEW_YORK, start=second
        )
        assert Calendar(days=1, at="09:00") == Calendar(days=1, at=time(9))
        assert AnyOf(Every(1)) == AnyOf(Every(1))

    def test_reprs(self) -> None:
        assert repr(Every(300)) == "Every(timedelta(seconds=300))"
        assert repr(Cron("0 9 * * *", tz="Europe/Berlin")) == (
            "Cron('0 9 * * *', tz='Europe/Berlin')"
        )
        assert repr(Calendar(months=1, at="09:00")) == "Calendar(months=1, at='09:00')"
        assert repr(At(utc(2030, 1, 1))) == "At(2030-01-01T00:00:00+00:00)"
        assert repr(AnyOf(Every(1), At(utc(2030, 1, 1)))) == (
            "AnyOf(Every(timedelta(seconds=1)), At(2030-01-01T00:00:00+00:00))"
        )

    def test_to_dict_needs_a_zone_name(self) -> None:
        with pytest.raises(ValueError, match="no IANA name"):
            Cron("* * * * *", tz=timezone(timedelta(hours=2))).to_dict()

    @pytest.mark.parametrize(
        ("data", "error"),
        [
            ({"type": "sometimes"}, ValueError),
            ({}, ValueError),
            ({"type": "every"}, ValueError),
            ({"type": "every", "period": 5, "colour": "red"}, ValueError),
            ({"type": "every", "period": 0}, ValueError),
            ({"type": "every", "period": 5, "start": 12}, TypeError),
            ({"type": "every", "period": 5, "start": "yesterday"}, ValueError),
            ({"type": "cron", "expr": "61 * * * *"}, ValueError),
            ({"type": "any_of", "triggers": {}}, TypeError),
            ({"type": "any_of", "triggers": []}, ValueError),
            ({"type": "at"}, ValueError),
            ([("type", "at")], TypeError),
        ],
    )
    def test_from_dict_refuses(self, data: Any, error: type[Exception]) -> None:
        with pytest.raises(error):
            trigger_from_dict(data)

    @pytest.mark.parametrize("trigger", TRIGGERS, ids=repr)
    def test_naive_instants_refused(self, trigger: Trigger) -> None:
        with pytest.raises(TypeError, match="aware"):
            trigger.next_after(datetime(2026, 1, 1))
        with pytest.raises(TypeError, match="aware"):
            trigger.preview(1, datetime(2026, 1, 1))
        with pytest.raises(TypeError):
            trigger.next_after("2026-01-01")  # type: ignore[arg-type]

    def test_preview_arguments(self) -> None:
        assert Every(1).preview(0) == []
        now = datetime.now(UTC)
        (first,) = Every(3600).preview(1)
        assert now + timedelta(minutes=59) < first < now + timedelta(minutes=61)
        with pytest.raises(ValueError, match="0 or more"):
            Every(1).preview(-1)
        with pytest.raises(TypeError):
            Every(1).preview(True)


# -- property: Cron against a minute-by-minute reference ------------------------------

DOW_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
MONTH_NAMES = [m.lower() for m in calendar.month_abbr[1:]]


@dataclass(frozen=True)
class Field:
    text: str
    values: frozenset[int]


@dataclass(frozen=True)
class DomField:
    text: str
    values: frozenset[int]
    last: bool = False
    last_weekday: bool = False


@dataclass(frozen=True)
class DowField:
    text: str
    values: frozenset[int]  # 0 = Sunday
    nth: tuple[int, int] | None = None  # (weekday, n)
    last_of: int | None = None  # weekday


def numeric(
    lo: int, hi: int, names: list[str] | None = None
) -> st.SearchStrategy[Field]:
    """Cron field texts over lo..hi together with the values they mean."""

    def one(v: int) -> str:
        if names is not None and v - lo < len(names):
            return names[v - lo]
        return str(v)

    every = st.just(Field("*", frozenset(range(lo, hi + 1))))
    star_step = st.integers(2, max(2, (hi - lo) // 2)).map(
        lambda k: Field(f"*/{k}", frozenset(range(lo, hi + 1, k)))
    )
    single = st.integers(lo, hi).map(lambda v: Field(one(v), frozenset({v})))
    listed = st.lists(st.integers(lo, hi), min_size=2, max_size=4, unique=True).map(
        lambda vs: Field(",".join(map(str, vs)), frozenset(vs))
    )

    def ranged(a: int, b: int, k: int) -> Field:
        lo_, hi_ = min(a, b), max(a, b)
        step = f"/{k}" if k > 1 else ""
        return Field(f"{lo_}-{hi_}{step}", frozenset(range(lo_, hi_ + 1, k)))

    ranges = st.builds(
        ranged, st.integers(lo, hi), st.integers(lo, hi), st.integers(1, 4)
    )
    return st.one_of(every, star_step, single, listed, ranges)


def dom_fields() -> st.SearchStrategy[DomField]:
    plain = numeric(1, 31).map(lambda f: DomField(f.text, f.values))
    special = st.sampled_from(
        [
            DomField("L", frozenset(), last=True),
            DomField("LW", frozenset(), last_weekday=True),
        ]
    )
    return st.one_of(plain, plain, special)


def dow_fields() -> st.SearchStrategy[DowField]:
    plain = numeric(0, 6, DOW_NAMES).map(lambda f: DowField(f.text, f.values))
    sunday7 = st.just(DowField("7", frozenset({0})))
    nth = st.builds(
        lambda w, n: DowField(f"{w}#{n}", frozenset(), nth=(w, n)),
        st.integers(0, 6),
        st.integers(1, 4),
    )
    last = st.integers(0, 6).map(lambda w: DowField(f"{w}L", frozenset(), last_of=w))
    return st.one_of(plain, plain, sunday7, nth, last)


@dataclass(frozen=True)
class Expr:
    seconds: Field | None
    minute: Field
    hour: Field
    dom: DomField
    month: Field
    dow: DowField

    @property
    def text(self) -> str:
        fields: list[Field | DomField | DowField]
        fields = [self.minute, self.hour, self.dom, self.month, self.dow]
        texts = [f.text for f in fields]
        return " ".join(([self.seconds.text] if self.seconds else []) + texts)

    @property
    def fixed(self) -> bool:
        return not self.minute.text.startswith("*") and not self.hour.text.startswith(
            "*"
        )

    def day_matches(self, d: date) -> bool:
        if d.month not in self.month.values:
            return False
        last = calendar.monthrange(d.year, d.month)[1]
        dom = (
            d.day in self.dom.values
            or (self.dom.last and d.day == last)
            or (self.dom.last_weekday and d.day == last_weekday(d.year, d.month))
        )
        weekday = (d.weekday() + 1) % 7
        dow = (
            weekday in self.dow.values
            or self.dow.nth == (weekday, (d.day - 1) // 7 + 1)
            or (self.dow.last_of == weekday and d.day + 7 > last)
        )
        if self.dom.text.startswith("*") or self.dow.text.startswith("*"):
            return dom and dow
        return dom or dow

    def time_matches(self, wall: datetime) -> bool:
        return (
            wall.hour in self.hour.values
            and wall.minute in self.minute.values
            and wall.second in (self.seconds.values if self.seconds else {0})
        )


def never_fires(expr: Expr) -> bool:
    """Day-of-month numbers only, ANDed, and no chosen month that long."""
    if not (expr.dom.text.startswith("*") or expr.dow.text.startswith("*")):
        return False
    if expr.dom.last or expr.dom.last_weekday or not expr.dom.values:
        return False
    longest = max(calendar.monthrange(2024, m)[1] for m in expr.month.values)
    return min(expr.dom.values) > longest


def last_weekday(year: int, month: int) -> int:
    day = calendar.monthrange(year, month)[1]
    while date(year, month, day).weekday() >= 5:
        day -= 1
    return day


@st.composite
def expressions(draw: st.DrawFn) -> Expr:
    seconds = draw(st.one_of(st.none(), numeric(0, 59)))
    month = draw(
        st.one_of(
            st.just(Field("*", frozenset(range(1, 13)))),
            numeric(1, 12, MONTH_NAMES),
        )
    )
    return Expr(
        seconds=seconds,
        minute=draw(numeric(0, 59)),
        hour=draw(numeric(0, 23)),
        dom=draw(dom_fields()),
        month=month,
        dow=draw(dow_fields()),
    )


MINUTE = timedelta(minutes=1)


def reference_next(
    expr: Expr, tz: ZoneInfo, t: datetime, horizon: datetime
) -> datetime | None:
    """The first fire time after *t*, by walking UTC minute by minute.

    For each minute: its local wall time; a fixed expression fires at a wall
    time's first occurrence only, and at the first instant after a gap for
    any matching wall time inside the gap; any other expression fires at
    every instant whose wall time matches. Days that cannot match are
    skipped whole. ``None`` when nothing fires before *horizon*.
    """
    seconds = sorted(expr.seconds.values) if expr.seconds else [0]
    u = t.astimezone(UTC).replace(second=0, microsecond=0)
    while u <= horizon:
        wall = u.astimezone(tz)
        if not expr.day_matches(wall.date()):
            following = datetime.combine(wall.date() + timedelta(days=1), time())
            u = following.replace(tzinfo=tz).astimezone(
                UTC
            )  # first instant of that day
            continue
        naive = wall.replace(tzinfo=None)
        before = (u - MINUTE).astimezone(tz).replace(tzinfo=None)
        jumped = naive - before > MINUTE  # a gap ends at u
        for s in seconds:
            instant = u + timedelta(seconds=s)
            if instant <= t:
                continue
            local_time = naive + timedelta(seconds=s)
            if expr.fixed:
                if s == 0 and jumped and gap_matches(expr, before + MINUTE, naive):
                    return instant
                if wall.fold == 0 and expr.time_matches(local_time):
                    return instant
            elif expr.time_matches(local_time):
                return instant
        u += MINUTE
    return None


def gap_matches(expr: Expr, first: datetime, end: datetime) -> bool:
    seconds = sorted(expr.seconds.values) if expr.seconds else [0]
    wall = first
    while wall < end:
        if expr.day_matches(wall.date()) and any(
            expr.time_matches(wall + timedelta(seconds=s)) for s in seconds
        ):
            return True
        wall += MINUTE
    return False


def transitions() -> list[datetime]:
    """Every DST change in the test zones from 2020 to 2030 (UTC instants)."""
    found = []
    for name in ZONES[1:]:
        tz = ZoneInfo(name)
        u = utc(2020, 1, 1)
        while u.year < 2031:
            nxt = u + timedelta(days=1)
            if u.astimezone(tz).utcoffset() != nxt.astimezone(tz).utcoffset():
                lo, hi = u, nxt
                while hi - lo > MINUTE:
                    mid = lo + (hi - lo) / 2
                    if mid.astimezone(tz).utcoffset() == lo.astimezone(tz).utcoffset():
                        lo = mid
                    else:
                        hi = mid
                found.append(hi.replace(second=0, microsecond=0))
            u = nxt
    return found


TRANSITIONS = transitions()

instants = st.one_of(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31)).map(
        lambda d: d.replace(tzinfo=UTC)
    ),
    st.builds(
        lambda u, m, s: u + timedelta(minutes=m, seconds=s),
        st.sampled_from(TRANSITIONS),
        st.integers(-26 * 60, 3 * 60),
        st.sampled_from([0, 0, 0, 1, 29, 59.5]),
    ),
)


def test_reference_sees_every_transition() -> None:
    assert len(TRANSITIONS) >= 4 * 2 * 10


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=expressions(), zone=st.sampled_from(ZONES), t=instants)
def test_cron_matches_the_reference(expr: Expr, zone: str, t: datetime) -> None:
    tz = ZoneInfo(zone)
    if never_fires(expr):  # e.g. day 31 in February only
        with pytest.raises(ValueError, match="never fires"):
            Cron(expr.text, tz=zone)
        return
    cron = Cron(expr.text, tz=zone)
    assert cron.fixed == expr.fixed
    horizon = t + timedelta(days=3 * 366)
    want = reference_next(expr, tz, t, horizon)
    got = cron.next_after(t)
    if want is None:
        assert got is None or got > horizon
        return
    # In UTC: Python never calls a time in a fold equal to another zone's.
    assert got is not None
    assert as_utc(got) == want, (expr.text, zone, t.isoformat())
    assert got.tzinfo is tz
    assert got.utcoffset() == want.astimezone(tz).utcoffset()  # the right fold

    # Catch-up agrees with next_after: `want` is a fire time and nothing fires
    # between it and the last fire time at or before it.
    assert as_utc(cron._last_at_or_before(want)) == want
    previous = as_utc(cron._last_at_or_before(want - timedelta(microseconds=1)))
    if previous is not None:
        assert previous < want
        assert as_utc(cron.next_after(previous)) == want
    assert cron._count_between(t, want, 5) == 1


@settings(max_examples=200, deadline=None)
@given(
    unit=st.sampled_from(["days", "weeks", "months", "years"]),
    n=st.integers(1, 5),
    at=st.times(),
    zone=st.sampled_from(ZONES),
    start=instants,
    t=instants,
)
def test_calendar_catch_up_agrees_with_next_after(
    unit: str, n: int, at: time, zone: str, start: datetime, t: datetime
) -> None:
    count: dict[str, Any] = {unit: n}
    trigger = Calendar(**count, at=at, tz=zone, start=start)
    first = trigger.next_after(start - timedelta(microseconds=1))
    assert first is not None
    assert first >= start
    assert (
        first.astimezone(ZoneInfo(zone)).date()
        in (
            start.astimezone(ZoneInfo(zone)).date(),
            start.astimezone(ZoneInfo(zone)).date() + timedelta(days=1),
        )
        or unit != "days"
        or n > 1
    )
    last = as_utc(trigger._last_at_or_before(t))
    following = as_utc(trigger.next_after(t))
    assert following is not None
    assert following > t
    if last is None:
        assert t < first
    else:
        assert last <= t
        assert as_utc(trigger.next_after(last)) == following
        assert as_utc(trigger.next_after(last - timedelta(microseconds=1))) == last
