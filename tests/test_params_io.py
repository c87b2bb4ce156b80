"""`.params` files (MXNET_COMPAT.md 11.1): MXNet's own files load, saves are byte-identical to MXNet's,
every older record version reads, and every malformed file raises ArtifactError naming the file."""

from __future__ import annotations

import os
import pickle
import re
import struct

import numpy as np
import pytest

import ember.ndarray as nd
from ember.context import cpu, cpu_pinned
from ember.ndarray import NDArray
from ember.runtime.errors import ArtifactError, MXNetError

DTYPES = ["float32", "float64", "float16", "int32", "int64", "int8", "uint8", "bool"]
HEADER = struct.pack("<QQ", 0x112, 0)


def sample(dtype: str, shape=(2, 3)) -> NDArray:
    values = np.arange(np.prod(shape)).reshape(shape) - 2
    return nd.array(values % 2 if dtype == "bool" else values, dtype=dtype)


def params_file(records: list[bytes], names: list[str] = ()) -> bytes:
    """A list file around hand-built array records."""
    body = HEADER + struct.pack("<Q", len(records)) + b"".join(records) + struct.pack("<Q", len(names))
    for name in names:
        body += struct.pack("<Q", len(name)) + name.encode()
    return body


def v2_record(shape, data: np.ndarray, magic=0xF993FAC9, stype=0, dev=(1, 0), code=0) -> bytes:
    head = struct.pack(f"<Iii{len(shape)}q", magic, stype, len(shape), *shape)
    return head + struct.pack("<iii", *dev, code) + data.tobytes()


# -- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_dict_round_trip_is_lossless(tmp_path, dtype):
    original = {"arg:a": sample(dtype), "aux:b": sample(dtype, (5,))}
    nd.save(tmp_path / "x.params", original)
    loaded = nd.load(str(tmp_path / "x.params"))
    assert list(loaded) == ["arg:a", "aux:b"]
    for name, array in loaded.items():
        assert array.dtype is original[name].dtype
        assert array.context == cpu(0)
        np.testing.assert_array_equal(array.asnumpy(), original[name].asnumpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_list_round_trip_is_lossless(tmp_path, dtype):
    original = [sample(dtype, (1, 2, 3, 1)), sample(dtype, (4,))]
    nd.save(tmp_path / "x.params", original)
    loaded = nd.load(tmp_path / "x.params")
    assert isinstance(loaded, list) and len(loaded) == 2
    for got, want in zip(loaded, original):
        assert got.dtype is want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got.asnumpy(), want.asnumpy())


def test_single_array_and_empty_list(tmp_path):
    nd.save(tmp_path / "one.params", nd.array([1, 2]))
    (only,) = nd.load(tmp_path / "one.params")
    np.testing.assert_array_equal(only.asnumpy(), [1, 2])
    nd.save(tmp_path / "none.params", [])
    assert nd.load(tmp_path / "none.params") == []
    assert nd.save_tobuffer({}) == HEADER + bytes(16)


def test_buffer_helpers_round_trip():
    loaded = nd.load_frombuffer(nd.save_tobuffer({"w": nd.array([[1.5]])}))
    assert list(loaded) == ["w"] and loaded["w"].asscalar() == 1.5


def test_save_rejects_other_data():
    with pytest.raises(TypeError, match="save only accept dict str->NDArray or list of NDArray"):
        nd.save_tobuffer({1: nd.array([1])})
    with pytest.raises(TypeError, match="save only accept dict str->NDArray or list of NDArray"):
        nd.save_tobuffer([np.ones(2)])
    with pytest.raises(ValueError, match="data needs to either be a NDArray"):
        nd.save_tobuffer((nd.array([1]),))


# -- MXNet's files -----------------------------------------------------------------------------


def test_worked_example_is_byte_identical(mxnet_fixture):
    saved = nd.save_tobuffer(
        {
            "arg:w": nd.array([[1, 2, 3], [4, 5, 6]]),
            "aux:m": nd.array([7.0], dtype="float64"),
            "arg:i": nd.array([1, 2], dtype="int32"),
        }
    )
    assert len(saved) == 215
    assert saved == mxnet_fixture("t.params").read_bytes()


