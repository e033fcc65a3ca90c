"""The OpenAPI document's component schemas: msgspec's, for the very types the server
decodes bodies (`control_plane.strict`) and encodes answers with, so each field's
pattern and range is the one checked, and `additionalProperties: false` stands where
unknown fields are refused. A body's structs add the rules their class states in
`json_schema_extra` (what one field allows depending on another, e.g. which fields
each provider kind takes): they bind what the server takes, not what it sends. A
struct both taken and sent whose rules make the two differ has two schemas, `Name`
for what the server sends and `NameInput` for what it takes."""

from __future__ import annotations

import copy
from typing import Any

import msgspec

__all__ = ["REF", "Schema", "Schemas"]

Schema = dict[str, Any]
REF = "#/components/schemas/{name}"


class Schemas:
    """`taken[t]`, `sent[t]`: the schema (a reference) of body type `t` or answer type `t`;
    `components`: what they refer to."""

    def __init__(self, bodies: list[Any], answers: list[Any]) -> None:
        refs, taken = msgspec.json.schema_components(bodies, ref_template=REF)
        sent_refs, sent = msgspec.json.schema_components(answers, ref_template=REF)
        _add_struct_rules(taken, bodies)
        renames = {name: f"{name}Input" for name in _differing(taken, sent)}
        if set(renames.values()) & (taken.keys() | sent.keys()):
            raise RuntimeError(f"a schema is already named as one of {sorted(renames.values())}")
        self.taken = dict(zip(bodies, _renamed(list(refs), renames), strict=True))
        self.sent = dict(zip(answers, sent_refs, strict=True))
        taken = {renames.get(name, name): _renamed(s, renames) for name, s in taken.items()}
        self.components = dict(sorted({**sent, **taken}.items()))


def _differing(taken: dict[str, Schema], sent: dict[str, Schema]) -> set[str]:
    """The schemas both taken and sent that differ, and those taken that refer to them."""
    differing = {name for name in taken.keys() & sent.keys() if taken[name] != sent[name]}
    while more := {
        name
        for name in taken.keys() & sent.keys()
        if name not in differing and _refers(taken[name], differing)
    }:
        differing |= more
    return differing


def _refers(schema: Any, names: set[str]) -> bool:
    if isinstance(schema, dict):
        if schema.get("$ref") in {REF.format(name=name) for name in names}:
            return True
        return any(_refers(value, names) for value in schema.values())
    return isinstance(schema, list) and any(_refers(value, names) for value in schema)


def _renamed(schema: Any, renames: dict[str, str]) -> Any:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.rpartition("/")[2] in renames:
            return {**schema, "$ref": REF.format(name=renames[ref.rpartition("/")[2]])}
        return {key: _renamed(value, renames) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_renamed(value, renames) for value in schema]
    return schema


def _add_struct_rules(components: dict[str, Schema], types: list[Any]) -> None:
    """Merge into each struct's schema the rules its class states in `json_schema_extra`."""
    for cls in _structs(types):
        extra = getattr(cls, "json_schema_extra", None)
        if not extra:
            continue
        named = [c for c in components.values() if c.get("title") == cls.__name__]
        if len(named) != 1:
            raise RuntimeError(f"no one schema for {cls.__qualname__} to add its rules to")
        clash = set(extra) & set(named[0])
        if clash:
            raise RuntimeError(f"{cls.__qualname__}.json_schema_extra overrides {clash}")
        named[0].update(copy.deepcopy(extra))


def _structs(types: list[Any]) -> set[type]:
    """Every struct class in `types`, however deep."""
    found: set[type] = set()
    todo: list[Any] = list(msgspec.inspect.multi_type_info(types))
    while todo:
        info = todo.pop()
        if isinstance(info, msgspec.inspect.StructType):
            if info.cls in found:
                continue
            found.add(info.cls)
        if isinstance(info, msgspec.Struct):  # a type, or a struct's field
            todo.extend(msgspec.structs.astuple(info))
        elif isinstance(info, tuple):
            todo.extend(info)
    return found
