"""Nests of lists and tuples flattened to a list and rebuilt, as MXNet's `_flatten`/`_regroup` do for
`contrib.foreach` and Gluon's HybridBlock inputs and outputs.

A format is 0 for a single leaf, -1 for None (an omitted input), a positive count for a leaf that
stands for several values (a Symbol with several outputs), or a list of the formats of a list's items.
"""

from __future__ import annotations

from collections.abc import Callable


def flatten(value, leaf: Callable, error: Callable) -> tuple[list, object]:
    """(flat list, format) of `value`: lists and tuples are walked; any other value is handed to
    `leaf(value)`, which gives its (items, format) or None, and then `error(value)` is raised."""
    if isinstance(value, (list, tuple)):
        flat, formats = [], []
        for item in value:
            items, fmt = flatten(item, leaf, error)
            flat.extend(items)
            formats.append(fmt)
        return flat, formats
    found = leaf(value)
    if found is None:
        raise error(value)
    return found


def regroup(flat: list, fmt) -> tuple[object, list]:
    """The nest `fmt` describes, filled from `flat` in order; returns (nest, what is left of flat)."""
    if isinstance(fmt, int):
        if fmt == 0:
            return flat[0], flat[1:]
        if fmt == -1:
            return None, flat[1:]
        return flat[:fmt], flat[fmt:]
    nest = []
    for item in fmt:
        value, flat = regroup(flat, item)
        nest.append(value)
    return nest, flat
