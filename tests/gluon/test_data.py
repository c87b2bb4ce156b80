"""gluon.data: datasets and their views, samplers, and the DataLoader in the main process, with worker
processes and with worker threads. Expected values are hand-computed or MXNet 1.9.1's documented ones
(BatchSampler's docstring, the compat spec's batch counts); worker runs are checked against the
single-process run of the same loader."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import time

import numpy as np
import pytest

import ember as mx
from ember import gluon, recordio
from ember.base import MXNetError
from ember.gluon.data import (
    ArrayDataset,
    BatchSampler,
    DataLoader,
    Dataset,
    FilterSampler,
    IntervalSampler,
    RandomSampler,
    RecordFileDataset,
    SequentialSampler,
    SimpleDataset,
)
from ember.gluon.data.dataloader import WorkerError, WorkerTimeout


def _as_lists(batches):
    """Batches (NDArrays or lists of them) as nested Python lists, for comparison."""
    return [[b.asnumpy().tolist() for b in batch] if isinstance(batch, list) else batch.asnumpy().tolist()
            for batch in batches]  # fmt: skip


class Squares(Dataset):
    """Sample i is (float32 [i, i*i], int64 i)."""

    def __len__(self):
        return 7

    def __getitem__(self, idx):
        return np.array([idx, idx * idx], dtype=np.float32), np.int64(idx)


# -- datasets -------------------------------------------------------------------------------------------


def test_simple_dataset_wraps_any_sequence():
    dataset = SimpleDataset([10, 20, 30])
    assert len(dataset) == 3 and dataset[1] == 20


def test_array_dataset_zips_arrays_lists_and_ndarrays():
    x = mx.nd.array(np.arange(6).reshape(3, 2))
    dataset = ArrayDataset(x, np.array([7, 8, 9]), ["a", "b", "c"])
    assert len(dataset) == 3
    data, label, name = dataset[2]
    assert data.asnumpy().tolist() == [4.0, 5.0] and label == 9 and name == "c"


def test_array_dataset_of_one_array_yields_bare_items_and_reads_1d_ndarrays_through_numpy():
    single = ArrayDataset(np.arange(4))
    assert single[3] == 3
    one_d = ArrayDataset(mx.nd.array([1.5, 2.5]))
    assert isinstance(one_d[1], np.float32) and one_d[1] == 2.5


def test_array_dataset_checks_lengths_as_mxnet_asserts():
    with pytest.raises(AssertionError, match="Needs at least 1 arrays"):
        ArrayDataset()
    with pytest.raises(MXNetError, match=r"array\[0\] has length 3 while array\[1\] has 2"):
        ArrayDataset([1, 2, 3], [1, 2])


def test_lazy_transform_runs_on_each_read_eager_transform_once():
    calls = []

    def double(x):
        calls.append(x)
        return x * 2

    lazy = SimpleDataset([1, 2, 3]).transform(double)
    assert calls == [] and lazy[2] == 6 and lazy[2] == 6 and calls == [3, 3]
    calls.clear()
    eager = SimpleDataset([1, 2, 3]).transform(double, lazy=False)
    assert calls == [1, 2, 3] and [eager[i] for i in range(3)] == [2, 4, 6] and calls == [1, 2, 3]


def test_transform_spreads_tuples_and_transform_first_touches_only_the_data():
    pairs = ArrayDataset([1, 2], [10, 20])
    assert pairs.transform(lambda x, y: x + y)[1] == 22
    assert pairs.transform_first(lambda x: -x)[1] == (-2, 20)
    assert SimpleDataset([5]).transform_first(lambda x: x + 1)[0] == 6


class Doubler(gluon.Block):
    def forward(self, x):
        return x * 2


def test_transforms_accept_blocks():
    dataset = ArrayDataset(mx.nd.array([[1.0, 2.0]]), [3]).transform_first(Doubler())
    data, label = dataset[0]
    assert data.asnumpy().tolist() == [2.0, 4.0] and label == 3


def test_transform_first_closure_pickles():
    dataset = pickle.loads(pickle.dumps(ArrayDataset([1, 2], [3, 4]).transform_first(abs)))
    assert dataset[1] == (2, 4)


def test_filter_take_sample_and_shard():
    dataset = SimpleDataset(list(range(10)))
    assert list(dataset.filter(lambda x: x % 3 == 0)) == [0, 3, 6, 9]
    assert [dataset.take(3)[i] for i in range(3)] == [0, 1, 2]
    assert len(dataset.take(None)) == 10 and len(dataset.take(100)) == 10
    sampled = dataset.sample(IntervalSampler(10, 4))
    assert [sampled[i] for i in range(len(sampled))] == [0, 4, 8, 1, 5, 9, 2, 6, 3, 7]
    shards = [dataset.shard(3, i) for i in range(3)]
    assert [[s[i] for i in range(len(s))] for s in shards] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_shard_and_sample_reject_bad_arguments_with_mxnet_messages():
    dataset = SimpleDataset([1, 2])
    with pytest.raises(AssertionError, match="Shard index of out bound: 3 out of 3"):
        dataset.shard(3, 3)
    with pytest.raises(AssertionError, match="Index must be non-negative"):
        dataset.shard(2, -1)
    with pytest.raises(TypeError, match="Invalid sampler type: <class 'list'>. Expected gluon.data.Sampler"):
        dataset.sample([0, 1])


def test_record_file_dataset_reads_records_in_index_order(tmp_path):
    writer = recordio.MXIndexedRecordIO(str(tmp_path / "d.idx"), str(tmp_path / "d.rec"), "w")
    for key in (5, 3, 9):
        writer.write_idx(key, b"rec%d" % key)
    writer.close()
    dataset = RecordFileDataset(str(tmp_path / "d.rec"))
    assert len(dataset) == 3 and [dataset[i] for i in range(3)] == [b"rec5", b"rec3", b"rec9"]


# -- samplers -------------------------------------------------------------------------------------------


def test_sequential_sampler_with_start():
    assert list(SequentialSampler(4, start=2)) == [2, 3, 4, 5] and len(SequentialSampler(4, 2)) == 4


def test_random_sampler_is_a_permutation_repeated_by_mx_random_seed():
    mx.random.seed(11)
    first = list(RandomSampler(20))
    mx.random.seed(11)
    assert list(RandomSampler(20)) == first
    assert sorted(first) == list(range(20)) and first == np.random.default_rng(11).permutation(20).tolist()


def test_batch_sampler_keep_and_discard_as_mxnet_docstring():
    keep = BatchSampler(SequentialSampler(10), 3, "keep")
    assert list(keep) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]] and len(keep) == 4
    discard = BatchSampler(SequentialSampler(10), 3, "discard")
    assert list(discard) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]] and len(discard) == 3


def test_batch_sampler_rollover_carries_the_short_batch_into_the_next_epoch():
    sampler = BatchSampler(SequentialSampler(10), 3, "rollover")
    assert list(sampler) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert len(sampler) == 3  # (1 carried + 10) // 3
    assert list(sampler) == [[9, 0, 1], [2, 3, 4], [5, 6, 7]]
    assert len(sampler) == 4  # (2 carried + 10) // 3
    assert list(sampler)[0] == [8, 9, 0]


def test_batch_sampler_rejects_unknown_last_batch():
    with pytest.raises(
        ValueError, match="last_batch must be one of 'keep', 'discard', or 'rollover', but got x"
    ):
        BatchSampler(SequentialSampler(3), 2, "x")
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        BatchSampler(SequentialSampler(3), 0)


def test_interval_and_filter_samplers():
    assert list(IntervalSampler(13, 3)) == [0, 3, 6, 9, 12, 1, 4, 7, 10, 2, 5, 8, 11]
    no_rollover = IntervalSampler(13, 3, rollover=False)
    assert list(no_rollover) == [0, 3, 6, 9, 12] and len(no_rollover) == 5
    with pytest.raises(AssertionError, match="Interval 5 must be smaller than length 5"):
        IntervalSampler(5, 5)
    assert list(FilterSampler(lambda s: s > 1, [3, 0, 2, 1])) == [0, 2]


# -- DataLoader in the main process ------------------------------------------------------------------------


@pytest.mark.parametrize("last_batch, count", [("keep", 3), ("discard", 2), ("rollover", 2)])
def test_loader_length_follows_last_batch(last_batch, count):
    loader = DataLoader(SimpleDataset(list(range(5))), batch_size=2, last_batch=last_batch)
    assert len(loader) == count and len(list(loader)) == count


def test_default_batchify_stacks_and_keeps_dtypes():
    loader = DataLoader(Squares(), batch_size=3)
    data, label = next(iter(loader))
    assert data.dtype == np.float32 and label.dtype == np.int64
    assert data.asnumpy().tolist() == [[0, 0], [1, 1], [2, 4]] and label.asnumpy().tolist() == [0, 1, 2]
    nd_samples = DataLoader(SimpleDataset([mx.nd.array([i, -i]) for i in range(3)]), batch_size=3)
    assert next(iter(nd_samples)).asnumpy().tolist() == [[0, 0], [1, -1], [2, -2]]
    floats = next(iter(DataLoader(SimpleDataset([0.5, 1.5]), batch_size=2)))
    assert floats.dtype == np.float64 and floats.asnumpy().tolist() == [0.5, 1.5]


def test_default_batchify_recurses_into_nested_tuples():
    dataset = SimpleDataset([(i, (2 * i, np.float32(3 * i))) for i in range(4)])
    first, (second, third) = next(iter(DataLoader(dataset, batch_size=4)))
    assert first.asnumpy().tolist() == [0, 1, 2, 3] and second.asnumpy().tolist() == [0, 2, 4, 6]
    assert third.dtype == np.float32 and third.asnumpy().tolist() == [0, 3, 6, 9]


def test_loader_argument_errors_are_mxnets():
    data = SimpleDataset([1, 2, 3])
    with pytest.raises(ValueError, match="batch_size must be specified unless batch_sampler is specified"):
        DataLoader(data)
    with pytest.raises(ValueError, match="shuffle must not be specified if sampler is specified"):
        DataLoader(data, 2, shuffle=True, sampler=SequentialSampler(3))
    with pytest.raises(ValueError, match="batch_size, shuffle, sampler and last_batch must not be specified"):
        DataLoader(data, 2, batch_sampler=BatchSampler(SequentialSampler(3), 2))
    with pytest.raises(AssertionError, match="timeout must be positive, given 0"):
        DataLoader(data, 2, timeout=0)


def test_loader_uses_a_given_batch_sampler_and_batchify_fn():
    sampler = BatchSampler(SequentialSampler(5), 2, "discard")
    loader = DataLoader(SimpleDataset(list(range(5))), batch_sampler=sampler, batchify_fn=lambda s: sum(s))
    assert list(loader) == [1, 5]


def test_shuffle_is_reproducible_with_mx_random_seed():
    loader = DataLoader(SimpleDataset(list(range(12))), batch_size=4, shuffle=True)
    mx.random.seed(5)
    first = _as_lists(loader)
    mx.random.seed(5)
    assert _as_lists(loader) == first
    assert sum(first, []) == np.random.default_rng(5).permutation(12).tolist()


def test_pin_memory_puts_batches_on_cpu_pinned():
    batch = next(iter(DataLoader(Squares(), 2, pin_memory=True)))
    assert [b.context for b in batch] == [mx.cpu_pinned(0), mx.cpu_pinned(0)]


# -- DataLoader with workers -------------------------------------------------------------------------------


class Pids(Dataset):
    """Sample i is (i, the id of the process that read it)."""

    def __len__(self):
        return 6

    def __getitem__(self, idx):
        return idx, os.getpid()


def test_workers_are_real_processes_and_negative_workers_mean_none():
    pids = {p for _, batch in DataLoader(Pids(), 2, num_workers=2) for p in batch.asnumpy().tolist()}
    assert os.getpid() not in pids and len(pids) >= 1
    same = {p for _, batch in DataLoader(Pids(), 2, num_workers=-1) for p in batch.asnumpy().tolist()}
    assert same == {os.getpid()}


def test_worker_batches_equal_single_process_batches_even_with_unpicklable_transforms():
    dataset = Squares().transform_first(lambda x: x + 1)  # a lambda: fine, workers are forked
    expected = _as_lists(DataLoader(dataset, 3, last_batch="keep"))
    assert _as_lists(DataLoader(dataset, 3, num_workers=2)) == expected
    assert _as_lists(DataLoader(dataset, 3, num_workers=2, prefetch=0)) == expected
    assert _as_lists(DataLoader(dataset, 3, num_workers=2, thread_pool=True)) == expected


def test_shuffled_worker_order_equals_single_process_order_for_the_same_seed():
    dataset = ArrayDataset(np.arange(20, dtype=np.float32))
    mx.random.seed(9)
    expected = _as_lists(DataLoader(dataset, 4, shuffle=True))
    mx.random.seed(9)
    loader = DataLoader(dataset, 4, shuffle=True, num_workers=2)
    assert _as_lists(loader) == expected
    assert len(_as_lists(loader)) == 5  # a second epoch over the same workers


def test_custom_batchify_runs_in_the_workers():
    loader = DataLoader(Pids(), 3, num_workers=2, batchify_fn=lambda s: [i for i, _ in s])
    assert list(loader) == [[0, 1, 2], [3, 4, 5]]


class FailsAt(Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, idx):
        if idx == 4:
            raise ValueError("sample 4 is broken")
        return np.float32(idx)


@pytest.mark.parametrize("threads", [False, True])
def test_a_failing_worker_raises_mxnet_error_naming_the_batch(threads):
    loader = DataLoader(FailsAt(), 2, num_workers=2, thread_pool=threads)
    batches = iter(loader)
    assert next(batches).asnumpy().tolist() == [0, 1]
    assert next(batches).asnumpy().tolist() == [2, 3]
    with pytest.raises(WorkerError, match=r"batch 2 \(samples \[4, 5\]\): ValueError: sample 4 is broken"):
        next(batches)


class Slow(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, idx):
        time.sleep(1)
        return np.float32(idx)


def test_a_slow_worker_times_out():
    loader = DataLoader(Slow(), 1, num_workers=1, timeout=0.2)
    with pytest.raises(WorkerTimeout, match="Worker timed out after 0.2 seconds") as caught:
        next(iter(loader))
    assert isinstance(caught.value, multiprocessing.TimeoutError) and isinstance(caught.value, MXNetError)


def test_workers_reopen_record_files_after_the_fork(tmp_path):
    writer = recordio.MXIndexedRecordIO(str(tmp_path / "w.idx"), str(tmp_path / "w.rec"), "w")
    for key in range(6):
        writer.write_idx(key, bytes([key]) * (key + 1))
    writer.close()
    dataset = RecordFileDataset(str(tmp_path / "w.rec")).transform(lambda rec: np.float32(len(rec)))
    assert dataset[5] == 6  # the main process has read (and so positioned) its reader before the fork
    loader = DataLoader(dataset, 3, num_workers=2)
    assert _as_lists(loader) == [[1, 2, 3], [4, 5, 6]]
