"""Samplers of `mx.gluon.data`: iterables of dataset indices (or of batches of indices) that datasets and
the DataLoader draw from. `RandomSampler` draws from `ember.random`, so `mx.random.seed` repeats its
order. Each sampler checks its arguments when built and raises MXNetError subclasses that are also the
AssertionError or ValueError MXNet 1.9.1 raises.
"""

from __future__ import annotations

import numbers

from ember import random as _random
from ember.gluon.errors import CheckFailed, InvalidValue

__all__ = [
    "Sampler",
    "SequentialSampler",
    "RandomSampler",
    "FilterSampler",
    "BatchSampler",
    "IntervalSampler",
]

LAST_BATCH_RULES = ("keep", "discard", "rollover")


def _check_count(value, what: str, minimum: int) -> int:
    """`value` as an int, refused unless it is an integer of at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InvalidValue(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class Sampler:
    """Base class of samplers: subclasses define `__iter__` (the indices) and `__len__` (how many)."""

    def __iter__(self):
        raise NotImplementedError

    def __len__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    """The indices `start, start + 1, ..., start + length - 1` in order."""

    def __init__(self, length, start=0):
        self._length = _check_count(length, "SequentialSampler length", 0)
        self._start = _check_count(start, "SequentialSampler start", 0)

    def __iter__(self):
        return iter(range(self._start, self._start + self._length))

    def __len__(self):
        return self._length


class RandomSampler(Sampler):
    """The indices `0 .. length - 1` in a random order, drawn anew each time it is iterated (from
    `ember.random`'s generator, so `mx.random.seed(n)` makes the order repeat)."""

    def __init__(self, length):
        self._length = _check_count(length, "RandomSampler length", 0)

    def __iter__(self):
        return iter(int(i) for i in _random.generator().permutation(self._length))

    def __len__(self):
        return self._length


class FilterSampler(Sampler):
    """The indices of the samples of `dataset` for which `fn(sample)` is true (evaluated once, here)."""

    def __init__(self, fn, dataset):
        self._fn = fn
        self._dataset = dataset
        self._indices = [i for i in range(len(dataset)) if fn(dataset[i])]

    def __iter__(self):
        return iter(self._indices)

    def __len__(self):
        return len(self._indices)


class BatchSampler(Sampler):
    """Lists of `batch_size` indices taken in order from `sampler`.

    `last_batch` says what happens to a last batch that is short: 'keep' yields it, 'discard' drops it,
    'rollover' keeps its indices and puts them first in the next iteration's first batch.
    """

    def __init__(self, sampler, batch_size, last_batch="keep"):
        self._sampler = sampler
        self._batch_size = _check_count(batch_size, "batch_size", 1)
        if last_batch not in LAST_BATCH_RULES:
            raise InvalidValue(
                f"last_batch must be one of 'keep', 'discard', or 'rollover', but got {last_batch}"
            )
        self._last_batch = last_batch
        self._prev: list = []

    def __iter__(self):
        batch, self._prev = self._prev, []
        for index in self._sampler:
            batch.append(index)
            if len(batch) == self._batch_size:
                yield batch
                batch = []
        if batch and self._last_batch == "keep":
            yield batch
        elif batch and self._last_batch == "rollover":
            self._prev = batch

    def __len__(self):
        if self._last_batch == "keep":
            return (len(self._sampler) + self._batch_size - 1) // self._batch_size
        if self._last_batch == "discard":
            return len(self._sampler) // self._batch_size
        return (len(self._prev) + len(self._sampler)) // self._batch_size


class IntervalSampler(Sampler):
    """The indices of `[0, length)` taken `interval` apart: `0, interval, 2*interval, ...`; with
    `rollover` it then starts again from 1, 2, ... until every index was visited (13, interval 3:
    0 3 6 9 12 1 4 7 10 2 5 8 11), without it stops after the first pass (0 3 6 9 12).

    MXNet 1.9.1 (gluon.contrib.data) reports `length` as its len even without rollover; here len is the
    number of indices it yields.
    """

    def __init__(self, length, interval, rollover=True):
        length = _check_count(length, "IntervalSampler length", 0)
        interval = _check_count(interval, "IntervalSampler interval", 1)
        if interval >= length:
            raise CheckFailed(f"Interval {interval} must be smaller than length {length}")
        self._length, self._interval, self._rollover = length, interval, rollover

    def __iter__(self):
        for first in range(self._interval if self._rollover else 1):
            yield from range(first, self._length, self._interval)

    def __len__(self):
        if self._rollover:
            return self._length
        return len(range(0, self._length, self._interval))