def test_saved_file_equals_mxnets_bytes(tmp_path, mxnet_fixture):
    nd.save(tmp_path / "t2.params", [nd.array([1, 1])])
    assert (tmp_path / "t2.params").read_bytes() == mxnet_fixture("t2.params").read_bytes()


FIXTURES = {
    "t.params": {"arg:w": ((2, 3), np.float32), "aux:m": ((1,), np.float64), "arg:i": ((2,), np.int32)},
    "lin-0003.params": {"arg:fc_weight": ((1, 5), np.float32), "arg:fc_bias": ((1,), np.float32)},
    "ck-0001.params": {
        "arg:fullyconnected0_weight": ((128, 784), np.float32),
        "arg:fullyconnected0_bias": ((128,), np.float32),
        "arg:fullyconnected1_weight": ((64, 128), np.float32),
        "arg:fullyconnected1_bias": ((64,), np.float32),
        "arg:fullyconnected2_weight": ((10, 64), np.float32),
        "arg:fullyconnected2_bias": ((10,), np.float32),
    },
    "hn.params": {
        "0.weight": ((20, 1, 5, 5), np.float32),
        "0.bias": ((20,), np.float32),
        "2.gamma": ((20,), np.float32),
        "2.beta": ((20,), np.float32),
        "2.running_mean": ((20,), np.float32),
        "2.running_var": ((20,), np.float32),
        "5.weight": ((10, 2880), np.float32),
        "5.bias": ((10,), np.float32),
    },
    "mlpnet-0003.params": {
        "arg:mlp_conv0_weight": ((20, 1, 5, 5), np.float32),
        "arg:mlp_conv0_bias": ((20,), np.float32),
        "arg:mlp_batchnorm0_gamma": ((20,), np.float32),
        "arg:mlp_batchnorm0_beta": ((20,), np.float32),
        "aux:mlp_batchnorm0_running_mean": ((20,), np.float32),
        "aux:mlp_batchnorm0_running_var": ((20,), np.float32),
        "arg:mlp_dense0_weight": ((10, 2880), np.float32),
        "arg:mlp_dense0_bias": ((10,), np.float32),
    },
}


@pytest.mark.parametrize("name", FIXTURES)
def test_mxnet_fixture_loads_with_its_names_shapes_and_dtypes(mxnet_fixture, name):
    path = mxnet_fixture(name)
    loaded = nd.load(str(path))
    assert {k: (v.shape, v.dtype) for k, v in loaded.items()} == FIXTURES[name]
    assert list(loaded) == list(FIXTURES[name])  # file order
    assert nd.save_tobuffer(loaded) == path.read_bytes()  # and it saves back byte for byte


def test_mxnet_fixture_values(mxnet_fixture):
    t = nd.load(mxnet_fixture("t.params"))
    np.testing.assert_array_equal(t["arg:w"].asnumpy(), [[1, 2, 3], [4, 5, 6]])
    assert t["aux:m"].asscalar() == 7.0
    np.testing.assert_array_equal(t["arg:i"].asnumpy(), [1, 2])
    (ones,) = nd.load(mxnet_fixture("t2.params"))
    np.testing.assert_array_equal(ones.asnumpy(), [1, 1])
    lin = nd.load(mxnet_fixture("lin-0003.params"))
    np.testing.assert_allclose(lin["arg:fc_bias"].asnumpy(), [-0.00828034], rtol=1e-6)
    np.testing.assert_allclose(lin["arg:fc_weight"].asnumpy()[0, :2], [0.56193846, 1.0318017], rtol=1e-6)
    hn, mlp = nd.load(mxnet_fixture("hn.params")), nd.load(mxnet_fixture("mlpnet-0003.params"))
    np.testing.assert_array_equal(hn["2.running_var"].asnumpy(), np.ones(20))
    np.testing.assert_array_equal(hn["0.weight"].asnumpy(), mlp["arg:mlp_conv0_weight"].asnumpy())
    ck = nd.load(mxnet_fixture("ck-0001.params"))
    np.testing.assert_allclose(
        ck["arg:fullyconnected0_weight"].asnumpy()[0, :2], [0.00097627, 0.00185689], rtol=1e-5
    )


