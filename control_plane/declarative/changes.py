"""A plan: the changes it makes, as shown (each item created, changed or removed, with
the fields that change), and the steps that append their events."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from control_plane.store import Step
from shared.events import Event, NewEvent, event_type
from shared.reducer import apply
from shared.state import State

__all__ = ["HIDDEN", "Action", "Change", "FieldChange", "Kind", "Plan", "added", "differences"]

HIDDEN = "(secret)"  # what a plan shows of a secret
Action = Literal["create", "change", "remove"]
Kind = Literal["tenant", "provider", "provider_price", "route", "deployment", "price"]


class FieldChange(msgspec.Struct):
    """`field` (a path such as `retry.max_attempts`) goes from `old` to `new` (null:
    not set)."""

    field: str
    old: Any = None
    new: Any = None


class Change(msgspec.Struct):
    action: Action
    kind: Kind
    name: str  # the tenant's or provider's name, the route's model, ...
    fields: list[FieldChange] = []


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    def add(self, change: Change, *steps: Step) -> None:
        self.changes.append(change)
        self.steps.extend(steps)

    @property
    def digest(self) -> str:
        """Names the changes (not the ids the plan made up for new items), so that an
        apply can insist on applying what was shown."""
        return hashlib.sha256(msgspec.json.encode(self.changes)).hexdigest()

    def rehearse(self, state: State) -> list[NewEvent]:
        """The events the steps would append to `state`, each step seeing the state after
        the ones before, as `EventStore.append_all` runs them; nothing is written."""
        made: list[NewEvent] = []
        for step in self.steps:
            for payload in step.decide(state):
                event = Event(
                    position=state.position + 1,
                    stream=step.stream,
                    stream_version=0,  # unknown here, and nothing folds it
                    type=event_type(payload),
                    payload=payload,
                    actor="plan",
                    created_at=datetime.now(UTC),
                )
                state = apply(state, event)
                made.append(NewEvent(step.stream, payload))
        return made


def differences(old: Mapping[str, Any], new: Mapping[str, Any], at: str = "") -> list[FieldChange]:
    """The fields that differ, nested mappings field by field (`retry.max_attempts`, also
    where one side has none); a field missing on one side is null there."""
    found: list[FieldChange] = []
    for name in [*new, *(k for k in old if k not in new)]:
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        nested = all(v is None or isinstance(v, Mapping) for v in (before, after))
        inner = differences(before or {}, after or {}, f"{at}{name}.") if nested else []
        found += inner or [FieldChange(f"{at}{name}", before, after)]
    return found


def added(new: Mapping[str, Any]) -> list[FieldChange]:
    """Every field of something new, nested ones field by field."""
    return differences({}, new)
