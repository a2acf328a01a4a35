"""Aware datetimes go to PostgreSQL in UTC.

Python accepts UTC offsets up to ±23:59 but PostgreSQL only up to ±15:59, so a query parameter
such as `opened_after=2110-03-27T01:20:12-19:13` (found by fuzzing the API's filters) made every
filter and report that takes a time answer 500. Sending the same instant in UTC keeps all of
them working, whatever the client's offset: one dumper for every connection, instead of a check
in every filter.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime


def register_utc_datetimes() -> None:
    try:
        import psycopg
        from psycopg.types.datetime import DatetimeDumper
    except ImportError:  # SQLite only (the demo)
        return

    class UtcDatetimeDumper(DatetimeDumper):
        def dump(self, obj: datetime):
            if obj.tzinfo is not None:
                # Beyond year 9999 once in UTC: sent as it is, and PostgreSQL judges it.
                with contextlib.suppress(OverflowError):
                    obj = obj.astimezone(UTC)
            return super().dump(obj)

    psycopg.adapters.register_dumper(datetime, UtcDatetimeDumper)
