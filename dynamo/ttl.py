"""Time to live: whether an item has expired, as DynamoDB's TTL process decides it (pure: the clock is
passed in).

An item is expired when its TTL attribute is a top-level Number of epoch seconds that lies in the past,
but no more than five years in the past: other values (a String, a map, milliseconds far in the future,
a date older than five years) are ignored, as DynamoDB ignores them. Expired items stay readable until
they are deleted.
"""

from __future__ import annotations

from typing import Any

# "no more than five years in the past" (DynamoDB developer guide, Using TTL): a year of 365 days.
MAX_EXPIRED_AGE_S = 5 * 365 * 24 * 3600


def expired_value(item: dict[str, Any] | None, attribute: str, now_s: float) -> str | None:
    """The attribute's Number (as stored) if ``item`` has expired at ``now_s``, else None."""
    if not item:
        return None
    value = item.get(attribute)
    if not isinstance(value, dict) or len(value) != 1:
        return None
    text = value.get("N")
    if not isinstance(text, str):
        return None
    try:
        seconds = float(text)
    except ValueError:
        return None
    return text if now_s - MAX_EXPIRED_AGE_S <= seconds < now_s else None
