"""What an artifact's manifest holds, and the check that it holds it: plain JSON data, no compiler types.

Codegen fills in the producer fields below; `Artifact` adds the derived ones. Making an `Artifact`
(which reading one does) runs `content_problem`, so a manifest the runtime accepts always has these fields:

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
    layout          object     optional here, needed to run: what the runtime runs the code by (codegen's
                               `runtime_layout`), checked whole when present (`LAYOUT_FIELDS`): the entry
                               symbol, arena_bytes, every buffer inside the arena, and the inputs,
                               outputs, parameters and states naming existing buffers

Other fields ("gpu_arch", "name", the kernel listing) may be added freely and travel untouched.

Every size is bounded before anything is allocated: byte counts and offsets are below `MAX_BYTES`,
a shape has at most `MAX_NDIM` dims and its non-zero dims multiply to at most `MAX_BYTES` elements.
These checks make a damaged or inconsistent manifest fail with one sentence instead of a KeyError or
an out-of-bounds view. They cannot make a hostile artifact safe: it carries native code, which runs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from functools import lru_cache

import numpy as np

from .host import GPU_ARCH_PREFIXES

# Element types an artifact holds: MXNet's (MXNET_COMPAT.md 11.2), as compiler/dtypes.py names them.
DTYPES = (
    "float32", "float64", "float16", "uint8", "int32", "int8", "int64", "bool", "int16", "uint16", "uint32",
    "uint64",
)  # fmt: skip
ROLES = ("input", "parameter", "state", "output", "temporary")  # compiler/buffers.py's ROLES
DERIVED_FIELDS = ("format_version", "params", "binaries", "content_hash")
MAX_BYTES = 2**48  # more than any 64-bit machine maps (x86-64 and AArch64 user space are 2**47-2**48)
MAX_NDIM = 32  # NumPy 1.x's limit (pyproject allows numpy>=1.23)
_ENTRY = re.compile(r"ember_run_\w*")  # codegen/kernels.py's entry_symbol: never a kernel or a pool hook
_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_.$]*")
_GPU_ARCH = re.compile(r"sm_\d+[a-z]?")
MAX_LAUNCH_DIM = 2**31 - 1  # CUDA's largest grid dimension


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
    if problem:
        return f"its manifest's buffer plan {problem}"
    if "layout" in manifest:
        problem = layout_problem(manifest)
        if problem:
            return f"its manifest's layout {problem}"
    return _graph_problem(graph_json)


def is_count(value) -> bool:
    """A non-negative int (JSON true/false are not counts)."""
    return type(value) is int and value >= 0


def is_byte_count(value) -> bool:
    """A count below MAX_BYTES: what an offset, a size or an arena may be."""
    return is_count(value) and value < MAX_BYTES


def is_shape(value) -> bool:
    """A list of at most MAX_NDIM counts whose non-zero ones multiply to at most MAX_BYTES (so NumPy
    can make an array of it, and a product of it with an item size stays a plain integer)."""
    return (
        isinstance(value, list)
        and len(value) <= MAX_NDIM
        and all(is_count(d) for d in value)
        and math.prod(d for d in value if d) <= MAX_BYTES
    )


def shape_bytes(shape: list[int], dtype: str) -> int:
    """The bytes of a dense array of a shape (already `is_shape`) and a known dtype."""
    return math.prod(shape) * np.dtype(dtype).itemsize


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
        and is_byte_count(value.get("arena_bytes"))
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
            and is_byte_count(buffer.get("offset"))
            and is_byte_count(buffer.get("nbytes"))
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


# -- the layout: what the runtime runs the code by ------------------------------------------------


def _is_entry(value) -> bool:
    return isinstance(value, str) and _ENTRY.fullmatch(value) is not None


def _is_arch(value) -> bool:
    return isinstance(value, str) and _GPU_ARCH.fullmatch(value) is not None


def _is_name_map(value) -> bool:
    return isinstance(value, dict) and all(_is_text(k) and _is_text(v) for k, v in value.items())


def _is_name_pairs(value) -> bool:
    return isinstance(value, list) and all(
        isinstance(pair, list) and len(pair) == 2 and all(_is_text(x) for x in pair) for pair in value
    )


def _is_buffer_table(value) -> bool:
    return isinstance(value, dict) and all(_is_text(k) and isinstance(v, dict) for k, v in value.items())


def _is_launch_size(value) -> bool:
    return (
        isinstance(value, list)
        and 1 <= len(value) <= 3
        and all(is_count(d) and 1 <= d <= MAX_LAUNCH_DIM for d in value)
    )


def _is_launches(value) -> bool:
    return isinstance(value, list) and all(
        isinstance(x, dict)
        and isinstance(x.get("symbol"), str)
        and _SYMBOL.fullmatch(x["symbol"]) is not None
        and _is_launch_size(x.get("grid"))
        and _is_launch_size(x.get("block"))
        and isinstance(x.get("what"), str)
        for x in value
    )


# layout field -> (check, what the check expects, completing "... is not"); every layout has these
LAYOUT_FIELDS = {
    "entry": (_is_entry, "a symbol of the form ember_run_<name>"),
    "arena_bytes": (is_byte_count, "a byte count below 2**48"),
    "buffers": (_is_buffer_table, "an object of buffers by name"),
    "inputs": (_is_name_map, "an object mapping input names to buffer names"),
    "outputs": (_is_name_pairs, "a list of [output name, buffer name] pairs"),
    "kernels": (_is_names, "a list of kernel names"),
}
# fields a layout may leave out (the runtime reads them with a default), checked when present
OPTIONAL_LAYOUT_FIELDS = {
    "plan_bytes": (is_byte_count, "a byte count below 2**48"),
    "parameters": (_is_name_map, "an object mapping parameter names to buffer names"),
    "states": (_is_name_map, "an object mapping state names to buffer names"),
    "optional_inputs": (_is_names, "a list of input names"),
    "arch": (_is_arch, "a GPU architecture such as sm_80"),
    "launches": (_is_launches, "a list of {symbol, grid, block, what} kernel launches"),
}
GPU_LAYOUT_FIELDS = ("arch", "launches")  # optional fields a GPU target's layout must have
# buffer field -> (check, what the check expects)
BUFFER_FIELDS = {
    "offset": (is_byte_count, "a byte offset below 2**48"),
    "nbytes": (is_byte_count, "a byte count below 2**48"),
    "shape": (is_shape, f"a shape (at most {MAX_NDIM} non-negative dims, at most 2**48 elements)"),
    "dtype": (lambda value: value in DTYPES, f"one of {', '.join(DTYPES)}"),
    "role": (lambda value: value in ROLES, f"one of {', '.join(ROLES)}"),
}
NAME_TABLES = ("inputs", "parameters", "states")  # layout tables mapping a user's name to a buffer


def layout_problem(manifest: Mapping) -> str | None:
    """What is wrong with a manifest's "layout" as a phrase completing "its manifest's layout ..."
    (a field, a buffer, a name that maps to no buffer, a disagreement with the manifest's inputs and
    outputs); None when the runtime can run by it."""
    layout = manifest["layout"]
    if not isinstance(layout, dict):
        return f"is a JSON {type(layout).__name__}, not an object"
    is_gpu = str(manifest.get("target", "")).lower().startswith(GPU_ARCH_PREFIXES)
    for name, (check, expected) in {**LAYOUT_FIELDS, **OPTIONAL_LAYOUT_FIELDS}.items():
        if name not in layout:
            if name in LAYOUT_FIELDS or (is_gpu and name in GPU_LAYOUT_FIELDS):
                return f"has no field {name!r}"
        elif not check(layout[name]):
            return f"field {name!r} is not {expected}"
    return (
        _buffers_problem(layout)
        or _overlap_problem(layout["buffers"])
        or _names_problem(layout)
        or _agreement_problem(manifest, layout)
    )


def _buffers_problem(layout: dict) -> str | None:
    arena = layout["arena_bytes"]
    if layout.get("plan_bytes", 0) > arena:
        return f"plans {layout['plan_bytes']} bytes, more than its {arena}-byte arena"
    for name, spec in layout["buffers"].items():
        problem = _buffer_problem(spec, arena)
        if problem:
            return f"buffer {name!r} {problem}"
    return None


def _buffer_problem(spec: dict, arena_bytes: int) -> str | None:
    for field, (check, expected) in BUFFER_FIELDS.items():
        if field not in spec:
            return f"has no field {field!r}"
        if not check(spec[field]):
            return f"field {field!r} is not {expected}"
    needed = shape_bytes(spec["shape"], spec["dtype"])
    if needed > spec["nbytes"]:
        return (
            f"of shape {tuple(spec['shape'])} and dtype {spec['dtype']} needs {needed} bytes, but its "
            f"nbytes is {spec['nbytes']}"
        )
    end = spec["offset"] + spec["nbytes"]
    if end > arena_bytes:
        return f"ends at byte {end}, past its {arena_bytes}-byte arena"
    return None


def _overlap_problem(buffers: dict) -> str | None:
    """Two pinned buffers (inputs, parameters, states, outputs) that share bytes: each holds one value
    for the whole program, so the memory planner never overlaps them (temporaries it may)."""
    pinned = sorted(
        (spec["offset"], spec["offset"] + spec["nbytes"], name)
        for name, spec in buffers.items()
        if spec["role"] != "temporary" and spec["nbytes"] > 0
    )
    for (_, end, first), (start, _, second) in zip(pinned, pinned[1:]):
        if start < end:
            return f"puts buffers {first!r} and {second!r} in the same bytes, but both hold values all along"
    return None


def _names_problem(layout: dict) -> str | None:
    """A name in the inputs, parameters, states or outputs that maps to no buffer, or an optional input
    that is not an input."""
    buffers = layout["buffers"]
    pairs = [(table[:-1], item) for table in NAME_TABLES for item in layout.get(table, {}).items()]
    pairs += [("output", tuple(pair)) for pair in layout["outputs"]]
    for kind, (name, buffer) in pairs:
        if buffer not in buffers:
            return f"maps {kind} {name!r} to buffer {buffer!r}, which it does not have"
    for name in layout.get("optional_inputs", ()):
        if name not in layout["inputs"]:
            return f"lists optional input {name!r}, which is not one of its inputs"
    return None


def _agreement_problem(manifest: Mapping, layout: dict) -> str | None:
    """Where the layout and the manifest's buffer plan, inputs and outputs disagree."""
    plan = manifest["buffer_plan"]
    if layout["arena_bytes"] != plan["arena_bytes"]:
        return (
            f"has a {layout['arena_bytes']}-byte arena, but the manifest's buffer plan a "
            f"{plan['arena_bytes']}-byte one"
        )
    planned = {spec["name"]: {k: v for k, v in spec.items() if k != "name"} for spec in plan["buffers"]}
    if planned != layout["buffers"]:
        differ = sorted(set(planned) ^ set(layout["buffers"])) or [
            name for name, spec in layout["buffers"].items() if planned[name] != spec
        ]
        return f"and the manifest's buffer plan describe buffer {differ[0]!r} differently"
    inputs = {spec["name"]: spec for spec in manifest["inputs"]}
    if sorted(inputs) != sorted(layout["inputs"]):
        return f"has inputs {sorted(layout['inputs'])}, but the manifest lists {sorted(inputs)}"
    outputs = [name for name, _ in layout["outputs"]]
    if outputs != [spec["name"] for spec in manifest["outputs"]]:
        return f"has outputs {outputs}, but the manifest lists {[s['name'] for s in manifest['outputs']]}"
    pairs = [("input", inputs[name], buffer) for name, buffer in layout["inputs"].items()]
    pairs += [("output", spec, buffer) for spec, (_, buffer) in zip(manifest["outputs"], layout["outputs"])]
    for kind, spec, buffer in pairs:
        held = layout["buffers"][buffer]
        if (held["shape"], held["dtype"]) != (spec["shape"], spec["dtype"]):
            return (
                f"keeps {kind} {spec['name']!r} in buffer {buffer!r} of shape {tuple(held['shape'])} and "
                f"dtype {held['dtype']}, but the manifest lists shape {tuple(spec['shape'])} and dtype "
                f"{spec['dtype']}"
            )
    return None


def parameters_problem(manifest: Mapping, shapes: Mapping[str, tuple]) -> str | None:
    """What is wrong with an artifact's parameters (name -> shape) against its manifest's layout, if it
    has one: each must be a parameter or state of the layout, of its buffer's shape."""
    layout = manifest.get("layout")
    if layout is None:
        return None
    named = {**layout.get("parameters", {}), **layout.get("states", {})}
    for name, shape in shapes.items():
        if name not in named:
            return f"it holds parameter {name!r}, but its layout has no parameter or state of that name"
        expected = tuple(layout["buffers"][named[name]]["shape"])
        if tuple(shape) != expected:
            return (
                f"it holds parameter {name!r} of shape {tuple(shape)}, but its layout's buffer "
                f"{named[name]!r} for it has shape {expected}"
            )
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
