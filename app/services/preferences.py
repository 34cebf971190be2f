"""Channel preferences: global switches and per-category overrides; absent means on."""

from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from app.api.schemas import CHANNELS, PreferencesUpdate
from app.db import insert_for, utcnow
from app.models import Preference


def _as_dict(preference: Preference | None) -> dict[str, Any]:
    stored_channels = preference.channels if preference else {}
    return {
        "channels": {channel: stored_channels.get(channel, True) for channel in CHANNELS},
        "categories": dict(preference.categories) if preference else {},
    }


def get_preferences(session: Session, user_id: str) -> dict[str, Any]:
    """Every channel's global switch, and the categories that override any."""
    return _as_dict(session.get(Preference, user_id))


def update_preferences(session: Session, user_id: str, change: PreferencesUpdate) -> dict[str, Any]:
    """Apply a partial update: named switches are set, `null` resets one to the default."""
    # Insert-or-nothing first, then lock: two first-time updates at once cannot collide.
    session.execute(
        insert_for(session, Preference.__table__)
        .values(user_id=user_id, channels={}, categories={})
        .on_conflict_do_nothing(index_elements=["user_id"])
    )
    preference = session.get(Preference, user_id, with_for_update=True, populate_existing=True)
    assert preference is not None
    channels = dict(preference.channels)
    for channel, enabled in change.channels.items():
        _set_or_reset(channels, channel, enabled)
    categories = {name: dict(switches) for name, switches in preference.categories.items()}
    for category, switches in change.categories.items():
        merged = categories.get(category, {})
        for channel, enabled in switches.items():
            _set_or_reset(merged, channel, enabled)
        if merged:
            categories[category] = merged
        else:
            categories.pop(category, None)
    # New objects, so SQLAlchemy sees the JSON columns change.
    preference.channels = channels
    preference.categories = categories
    preference.updated_at = utcnow()
    return _as_dict(preference)


class Switches(NamedTuple):
    """A user's stored switches, as a send reads them (empty for a user who set none)."""

    channels: dict[str, bool]
    categories: dict[str, dict[str, bool]]


def opted_out(switches: Switches, channel: str, category: str) -> str | None:
    """Why the user does not want `channel` for `category`, or None when they do."""
    if switches.channels.get(channel) is False:
        return f"opted out: {channel} is off"
    if switches.categories.get(category, {}).get(channel) is False:
        return f"opted out: {channel} is off for {category}"
    return None


def _set_or_reset(switches: dict[str, bool], channel: str, enabled: bool | None) -> None:
    if enabled is None:
        switches.pop(channel, None)
    else:
        switches[channel] = enabled
