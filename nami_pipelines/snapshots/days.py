"""The instant a daily snapshot describes, shared by the code that writes and reads days."""

from datetime import UTC, date, datetime, timedelta


def day_end(day: date) -> datetime:
    """The last instant of a UTC day: the snapshot of day D counts events up to it."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1, microseconds=-1)
