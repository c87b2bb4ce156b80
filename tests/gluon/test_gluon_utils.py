"""gluon.utils: batch splitting (NumPy's array_split is the oracle of the uneven rule, as in MXNet 1.9.1's
own test), clip_global_norm against hand-computed norms, check_sha1 against hashlib's known digests, and
download's argument handling and failure path through file:// URLs (there is no network)."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

import ember as mx
from ember.base import MXNetError
from ember.gluon import utils
from ember.gluon.utils import DownloadError, ReplaceError


@pytest.mark.parametrize("num_slice, axis", [(2, 0), (3, 0), (4, 1), (15, 1), (9, 0)])
def test_uneven_split_matches_numpy_array_split(num_slice, axis):
    x = np.arange(8 * 5, dtype=np.float32).reshape(8, 5)
    slices = utils.split_data(mx.nd.array(x), num_slice, axis, even_split=False)
    expected = np.array_split(x, num_slice, axis=axis)
    assert len(slices) == num_slice
    assert [s.shape for s in slices] == [e.shape for e in expected]
    assert all(np.array_equal(s.asnumpy(), e) for s, e in zip(slices, expected))


def test_even_split_refuses_an_axis_it_cannot_divide():
    data = mx.nd.zeros((6, 4))
    with pytest.raises(ValueError, match=(
        r"data with shape \(6, 4\) cannot be evenly split into 4 slices along axis 0. Use a batch size "
        "that's multiple of 4 or set even_split=False to allow uneven partitioning of data.")):  # fmt: skip
        utils.split_data(data, 4)
    assert [s.shape for s in utils.split_data(data, 2, batch_axis=1)] == [(6, 2), (6, 2)]


def test_split_and_load_puts_one_slice_on_each_context():
    ctxs = [mx.cpu(0), mx.cpu(1)]
    parts = utils.split_and_load(np.arange(6).reshape(3, 2), ctxs, even_split=False)
    assert [p.context for p in parts] == ctxs
    assert [p.asnumpy().tolist() for p in parts] == [[[0, 1], [2, 3]], [[4, 5]]]
    (whole,) = utils.split_and_load(mx.nd.ones((3,)), [mx.cpu(1)])
    assert whole.context == mx.cpu(1) and whole.shape == (3,)


def test_clip_global_norm_scales_in_place_and_returns_the_norm():
    a, b = mx.nd.array([3.0, 4.0]), mx.nd.array([[12.0]])
    norm = utils.clip_global_norm([a, b], 6.5)
    assert isinstance(norm, (float, np.floating)) and norm == pytest.approx(13.0)
    assert a.asnumpy().tolist() == pytest.approx([1.5, 2.0]) and b.asnumpy()[0, 0] == pytest.approx(6.0)
    c = mx.nd.array([0.3, 0.4])
    assert utils.clip_global_norm([c], 1.0) == pytest.approx(0.5)
    assert c.asnumpy() == pytest.approx([0.3, 0.4])  # below max_norm: the scale is 1


def test_clip_global_norm_without_the_finiteness_check_returns_an_ndarray():
    norm = utils.clip_global_norm([mx.nd.array([6.0, 8.0])], 100.0, check_isfinite=False)
    assert isinstance(norm, mx.nd.NDArray) and norm.shape == (1,) and norm.asnumpy()[0] == pytest.approx(10)


def test_clip_global_norm_warns_on_nan():
    with pytest.warns(UserWarning, match="nan or inf is detected. Clipping results will be undefined."):
        utils.clip_global_norm([mx.nd.array([np.nan, 1.0])], 1.0)
    with pytest.raises(AssertionError, match="at least one array"):
        utils.clip_global_norm([], 1.0)


def test_check_sha1(tmp_path):
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    assert utils.check_sha1(str(path), "a9993e364706816aba3e25717850c26c9cd0d89d")
    assert not utils.check_sha1(str(path), "0" * 40)


def test_shape_is_known_with_legacy_shapes():
    assert [utils.shape_is_known(s) for s in (None, (), (2, 0), (2, 3))] == [False, False, False, True]
    with pytest.raises(AssertionError, match="cannot be less than 0, while received -1"):
        utils.shape_is_known((2, -1))


def test_download_copies_a_file_url_into_a_folder_or_a_path(tmp_path, capsys):
    source = tmp_path / "src" / "data.bin"
    source.parent.mkdir()
    source.write_bytes(b"content")
    target_folder = tmp_path / "out"
    target_folder.mkdir()
    got = utils.download(source.as_uri(), path=str(target_folder))
    assert got == str(target_folder / "data.bin") and (target_folder / "data.bin").read_bytes() == b"content"
    assert f"Downloading {got} from {source.as_uri()}..." in capsys.readouterr().out
    assert os.listdir(target_folder) == ["data.bin"]  # no temporary left behind
    named = utils.download(source.as_uri(), path=str(tmp_path / "new" / "named.bin"))
    assert (tmp_path / "new" / "named.bin").read_bytes() == b"content" and named.endswith("named.bin")


def test_download_keeps_a_matching_file_and_replaces_on_request(tmp_path):
    source = tmp_path / "s.txt"
    source.write_bytes(b"new")
    target = tmp_path / "t.txt"
    target.write_bytes(b"old")
    old_sha1 = hashlib.sha1(b"old").hexdigest()
    utils.download(source.as_uri(), path=str(target), sha1_hash=old_sha1)
    assert target.read_bytes() == b"old"
    utils.download(source.as_uri(), path=str(target), overwrite=True)
    assert target.read_bytes() == b"new"
    with pytest.raises(UserWarning, match="is downloaded but the content hash does not match"):
        utils.download(source.as_uri(), path=str(target), sha1_hash=old_sha1)


def test_download_failures_and_arguments(tmp_path, capsys):
    missing = (tmp_path / "nowhere.bin").as_uri()
    with pytest.raises(DownloadError, match="Failed downloading url file://.*nowhere.bin") as caught:
        utils.download(missing, path=str(tmp_path / "x.bin"), retries=2)
    assert isinstance(caught.value, RuntimeError)
    assert "retrying, 1 attempt left" in capsys.readouterr().out  # 2 attempts in all, as MXNet counts
    assert not (tmp_path / "x.bin").exists()
    with pytest.raises(AssertionError, match="Number of retries should be at least 0, currently it's -1"):
        utils.download(missing, path=str(tmp_path / "x.bin"), retries=-1)
    with pytest.raises(AssertionError, match="Can't construct file-name from this URL"):
        utils.download("file:///folder/")
    with pytest.warns(UserWarning, match="Unverified HTTPS request"), pytest.raises(MXNetError):
        utils.download(missing, path=str(tmp_path / "x.bin"), retries=0, verify_ssl=False)


def test_replace_file_moves_or_removes_the_source(tmp_path):
    src, dst = tmp_path / "a", tmp_path / "b"
    src.write_bytes(b"1")
    utils.replace_file(str(src), str(dst))
    assert dst.read_bytes() == b"1" and not src.exists()
    src.write_bytes(b"2")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "inside").write_bytes(b"")
    with pytest.raises(ReplaceError, match="Please retry the download") as caught:
        utils.replace_file(str(src), str(tmp_path / "folder"))
    assert isinstance(caught.value, OSError) and not src.exists()
