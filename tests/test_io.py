"""mx.io's protocol, NDArrayIter, CSVIter and the wrapping iterators against MXNET_COMPAT.md section 5."""

from __future__ import annotations

import ember as mx
import ember.io  # until ember/__init__ imports io
import numpy as np
import pytest
from ember.base import ArtifactError, MXNetError

# -- DataDesc and DataBatch -------------------------------------------------------------------------


def test_datadesc_repr_equality_and_attributes():
    desc = mx.io.DataDesc("data", (100, 1, 28, 28))
    assert repr(desc) == "DataDesc[data,(100, 1, 28, 28),<class 'numpy.float32'>,NCHW]"
    assert desc == ("data", (100, 1, 28, 28))
    assert desc.name == "data" and desc.shape == (100, 1, 28, 28)
    assert (desc.dtype, desc.layout) == (np.float32, "NCHW")
    name, shape = desc
    assert (name, shape) == ("data", (100, 1, 28, 28))
    other = mx.io.DataDesc("seq", (4, 7), "int32", "TNC")
    assert repr(other) == "DataDesc[seq,(4, 7),int32,TNC]"


def test_datadesc_batch_axis_and_get_list():
    assert mx.io.DataDesc.get_batch_axis(None) == 0
    assert mx.io.DataDesc.get_batch_axis("NCHW") == 0
    assert mx.io.DataDesc.get_batch_axis("TNC") == 1
    descs = mx.io.DataDesc.get_list([("a", (2, 3)), ("b", (2,))], [("a", np.int32), ("b", np.float16)])
    assert descs == [("a", (2, 3)), ("b", (2,))]
    assert [d.dtype for d in descs] == [np.int32, np.float16]
    assert [d.dtype for d in mx.io.DataDesc.get_list([("a", (1,))], None)] == [np.float32]


def test_databatch_str_and_fields():
    batch = mx.io.DataBatch([mx.nd.zeros((2, 3))], [mx.nd.zeros((2,))], pad=1, index=np.array([4, 5]))
    assert str(batch) == "DataBatch: data shapes: [(2, 3)] label shapes: [(2,)]"
    assert batch.pad == 1 and batch.index.tolist() == [4, 5]
    assert batch.bucket_key is None and batch.provide_data is None
    assert (
        str(mx.io.DataBatch([mx.nd.zeros((2, 3))])) == "DataBatch: data shapes: [(2, 3)] label shapes: None"
    )


def test_databatch_rejects_non_list_data_and_label():
    with pytest.raises(MXNetError, match="^DataBatch: data must be a list of NDArrays, got NDArray$"):
        mx.io.DataBatch(mx.nd.zeros((2, 3)))
    with pytest.raises(MXNetError, match="^DataBatch: label must be a list of NDArrays, got NDArray$"):
        mx.io.DataBatch([mx.nd.zeros((2, 3))], label=mx.nd.zeros((2,)))


class CountingIter(mx.io.DataIter):
    """A DataIter written against the protocol: three batches of one value each."""

    def __init__(self):
        super().__init__(batch_size=1)
        self.cur = 0

    def reset(self):
        self.cur = 0

    def iter_next(self):
        self.cur += 1
        return self.cur <= 3

    def getdata(self):
        return [mx.nd.array([self.cur])]

    def getlabel(self):
        return []

    def getpad(self):
        return 0


def test_dataiter_protocol_builds_batches_from_the_getters():
    it = CountingIter()
    assert iter(it) is it
    values = [batch.data[0].asnumpy().tolist() for batch in it]
    assert values == [[1.0], [2.0], [3.0]]
    with pytest.raises(StopIteration):
        it.next()
    it.reset()
    batch = next(it)
    assert (batch.pad, batch.index, batch.label) == (0, None, [])


# -- NDArrayIter ------------------------------------------------------------------------------------

FIVE = np.arange(5, dtype=np.float32).reshape(5, 1) * 10  # samples s0..s4 = 0, 10, 20, 30, 40


def epoch(it) -> list[tuple[list[float], list[float], int]]:
    """(data, label, pad) of every batch of one epoch."""
    out = [(b.data[0].asnumpy().ravel().tolist(), b.label[0].asnumpy().tolist(), b.pad) for b in it]
    it.reset()
    return out


