"""The value types of the expression language and the types of constants."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

Const = float | int | str | bool | list["Const"] | dict[str, "Const"]


@dataclass(frozen=True, slots=True)
class Type:
    kind: str  # number | string | bool | time | list | map | any
    item: Type | None = None  # element type of a list or value type of a map
    fields: tuple[tuple[str, Type], ...] | None = None  # known keys of a constant map
    nullable: bool = False

    def __str__(self) -> str:
        if self.kind == "list" and self.item is not None and self.item.kind != "any":
            return f"list of {self.item.kind}"
        return self.kind + (" or null" if self.nullable else "")

    def field(self, name: str) -> Type | None:
        if self.fields is None:
            return None
        return dict(self.fields).get(name)

    def compatible(self, other: Type) -> bool:
        return self.kind == "any" or other.kind == "any" or self.kind == other.kind


NUMBER = Type("number")
STRING = Type("string")
BOOL = Type("bool")
ANY = Type("any")
NULL_STRING = Type("string", nullable=True)
NULL_NUMBER = Type("number", nullable=True)
# An instant of event time (``intent.time``): opaque to the linter, read through functions
# (weekday, time_of_day, in_window) and compared with other times.
TIME = Type("time")


def list_of(item: Type) -> Type:
    return Type("list", item=item)


def unify(types: Sequence[Type]) -> Type:
    """The common type of a collection's members, or `any` when they differ."""
    kinds = {t.kind for t in types}
    if len(kinds) == 1:
        first = types[0]
        return Type(first.kind, first.item) if first.kind in ("list", "map") else first
    return ANY


def type_of(value: object) -> Type:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int | float):
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, datetime):
        return TIME
    if isinstance(value, list):
        return list_of(unify([type_of(v) for v in value]) if value else ANY)
    if isinstance(value, Mapping):
        fields = tuple((str(k), type_of(v)) for k, v in value.items())
        return Type("map", item=unify([t for _, t in fields]) if fields else ANY, fields=fields)
    return ANY
