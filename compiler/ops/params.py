"""Typed operator parameters parsed from MXNet's string attributes.

MXNet stores every operator parameter as the `str()` of the Python value the user passed
(`kernel=(3, 3)` -> "(3, 3)", `no_bias=True` -> "True"); files written by older versions use
variants ("[3,3]", "true", "1"). Each `Param` names its parser, its default (or `REQUIRED`) and a
one-line description used in generated docstrings.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from ember.runtime.errors import GraphError

from ..dtypes import dtype_name


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = _Required()


class ParamValueError(ValueError):
    """A string attribute that does not parse; the schema adds the op and node names."""


def parse_int(text: str) -> int:
    value = _literal(text)
    if isinstance(value, float) and not math.isfinite(value):
        raise ParamValueError(f"expected an integer, got {text!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ParamValueError(f"expected an integer, got {text!r}")
    return int(value)


def parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ParamValueError(f"expected a number, got {text!r}") from None


_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ParamValueError(f"expected True or False, got {text!r}")


def parse_str(text: str) -> str:
    return text


def parse_tuple(text: str) -> tuple[int, ...]:
    """A tuple of ints: "(3, 3)", "[3,3]", "(3,)", "()", or a bare "3"."""
    value = _literal(text)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (tuple, list)):
        raise ParamValueError(f"expected a tuple of integers, got {text!r}")
    try:
        return tuple(parse_int(str(v)) for v in value)
    except ParamValueError:
        raise ParamValueError(f"expected a tuple of integers, got {text!r}") from None


def parse_float_tuple(text: str) -> tuple[float, ...]:
    value = _literal(text)
    if isinstance(value, (int, float)):
        value = (value,)
    if not isinstance(value, (tuple, list)):
        raise ParamValueError(f"expected a tuple of numbers, got {text!r}")
    return tuple(float(v) for v in value)


def parse_axes(text: str) -> tuple[int, ...] | None:
    """An axis argument: "None" (all axes), "1", "(0, 2)", "()" (all axes too, in MXNet)."""
    if text.strip() in ("None", ""):
        return None
    return parse_tuple(text)


def parse_dtype(text: str) -> str:
    try:
        return dtype_name(text)
    except Exception:
        raise ParamValueError(f"expected a dtype name, got {text!r}") from None


def optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """A parser that also accepts "None"."""

    def parse_optional(text: str):
        return None if text.strip() == "None" else parse(text)

    parse_optional.__name__ = f"optional_{parse.__name__}"
    return parse_optional


def enum(*choices: str) -> Callable[[str], str]:
    """A parser accepting one of `choices`."""

    def parse_enum(text: str) -> str:
        if text not in choices:
            raise ParamValueError(f"expected one of {', '.join(choices)}, got {text!r}")
        return text

    parse_enum.choices = choices
    return parse_enum


_LONG_SUFFIX = re.compile(r"(?<=\d)[lL](?=\s*[,)\]]|\s*$)")


def _literal(text: str):
    text = _LONG_SUFFIX.sub("", text.strip())  # Python 2 longs ("(3L, 3L)") in old MXNet files
    if text in ("inf", "+inf", "-inf", "nan"):
        return float(text)
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ParamValueError(f"cannot parse {text!r}") from None


def parse_optional_int_tuple(text: str) -> tuple[int | None, ...]:
    """A tuple whose entries are ints or None: "(0, None)", "[1,2]", "(None,)", or a bare "3"."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        raise ParamValueError(f"expected a tuple of integers or None, got {text!r}") from None
    value = (value,) if value is None or isinstance(value, int) else value
    if not isinstance(value, (tuple, list)) or not all(v is None or isinstance(v, int) for v in value):
        raise ParamValueError(f"expected a tuple of integers or None, got {text!r}")
    return tuple(value)


@dataclass(frozen=True)
class Param:
    """One operator parameter: its name, parser, default (or REQUIRED) and description."""

    name: str
    parse: Callable[[str], Any]
    default: Any = REQUIRED
    doc: str = ""


def format_value(value: Any) -> str:
    """The string MXNet stores for a parameter value: Python's `str` (so a list stays "[3, 3]"),
    dtypes by name, NumPy scalars and arrays as the plain Python values they hold."""
    if isinstance(value, (type, np.dtype)):
        return dtype_name(value)
    return str(_plain(value))


def _plain(value: Any) -> Any:
    """`value` with NumPy scalars and arrays turned into Python numbers and lists (NumPy 2 prints
    `np.int64(3)` inside tuples)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def parse_all(op: str, node_name: str, params: tuple[Param, ...], attrs) -> dict[str, Any]:
    """Typed values of every parameter of `op`, defaults filled in.

    Hidden attributes (`__key__`) are not parameters and are skipped. An unknown key, a value that
    does not parse, or a missing required parameter raises `GraphError` naming the node and op.
    """
    known = {p.name: p for p in params}
    values: dict[str, Any] = {}
    where = f"operator {op}" + (f" (node {node_name!r})" if node_name else "")
    items = attrs.items() if isinstance(attrs, Mapping) else attrs
    for key, text in items:
        if key.startswith("__") and key.endswith("__"):
            continue
        if key not in known:
            raise GraphError(
                f"unknown attribute {key!r} for {where}; known attributes: {', '.join(known) or 'none'}"
            )
        try:
            values[key] = known[key].parse(text)
        except ParamValueError as err:
            raise GraphError(f"bad value for attribute {key!r} of {where}: {err}") from None
    for param in params:
        if param.name not in values:
            if param.default is REQUIRED:
                raise GraphError(f"{where} is missing its required attribute {param.name!r}")
            values[param.name] = param.default
    return values
