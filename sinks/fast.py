"""The sink's fast path: one topic's messages → checked columns, without building a pydantic model per message.

A `Shape` is compiled from the topic's model. It accepts a *subset* of what the model accepts — exact JSON
types, canonical ISO timestamps with an offset, every length/pattern/range/choice constraint of each field, the
field's validators and the model's after-validators — and yields the same values the model would hold. Anything
else, wrong or merely unusual (a URL field, a naive timestamp, an integer where a float goes), is left to the
full pydantic validation, which stays the only judge of what becomes a dead letter and why.

Checks run column by column over distinct values (codes, coordinates and kinds repeat a lot), so the Python
cost per message is a dict lookup per field plus the work on values that really differ.
"""
from __future__ import annotations

import dataclasses
import math
import operator
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

import annotated_types as at
import orjson
from pydantic import AnyUrl, BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic.functional_validators import AfterValidator

from cityops.models import envelope

_MISSING = object()
_INT64 = (-(2 ** 63), 2 ** 63 - 1)
# What the producers write (pydantic's JSON mode), in the range ClickHouse's DateTime64 holds.
_TIME_TEXT = r"(?:19|2[0-2])\d\d-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)"
_TIME = re.compile(_TIME_TEXT, re.ASCII)
_TIMES = re.compile(rf"(?:{_TIME_TEXT}\n)*{_TIME_TEXT}", re.ASCII)   # a whole column in one pass
# Field validators that only bound a zoned time from below and above: when a column's earliest and latest
# values pass, every value does (tests/test_sink_decode.py checks this property of each one listed).
INTERVAL_CHECKS = frozenset({envelope._plausible})
# Model settings that do not change what a field accepts or holds; any other makes the model slow-path only.
_NEUTRAL_CONFIG = {"extra", "frozen", "use_enum_values", "title", "json_schema_extra"}


class Unsupported(Exception):
    """A field or model the fast path does not reproduce exactly."""


@dataclass(frozen=True)
class FieldShape:
    name: str
    types: frozenset[type]                 # JSON value types accepted (NoneType when optional)
    check: Callable[[object], bool] | None  # on each distinct non-null value
    time: bool                              # text to parse into a datetime (kept as text for ClickHouse)
    after: tuple[Callable, ...]             # the field's after-validators, on parsed values
    required: bool
    default: object                         # when absent
    factory: Callable | None
    enum: type[Enum] | None                 # the model holds Enum members (use_enum_values off)
    to_float: bool                          # the model holds float(v) for an int
    url: TypeAdapter | None = None          # text validated (and normalised) by pydantic itself


def _peel(annotation) -> tuple[object, bool, list]:
    """(inner type, optional?, metadata) with Annotated and `X | None` peeled off."""
    optional, metadata = False, []
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation, *extra = typing.get_args(annotation)
            for e in extra:
                metadata += e.metadata if isinstance(e, FieldInfo) else [e]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                raise Unsupported(f"union {annotation}")
            optional = optional or len(args) < len(typing.get_args(annotation))
            annotation = args[0]
        else:
            return annotation, optional, metadata


def _constraints(metadata: list) -> tuple[dict, list]:
    limits, after = {}, []
    for m in metadata:
        if isinstance(m, (at.MinLen, at.MaxLen, at.Ge, at.Le, at.Gt, at.Lt)):
            limits.update({f.name: getattr(m, f.name) for f in dataclasses.fields(m)})
        elif isinstance(m, AfterValidator):
            after.append(m.func)
        elif type(m).__name__ in ("_PydanticGeneralMetadata", "AllowInfNan") and set(vars(m)) <= {"pattern", "allow_inf_nan"}:
            limits.update(vars(m))
        else:
            raise Unsupported(f"constraint {m!r}")
    return limits, after


def _pattern(pattern: str) -> Callable[[str], bool]:
    """pydantic matches with Rust's regex (search; `$` only at the very end). Python's ASCII classes accept a
    subset of Rust's Unicode ones; negated classes and word boundaries would not, so they are not handled."""
    if any(x in pattern for x in ("\\b", "\\B", "\\D", "\\W", "\\S", "[^")):
        raise Unsupported(f"pattern {pattern}")
    rx = re.compile(pattern, re.ASCII)
    return lambda s: rx.search(s) is not None and not s.endswith("\n")


