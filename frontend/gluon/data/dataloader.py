"""`mx.gluon.data.DataLoader`: a dataset read in mini-batches, in the main process or by a pool of workers.

A batch sampler (built from `batch_size`, `shuffle`, `sampler` and `last_batch`, or given) says which
samples make each batch; `batchify_fn` merges them (by default: NDArrays and NumPy arrays stacked along a
new first axis, tuples batched element by element, numbers into an array). With `num_workers > 0` worker
processes (forked, so the dataset and the functions need not pickle) build the batches and send them back
pickled; with `thread_pool=True` threads do. Batches always come in the order the batch sampler gave,
the same order as with no workers; a failing worker raises WorkerError naming the batch.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import pickle
import signal
import threading
import traceback

import numpy as np

from ember import context
from ember import ndarray as nd
from ember.gluon.errors import CheckFailed, InvalidValue
from ember.runtime.errors import MXNetError

from . import sampler as _sampler

__all__ = ["DataLoader", "default_batchify_fn", "default_mp_batchify_fn"]


class WorkerError(MXNetError):
    """A DataLoader worker failed to build a batch; the message names the batch, its samples and the
    worker's traceback."""


class WorkerTimeout(MXNetError, multiprocessing.TimeoutError):
    """A DataLoader worker took longer than `timeout` seconds for one batch (MXNet raises
    multiprocessing's TimeoutError)."""


def default_batchify_fn(data):
    """Merge a list of samples into a batch: NDArrays stacked along a new axis 0, tuples batched element
    by element (a list of batches), anything else through `np.asarray` into an NDArray of its dtype."""
    if isinstance(data[0], nd.NDArray):
        return nd.stack(*data)
    if isinstance(data[0], tuple):
        return [default_batchify_fn(list(field)) for field in zip(*data)]
    array = np.asarray(data)
    return nd.array(array, dtype=array.dtype)


# MXNet's workers stack into shared memory; Ember's send their batches pickled, so the two are one.
default_mp_batchify_fn = default_batchify_fn


def _as_in_context(data, ctx):
    """`data` (an NDArray, or lists and tuples of them) copied to `ctx`."""
    if isinstance(data, nd.NDArray):
        return data.as_in_context(ctx)
    if isinstance(data, (list, tuple)):
        return [_as_in_context(d, ctx) for d in data]
    return data


def _failure(number: int, samples, err: BaseException) -> tuple:
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    return (
        "error",
        f"DataLoader worker failed on batch {number} (samples {list(samples)}): "
        f"{type(err).__name__}: {err}\nWorker traceback:\n{text}",
    )


# A worker process's dataset and batchify function, set once when the (forked) worker starts.
_worker_dataset = None
_worker_batchify_fn = None


def _worker_initializer(dataset, batchify_fn):
    """Keep the dataset and batchify function in the worker process's globals."""
    global _worker_dataset, _worker_batchify_fn
    _worker_dataset, _worker_batchify_fn = dataset, batchify_fn


def _worker_fn(number, samples):
    """In a worker process: build batch `number` from `samples`; ('ok', pickled batch) or ('error', text)."""
    try:
        batch = _worker_batchify_fn([_worker_dataset[i] for i in samples])
        return ("ok", pickle.dumps(batch, pickle.HIGHEST_PROTOCOL))
    except Exception as err:  # noqa: BLE001 - every failure goes back to the main process, named
        return _failure(number, samples, err)


def _thread_worker_fn(number, samples, batchify_fn, dataset):
    """In a worker thread: build batch `number`; ('ok', batch) or ('error', text)."""
    try:
        return ("ok", batchify_fn([dataset[i] for i in samples]))
    except Exception as err:  # noqa: BLE001 - as _worker_fn
        return _failure(number, samples, err)


def _timeout_message(timeout, threads: bool) -> str:
    message = (
        f"Worker timed out after {timeout} seconds. This might be caused by slow transform: "
        "increase timeout to allow slower data loading in each worker."
    )
    if not threads:
        message += " Workers may also be short of memory if `timeout` is large enough: reduce `num_workers`."
    return message


class _MultiWorkerIter:
    """One pass over the batch sampler with a worker pool: up to `prefetch` batches are requested ahead,
    and batches are handed out in the sampler's order."""

    def __init__(
        self,
        worker_pool,
        batchify_fn,
        batch_sampler,
        pin_memory=False,
        pin_device_id=0,
        worker_fn=_worker_fn,
        prefetch=0,
        dataset=None,
        data_loader=None,
        timeout=120,
    ):
        self._worker_pool = worker_pool
        self._batchify_fn = batchify_fn
        self._batch_sampler = batch_sampler
        self._data_buffer: dict = {}
        self._rcvd_idx = 0
        self._sent_idx = 0
        self._iter = iter(batch_sampler)
        self._worker_fn = worker_fn
        self._pin_memory = pin_memory
        self._pin_device_id = pin_device_id
        self._dataset = dataset
        self._data_loader = data_loader  # keeps the loader, and so its pool, alive while iterating
        self._timeout = timeout
        for _ in range(prefetch):
            self._push_next()

    def __len__(self):
        return len(self._batch_sampler)

    def _push_next(self):
        """Ask the pool for the next batch of the sampler, if there is one."""
        samples = next(self._iter, None)
        if samples is None:
            return
        if self._dataset is None:
            args = (self._sent_idx, samples)
        else:
            args = (self._sent_idx, samples, self._batchify_fn, self._dataset)
        self._data_buffer[self._sent_idx] = self._worker_pool.apply_async(self._worker_fn, args)
        self._sent_idx += 1

    def __next__(self):
        self._push_next()
        if self._rcvd_idx == self._sent_idx:
            raise StopIteration
        pending = self._data_buffer.pop(self._rcvd_idx)
        self._rcvd_idx += 1
        try:
            status, payload = pending.get(self._timeout)
        except multiprocessing.TimeoutError:
            raise WorkerTimeout(_timeout_message(self._timeout, self._dataset is not None)) from None
        if status == "error":
            raise WorkerError(payload)
        batch = pickle.loads(payload) if self._dataset is None else payload
        if self._pin_memory:
            batch = _as_in_context(batch, context.cpu_pinned(self._pin_device_id))
        return batch

    next = __next__

    def __iter__(self):
        return self


