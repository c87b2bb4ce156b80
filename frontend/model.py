"""`mx.model`: checkpoint files (`prefix-symbol.json`, `prefix-%04d.params`) and `BatchEndParam`.

Parameters are saved with MXNet's `arg:`/`aux:` key prefixes in its binary `.params` format. Saving
writes each file atomically, symbol last, so a crash leaves the previous checkpoint loadable.
"""

from __future__ import annotations

import logging
from collections import namedtuple

from ember.runtime.errors import ArtifactError, MXNetError
from ember.runtime.files import file_holds, write_atomic

from . import ndarray as nd
from . import symbol as sym

# What batch-end callbacks receive (`ember.callback` re-exports it); MXNet names the type BatchEndParams.
BatchEndParam = namedtuple("BatchEndParams", ["epoch", "nbatch", "eval_metric", "locals"])


def save_checkpoint(
    prefix: str, epoch: int, symbol, arg_params: dict, aux_params: dict, remove_amp_cast: bool = True
) -> None:
    """Write `prefix-%04d.params`, then `prefix-symbol.json` (when a symbol is given).

    Each file is replaced atomically and the symbol is written last (and only when it changed), so a
    crash or a full disk leaves the previous checkpoint loadable: see `write_checkpoint`.
    """
    write_checkpoint(prefix, epoch, symbol, arg_params, aux_params, remove_amp_cast=remove_amp_cast)
    logging.info('Saved checkpoint to "%s"', f"{prefix}-{epoch:04d}.params")


def write_checkpoint(
    prefix: str,
    epoch: int,
    symbol,
    arg_params: dict,
    aux_params: dict,
    states: bytes | None = None,
    remove_amp_cast: bool = True,
) -> None:
    """Write a checkpoint: `prefix-%04d.states` (when the updater's `states` bytes are given), then
    `prefix-%04d.params`, then `prefix-symbol.json` (when a symbol is given and the file on disk does
    not already hold the same JSON).

    All bytes are made before the first file is touched, and each file is replaced atomically
    (`write_atomic`), so a failed save (a full disk: DiskFullError; a kill) stops between whole files.
    The order decides what such a stop leaves:
    - the symbol goes last, so until it is renamed the symbol file still belongs to the epochs saved
      before, whose files are untouched; a symbol equal to the saved one (a Module's, every epoch) is
      not rewritten, so in that usual case the symbol is never in flux;
    - the states go before the params, because the `.params` file is what marks an epoch as saved
      (`load_checkpoint`, `Module.load` and resume scripts look for it): once it exists, the epoch's
      states are whole.
    Two windows remain, neither a torn file. Re-saving an epoch already on disk can stop between its
    states and its params, leaving the new states beside that epoch's previous params: both load and
    fit each other's shapes, the optimizer's moments being a few updates newer than the weights.
    Saving a different symbol under the same prefix can stop after the new params and before the new
    symbol: that new epoch was never completed, and every earlier epoch still matches the symbol file.
    """
    epoch_prefix = f"{prefix}-{epoch:04d}"
    params = {f"arg:{k}": v for k, v in arg_params.items()}
    params.update({f"aux:{k}": v for k, v in aux_params.items()})
    files = [] if states is None else [(f"{epoch_prefix}.states", states)]
    files.append((f"{epoch_prefix}.params", nd.save_tobuffer(params)))
    if symbol is not None:
        symbol_path, symbol_json = f"{prefix}-symbol.json", symbol.tojson(remove_amp_cast=remove_amp_cast)
        if not file_holds(symbol_path, symbol_json.encode("utf-8")):
            files.append((symbol_path, symbol_json.encode("utf-8")))
    for path, data in files:
        write_atomic(path, [data], ArtifactError)


def load_params(prefix: str, epoch: int) -> tuple[dict, dict]:
    """(arg_params, aux_params) from `prefix-%04d.params`, split on each key's `arg:`/`aux:` prefix."""
    fname = f"{prefix}-{epoch:04d}.params"
    loaded = nd.load(fname)
    if not loaded:
        logging.warning("Params file '%s' is empty", fname)
        return {}, {}
    if not isinstance(loaded, dict):
        raise MXNetError(f"{fname} holds an unnamed list of arrays, not arg:/aux: parameters")
    arg_params, aux_params = {}, {}
    for key, value in loaded.items():
        kind, _, name = key.partition(":")
        if kind == "arg":
            arg_params[name] = value
        elif kind == "aux":
            aux_params[name] = value
        else:
            raise MXNetError(f"{fname}: key {key!r} is neither arg:<name> nor aux:<name>")
    return arg_params, aux_params


def load_checkpoint(prefix: str, epoch: int):
    """(symbol, arg_params, aux_params) from `prefix-symbol.json` and `prefix-%04d.params`."""
    symbol = sym.load(f"{prefix}-symbol.json")
    arg_params, aux_params = load_params(prefix, epoch)
    return symbol, arg_params, aux_params
