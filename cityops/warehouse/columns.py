"""pydantic field → ClickHouse column type. The migrations are frozen SQL; tests compare them with this mapping,
so a model change without a migration fails the suite (see tests/test_warehouse_schema.py)."""
from __future__ import annotations

import types
import typing
from datetime import date, datetime
from enum import Enum

from pydantic import AnyUrl, BaseModel
from pydantic.fields import FieldInfo

TIME = "DateTime64(3, 'Asia/Shanghai')"
# Codes: few distinct values, filtered and grouped by the cockpit. Enums and Literals are codes by type.
CODE_FIELDS = frozenset({"district_code", "grid_code", "street_code", "department", "label", "code", "unit",
                         "alert_code", "service_code", "reason", "topic", "channel"})


def _unwrap(annotation) -> tuple[object, bool]:
    """(inner type, optional?) with Annotated and `X | None` peeled off."""
    optional = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(typing.get_args(annotation))
            if len(args) != 1:
                raise TypeError(f"no column type for union {annotation}")
            annotation = args[0]
        else:
            return annotation, optional


def column_type(name: str, field: FieldInfo) -> str:
    """Strings and codes stay non-null ('' when absent: cheaper, and '' reads as 'unknown' in GROUP BY);
    numbers and times become Nullable when optional, because 0 or 1970 would be a wrong answer."""
    inner, optional = _unwrap(field.annotation)
    if typing.get_origin(inner) is typing.Literal or (isinstance(inner, type) and issubclass(inner, Enum)):
        return "LowCardinality(String)"
    if inner is bool:
        base, nullable = "Bool", optional
    elif inner is int:
        base, nullable = "Int64", optional
    elif inner is float:
        base, nullable = "Float64", optional
    elif inner is datetime:
        base, nullable = TIME, optional
    elif inner is date:
        base, nullable = "Date32", optional
    elif inner is str:
        return "LowCardinality(String)" if name in CODE_FIELDS else "String"
    elif isinstance(inner, type) and issubclass(inner, AnyUrl):
        return "String"
    else:
        raise TypeError(f"no column type for field {name}: {field.annotation}")
    return f"Nullable({base})" if nullable else base


def model_columns(model: type[BaseModel]) -> dict[str, str]:
    return {name: column_type(name, f) for name, f in model.model_fields.items()}
