"""A whole training step - forward, loss, backward and the optimizer update - as one native call.

`Module.fit` uses a `FusedStep` when it can (compiled executor, one device, loss heads only, an
optimizer in `STEP_SCALARS`, no float16 master copies, no gradients wanted for the inputs): the
training graph gains one `_optimizer_update` node per parameter, and the program writes the new
weights, optimizer states and BatchNorm statistics back in place. The executor's parameter and
auxiliary arrays and the updater's state arrays then *are* views of the program's memory, so
`get_params`, `score` and `save_optimizer_states` see every step without copies. Each step Python
only copies the batch in, computes the per-parameter hyper-parameters (learning-rate schedule,
multipliers, bias corrections: the optimizer's own bookkeeping) and reads the outputs.
"""

from __future__ import annotations

import copy
import logging
import math

import numpy as np

from ember.compiler import Graph, Node, variable
from ember.compiler.ops.optimizer import UPDATE_RULES
from ember.runtime.errors import MXNetError

from .. import optimizer as opt
from ..compiled_runner import executor_kind
from ..ndarray import NDArray
from ..ndarray import register as nd_register

log = logging.getLogger(__name__)


# -- each optimizer's step: (rule, hyper-parameters) for one index, after counting the update ------


def _clip(o) -> float:
    return o.clip_gradient if o.clip_gradient else -1.0


def _python_clip(o) -> float:
    return -1.0 if o.clip_gradient is None else o.clip_gradient


def _base(o, index) -> dict:
    o._update_count(index)
    return {
        "lr": o._get_lr(index),
        "wd": o._get_wd(index),
        "rescale_grad": o.rescale_grad,
        "clip_gradient": _clip(o),
    }


def _sgd(o, index, has_state):
    s = _base(o, index)
    if not has_state:
        return "sgd", s
    return ("sgd_mom" if isinstance(o, opt.SGD) else "nag_mom"), {**s, "momentum": max(o.momentum, 0.0)}


def _adam(o, index, has_state):
    s = _base(o, index)
    t = o._index_update_count[index]
    s["lr"] *= math.sqrt(1.0 - o.beta2**t) / (1.0 - o.beta1**t)
    return "adam", {**s, "beta1": o.beta1, "beta2": o.beta2, "epsilon": o.epsilon}


def _rmsprop(o, index, has_state):
    s = {**_base(o, index), "gamma1": o.gamma1, "epsilon": o.epsilon, "clip_weights": o.clip_weights or -1.0}
    return ("rmspropalex", {**s, "gamma2": o.gamma2}) if o.centered else ("rmsprop", s)


def _adagrad(o, index, has_state):
    return "adagrad", {**_base(o, index), "clip_gradient": _python_clip(o), "eps": o.float_stable_eps}


def _adadelta(o, index, has_state):
    wd = o._get_wd(index)
    o._update_count(index)
    return "adadelta", {"wd": wd, "rescale_grad": o.rescale_grad, "clip_gradient": _python_clip(o), "rho": o.rho,
                        "epsilon": o.epsilon}  # fmt: skip


def _adamax(o, index, has_state):
    s = {**_base(o, index), "clip_gradient": _python_clip(o), "beta1": o.beta1, "beta2": o.beta2}
    s["lr"] /= 1.0 - o.beta1 ** o._index_update_count[index]
    return "adamax", s


def _nadam(o, index, has_state):
    s = {
        **_base(o, index),
        "clip_gradient": _python_clip(o),
        "beta1": o.beta1,
        "beta2": o.beta2,
        "epsilon": o.epsilon,
    }
    t = o._index_update_count[index]
    momentum_t = o.beta1 * (1.0 - 0.5 * pow(0.96, t * o.schedule_decay))
    momentum_t_1 = o.beta1 * (1.0 - 0.5 * pow(0.96, (t + 1) * o.schedule_decay))
    o.m_schedule = o.m_schedule * momentum_t
    return "nadam", {**s, "momentum_t": momentum_t, "momentum_t_1": momentum_t_1, "m_schedule": o.m_schedule,
                     "m_schedule_next": o.m_schedule * momentum_t_1, "v_correction": 1 - pow(o.beta2, t)}  # fmt: skip


