"""`mx.gluon.utils`: helpers around training loops - splitting a batch across devices, clipping gradients
by their global norm, checking and downloading files, atomic file replacement - with MXNet 1.9.1's
semantics and error messages.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
import uuid
import warnings

import numpy as np

from ember import ndarray
from ember.gluon.errors import CheckFailed, InvalidValue
from ember.runtime.errors import MXNetError

__all__ = [
    "split_data",
    "split_and_load",
    "clip_global_norm",
    "check_sha1",
    "download",
    "shape_is_known",
    "replace_file",
]

_SHA1_CHUNK = 1 << 20


class DownloadError(MXNetError):
    """A download that failed after all its retries (a RuntimeError, as MXNet's failures are)."""


class ReplaceError(MXNetError, OSError):
    """A file that could not be moved into place (MXNet 1.9.1 raises OSError)."""


def split_data(data, num_slice, batch_axis=0, even_split=True):
    """`data` cut into `num_slice` slices along `batch_axis` (always a list).

    With `even_split` the axis must divide evenly. Otherwise the slices are as NumPy's `array_split`
    makes them: the first `size % num_slice` slices hold one element more, and when there are fewer
    elements than slices the last slices are empty.
    """
    size = data.shape[batch_axis]
    if even_split and size % num_slice != 0:
        raise InvalidValue(
            "data with shape %s cannot be evenly split into %d slices along axis %d. "
            "Use a batch size that's multiple of %d or set even_split=False to allow "
            "uneven partitioning of data." % (str(data.shape), num_slice, batch_axis, num_slice)
        )
    each, extras = divmod(size, num_slice)
    bounds = np.cumsum([0] + [each + 1] * extras + [each] * (num_slice - extras))
    return [_slice(data, batch_axis, int(begin), int(end)) for begin, end in zip(bounds[:-1], bounds[1:])]


def _slice(data, axis: int, begin: int, end: int):
    """`data[begin:end]` along `axis`; an empty range gives an empty array of `data`'s type."""
    if begin < end:
        return ndarray.slice_axis(data, axis=axis, begin=begin, end=end)
    shape = list(data.shape)
    shape[axis] = 0
    return ndarray.zeros(tuple(shape), ctx=data.context, dtype=data.dtype)


def split_and_load(data, ctx_list, batch_axis=0, even_split=True):
    """`data` split as `split_data` does into one slice per context of `ctx_list`, each slice copied to
    its context. Data that is not an NDArray (a NumPy array, a list) is made one first."""
    if not isinstance(data, ndarray.NDArray):
        data = ndarray.array(data, ctx=ctx_list[0])
    if len(ctx_list) == 1:
        return [data.as_in_context(ctx_list[0])]
    slices = split_data(data, len(ctx_list), batch_axis, even_split)
    return [piece.as_in_context(ctx) for piece, ctx in zip(slices, ctx_list)]


def clip_global_norm(arrays, max_norm, check_isfinite=True):
    """Scale `arrays` in place so that their global 2-norm (the norm of all their elements together) is
    at most `max_norm`; returns the norm before scaling.

    The scale is `min(1, max_norm / (norm + 1e-8))`. With `check_isfinite` the norm is returned as a
    Python-readable float and a NaN or infinite norm warns (the clipped values are then undefined);
    without it the norm is returned as an NDArray of shape (1,).
    """
    if len(arrays) == 0:
        raise CheckFailed("clip_global_norm needs at least one array")
    ctx = arrays[0].context
    squares = [ndarray.dot(a.reshape((-1,)), a.reshape((-1,))).as_in_context(ctx) for a in arrays]
    total_norm = ndarray.sqrt(ndarray.add_n(*squares))
    if check_isfinite and not np.isfinite(total_norm.asscalar()):
        warnings.warn(
            UserWarning("nan or inf is detected. Clipping results will be undefined."), stacklevel=2
        )
    scale = max_norm / (total_norm + 1e-8)
    scale = ndarray.min(ndarray.concat(scale, ndarray.ones(1, ctx=ctx), dim=0))
    for array in arrays:
        array *= scale.as_in_context(array.context)
    if check_isfinite:
        return total_norm.asscalar()
    return total_norm


def check_sha1(filename, sha1_hash):
    """Whether the SHA-1 of the file's content is `sha1_hash` (hexadecimal)."""
    sha1 = hashlib.sha1()
    with open(filename, "rb") as f:
        while chunk := f.read(_SHA1_CHUNK):
            sha1.update(chunk)
    return sha1.hexdigest() == sha1_hash


def replace_file(src, dst):
    """Move `src` over `dst` atomically (same filesystem); on failure `src` is removed and ReplaceError
    (an OSError) raised."""
    try:
        os.replace(src, dst)
    except OSError as err:
        try:
            os.remove(src)
        except OSError:
            pass
        raise ReplaceError(
            f"Moving downloaded temp file - {src}, to {dst} failed: {err.strerror or err}. "
            "Please retry the download."
        ) from None


def _download_target(url: str, path) -> str:
    """The file `download` writes: `path`, or the URL's last component inside folder `path` (or here)."""
    if path is None:
        fname = url.split("/")[-1]
        if not fname:
            raise CheckFailed(
                "Can't construct file-name from this URL. Please set the `path` option manually."
            )
        return fname
    path = os.path.expanduser(path)
    return os.path.join(path, url.split("/")[-1]) if os.path.isdir(path) else path


def _fetch(url: str, fname: str, verify_ssl: bool) -> None:
    """Download `url` into a temporary beside `fname`, then move it into place."""
    context = None
    if not verify_ssl and url.lower().startswith("https:"):
        import ssl

        context = ssl._create_unverified_context()  # noqa: S323 - the caller asked for no verification
    temporary = f"{fname}.{uuid.uuid4()}"
    try:
        with urllib.request.urlopen(url, context=context) as response, open(temporary, "wb") as out:
            status = getattr(response, "status", None)
            if status not in (None, 200):
                raise DownloadError(f"Failed downloading url {url}: HTTP status {status}")
            while chunk := response.read(_SHA1_CHUNK):
                out.write(chunk)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    replace_file(temporary, fname)


def download(url, path=None, overwrite=False, sha1_hash=None, retries=5, verify_ssl=True):
    """Download `url` to `path` (a file, or a folder to put the URL's file name in; default: that name
    here) and return the file's path.

    An existing file is kept unless `overwrite` is set or its SHA-1 differs from `sha1_hash`. The data
    goes to a temporary file first and is moved into place whole. MXNet makes `max(retries, 1)` attempts
    in all; after the last DownloadError names the URL and the last failure. A file whose content does not
    match `sha1_hash` after downloading raises UserWarning, as MXNet does.
    """
    fname = _download_target(url, path)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise CheckFailed(f"Number of retries should be at least 0, currently it's {retries}")
    if not verify_ssl:
        warnings.warn(
            "Unverified HTTPS request is being made (verify_ssl=False). "
            "Adding certificate verification is strongly advised.",
            stacklevel=2,
        )
    if not (overwrite or not os.path.exists(fname) or (sha1_hash and not check_sha1(fname, sha1_hash))):
        return fname
    folder = os.path.dirname(os.path.abspath(fname))
    os.makedirs(folder, exist_ok=True)
    attempts_left = retries  # as MXNet counts: max(retries, 1) attempts in all
    while True:
        try:
            print(f"Downloading {fname} from {url}...")
            _fetch(url, fname, verify_ssl)
            break
        except Exception as err:  # noqa: BLE001 - any failure is retried, as MXNet does
            attempts_left -= 1
            if attempts_left <= 0:
                raise DownloadError(f"Failed downloading url {url}: {err}") from err
            print(
                f"download failed due to {err!r}, retrying, {attempts_left} attempt"
                f"{'s' if attempts_left > 1 else ''} left"
            )
    if sha1_hash and not check_sha1(fname, sha1_hash):
        raise UserWarning(
            f"File {fname} is downloaded but the content hash does not match. The repo may be outdated or "
            'download may be incomplete. If the "repo_url" is overridden, consider switching to the '
            "default repo."
        )
    return fname


def shape_is_known(shape):
    """Whether every dimension of `shape` is known (MXNet's legacy shapes: 0 marks an unknown dimension,
    and an empty or None shape is unknown)."""
    if shape is None or len(shape) == 0:
        return False
    for dim in shape:
        if dim == 0:
            return False
        if dim < 0:
            raise CheckFailed(f"shape dimension size cannot be less than 0, while received {dim}")
    return True