def _field(name: str, info: FieldInfo, use_enum_values: bool) -> FieldShape:
    inner, optional, metadata = _peel(info.annotation)
    limits, after = _constraints(info.metadata + metadata)
    enum = None
    checks: list[Callable[[object], bool]] = []
    if typing.get_origin(inner) is typing.Literal or (isinstance(inner, type) and issubclass(inner, Enum)):
        choices = typing.get_args(inner) if typing.get_origin(inner) is typing.Literal else list(inner)
        values = {c.value if isinstance(c, Enum) else c for c in choices}
        if not all(isinstance(v, str) for v in values) or limits:
            raise Unsupported(f"{name}: choices {choices}")
        if isinstance(inner, type) and not use_enum_values:
            enum = inner
        accepted, checks = {str}, [values.__contains__]
    elif inner is str:
        accepted = {str}
        if "min_length" in limits:
            checks.append(lambda s, n=limits.pop("min_length"): len(s) >= n)
        if "max_length" in limits:
            checks.append(lambda s, n=limits.pop("max_length"): len(s) <= n)
        if "pattern" in limits:
            checks.append(_pattern(limits.pop("pattern")))
    elif inner is int or inner is float:
        accepted = {int} if inner is int else {int, float}
        limits.pop("allow_inf_nan", None)   # non-finite floats are refused below, whatever the field allows
        checks.append((lambda v: _INT64[0] <= v <= _INT64[1]) if inner is int else math.isfinite)
        for key, op in (("ge", float.__ge__), ("le", float.__le__), ("gt", float.__gt__), ("lt", float.__lt__)):
            if key in limits:
                checks.append(lambda v, op=op, bound=float(limits.pop(key)): op(float(v), bound))
    elif inner is bool:
        accepted = {bool}
    elif inner is datetime:
        accepted = {str, datetime} if info.default_factory else {str}   # datetime: only from the factory
    elif isinstance(inner, type) and issubclass(inner, AnyUrl) and not limits:
        accepted = {str}   # pydantic validates a URL from a JSON string as from a Python one
    elif not info.is_required() and info.default is None and not info.default_factory:
        accepted = set()   # e.g. a URL: messages without it only; the others take the slow path
    else:
        raise Unsupported(f"{name}: type {inner}")
    if limits:
        raise Unsupported(f"{name}: constraints {limits}")
    if optional:
        accepted.add(type(None))
    factory = info.default_factory
    default = None if info.is_required() or factory else info.default
    return FieldShape(name, frozenset(accepted), _all(checks), inner is datetime, tuple(after), info.is_required(),
                      default.value if isinstance(default, Enum) else default, factory, enum,
                      inner is float, TypeAdapter(inner) if isinstance(inner, type) and issubclass(inner, AnyUrl) else None)


def _all(checks: list[Callable[[object], bool]]) -> Callable[[object], bool] | None:
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    return lambda v: all(c(v) for c in checks)


def _extremes_pass(check: Callable, parsed: list[datetime | None]) -> bool:
    present = [t for t in parsed if t is not None]
    if not present:
        return True
    try:
        check(min(present))
        check(max(present))
    except Exception:  # noqa: BLE001
        return False
    return True


def _parse_time(s: str) -> datetime | None:
    if _TIME.fullmatch(s) is None:
        return None
    try:
        return datetime.fromisoformat(s)
    except ValueError:
        return None


@dataclass
class Columns:
    """The accepted messages (`index`: positions in the input), a list per model field, as the model would
    hold them except timestamps (`values` keeps the text, `times` the parsed datetimes)."""

    index: list[int]
    values: dict[str, list]
    times: dict[str, list[datetime | None]]