def _fork_context():
    """Workers are forked where the OS can (the dataset then need not pickle), as MXNet's are on Linux."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def _process_pool(num_workers: int, dataset, batchify_fn):
    """A pool of `num_workers` processes holding `dataset` and `batchify_fn`; they ignore Ctrl-C, which
    the main process handles."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    original = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main_thread else None
    try:
        return _fork_context().Pool(
            num_workers, initializer=_worker_initializer, initargs=(dataset, batchify_fn)
        )
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, original)


class DataLoader:
    """Loads `dataset` in mini-batches (MXNet 1.9.1's arguments).

    Give either `batch_size` (with `shuffle` or a `sampler`, and `last_batch` in 'keep', 'discard',
    'rollover') or a `batch_sampler` alone. `num_workers > 0` loads with that many worker processes
    (threads with `thread_pool=True`), `prefetch` batches ahead (default `2 * num_workers`); a batch that
    takes longer than `timeout` seconds raises WorkerTimeout. `pin_memory` puts batches on
    `cpu_pinned(pin_device_id)`. `auto_reload` (MXNet's prefetching of the next epoch as soon as one
    ends) is accepted; batches are the same with or without it. `len(loader)` is the number of batches
    in an epoch.
    """

    def __init__(
        self,
        dataset,
        batch_size=None,
        shuffle=False,
        sampler=None,
        last_batch=None,
        batch_sampler=None,
        batchify_fn=None,
        num_workers=0,
        pin_memory=False,
        pin_device_id=0,
        prefetch=None,
        thread_pool=False,
        timeout=120,
        auto_reload=False,
    ):
        self._dataset = dataset
        self._pin_memory = pin_memory
        self._pin_device_id = pin_device_id
        self._thread_pool = thread_pool
        if not timeout > 0:
            raise CheckFailed("timeout must be positive, given {}".format(timeout))
        self._timeout = timeout
        self._batch_sampler = self._make_batch_sampler(
            batch_size, shuffle, sampler, last_batch, batch_sampler
        )
        self._num_workers = num_workers if num_workers >= 0 else 0
        self._prefetch = max(0, int(prefetch) if prefetch is not None else 2 * self._num_workers)
        if batchify_fn is None:
            batchify_fn = default_mp_batchify_fn if self._num_workers > 0 else default_batchify_fn
        self._batchify_fn = batchify_fn
        self._worker_pool = None
        if self._num_workers > 0 and self._thread_pool:
            self._worker_pool = multiprocessing.pool.ThreadPool(self._num_workers)
        elif self._num_workers > 0:
            self._worker_pool = _process_pool(self._num_workers, self._dataset, self._batchify_fn)

    def _make_batch_sampler(self, batch_size, shuffle, sampler, last_batch, batch_sampler):
        """The given batch sampler, or one built from the other arguments (which it excludes)."""
        if batch_sampler is not None:
            if batch_size is not None or shuffle or sampler is not None or last_batch is not None:
                raise InvalidValue(
                    "batch_size, shuffle, sampler and last_batch must not be specified if batch_sampler "
                    "is specified."
                )
            return batch_sampler
        if batch_size is None:
            raise InvalidValue("batch_size must be specified unless batch_sampler is specified")
        if sampler is None:
            length = len(self._dataset)
            sampler = _sampler.RandomSampler(length) if shuffle else _sampler.SequentialSampler(length)
        elif shuffle:
            raise InvalidValue("shuffle must not be specified if sampler is specified")
        return _sampler.BatchSampler(sampler, batch_size, last_batch if last_batch else "keep")

    def __iter__(self):
        if self._num_workers < 0:
            raise MXNetError("this DataLoader's workers were stopped by clean(): make a new DataLoader")
        if self._num_workers == 0:
            return self._same_process_iter()
        threads = self._thread_pool
        return _MultiWorkerIter(
            self._worker_pool,
            self._batchify_fn,
            self._batch_sampler,
            pin_memory=self._pin_memory,
            pin_device_id=self._pin_device_id,
            worker_fn=_thread_worker_fn if threads else _worker_fn,
            prefetch=self._prefetch,
            dataset=self._dataset if threads else None,
            data_loader=self,
            timeout=self._timeout,
        )

    def _same_process_iter(self):
        for samples in self._batch_sampler:
            batch = self._batchify_fn([self._dataset[i] for i in samples])
            if self._pin_memory:
                batch = _as_in_context(batch, context.cpu_pinned(self._pin_device_id))
            yield batch

    def __len__(self):
        return len(self._batch_sampler)

    def refresh(self) -> None:
        """MXNet's restart of an `auto_reload` prefetch: batches are fetched when iterated here, so
        there is nothing to restart."""

    def clean(self) -> None:
        """Stop the worker processes (or threads) now; iterating afterwards raises MXNetError."""
        pool = getattr(self, "_worker_pool", None)
        if pool is not None:
            pool.terminate()
            self._worker_pool = None
            self._num_workers = -1  # cleaned: `__iter__` refuses

    def __del__(self):
        self.clean()