def test_ndarrayiter_pad_wraps_to_the_start():
    it = mx.io.NDArrayIter(FIVE, np.arange(5), batch_size=2, last_batch_handle="pad")
    expected = [([0, 10], [0, 1], 0), ([20, 30], [2, 3], 0), ([40, 0], [4, 0], 1)]
    assert epoch(it) == expected
    assert epoch(it) == expected


def test_ndarrayiter_discard_drops_the_last_batch():
    it = mx.io.NDArrayIter(FIVE, np.arange(5), batch_size=2, last_batch_handle="discard")
    expected = [([0, 10], [0, 1], 0), ([20, 30], [2, 3], 0)]
    assert epoch(it) == expected
    assert epoch(it) == expected


def test_ndarrayiter_roll_over_carries_the_leftover_into_the_next_epoch():
    it = mx.io.NDArrayIter(FIVE, np.arange(5), batch_size=2, last_batch_handle="roll_over")
    assert epoch(it) == [([0, 10], [0, 1], 0), ([20, 30], [2, 3], 0)]
    assert epoch(it) == [([40, 0], [4, 0], 1), ([10, 20], [1, 2], 0), ([30, 40], [3, 4], 0)]
    assert epoch(it) == [([0, 10], [0, 1], 0), ([20, 30], [2, 3], 0)]


def test_ndarrayiter_hard_reset_forgets_the_rolled_over_samples():
    it = mx.io.NDArrayIter(FIVE, np.arange(5), batch_size=2, last_batch_handle="roll_over")
    assert len(list(it)) == 2
    it.hard_reset()
    assert [b.data[0].asnumpy().ravel().tolist() for b in it] == [[0, 10], [20, 30]]


def test_ndarrayiter_batch_larger_than_the_data_tiles_with_pad():
    batches = list(mx.io.NDArrayIter(np.arange(4), batch_size=9))
    assert len(batches) == 1
    assert batches[0].data[0].asnumpy().tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0]
    assert batches[0].pad == 5 and batches[0].label == []
    assert mx.io.NDArrayIter(np.arange(4), batch_size=8).next().data[0].asnumpy().tolist() == [0, 1, 2, 3] * 2


def test_ndarrayiter_batch_larger_than_the_data_with_discard_and_roll_over():
    assert list(mx.io.NDArrayIter(np.arange(3), batch_size=4, last_batch_handle="discard")) == []
    it = mx.io.NDArrayIter(np.arange(3), batch_size=4, last_batch_handle="roll_over")
    assert list(it) == []
    it.reset()
    batches = [(b.data[0].asnumpy().tolist(), b.pad) for b in it]
    assert batches == [([0, 1, 2, 0], 3)]


def test_ndarrayiter_without_label_and_num_data():
    it = mx.io.NDArrayIter(np.zeros((7, 3)), batch_size=3)
    assert it.num_data == 7
    assert it.provide_label == []
    assert it.provide_data == [("data", (3, 3))]
    batch = it.next()
    assert batch.label == [] and batch.index is None
    assert str(batch) == "DataBatch: data shapes: [(3, 3)] label shapes: None"


def test_ndarrayiter_converts_numpy_to_float32_and_keeps_ndarray_dtype():
    it = mx.io.NDArrayIter(np.arange(6, dtype=np.int64).reshape(3, 2), mx.nd.array([1, 2, 3], dtype="int32"))
    assert it.provide_data[0].dtype == np.float32
    assert it.provide_label[0].dtype == np.int32
    batch = it.next()
    assert batch.data[0].dtype == np.float32 and batch.label[0].dtype == np.int32
    assert repr(it.provide_label[0]) == "DataDesc[softmax_label,(1,),<class 'numpy.int32'>,NCHW]"
    # as in MXNet, shuffling rebuilds the arrays with mx.nd.array(numpy), which makes them float32
    shuffled = mx.io.NDArrayIter(mx.nd.array([1, 2, 3], dtype="int32"), batch_size=3, shuffle=True)
    assert shuffled.provide_data[0].dtype == np.float32
    assert sorted(shuffled.next().data[0].asnumpy().tolist()) == [1.0, 2.0, 3.0]