def test_mxnet_pickled_ndarrays_unpickle_as_ember_ndarrays(mxnet_fixture):
    class MXNetUnpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("mxnet.ndarray.ndarray", "NDArray"):
                return NDArray
            return super().find_class(module, name)

    with open(mxnet_fixture("lin-0003.states"), "rb") as stream:
        states = MXNetUnpickler(stream).load()
    assert {k: (v.shape, v.dtype) for k, v in states.items()} == {
        "fc_weight": ((1, 5), np.float32),
        "fc_bias": ((1,), np.float32),
    }
    assert states["fc_bias"].asscalar() == struct.unpack("<f", b"v\xb31=")[0]


# -- older and other record versions -----------------------------------------------------------


def test_reads_v1_records():
    record = (
        struct.pack("<Ii2q", 0xF993FAC8, 2, 1, 2) + struct.pack("<iii", 1, 0, 4) + struct.pack("<2i", 5, 6)
    )
    (array,) = nd.load_frombuffer(params_file([record]))
    assert array.dtype is np.int32
    np.testing.assert_array_equal(array.asnumpy(), [[5, 6]])


def test_reads_pre_v1_records_without_magic():
    record = struct.pack("<I2I", 2, 2, 1) + struct.pack("<iii", 1, 0, 1) + struct.pack("<2d", 1.5, -2)
    loaded = nd.load_frombuffer(params_file([record], ["old"]))
    np.testing.assert_array_equal(loaded["old"].asnumpy(), [[1.5], [-2.0]])
    assert loaded["old"].dtype is np.float64


def test_reads_v3_records_with_0d_and_unknown_shapes():
    scalar = struct.pack("<Iii", 0xF993FACA, 0, 0) + struct.pack("<iii", 1, 0, 0) + struct.pack("<f", 3.5)
    unknown = struct.pack("<Iii", 0xF993FACA, 0, -1)
    zero_size = v2_record((0, 3), np.zeros(0, np.float32), magic=0xF993FACA)
    scalar_array, none_array, empty_array = nd.load_frombuffer(params_file([scalar, unknown, zero_size]))
    assert scalar_array.shape == () and scalar_array.asscalar() == 3.5
    assert none_array is None
    assert empty_array.shape == (0, 3)


def test_legacy_ndim_0_is_a_none_array_and_round_trips():
    loaded = nd.load_frombuffer(params_file([struct.pack("<Iii", 0xF993FAC9, 0, 0)], ["empty"]))
    assert loaded == {"empty": None}
    assert nd.save_tobuffer(loaded) == params_file([struct.pack("<Iii", 0xF993FAC9, 0, 0)], ["empty"])


def test_arrays_saved_on_a_gpu_load_on_the_cpu():
    record = v2_record((2,), np.array([1, 2], np.float32), dev=(2, 1))
    (array,) = nd.load_frombuffer(params_file([record]))
    assert array.context == cpu(0)
    np.testing.assert_array_equal(array.asnumpy(), [1, 2])


def test_saving_records_the_arrays_context():
    saved = nd.save_tobuffer([nd.array([1.0], ctx=cpu_pinned(0))])
    assert saved[24:56] == struct.pack("<Iiiqiii", 0xF993FAC9, 0, 1, 1, 3, 0, 0)


# -- malformed files ---------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "absent.params"
    with pytest.raises(ArtifactError, match=re.escape(f"cannot load '{path}': no such file")):
        nd.load(path)


def test_truncation_at_every_byte_raises(tmp_path, mxnet_fixture):
    data = mxnet_fixture("t.params").read_bytes()
    path = tmp_path / "cut.params"
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        with pytest.raises(ArtifactError, match=f"^{re.escape(repr(str(path)))} is (truncated|empty)"):
            nd.load(path)


def test_truncated_message_says_what_is_missing():
    data = nd.save_tobuffer({"w": nd.array([1, 2])})
    with pytest.raises(
        ArtifactError,
        match=r"the buffer is truncated: the data of array 0 needs 8 bytes at byte 56, but only 4 remain",
    ):
        nd.load_frombuffer(data[:60])