def _ftrl(o, index, has_state):
    return "ftrl", {**_base(o, index), "lamda1": o.lamda1, "beta": o.beta}


def _signum(o, index, has_state):
    s = _base(o, index)
    if not has_state:
        return "signsgd", {"lr": s["lr"], "wd": s["wd"]}
    return "signum", {**s, "momentum": max(o.momentum, 0.0), "wd_lh": o.wd_lh or 0.0}


# Optimizer class -> its step. Subclasses of these (user optimizers) are not fused: their update may differ.
STEP_SCALARS = {
    opt.SGD: _sgd, opt.ccSGD: _sgd, opt.NAG: _sgd, opt.Adam: _adam, opt.RMSProp: _rmsprop, opt.AdaGrad: _adagrad,
    opt.AdaDelta: _adadelta, opt.Adamax: _adamax, opt.Nadam: _nadam, opt.Ftrl: _ftrl, opt.Signum: _signum,
}  # fmt: skip


def _state_arrays(state) -> list[NDArray]:
    if state is None:
        return []
    return list(state) if isinstance(state, (tuple, list)) else [state]


class FusedStep:
    """The compiled training step of one Module's executor and optimizer."""

    @classmethod
    def build(cls, module) -> FusedStep | None:
        """A fused step for `module`, or None (with the reason logged) when it cannot have one."""
        reason = cls._unsupported(module)
        if reason:
            log.info("Module.fit runs forward/backward and the update separately: %s", reason)
            return None
        return cls(module)

    @staticmethod
    def _unsupported(module) -> str | None:
        ex = module._exec
        if executor_kind() != "compiled" or ex._runner is None:
            return "EMBER_EXECUTOR=reference"
        if type(module._optimizer) not in STEP_SCALARS:
            return f"optimizer {type(module._optimizer).__name__} has no compiled update"
        if len(module._context) != 1 or module.inputs_need_grad:
            return "several devices or input gradients"
        if module._context[0].device_type == "gpu":
            return "the fused step runs on the CPU only (the GPU runs forward/backward; NumPy updates)"
        if not ex._runner._step_runs_at_forward():
            return "an output is not a loss head"
        if any(a._data.dtype == np.float16 for a in ex.arg_arrays):
            return "float16 parameters"
        reqs = dict(zip(ex._arg_names, ex._grad_reqs))
        if any(reqs.get(name) not in ("write", "null") for name in module._param_names):
            return "a parameter's grad_req is 'add'"
        return None

    def __init__(self, module):
        self.module = module
        ex, updater = module._exec, module._updater
        self.executor = ex
        arg_index = {n: i for i, n in enumerate(ex._arg_names)}
        plan = ex._plan_backward()
        graph = ex._graph
        variables = {v.name: v for v in graph.variables}
        outputs, updates, roles, extra_shapes, extra_dtypes = list(graph.outputs), {}, {}, {}, {}
        self.params = []  # (updater index, name, {hyper-parameter: input variable name}, state arrays)
        self.grads = []  # (executor argument index, position of the gradient among the outputs)
        for index, name in enumerate(module._param_names):
            grad = plan.grads.get(arg_index[name])
            if grad is None:
                continue
            weight = ex.arg_arrays[arg_index[name]]
            if index not in updater.states:
                updater.states[index] = module._optimizer.create_state_multi_precision(index, weight)
                updater.states_synced[index] = True
            states = _state_arrays(updater.states[index])
            rule, scalars = STEP_SCALARS[type(module._optimizer)](
                _probe(module._optimizer), index, bool(states)
            )
            state_vars = [variable(f"__state_{name}_{k}") for k in range(len(states))]
            scalar_names = UPDATE_RULES[rule].scalars  # the op's input order
            missing = set(scalar_names) ^ set(scalars)
            if missing:
                raise MXNetError(
                    f"compiled {rule} update: hyper-parameters {sorted(missing)} do not match the rule"
                )
            scalar_vars = [variable(f"__{name}_{s}") for s in scalar_names]
            inputs = (variables[name].output(), grad, *(v.output() for v in state_vars + scalar_vars))
            node = Node("_optimizer_update", inputs, {"rule": rule}, f"{name}_update")
            self.grads.append((arg_index[name], len(outputs)))
            outputs.append(grad)  # also an output, so the executor's gradient arrays can show it
            updates[name] = len(outputs)
            outputs.append(node.output(0))
            for k, (var, array) in enumerate(zip(state_vars, states)):
                updates[var.name] = len(outputs)
                outputs.append(node.output(1 + k))
                roles[var.name] = "state"
                extra_shapes[var.name], extra_dtypes[var.name] = array.shape, array._data.dtype.name
            for var in scalar_vars:
                extra_shapes[var.name], extra_dtypes[var.name] = (1,), weight._data.dtype.name
            roles[name] = "parameter"
            self.params.append((index, name, dict(zip(scalar_names, (v.name for v in scalar_vars))), states))
        for name, value in plan.aux_updates.items():
            updates[name] = len(outputs)
            outputs.append(value)
            roles[name] = "state"
        self.outputs = len(graph.outputs)
        self.exe = self._compile(Graph(outputs), extra_shapes, extra_dtypes, roles, updates)
        self._adopt_memory()

    def _compile(self, graph, extra_shapes, extra_dtypes, roles, updates):
        from ember.codegen.package import layout_of, library_for
        from ember.compiler.build import build_program
        from ember.runtime.executable import Executable

        shapes, dtypes = self.executor._runner._facts("forward")
        shapes.update(extra_shapes)
        dtypes.update(extra_dtypes)
        built = build_program(
            graph, shapes, dtypes, name="train_step", roles=roles, is_train=True, updates=updates
        )
        self.built = built
        return Executable(library_for(built), layout_of(built), what="the training step program")

    def _adopt_memory(self) -> None:
        """Copy parameters, aux states and optimizer states into the program, then make the arrays
        everyone else holds views of it."""
        ex, exe = self.executor, self.exe
        arrays = dict(zip(ex._arg_names + ex._aux_names, ex.arg_arrays + ex.aux_arrays))
        for _, name, _, states in self.params:
            for k, state in enumerate(states):
                arrays[f"__state_{name}_{k}"] = state
        self.adopted = []  # (array, the view it was given): still ours while array._data is view
        for name, array in arrays.items():
            table = next((t for t in ("parameters", "states") if name in exe.layout[t]), None)
            if table is None:
                continue
            view = exe.view(exe.layout[table][name])
            view[...] = array._data
            array._data = view
            self.adopted.append((array, view))
        outputs = exe.layout["outputs"]
        for arg, position in self.grads:
            grad_array = ex.grad_arrays[arg]
            if grad_array is not None:  # the last step's gradient, without a copy
                grad_array._data = exe.view(outputs[position][1])
                self.adopted.append((grad_array, grad_array._data))

    def owns_memory(self) -> bool:
        """Whether every array this step adopted still lives in its program (another module sharing
        the parameters may have adopted them since)."""
        return all(array._data is view for array, view in self.adopted)

    def run(self, data_batch) -> None:
        """One training step on `data_batch`: one native call; the outputs land in the executor's."""
        module, exe = self.module, self.exe
        names = [d.name for d in module._data_shapes] + [d.name for d in (module._label_shapes or [])]
        arrays = list(data_batch.data) + list(data_batch.label or [])
        for name, array in zip(names, arrays):
            exe.set_param(name, array._data if isinstance(array, NDArray) else array)
        step = STEP_SCALARS[type(module._optimizer)]
        for index, name, scalar_names, states in self.params:
            _, scalars = step(module._optimizer, index, bool(states))
            for scalar, value in scalars.items():
                exe.view(exe.layout["inputs"][scalar_names[scalar]])[0] = value
        if "rng" in exe.buffers:
            exe.view("rng")[...] = int(nd_register.RNG.integers(1 << 62))
        exe.run()
        for output, value in zip(self.executor.outputs, exe.outputs_view()[: self.outputs]):
            output._data[...] = value


def _probe(optimizer):
    """A copy of `optimizer` whose step can be taken to learn the rule and hyper-parameter names
    without counting an update or touching its learning-rate scheduler."""
    probe = copy.copy(optimizer)
    probe._index_update_count = dict(optimizer._index_update_count)
    probe._all_index_update_counts = {}
    probe.lr_scheduler = None
    return probe