def test_ndarrayiter_list_and_dict_inputs_use_mxnets_sorted_names():
    arrays = [np.full((4, 1), i, dtype=np.float32) for i in range(3)]
    it = mx.io.NDArrayIter(arrays, [np.zeros(4), np.ones(4)], batch_size=2)
    assert [d.name for d in it.provide_data] == ["_0_data", "_1_data", "_2_data"]
    assert [d.name for d in it.provide_label] == ["_0_softmax_label", "_1_softmax_label"]
    batch = it.next()
    assert [d.asnumpy()[0, 0] for d in batch.data] == [0, 1, 2]
    many = mx.io.NDArrayIter([np.zeros((2, 1))] * 11, batch_size=2)
    assert [d.name for d in many.provide_data][:3] == ["_0_data", "_10_data", "_1_data"]
    by_name = mx.io.NDArrayIter(
        {"b": np.ones((4, 2)), "a": np.zeros((4, 3))}, {"y": np.zeros(4)}, batch_size=4
    )
    assert by_name.provide_data == [("a", (4, 3)), ("b", (4, 2))]
    assert by_name.provide_label == [("y", (4,))]
    named = mx.io.NDArrayIter(np.zeros((4, 2)), np.zeros(4), 2, data_name="x", label_name="lin_reg_label")
    assert [d.name for d in named.provide_data + named.provide_label] == ["x", "lin_reg_label"]


def test_ndarrayiter_shuffle_is_reproducible_and_reshuffles_at_reset():
    data = np.arange(10, dtype=np.float32).reshape(10, 1)

    def orders(seed):
        np.random.seed(seed)
        it = mx.io.NDArrayIter(data, data.ravel(), batch_size=5, shuffle=True)
        epochs, aligned = [], True
        for _ in range(2):
            batches = [(b.data[0].asnumpy().ravel(), b.label[0].asnumpy()) for b in it]
            aligned = aligned and all((d == lab).all() for d, lab in batches)
            epochs.append(np.concatenate([d for d, _ in batches]).tolist())
            it.reset()
        return epochs[0], epochs[1], aligned

    first, second, aligned = orders(7)
    assert sorted(first) == list(range(10)) and sorted(second) == list(range(10))
    assert first != second  # reset() reshuffles
    assert aligned  # data and label stay paired
    assert orders(7)[:2] == (first, second)  # same NumPy seed, same orders
    np.random.seed(7)
    idx = np.arange(10)
    np.random.shuffle(idx)
    assert first == idx.astype(np.float32).tolist()  # MXNet's order for this seed


def test_ndarrayiter_layout_puts_the_batch_on_the_n_axis():
    data = np.arange(2 * 6 * 3, dtype=np.float32).reshape(2, 6, 3)  # T=2, N=6, C=3
    it = mx.io.NDArrayIter(data, batch_size=4, layout="TNC", last_batch_handle="pad")
    assert it.num_data == 6
    assert it.provide_data == [("data", (2, 4, 3))] and it.provide_data[0].layout == "TNC"
    batches = list(it)
    assert [b.data[0].shape for b in batches] == [(2, 4, 3), (2, 4, 3)]
    np.testing.assert_array_equal(batches[1].data[0].asnumpy(), data[:, [4, 5, 0, 1], :])
    assert batches[1].pad == 2


def test_ndarrayiter_errors():
    with pytest.raises(MXNetError, match="^NDArrayIter: data is required, got None$"):
        mx.io.NDArrayIter(None)
    with pytest.raises(
        MXNetError, match="last_batch_handle must be 'pad', 'discard' or 'roll_over', got 'drop'"
    ):
        mx.io.NDArrayIter(FIVE, last_batch_handle="drop")
    with pytest.raises(MXNetError, match="^NDArrayIter: batch_size must be a positive integer, got 0$"):
        mx.io.NDArrayIter(FIVE, batch_size=0)
    with pytest.raises(
        MXNetError,
        match="^NDArrayIter: 'softmax_label' has 4 examples but 'data' has 5; every data and label array",
    ):
        mx.io.NDArrayIter(FIVE, np.zeros(4))
    with pytest.raises(TypeError, match="Input must be NDArray, numpy.ndarray, a list of them or dict"):
        mx.io.NDArrayIter("not an array")
    it = mx.io.NDArrayIter(FIVE, batch_size=5)
    list(it)
    with pytest.raises(MXNetError, match="the epoch is over; call reset"):
        it.getdata()


# -- CSVIter ----------------------------------------------------------------------------------------


def write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def csv_epoch(it):
    out = [(b.data[0].asnumpy().tolist(), b.label[0].asnumpy().tolist(), b.pad) for b in it]
    it.reset()
    return out