def test_bad_list_magic(tmp_path):
    path = tmp_path / "bad.params"
    path.write_bytes(b"PK\x03\x04" + bytes(40))
    with pytest.raises(
        ArtifactError, match=re.escape(f"'{path}' is not an MXNet NDArray file: it starts with 0x4034b50")
    ):
        nd.load(path)


def test_bad_array_magic():
    with pytest.raises(
        ArtifactError, match=r"array 0 \(at byte 24\) starts with 0xdeadbeef, which is neither"
    ):
        nd.load_frombuffer(params_file([struct.pack("<I", 0xDEADBEEF)]))


def test_unknown_dtype_code():
    record = v2_record((1,), np.zeros(1, np.float32), code=42)
    with pytest.raises(ArtifactError, match="the buffer is corrupt: array 0 has unknown dtype code 42"):
        nd.load_frombuffer(params_file([record]))


def test_bfloat16_is_named_as_unsupported():
    record = v2_record((1,), np.zeros(1, np.uint16), code=12)
    with pytest.raises(ArtifactError, match="array 0 has dtype bfloat16, which Ember does not support"):
        nd.load_frombuffer(params_file([record]))


@pytest.mark.parametrize("stype,name", [(1, "row_sparse"), (2, "csr")])
def test_sparse_storage_is_not_supported(stype, name):
    record = v2_record((1,), np.zeros(1, np.float32), stype=stype)
    with pytest.raises(
        ArtifactError, match=f"array 0 uses {name} \\(sparse\\) storage, which Ember does not support"
    ):
        nd.load_frombuffer(params_file([record]))


def test_unknown_storage_and_device_types():
    with pytest.raises(ArtifactError, match="array 0 has unknown storage type 7"):
        nd.load_frombuffer(params_file([v2_record((1,), np.zeros(1, np.float32), stype=7)]))
    with pytest.raises(ArtifactError, match="array 0 has unknown device type code 9"):
        nd.load_frombuffer(params_file([v2_record((1,), np.zeros(1, np.float32), dev=(9, 0))]))


def test_trailing_garbage(mxnet_fixture):
    with pytest.raises(
        ArtifactError, match=r"the buffer has 3 unexpected bytes after its last record \(from byte 215\)"
    ):
        nd.load_frombuffer(mxnet_fixture("t.params").read_bytes() + b"xyz")


def test_name_count_must_match_array_count():
    record = v2_record((1,), np.zeros(1, np.float32))
    with pytest.raises(ArtifactError, match="the buffer is corrupt: it holds 1 arrays but 2 names"):
        nd.load_frombuffer(params_file([record], ["a", "b"]))


def test_negative_dimensions_are_corrupt():
    record = struct.pack("<Iii1q", 0xF993FAC9, 0, 1, -5)
    with pytest.raises(ArtifactError, match=r"array 0 has a negative dimension in shape \(-5,\)"):
        nd.load_frombuffer(params_file([record]))


def test_load_frombuffer_needs_bytes():
    with pytest.raises(TypeError, match="buf required to be a string or bytes"):
        nd.load_frombuffer("text")


# -- atomic writes -----------------------------------------------------------------------------


def test_save_overwrites_atomically_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "w.params"
    nd.save(path, [nd.array([1])])
    nd.save(path, {"w": nd.array([2])})
    assert os.listdir(tmp_path) == ["w.params"]
    assert nd.load(path)["w"].asscalar() == 2


def test_failed_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "w.params"
    nd.save(path, [nd.array([1])])
    before = path.read_bytes()
    with pytest.raises(TypeError):
        nd.save(path, [nd.array([1]), "not an array"])
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["w.params"]


def test_save_into_a_missing_folder(tmp_path):
    path = tmp_path / "missing" / "w.params"
    with pytest.raises(ArtifactError, match=re.escape(f"cannot write '{path}'")):
        nd.save(path, [nd.array([1])])


def test_artifact_error_is_an_mxnet_error():
    assert issubclass(ArtifactError, MXNetError)
