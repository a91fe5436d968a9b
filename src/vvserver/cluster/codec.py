"""Frozen event dataclasses to JSON and back, by their tag.

Visit events (``domain.visits.bus``) carry a ``kind`` Literal; room events
(``media.room_events``) are told apart by class name (``type``). Datetimes travel as ISO 8601.
A new event class needs nothing here: it is found through the union it is added to.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any, TypeVar, get_args, get_type_hints

from vvserver.domain.visits.bus import VisitEvent
from vvserver.media.room_events import RoomEvent

T = TypeVar("T")


def _fields(obj: object) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, field.name)
        out[field.name] = value.isoformat() if isinstance(value, datetime) else value
    return out


def _build(cls: type[T], data: dict[str, Any]) -> T:
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name not in data:
            continue
        value = data[field.name]
        if value is not None and datetime in (hints[field.name], *get_args(hints[field.name])):
            value = datetime.fromisoformat(value)
        values[field.name] = value
    return cls(**values)


def _visit_event_classes() -> dict[str, type[Any]]:
    classes: dict[str, type[Any]] = {}
    for cls in get_args(VisitEvent):
        kind = next(f.default for f in dataclasses.fields(cls) if f.name == "kind")
        classes[str(kind)] = cls
    return classes


_VISIT_EVENTS = _visit_event_classes()
_ROOM_EVENTS: dict[str, type[Any]] = {cls.__name__: cls for cls in get_args(RoomEvent)}


class UnknownEvent(ValueError):
    """A message of a kind this node does not know (a newer node in a rolling upgrade)."""


def visit_event_json(event: VisitEvent) -> dict[str, Any]:
    return _fields(event)


def visit_event_from(data: dict[str, Any]) -> VisitEvent:
    cls = _VISIT_EVENTS.get(str(data.get("kind")))
    if cls is None:
        raise UnknownEvent(f"unknown visit event kind {data.get('kind')!r}")
    event: VisitEvent = _build(cls, data)
    return event


def room_event_json(event: RoomEvent) -> dict[str, Any]:
    return {"type": type(event).__name__, **_fields(event)}


def room_event_from(data: dict[str, Any]) -> RoomEvent:
    cls = _ROOM_EVENTS.get(str(data.get("type")))
    if cls is None:
        raise UnknownEvent(f"unknown room event type {data.get('type')!r}")
    event: RoomEvent = _build(cls, data)
    return event


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))
