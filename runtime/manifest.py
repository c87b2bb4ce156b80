"""What an artifact's manifest holds, and the check that it holds it: plain JSON data, no compiler types.

Codegen fills in the producer fields below; `Artifact` adds the derived ones. `read_artifact` and
`Artifact` both run `content_problem`, so a manifest the runtime accepts always has these fields:

    format_version  int        derived: the artifact format version (artifact.FORMAT_VERSION)
    ember_version   str        the Ember that compiled it, e.g. "0.1.0"
    target          str        target triple, e.g. "x86_64-unknown-linux-gnu" or "nvptx64-nvidia-cuda"
    cpu_features    [str]      CPU features the code needs, LLVM or /proc/cpuinfo names: ["avx2", "fma"]
    inputs          [spec]     each {"name": str, "shape": [int], "dtype": str}
    outputs         [spec]     the same
    buffer_plan     object     {"arena_bytes": int, "alignment": int, "buffers": [{"name", "offset",
                               "nbytes", "shape", "dtype", "role"}]}: compiler/buffers.py's BufferPlan
    params          [entry]    derived: each {"name", "dtype", "shape", "offset", "nbytes"}, offsets into
                               the parameter blob, back to back in this order
    binaries        [entry]    derived: each {"name": str, "nbytes": int}, one file section each, in order
    content_hash    str        derived: SHA-256 hex of the whole content (see artifact.py)

Other fields (a launch list, "gpu_arch", entry-point names) may be added freely and travel untouched.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import lru_cache

# Element types an artifact holds: MXNet's (MXNET_COMPAT.md 11.2), as compiler/dtypes.py names them.
DTYPES = (
    "float32", "float64", "float16", "uint8", "int32", "int8", "int64", "bool", "int16", "uint16", "uint32",
    "uint64",
)  # fmt: skip
ROLES = ("input", "parameter", "state", "output", "temporary")  # compiler/buffers.py's ROLES
DERIVED_FIELDS = ("format_version", "params", "binaries", "content_hash")


@lru_cache(maxsize=1)
def ember_version() -> str:
    """The installed Ember's version (what codegen records as "ember_version"); "unknown" if not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ember")
    except PackageNotFoundError:
        return "unknown"


def content_problem(manifest, graph_json) -> str | None:
    """What is wrong with a manifest's producer fields or the graph JSON, as a phrase such as "its
    manifest has no field 'target'"; None when both are well formed."""
    if not isinstance(manifest, Mapping):
        return f"its manifest is a {type(manifest).__name__}, not a JSON object"
    for name, (check, expected) in FIELDS.items():
        if name not in manifest:
            return f"its manifest has no field {name!r}"
        if not check(manifest[name]):
            return f"its manifest's field {name!r} is not {expected}"
    problem = _plan_problem(manifest["buffer_plan"])
    return f"its manifest's buffer plan {problem}" if problem else _graph_problem(graph_json)


def is_count(value) -> bool:
    """A non-negative int (JSON true/false are not counts)."""
    return type(value) is int and value >= 0


def is_shape(value) -> bool:
    return isinstance(value, list) and all(is_count(d) for d in value)


def _is_text(value) -> bool:
    return isinstance(value, str) and value != ""


def _is_names(value) -> bool:
    return isinstance(value, list) and all(_is_text(v) for v in value)


def _is_specs(value) -> bool:
    return isinstance(value, list) and all(
        isinstance(s, dict)
        and _is_text(s.get("name"))
        and is_shape(s.get("shape"))
        and s.get("dtype") in DTYPES
        for s in value
    )


def _is_plan(value) -> bool:
    return (
        isinstance(value, dict)
        and is_count(value.get("arena_bytes"))
        and is_count(value.get("alignment"))
        and isinstance(value.get("buffers"), list)
    )


# producer field -> (check, what the check expects, completing "... is not")
FIELDS = {
    "ember_version": (_is_text, "a version string"),
    "target": (_is_text, "a target triple"),
    "cpu_features": (_is_names, "a list of feature names"),
    "inputs": (_is_specs, "a list of {name, shape, dtype} objects with known dtypes"),
    "outputs": (_is_specs, "a list of {name, shape, dtype} objects with known dtypes"),
    "buffer_plan": (_is_plan, "an object with arena_bytes, alignment and a list of buffers"),
}


def _plan_problem(plan: dict) -> str | None:
    for index, buffer in enumerate(plan["buffers"]):
        if not (
            isinstance(buffer, dict)
            and _is_text(buffer.get("name"))
            and is_count(buffer.get("offset"))
            and is_count(buffer.get("nbytes"))
            and is_shape(buffer.get("shape"))
            and buffer.get("dtype") in DTYPES
            and buffer.get("role") in ROLES
        ):
            return (
                f"has a buffer {index} that is not an object with a name, offset, nbytes, shape, a known "
                "dtype and a role"
            )
        end = buffer["offset"] + buffer["nbytes"]
        if end > plan["arena_bytes"]:
            return f"puts buffer {buffer['name']!r} at bytes {buffer['offset']}-{end}, past its {plan['arena_bytes']}-byte arena"
    return None


def _graph_problem(graph_json) -> str | None:
    if not isinstance(graph_json, str):
        return f"its graph is a {type(graph_json).__name__}, not a JSON string"
    try:
        graph = json.loads(graph_json, parse_constant=reject_constant, parse_float=parse_finite)
    except (ValueError, RecursionError) as err:
        return f"its graph is not valid JSON ({describe_json_error(err)})"
    if not (isinstance(graph, dict) and isinstance(graph.get("nodes"), list)):
        return "its graph is not MXNet symbol JSON (an object with a list of nodes)"
    return None


def reject_constant(name: str):
    """json's parse_constant hook: NaN and Infinity are not JSON, so a manifest never holds them."""
    raise ValueError(f"{name} is not a JSON value")


def parse_finite(text: str) -> float:
    """json's parse_float hook: a number too large for a float (1e999) is rejected, not made infinite."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is out of range")
    return value


def describe_json_error(err: Exception) -> str:
    """A JSON parse failure in a few words, for an error sentence."""
    if isinstance(err, json.JSONDecodeError):
        return f"{err.msg} at character {err.pos}"
    if isinstance(err, RecursionError):
        return "nested too deeply"
    return str(err)
