"""`gluon.Trainer` (MXNet 1.9.1): applies an optimizer to a set of Parameters after each backward pass.

`step(batch_size)` rescales the gradients by `1/batch_size` (on top of the optimizer's `rescale_grad`),
sums them across contexts when a Parameter lives on several, and updates every Parameter whose
gradient a backward pass wrote since the last step (a stale one is an error unless
`ignore_stale_grad`). Optimizer states are saved and loaded in the Updater's format, which also reads
the `.states` files MXNet 1.9.1's Trainer writes. Parameters live on one process's contexts: a
'device'/'local' kvstore reduces nothing that this loop does not already sum; the distributed kinds
are issue 17's.
"""

from __future__ import annotations

from ember.runtime.files import write_atomic

from .. import optimizer as opt
from ..base import MXNetError
from .errors import check
from .fused_update import FusedUpdate
from .parameter import Parameter, ParameterDict

STALE_GRADIENT = (
    "Gradient of Parameter `{}` on context {} has not been updated by backward since last `step`. This "
    "could mean a bug in your model that made it only use a subset of the Parameters (Blocks) for this "
    "iteration. If you are intentionally only using a subset, call step with ignore_stale_grad=True to "
    "suppress this warning and skip updating of Parameters with stale gradient"
)


class Trainer:
    """Updates `params` (a ParameterDict, dict or list of Parameters) with `optimizer` (a name and
    `optimizer_params`, or an Optimizer)."""

    def __init__(self, params, optimizer, optimizer_params=None, kvstore="device", compression_params=None,
                 update_on_kvstore=None):  # fmt: skip
        if isinstance(params, (dict, ParameterDict)):
            params = [params[key] for key in sorted(params.keys())]
        if not isinstance(params, (list, tuple)):
            raise ValueError(f"First argument must be a list or dict of Parameters, got {type(params)}.")
        self._params: list[Parameter] = []
        self._param2idx: dict[str, int] = {}
        for index, param in enumerate(params):
            if not isinstance(param, Parameter):
                raise ValueError(
                    f"First argument must be a list or dict of Parameters, got list of {type(param)}."
                )
            self._param2idx[param.name] = index
            self._params.append(param)
            param._set_trainer(self)
        if kvstore not in (None, "device", "local", "nccl") and not hasattr(kvstore, "type"):
            raise MXNetError(f"Trainer(kvstore={kvstore!r}): distributed kvstores arrive with issue 17; use "
                             "'device' or 'local'")  # fmt: skip
        if update_on_kvstore:
            raise MXNetError("Trainer(update_on_kvstore=True) needs a kvstore that updates: Ember's Trainer "
                             "updates in place on one process (update_on_kvstore=False)")  # fmt: skip
        self._compression_params = compression_params
        self._kvstore_params = {"kvstore": kvstore, "update_on_kvstore": update_on_kvstore}
        self._update_on_kvstore = False
        self._contexts = self._check_contexts()
        self._init_optimizer(optimizer, optimizer_params or {})
        self._scale = self._optimizer.rescale_grad
        self._fused = FusedUpdate(self)

    def _init_optimizer(self, optimizer, optimizer_params: dict) -> None:
        param_dict = dict(enumerate(self._params))
        if isinstance(optimizer, opt.Optimizer):
            check(not optimizer_params, "optimizer_params must be None if optimizer is an instance of "
                  "Optimizer instead of str")  # fmt: skip
            self._optimizer = optimizer
            self._optimizer.param_dict = param_dict
        else:
            self._optimizer = opt.create(optimizer, param_dict=param_dict, **optimizer_params)
        self._updaters = [opt.get_updater(self._optimizer) for _ in self._contexts]

    def _check_contexts(self) -> list:
        """The contexts every Parameter lives on (all the same: MXNet's rule), one updater each."""
        contexts = None
        for param in self._params:
            found = param.list_ctx()
            check(
                contexts is None or contexts == found,
                f"All Parameters must be initialized on the same set of contexts, but Parameter {param.name} "
                f"is initialized on {found} while previous Parameters are initialized on {contexts}.",
            )
            contexts = found
        return contexts or []

    @property
    def learning_rate(self) -> float:
        """The optimizer's current learning rate."""
        return self._optimizer.learning_rate

    @property
    def optimizer(self):
        """The Optimizer."""
        return self._optimizer

    def set_learning_rate(self, lr) -> None:
        """Set the optimizer's learning rate."""
        self._optimizer.set_learning_rate(lr)

    def step(self, batch_size, ignore_stale_grad=False) -> None:
        """One update: gradients rescaled by `1/batch_size`, summed across contexts, then applied (in
        the compiled step's own program when it waits for this update: fused_update.py)."""
        self._optimizer.rescale_grad = self._scale / batch_size
        if self._fused.apply():
            return
        self._allreduce_grads()
        self._update(ignore_stale_grad)
        self._fused.offer()

    def allreduce_grads(self) -> None:
        """Sum each Parameter's gradients over its contexts (for a custom update between this and
        `update`)."""
        self._allreduce_grads()

    def update(self, batch_size, ignore_stale_grad=False) -> None:
        """Apply the optimizer (after `allreduce_grads`), gradients rescaled by `1/batch_size`."""
        self._optimizer.rescale_grad = self._scale / batch_size
        if self._fused.apply():
            return
        self._update(ignore_stale_grad)
        self._fused.offer()

    def _allreduce_grads(self) -> None:
        for param in self._params:
            if param.grad_req == "null":
                continue
            grads = param.list_grad()
            if len(grads) > 1:
                total = grads[0].copy()
                for grad in grads[1:]:
                    total += grad.as_in_context(total.context)
                for grad in grads:
                    grad[:] = total.as_in_context(grad.context)

    def _update(self, ignore_stale_grad: bool) -> None:
        updates = [[] for _ in self._updaters]  # per context: its updater keeps its own states
        for index, param in enumerate(self._params):
            if param.grad_req == "null":
                continue
            data, grads = param.list_data(), param.list_grad()
            if not ignore_stale_grad:
                for array in data:
                    if not array._fresh_grad:
                        raise UserWarning(STALE_GRADIENT.format(param.name, array.context))
            for pending, array, grad in zip(updates, data, grads):
                if not ignore_stale_grad or array._fresh_grad:
                    pending.append((index, grad, array))
                    array._fresh_grad = False
        for updater, pending in zip(self._updaters, updates):
            if pending:
                indices, grads, weights = zip(*pending)
                updater(list(indices), list(grads), list(weights))

    def save_states(self, fname) -> None:
        """Write the optimizer and its states (atomically)."""
        write_atomic(fname, [self._updaters[0].get_states(dump_optimizer=True)], MXNetError)

    def load_states(self, fname) -> None:
        """Read states written by `save_states` here or by MXNet 1.9.1's Trainer."""
        with open(fname, "rb") as handle:
            data = handle.read()
        for updater in self._updaters:
            updater.set_states(data, source=str(fname))
            updater.optimizer = self._updaters[0].optimizer
        self._optimizer = self._updaters[0].optimizer
        self._optimizer.param_dict = dict(enumerate(self._params))


__all__ = ["Trainer"]