def test_csviter_round_batch_wraps_and_next_epoch_starts_after_the_wrapped_rows(tmp_path):
    data = write(tmp_path / "d.csv", "1,2\n3,4\n5,6\n")
    label = write(tmp_path / "l.csv", "10\n20\n30\n")
    it = mx.io.CSVIter(data_csv=data, data_shape=(2,), label_csv=label, batch_size=2)
    assert it.provide_data == [("data", (2, 2))] and it.provide_label == [("softmax_label", (2,))]
    assert csv_epoch(it) == [([[1, 2], [3, 4]], [10, 20], 0), ([[5, 6], [1, 2]], [30, 10], 1)]
    assert csv_epoch(it) == [([[3, 4], [5, 6]], [20, 30], 0)]
    assert csv_epoch(it) == [([[1, 2], [3, 4]], [10, 20], 0), ([[5, 6], [1, 2]], [30, 10], 1)]


def test_csviter_without_round_batch_keeps_stale_rows(tmp_path):
    data = write(tmp_path / "d.csv", "1\n2\n3\n")
    it = mx.io.CSVIter(data_csv=data, data_shape=(1,), batch_size=2, round_batch=False)
    expected = [([[1], [2]], [0, 0], 0), ([[3], [2]], [0, 0], 1)]
    assert csv_epoch(it) == expected
    assert csv_epoch(it) == expected
    it.next()
    assert it.next().index.tolist() == [2, 1]


def test_csviter_shapes_dtype_and_index(tmp_path):
    data = write(tmp_path / "d.csv", "1,2,3,4,5,6\n\n7,8,9,10,11,12\n")
    label = write(tmp_path / "l.csv", "1,0\n0,1\n")
    it = mx.io.CSVIter(
        data_csv=data, data_shape=(2, 3), label_csv=label, label_shape=(2,), batch_size=2, dtype="int32"
    )
    assert it.provide_data == [("data", (2, 2, 3))] and it.provide_label == [("softmax_label", (2, 2))]
    assert it.provide_data[0].dtype == np.int32
    batch = it.next()
    assert batch.data[0].dtype == np.int32
    assert batch.data[0].asnumpy().tolist() == [[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [10, 11, 12]]]
    assert batch.label[0].asnumpy().tolist() == [[1, 0], [0, 1]]
    assert batch.index.tolist() == [0, 1] and batch.pad == 0
    with pytest.raises(StopIteration):
        it.next()
    floats = mx.io.CSVIter(data_csv=data, data_shape="(6,)", batch_size="1", round_batch="False")
    assert floats.next().data[0].asnumpy().tolist() == [[1, 2, 3, 4, 5, 6]]
    assert floats.provide_data[0].dtype == np.float32


def test_csviter_batch_larger_than_the_file(tmp_path):
    data = write(tmp_path / "d.csv", "1\n2\n3\n")
    it = mx.io.CSVIter(data_csv=data, data_shape=(1,), batch_size=4)
    batch = it.next()
    assert (batch.data[0].asnumpy().ravel().tolist(), batch.pad) == ([1, 2, 3, 1], 1)
    with pytest.raises(
        MXNetError, match=r"^CSVIter: batch_size=7 needs 4 rows from the start of data_csv '.*d\.csv'"
    ):
        mx.io.CSVIter(data_csv=data, data_shape=(1,), batch_size=7)
    padded = mx.io.CSVIter(data_csv=data, data_shape=(1,), batch_size=7, round_batch=False).next()
    assert (padded.data[0].asnumpy().ravel().tolist(), padded.pad) == ([1, 2, 3, 0, 0, 0, 0], 4)


@pytest.mark.parametrize(
    "text, message",
    [
        ("1,2\n3,x\n", r"line 2, column 2: 'x' is not a number$"),
        ("1,2\n3\n", r"line 2 has 1 values, but data_shape=\(2,\) needs 2$"),
        ("1,,2\n", r"line 1 has 3 values, but data_shape=\(2,\) needs 2$"),
        ("1,\n", r"line 1, column 2: '' is not a number$"),
        ("\n\n", r"holds no rows$"),
    ],
)
def test_csviter_bad_data_names_file_and_line(tmp_path, text, message):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(ArtifactError, match=r"^CSVIter data_csv '.*bad\.csv' " + message):
        mx.io.CSVIter(data_csv=path, data_shape=(2,), batch_size=1)


