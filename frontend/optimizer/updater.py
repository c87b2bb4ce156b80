"""`Updater`: an optimizer applied per parameter index, with the states it keeps, saved and restored.

Module and KVStore call `updater(index, grad, weight)`; `get_states`/`set_states` are what `.states`
files hold. Restoring reads the bytes as data through `states.load_states` (no code a file names runs).
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np

from ember.runtime.errors import MXNetError, ShapeError

from ..ndarray import NDArray
from .base import Optimizer, check_arrays, uses_ember_hooks
from .states import load_states


class Updater:
    """Applies an optimizer as `updater(index, grad, weight)` (note the order), creating each index's
    state on its first update. Indices, grads and weights may also be lists of equal length."""

    def __init__(self, optimizer: Optimizer):
        self.optimizer = optimizer
        self.states: dict = {}
        self.states_synced: dict = {}
        self.aggregate_updates = optimizer.aggregate_num > 0

    def __call__(self, index, grad, weight) -> None:
        if isinstance(index, (list, tuple)):
            indices, grads, weights = list(index), list(grad), list(weight)
        else:
            indices, grads, weights = [index], [grad], [weight]
        for idx, w, g in zip(indices, weights, grads):
            check_arrays(idx, w, g)
        if weights:
            self.optimizer._set_current_context(weights[0].context.device_id)
        indices = [idx.decode() if isinstance(idx, bytes) else idx for idx in indices]
        states = [self.state_for(idx, w) for idx, w in zip(indices, weights)]
        # MXNet groups up to aggregate_num updates into one kernel; per-element results are the same.
        for idx, w, g, state in zip(indices, weights, grads, states):
            try:
                self.optimizer.update_multi_precision(idx, w, g, state)
            except (ArithmeticError, ValueError) as err:  # e.g. a math domain error
                # hyper-parameters (a user's, or a loaded file's) that the formulas cannot take, say
                raise MXNetError(
                    f"{type(self.optimizer).__name__}'s update of index {idx!r} failed with "
                    f"{type(err).__name__}: {err}"
                ) from err

    def state_for(self, index, weight: NDArray):
        """The optimizer state of `index`: created for `weight` on first use; after `set_states`,
        checked against the state the optimizer would create and moved onto the weight's context."""
        if index not in self.states:
            self.states[index] = self.optimizer.create_state_multi_precision(index, weight)
            self.states_synced[index] = True
        elif not self.states_synced[index]:
            self.check_restored_state(index, weight)
            self.states[index] = self.sync_state_context(self.states[index], weight.context)
            self.states_synced[index] = True
        return self.states[index]

    def check_restored_state(self, index, weight: NDArray) -> None:
        """ShapeError unless the state `set_states` restored for `index` has the arrays (nesting and
        shapes) this optimizer creates for `weight`, so that its update can take them. Ember differs
        from MXNet here: MXNet also runs momentum states under an optimizer without momentum, and the
        reverse, silently. Optimizers whose states are not made by Ember's `create_state` hooks keep
        whatever states they like, and are not checked."""
        cls = type(self.optimizer)
        hooks = ("create_state", "create_state_multi_precision")
        if not uses_ember_hooks(cls, hooks):
            return
        with warnings.catch_warnings():  # the float16 advice belongs to creating states, not to this probe
            warnings.simplefilter("ignore")
            expected = state_layout(self.optimizer.create_state_multi_precision(index, weight))
        restored = state_layout(self.states[index])
        if restored != expected:
            raise ShapeError(
                f"the optimizer state restored for index {index!r} holds {restored}, but {cls.__name__} "
                f"keeps {expected} for a {np.dtype(weight.dtype).name} weight of shape {weight.shape}"
            )

    def sync_state_context(self, state, context):
        """`state` (an NDArray, or nested tuples/lists of them) moved onto `context`."""
        if isinstance(state, NDArray):
            return state.as_in_context(context)
        if isinstance(state, (tuple, list)):
            synced = [self.sync_state_context(s, context) for s in state]
            return tuple(synced) if isinstance(state, tuple) else synced
        return state

    def set_states(self, states: bytes, source: str = "the bytes given to set_states") -> None:
        """Restore states from `get_states` bytes, or from the bytes of MXNet 1.x's `.states` files.

        The bytes are read as data (`states.load_states`): no code a file names runs, and anything but
        a dict of index -> state (NDArrays, None, tuples of them), or that dict paired with an
        optimizer, raises ArtifactError naming `source` (Ember's addition: the file it came from)."""
        self.states, optimizer = load_states(states, source)
        if optimizer is not None:
            self.optimizer = optimizer
        self.states_synced = dict.fromkeys(self.states.keys(), False)

    def get_states(self, dump_optimizer: bool = False) -> bytes:
        """The pickled `{index: state}` dict, or `(states, optimizer)` with dump_optimizer=True. It names
        Ember's classes (`ember.ndarray.ndarray.NDArray`, ...), so MXNet cannot read it (MXNET_COMPAT.md
        11.3); `set_states` reads it back without running code."""
        return pickle.dumps((self.states, self.optimizer) if dump_optimizer else self.states)


def get_updater(optimizer: Optimizer) -> Updater:
    """An Updater applying `optimizer` (what Module and KVStore call for each parameter)."""
    return Updater(optimizer)


def state_layout(state) -> str:
    """The arrays of a state in words: 'None', 'array (2, 3)', or a parenthesised list of those. Float
    dtypes are left out (the update rules cast their results to each state's dtype); any other dtype
    is named ('int8 array (2,)'), since no update rule keeps an integer or bool state."""
    if isinstance(state, NDArray):
        dtype = np.dtype(state.dtype)
        return f"{'' if dtype.kind == 'f' else dtype.name + ' '}array {state.shape}"
    if isinstance(state, (tuple, list)):
        return f"({', '.join(state_layout(s) for s in state)})"
    return "None" if state is None else f"a {type(state).__name__}"
