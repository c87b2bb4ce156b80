"""A whole training step - forward, loss, backward and the optimizer update - as one native call.

`Module.fit` uses a `FusedStep` when it can (compiled executor, one device, loss heads only, an
optimizer whose updates are compiled rules (`Optimizer.has_update_rule`), no float16 master copies,
no gradients wanted for the inputs): the training graph gains one `_optimizer_update` node per
parameter, and the program writes the new weights, optimizer states and BatchNorm statistics back in
place. The executor's parameter and auxiliary arrays and the updater's state arrays then *are* views
of the program's memory (`NDArray.adopt_host_buffer`), so `get_params`, `score` and
`save_optimizer_states` see every step without copies. Each step Python only copies the batch in,
asks the optimizer for each parameter's `update_step` (learning-rate schedule, multipliers, bias
corrections: the same call `Optimizer.update` makes) and reads the outputs.
"""

from __future__ import annotations

import logging

import numpy as np

from ember.compiler import Graph, Node, TensorType, variable
from ember.compiler.names import RNG_BUFFER, optimizer_state, update_scalar
from ember.compiler.ops.optimizer import UPDATE_RULES

from .. import random
from ..ndarray import NDArray
from ..optimizer.base import state_arrays

log = logging.getLogger(__name__)


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
        ex, optimizer, contexts = module.executor, module.optimizer, module.contexts
        if ex.runner is None:
            return "EMBER_EXECUTOR=reference"
        if module.kvstore is not None:
            return "a KVStore object updates the parameters"
        if not optimizer.has_update_rule:
            return f"optimizer {type(optimizer).__name__} has no compiled update"
        if len(contexts) != 1 or module.inputs_need_grad:
            return "several devices or input gradients"
        if contexts[0].device_type == "gpu":
            return "the fused step runs on the CPU only (the GPU runs forward/backward; NumPy updates)"
        if not ex.trains_on_losses_only:
            return "an output is not a loss head"
        if any(a.dtype == np.float16 for a in ex.arg_arrays):
            return "float16 parameters"
        reqs = dict(zip(ex.arg_names, ex.grad_reqs))
        if any(reqs.get(name) not in ("write", "null") for name in module.param_names):
            return "a parameter's grad_req is 'add'"
        return None

    def __init__(self, module):
        self.module = module
        ex, updater, optimizer = module.executor, module.updater, module.optimizer
        self.executor = ex
        arg_index = {n: i for i, n in enumerate(ex.arg_names)}
        plan = ex.backward_plan()
        graph = ex.graph
        variables = {v.name: v for v in graph.variables}
        outputs, updates, roles, new_types = list(graph.outputs), {}, {}, {}  # new_types: new variables
        self.params = []  # (updater index, name, {hyper-parameter: input variable name}, state arrays)
        self.grads = []  # (executor argument index, position of the gradient among the outputs)
        for index, name in enumerate(module.param_names):
            grad = plan.grads.get(arg_index[name])
            if grad is None:
                continue
            weight = ex.arg_arrays[arg_index[name]]
            states = state_arrays(updater.state_for(index, weight))
            rule = optimizer.probe_update_step(index, bool(states)).check().rule
            state_vars = [variable(optimizer_state(name, k)) for k in range(len(states))]
            scalar_names = UPDATE_RULES[rule].scalars  # the op's input order
            scalar_vars = [variable(update_scalar(name, s)) for s in scalar_names]
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
                new_types[var.name] = TensorType(tuple(array.shape), np.dtype(array.dtype).name)
            for var in scalar_vars:
                new_types[var.name] = TensorType((1,), np.dtype(weight.dtype).name)
            roles[name] = "parameter"
            self.params.append((index, name, dict(zip(scalar_names, (v.name for v in scalar_vars))), states))
        for name, value in plan.aux_updates.items():
            updates[name] = len(outputs)
            outputs.append(value)
            roles[name] = "state"
        self.outputs = len(graph.outputs)
        self.exe = self._compile(Graph(outputs), new_types, roles, updates)
        # each parameter's hyper-parameter inputs as live views, so a step only writes numbers into them
        self.scalar_views = [
            {scalar: self.exe.view(self.exe.layout["inputs"][var]) for scalar, var in scalar_inputs.items()}
            for _, _, scalar_inputs, _ in self.params
        ]
        self._adopt_memory()

    def _compile(self, graph, new_types, roles, updates):
        """The step's program through the compile driver, for the executor's target; `graph` is typed
        from what the executor inferred at bind plus `new_types` (by name) for the variables added here."""
        from ember.codegen.driver import compile_graph

        runner = self.executor.runner
        compiled = compile_graph(
            runner.typed(graph, new_types), runner.target(), name="train_step", roles=roles, is_train=True,
            updates=updates,
        )  # fmt: skip
        self.built = compiled.built
        return compiled.load(what="the training step program")

    def _adopt_memory(self) -> None:
        """Copy parameters, aux states and optimizer states into the program, then make the arrays
        everyone else holds views of it."""
        ex, exe = self.executor, self.exe
        arrays = dict(zip(ex.arg_names + ex.aux_names, ex.arg_arrays + ex.aux_arrays))
        for _, name, _, states in self.params:
            for k, state in enumerate(states):
                arrays[optimizer_state(name, k)] = state
        self.adopted = []  # (array, the view it was given): still ours while the array's buffer is it
        for name, array in arrays.items():
            table = next((t for t in ("parameters", "states") if name in exe.layout[t]), None)
            if table is None:
                continue
            view = exe.view(exe.layout[table][name])
            view[...] = array.host_buffer()
            array.adopt_host_buffer(view)
            self.adopted.append((array, view))
        outputs = exe.layout["outputs"]
        for arg, position in self.grads:
            grad_array = ex.grad_arrays[arg]
            if grad_array is not None:  # the last step's gradient, without a copy
                view = exe.view(outputs[position][1])
                grad_array.adopt_host_buffer(view)
                self.adopted.append((grad_array, view))

    def owns_memory(self) -> bool:
        """Whether every array this step adopted still lives in its program (another module sharing
        the parameters may have adopted them since)."""
        return all(array.host_buffer() is view for array, view in self.adopted)

    def run(self, data_batch) -> None:
        """One training step on `data_batch`: one native call; the outputs land in the executor's."""
        module, exe = self.module, self.exe
        names = [d.name for d in module.data_shapes] + [d.name for d in (module.label_shapes or [])]
        arrays = list(data_batch.data) + list(data_batch.label or [])
        for name, array in zip(names, arrays):
            exe.set_param(name, array.host_buffer() if isinstance(array, NDArray) else array)
        optimizer = module.optimizer
        for (index, _, _, states), views in zip(self.params, self.scalar_views):
            step = optimizer.update_step(index, bool(states))
            for scalar, value in step.scalars.items():
                views[scalar][0] = value
        if RNG_BUFFER in exe.buffers:
            exe.view(RNG_BUFFER)[...] = int(random.generator().integers(1 << 62))
        exe.run()
        for output, value in zip(self.executor.outputs, exe.outputs_view()[: self.outputs]):
            output.host_buffer()[...] = value