class Shape:
    def __init__(self, model: type[BaseModel]):
        config = model.model_config
        if set(config) - _NEUTRAL_CONFIG or any(f.alias for f in model.model_fields.values()):
            raise Unsupported(f"{model.__name__}: settings {sorted(set(config) - _NEUTRAL_CONFIG)} or aliases")
        decorators = model.__pydantic_decorators__
        if decorators.field_validators or decorators.root_validators or decorators.validators or \
                any(d.info.mode != "after" for d in decorators.model_validators.values()):
            raise Unsupported(f"{model.__name__}: validators other than model after-validators")
        self.model = model
        self.fields = [_field(n, f, bool(config.get("use_enum_values"))) for n, f in model.model_fields.items()]
        self.allowed = frozenset(f.name for f in self.fields)
        self.required = frozenset(f.name for f in self.fields if f.required)
        self.forbid_extra = config.get("extra") == "forbid"
        self.model_checks = tuple(d.func for d in decorators.model_validators.values())

    def decode(self, values: list[bytes | None]) -> Columns:
        """The messages this shape accepts, as columns; the others are simply not in `index`."""
        objs, bad = _load(values)
        raw, absent = self._columns(objs, bad)
        out: dict[str, list] = {}
        times: dict[str, list] = {}
        for f in self.fields:
            out[f.name] = col = self._fill(f, raw[f.name], bad, f.name in absent)
            if f.time:
                times[f.name] = self._times(f, col, bad)
        if self.model_checks:
            self._model_checks(out, times, bad)
        if not bad:
            return Columns(list(range(len(values))), out, times)
        keep = [i for i in range(len(values)) if i not in bad]
        pick = lambda col: [col[i] for i in keep]  # noqa: E731
        return Columns(keep, {k: pick(c) for k, c in out.items()}, {k: pick(c) for k, c in times.items()})

    def _columns(self, objs: list[dict], bad: set[int]) -> tuple[dict[str, list], set[str]]:
        """One list per field (`_MISSING` where a message lacks it), in message order, and the fields some message
        lacks. Messages come in a few key sets: each set is checked once (required keys, no unknown key when the
        model forbids extras) and read with one itemgetter; the groups are then put back in arrival order."""
        groups: dict[frozenset, list[int]] = {}
        for i, o in enumerate(objs):
            keys = frozenset(o)
            g = groups.get(keys)
            if g is None:
                g = groups[keys] = []
            g.append(i)
        parts: dict[str, list] = {f.name: [] for f in self.fields}
        absent: set[str] = set()
        order: list[int] = []
        for keys, idx in groups.items():
            if not (self.required <= keys and (not self.forbid_extra or keys <= self.allowed)):
                bad.update(idx)
            present = [f.name for f in self.fields if f.name in keys]
            absent.update(name for name in parts if name not in keys)
            rows = [objs[i] for i in idx] if len(groups) > 1 else objs
            if len(present) > 1:
                got = dict(zip(present, map(list, zip(*map(operator.itemgetter(*present), rows)))))
            else:
                got = {name: [o[name] for o in rows] for name in present}
            for name, part in parts.items():
                part.extend(got.get(name) or [_MISSING] * len(idx))
            order += idx
        if len(groups) <= 1:
            return parts, absent
        back = operator.itemgetter(*sorted(range(len(order)), key=order.__getitem__))
        return {name: list(back(part)) for name, part in parts.items()}, absent

    def _fill(self, f: FieldShape, col: list, bad: set[int], absent: bool) -> list:
        if absent:
            if f.required:
                bad.update(i for i, v in enumerate(col) if v is _MISSING)
            col = [(f.factory() if f.factory else f.default) if v is _MISSING else v for v in col]
        kinds = set(map(type, col))
        if not kinds <= f.types:
            bad.update(i for i, v in enumerate(col) if type(v) not in f.types)
            col = [v if type(v) in f.types else None for v in col]
        if f.check is not None:
            wrong = {v for v in set(col) if v is not None and not f.check(v)}
            if wrong:
                bad.update(i for i, v in enumerate(col) if v in wrong)
        if f.to_float and int in kinds:
            col = [float(v) if type(v) is int else v for v in col]
        if f.url is not None:
            col = self._urls(f.url, col, bad)
        return col

    @staticmethod
    def _urls(adapter: TypeAdapter, col: list, bad: set[int]) -> list:
        """URLs as the model stores them (its text form), each distinct one validated once."""
        text: dict[str, str | None] = {}
        for v in set(col) - {None}:
            try:
                text[v] = str(adapter.validate_python(v))
            except ValidationError:
                text[v] = None
        out = []
        for i, v in enumerate(col):
            if v is not None:
                v = text[v]
                if v is None:
                    bad.add(i)
            out.append(v)
        return out

    def _times(self, f: FieldShape, col: list, bad: set[int]) -> list:
        """Parsed datetimes; text that is not canonical, or that the field's validators refuse, is bad."""
        parsed = None
        if col and set(map(type, col)) == {str} and _TIMES.fullmatch("\n".join(col)):
            try:
                parsed = list(map(datetime.fromisoformat, col))
            except ValueError:   # canonical-looking, yet no date (month 13): find it below
                pass
        if parsed is None:
            parsed = [v if v is None or v.__class__ is datetime else _parse_time(v) for v in col]
            bad.update(i for i, (v, t) in enumerate(zip(col, parsed)) if v is not None and t is None)
        for check in f.after:
            if check in INTERVAL_CHECKS and _extremes_pass(check, parsed):
                continue
            for i, t in enumerate(parsed):
                if t is not None and i not in bad:
                    try:
                        check(t)
                    except Exception:  # noqa: BLE001 — pydantic will say what is wrong
                        bad.add(i)
        return parsed

    def _model_checks(self, out: dict[str, list], times: dict[str, list], bad: set[int]) -> None:
        """The model's after-validators, on an object with the attributes the model instance would have."""
        names = [f.name for f in self.fields]
        cols = [times.get(f.name) or out[f.name] for f in self.fields]
        enums = {i: f.enum for i, f in enumerate(self.fields) if f.enum is not None}
        for i, row in enumerate(zip(*cols)):
            if i in bad:
                continue
            attrs = dict(zip(names, row))
            for k, enum in enums.items():
                if attrs[names[k]] is not None:
                    attrs[names[k]] = enum(attrs[names[k]])
            ns = types.SimpleNamespace(**attrs)
            try:
                for check in self.model_checks:
                    if check(ns) is not ns:
                        raise ValueError("validator replaced the instance")
            except Exception:  # noqa: BLE001 — whatever it is, pydantic will say it properly
                bad.add(i)


def _load(values: list[bytes | None]) -> tuple[list[dict], set[int]]:
    try:
        objs = [orjson.loads(v) for v in values]
    except (orjson.JSONDecodeError, TypeError):
        objs = [_load_one(v) for v in values]
    bad = {i for i, o in enumerate(objs) if type(o) is not dict}
    return [{} if i in bad else o for i, o in enumerate(objs)] if bad else objs, bad


def _load_one(value: bytes | None):
    try:
        return orjson.loads(value)
    except (orjson.JSONDecodeError, TypeError):
        return None


def shape_of(model: type[BaseModel]) -> Shape | None:
    """The fast path for `model`, or None when it has something the fast path does not reproduce."""
    try:
        return Shape(model)
    except Unsupported:
        return None