def test_csviter_other_errors(tmp_path):
    data = write(tmp_path / "d.csv", "1\n2\n3\n")
    short = write(tmp_path / "l.csv", "1\n2\n")
    with pytest.raises(
        ArtifactError, match=r"^CSVIter: label_csv '.*l\.csv' has 2 rows but data_csv '.*d\.csv' has 3"
    ):
        mx.io.CSVIter(data_csv=data, data_shape=(1,), label_csv=short, batch_size=1)
    with pytest.raises(ArtifactError, match=r"^CSVIter data_csv '.*missing\.csv' does not exist"):
        mx.io.CSVIter(data_csv=str(tmp_path / "missing.csv"), data_shape=(1,), batch_size=1)
    with pytest.raises(ArtifactError, match=r"line 2, column 1: '2\.5' is not an integer$"):
        mx.io.CSVIter(
            data_csv=write(tmp_path / "f.csv", "1\n2.5\n"), data_shape=(1,), batch_size=1, dtype="int64"
        )
    with pytest.raises(MXNetError, match="^CSVIter: the required parameter batch_size is missing$"):
        mx.io.CSVIter(data_csv=data, data_shape=(1,))
    with pytest.raises(MXNetError, match="^CSVIter: data_shape must be a shape of positive integers, got"):
        mx.io.CSVIter(data_csv=data, data_shape=(0,), batch_size=1)
    with pytest.raises(
        MXNetError, match="^CSVIter: dtype must be None or one of float32, int32, int64, got 'uint8'$"
    ):
        mx.io.CSVIter(data_csv=data, data_shape=(1,), batch_size=1, dtype="uint8")
    longer = write(tmp_path / "l2.csv", "1\n2\n3\n4\n")
    it = mx.io.CSVIter(data_csv=data, data_shape=(1,), label_csv=longer, batch_size=3, prefetch_buffer=2)
    assert it.next().label[0].asnumpy().tolist() == [1, 2, 3]  # extra label rows are ignored


def test_csviter_integral_floats_are_accepted_as_integers(tmp_path):
    data = write(tmp_path / "d.csv", "1.0, 2\n")
    it = mx.io.CSVIter(data_csv=data, data_shape=(2,), batch_size=1, dtype="int64")
    assert it.next().data[0].asnumpy().tolist() == [[1, 2]]


# -- ResizeIter and PrefetchingIter -----------------------------------------------------------------


def test_resizeiter_restarts_the_inner_iterator():
    inner = mx.io.NDArrayIter(np.arange(6, dtype=np.float32).reshape(6, 1), batch_size=2)
    resized = mx.io.ResizeIter(inner, 5)
    assert resized.provide_data == inner.provide_data and resized.batch_size == 2
    values = [b.data[0].asnumpy().ravel().tolist() for b in resized]
    assert values == [[0, 1], [2, 3], [4, 5], [0, 1], [2, 3]]
    resized.reset()
    assert [b.data[0].asnumpy().ravel().tolist() for b in resized][:2] == [[0, 1], [2, 3]]


def test_prefetchingiter_joins_and_renames():
    first = mx.io.NDArrayIter({"data": np.zeros((4, 2))}, np.zeros(4), batch_size=2)
    second = mx.io.NDArrayIter({"data": np.ones((4, 3))}, batch_size=2)
    joined = mx.io.PrefetchingIter([first, second], rename_data=[{"data": "data_1"}, {"data": "data_2"}])
    assert repr(joined.provide_data) == (
        "[DataDesc[data_1,(2, 2),<class 'numpy.float32'>,NCHW], DataDesc[data_2,(2, 3),<class 'numpy.float32'>,NCHW]]"
    )
    assert joined.batch_size == 2
    batches = list(joined)
    assert len(batches) == 2
    assert [d.shape for d in batches[0].data] == [(2, 2), (2, 3)] and len(batches[0].label) == 1
    joined.reset()
    assert len(list(joined)) == 2
    uneven = mx.io.PrefetchingIter(
        [mx.io.NDArrayIter(np.zeros((4, 1)), batch_size=2), mx.io.NDArrayIter(np.zeros((2, 1)), batch_size=2)]
    )
    uneven.next()
    with pytest.raises(MXNetError, match="^PrefetchingIter: the iterators disagree on the number of batches"):
        uneven.next()
