"""`mx.model`: checkpoint files (`prefix-symbol.json`, `prefix-%04d.params`) and `BatchEndParam`.

Parameters are saved with MXNet's `arg:`/`aux:` key prefixes in its binary `.params` format.
"""

from __future__ import annotations

import logging
from collections import namedtuple

from ember.runtime.errors import MXNetError

from . import ndarray as nd
from . import symbol as sym

# What batch-end callbacks receive (`ember.callback` re-exports it); MXNet names the type BatchEndParams.
BatchEndParam = namedtuple("BatchEndParams", ["epoch", "nbatch", "eval_metric", "locals"])


def save_checkpoint(prefix: str, epoch: int, symbol, arg_params: dict, aux_params: dict, remove_amp_cast: bool = True):
    """Write `prefix-symbol.json` (when a symbol is given) and `prefix-%04d.params`."""
    if symbol is not None:
        symbol.save(f"{prefix}-symbol.json", remove_amp_cast=remove_amp_cast)
    params = {f"arg:{k}": v for k, v in arg_params.items()}
    params.update({f"aux:{k}": v for k, v in aux_params.items()})
    param_name = f"{prefix}-{epoch:04d}.params"
    nd.save(param_name, params)
    logging.info('Saved checkpoint to "%s"', param_name)


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
