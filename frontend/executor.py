"""`Executor`: a bound symbol that runs forward and backward (MXNet's `simple_bind`/`bind` result).

The forward graph is the symbol's; the backward graph is built once by the autodiff rewrite
(`ember.compiler.passes.autodiff`) and reuses the forward pass's values, so random masks (Dropout)
and batch statistics (BatchNorm) are those the forward pass used. A training backward also applies
each op's auxiliary-state update (BatchNorm's moving statistics), as MXNet 1.9.1 does.

Engines, chosen by EMBER_EXECUTOR when the executor is made: 'tiered' (the default) runs the NumPy
reference interpreter until the graph is hot, then compiled programs (`tiering.py` says when;
EMBER_COMPILE_AFTER=N sets the run count); 'compiled' runs compiled native code from the first call
(`compiled_runner.py`); 'reference' only interprets, op by op, for debugging. Each `forward` and
`backward` holds the executor's `lock` for its whole effect, so calls from several threads never mix.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

import numpy as np

from ember.compiler import Graph, RefContext, TensorType, Value, evaluate, variable
from ember.compiler.dtypes import DEFAULT_DTYPE, dtype_name
from ember.compiler.names import head_grad
from ember.compiler.ops.facts import is_loss_head
from ember.compiler.ops.rules import is_known
from ember.compiler.passes import infer_shapes, infer_types
from ember.compiler.passes.autodiff import auxiliary_updates, gradients
from ember.compiler.passes.infer_shapes import legacy_to_partial
from ember.runtime.errors import CompileError, MXNetError, ShapeError

from . import random
from .compiled_runner import CompiledRunner
from .context import check_context, check_host_memory, current_context
from .engine_switches import executor_kind
from .ndarray import NDArray
from .tiering import TierPolicy

GRAD_REQS = ("write", "add", "null")


class Executor:
    """Forward/backward over bound argument, gradient and auxiliary arrays.

    Threads (MXNet's executors are not thread-safe; Ember's never mix calls): `forward` and
    `backward` each hold `lock` from the first argument copy to the last output or gradient
    written, so concurrent calls run one after another, whole. `forward(...)` returns copies of that
    call's outputs; `outputs` (updated in place, as MXNet's) holds the last call's, whichever thread
    made it. `backward` differentiates the last forward of any thread: to pair a forward with its
    backward, or to read `outputs`/`grad_arrays` after your own call, hold `with executor.lock:`
    around the sequence (the lock is re-entrant).
    """

    @classmethod
    def allocate(cls, symbol, ctx, grad_req, type_dict: Mapping | None, shapes: Mapping) -> Executor:
        """An executor of `symbol` with zero-filled arrays for the given input shapes and dtypes
        (what `simple_bind` makes): a gradient array for every argument whose req is not null.
        MXNetError, before anything is allocated, when the arrays (outputs included) need more memory
        than the machine has."""
        if ctx is not None:
            check_context(ctx, "simple_bind's ctx")
        inferred, dtypes = infer_bound_types(symbol, shapes, type_dict)
        arg_names, aux_names = symbol.list_arguments(), symbol.list_auxiliary_states()
        reqs = normalize_grad_reqs(grad_req, arg_names)
        arg_specs = dict(zip(arg_names, _variable_specs(symbol, inferred, dtypes, arg_names)))
        aux_specs = dict(zip(aux_names, _variable_specs(symbol, inferred, dtypes, aux_names)))
        grad_specs = {f"{n}'s gradient": arg_specs[n] for n, r in zip(arg_names, reqs) if r != "null"}
        output_specs = {
            f"output {name}": (tuple(inferred[v]), dtypes.get(v, "float32"))
            for name, v in zip(symbol.list_outputs(), symbol._graph.outputs)
        }
        every = {**arg_specs, **grad_specs, **aux_specs, **output_specs}
        check_host_memory([(n, s, dtype_name(d)) for n, (s, d) in every.items()], "simple_bind")
        args = [_zeros(*arg_specs[n], ctx, n) for n in arg_names]
        grads = [None if r == "null" else _zeros(*arg_specs[n], ctx, n) for n, r in zip(arg_names, reqs)]
        aux = [_zeros(*aux_specs[n], ctx, n) for n in aux_names]
        return cls(symbol, ctx, args, grads, reqs, aux, inferred, dtypes)

    def __init__(self, symbol, ctx, arg_arrays, grad_arrays, grad_reqs, aux_arrays, shapes, dtypes):
        self._symbol = symbol
        self._ctx = ctx or current_context()
        self.arg_arrays: list[NDArray] = list(arg_arrays)
        self.grad_arrays: list[NDArray | None] = list(grad_arrays)
        self.aux_arrays: list[NDArray] = list(aux_arrays)
        self._grad_reqs = list(grad_reqs)
        self._shapes, self._dtypes = shapes, dtypes
        self._graph = symbol._graph
        self._variables = {v.name: v for v in self._graph.variables}
        # Names computed once: the symbol's graph is fixed for this executor's life.
        self._arg_names = symbol.list_arguments()
        self._aux_names = symbol.list_auxiliary_states()
        self._output_names = symbol.list_outputs()
        self._forward_values: dict | None = None
        self._forward_was_train = False
        self._backward_plan = None
        self._monitor = None
        kind = executor_kind()
        self._runner = None if kind == "reference" else CompiledRunner(self, share=kind == "tiered")
        self._policy = TierPolicy(self, self._runner) if kind == "tiered" else None
        self._tier: str | None = None  # the engine of the last forward
        self._lock = threading.RLock()
        # As MXNet, outputs are allocated at bind and overwritten in place by every forward.
        self.outputs: list[NDArray] = [
            NDArray(np.zeros(shapes[v], dtypes.get(v, "float32")), self._ctx) for v in self._graph.outputs
        ]

    # -- what is bound (Ember's additions; MXNet has no public names for these) ------------------

    @property
    def arg_names(self) -> list[str]:
        """The argument names, in the order of `arg_arrays` and `grad_arrays`."""
        return list(self._arg_names)

    @property
    def aux_names(self) -> list[str]:
        """The auxiliary-state names, in the order of `aux_arrays`."""
        return list(self._aux_names)

    @property
    def grad_reqs(self) -> list[str]:
        """Each argument's grad_req ('write', 'add' or 'null'), in the order of `arg_arrays`."""
        return list(self._grad_reqs)

    @property
    def graph(self) -> Graph:
        """The forward graph: the bound symbol's, whose outputs are `outputs`."""
        return self._graph

    @property
    def lock(self) -> threading.RLock:
        """The re-entrant lock each `forward`/`backward` holds; hold it to make a sequence of calls
        (forward, backward, reading `outputs`) indivisible with respect to other threads."""
        return self._lock

    @property
    def runner(self) -> CompiledRunner | None:
        """The compiled programs this executor runs on (once hot, under 'tiered'); None with
        EMBER_EXECUTOR=reference."""
        return self._runner

    @property
    def tier(self) -> str | None:
        """The engine the last forward ran on: 'compiled', 'reference' (the interpreter), or None
        before the first forward."""
        return self._tier

    @property
    def trains_on_losses_only(self) -> bool:
        """Whether some argument wants a gradient and every output is a loss head, so a training step
        needs no head gradients (the compiled executor then runs forward and backward together)."""
        wanted = any(req != "null" for req in self._grad_reqs)
        return wanted and all(is_loss_head(v.node) for v in self._graph.outputs)

    def backward_plan(self) -> BackwardPlan:
        """The backward graph (built on first use): gradient values by argument index, aux updates."""
        if self._backward_plan is None:
            self._backward_plan = BackwardPlan.build(self)
        return self._backward_plan

    @property
    def value_types(self) -> dict[Value, TensorType]:
        """Every value of `graph` with the shape and dtype bind inferred (float32 where inference left a
        dtype open): what compiled programs of this executor are typed from."""
        return {v: TensorType(tuple(s), self._dtypes.get(v, "float32")) for v, s in self._shapes.items()}

    @property
    def context(self):
        """The context the executor's arrays and programs are on."""
        return self._ctx

    @property
    def name(self) -> str:
        """The bound symbol's name (for messages)."""
        return self._symbol.name

    # -- views by name ------------------------------------------------------------------------

    @property
    def arg_dict(self) -> dict[str, NDArray]:
        return dict(zip(self._arg_names, self.arg_arrays))

    @property
    def grad_dict(self) -> dict[str, NDArray | None]:
        return dict(zip(self._arg_names, self.grad_arrays))

    @property
    def aux_dict(self) -> dict[str, NDArray]:
        return dict(zip(self._aux_names, self.aux_arrays))

    @property
    def output_dict(self) -> dict[str, NDArray]:
        return dict(zip(self._output_names, self.outputs))

    # -- running ------------------------------------------------------------------------------

    def forward(self, is_train: bool = False, **kwargs) -> list[NDArray]:
        """Run the forward pass; keyword arrays are first copied into the named arguments. Returns
        copies of this call's outputs (`outputs` holds them too, until the next forward)."""
        with self._lock:
            self.run_forward(bool(is_train), kwargs)
            return [NDArray(output.host_buffer().copy(), self._ctx) for output in self.outputs]

    def run_forward(self, is_train: bool, arrays: Mapping) -> None:
        """The whole effect of one forward (arguments in, the pass, `outputs` written, the monitor),
        returning nothing: for callers that read `outputs` themselves while holding `lock` (Module)."""
        arg_dict = self.arg_dict
        for name, value in arrays.items():
            if name not in arg_dict:
                raise TypeError(f"forward: {name!r} is not an argument; arguments are {list(arg_dict)}")
            _copy_into(arg_dict[name], value, name)
        is_train = bool(is_train)
        self._forward_was_train = is_train
        self._forward_values = None  # until this forward succeeds, backward has nothing to differentiate
        self._tier = self._engine(is_train)
        if self._tier == "compiled" and self._compiled_forward(is_train):
            self._forward_values = {}
        else:
            self._tier = "reference"
            start = time.perf_counter()
            ctx = RefContext(is_train, random.generator())
            values = evaluate(self._graph, self._feeds(), ctx)
            self._interpreted(is_train, time.perf_counter() - start, forward=True)
            for output, value in zip(self.outputs, self._graph.outputs):
                output.host_buffer()[...] = values[value]  # a copy: never aliases an argument
            self._forward_values = values
        if self._monitor is not None:
            for name, array in self.output_dict.items():
                self._monitor(name, array)

    def _engine(self, is_train: bool) -> str:
        """'compiled' or 'reference' for a forward in this mode: fixed by EMBER_EXECUTOR, or by the
        tiering policy."""
        if self._runner is None:
            return "reference"
        return self._policy.engine(is_train) if self._policy is not None else "compiled"

    def _compiled_forward(self, is_train: bool) -> bool:
        """Run the forward on compiled programs and write `outputs`; False when a tiered executor's
        programs failed to compile (it then stays on the interpreter: `TierPolicy.compile_failed`)."""
        try:
            values = self._runner.forward(is_train)
        except CompileError as err:
            if self._policy is None:
                raise
            self._policy.compile_failed(is_train, err)
            return False
        for output, value in zip(self.outputs, values):
            output.host_buffer()[...] = value
        if self._policy is not None:
            self._policy.ran_compiled(is_train)
        return True

    def _interpreted(self, is_train: bool, seconds: float, forward: bool) -> None:
        if self._policy is not None:
            self._policy.ran_interpreter(is_train, seconds, forward)

    def backward(self, out_grads=None, is_train: bool = True) -> None:
        """Gradients of the outputs (weighted by `out_grads`; loss heads need none) into `grad_arrays`.

        The gradient is that of the function the last forward computed: after a training forward,
        through batch statistics (BatchNorm); after an inference forward, through the moving ones.
        Holds `lock` throughout, as `forward` does.
        """
        with self._lock:
            self._backward(out_grads)

    def _backward(self, out_grads) -> None:
        """The whole effect of one backward: the step (or the reference pass) and every array written."""
        if self._forward_values is None:
            raise MXNetError("backward called before forward")
        plan = self.backward_plan()
        head_grads = self._head_grad_feeds(out_grads)
        if self._tier == "compiled":
            try:
                grads, aux_updates = self._runner.backward(self._forward_was_train, head_grads)
            except CompileError as err:  # the step program (compiled on first backward) failed
                if self._policy is None:
                    raise
                self._policy.compile_failed(self._forward_was_train, err)
                self._tier = "reference"
                ctx = RefContext(self._forward_was_train, random.generator())
                self._forward_values = evaluate(self._graph, self._feeds(), ctx)  # new random draws
                grads, aux_updates = self._interpreted_backward(plan, head_grads)
        else:
            grads, aux_updates = self._interpreted_backward(plan, head_grads)
        for index in plan.grads:
            self._write_grad(index, grads.get(index))
        if self._forward_was_train:
            targets = {**self.arg_dict, **self.aux_dict}
            for name, value in aux_updates.items():
                targets[name].host_buffer()[...] = value

    def _interpreted_backward(self, plan, head_grads: dict) -> tuple[dict, dict]:
        """(gradients by argument index, aux updates by name) from the reference interpreter, reusing
        the forward's values."""
        start = time.perf_counter()
        feeds = {**self._feeds(), **head_grads}
        ctx = RefContext(self._forward_was_train, random.generator())
        values = evaluate(plan.graph, feeds, ctx, self._forward_values)
        grads = {i: values[v] for i, v in plan.grads.items() if v is not None}
        aux_updates = {name: values[v] for name, v in plan.aux_updates.items()}
        self._interpreted(self._forward_was_train, time.perf_counter() - start, forward=False)
        return grads, aux_updates

    def _feeds(self) -> dict[str, np.ndarray]:
        names = self._arg_names + self._aux_names
        return {n: a.host_buffer() for n, a in zip(names, self.arg_arrays + self.aux_arrays)}

    def _head_grad_feeds(self, out_grads) -> dict[str, np.ndarray]:
        """Head gradients by output: required (and shape-checked) for every head that is not a loss."""
        if out_grads is None:
            out_grads = []
        elif isinstance(out_grads, (NDArray, np.ndarray)):
            out_grads = [out_grads]
        elif isinstance(out_grads, dict):
            out_grads = [out_grads.get(name) for name in self._output_names]
        feeds = {}
        for i, (head, name) in enumerate(zip(self._graph.outputs, self._output_names)):
            given = out_grads[i] if i < len(out_grads) else None
            if is_loss_head(head.node):
                continue
            if given is None:
                raise MXNetError(
                    f"backward: output {name!r} is not a loss, so it needs a head gradient in out_grads "
                    "(or wrap it in MakeLoss)"
                )
            array = given.asnumpy() if isinstance(given, NDArray) else np.asarray(given)
            if array.shape != self.outputs[i].shape:
                raise MXNetError(
                    f"backward: head gradient for {name!r} has shape {array.shape}, the output "
                    f"{self.outputs[i].shape}"
                )
            feeds[head_grad(i)] = array
        return feeds

    def _write_grad(self, index: int, grad: np.ndarray | None) -> None:
        target = self.grad_arrays[index]
        req = self._grad_reqs[index]
        if target is None or req == "null":
            return
        if grad is None:
            grad = np.zeros(target.shape, target.host_buffer().dtype)
        if req == "add":
            target.host_buffer()[...] += grad
        else:
            target.host_buffer()[...] = grad

    # -- MXNet's other members ----------------------------------------------------------------

    def copy_params_from(
        self, arg_params: Mapping, aux_params: Mapping | None = None, allow_extra_params=False
    ):
        """Copy arrays by name into the bound arguments and auxiliary states."""
        for params, targets in ((arg_params, self.arg_dict), (aux_params or {}, self.aux_dict)):
            for name, array in params.items():
                if name in targets:
                    _copy_into(targets[name], array, name)
                elif not allow_extra_params:
                    raise ValueError(f'Find name "{name}" that is not in the arguments')

    def reshape(self, partial_shaping: bool = False, allow_up_sizing: bool = False, **shapes) -> Executor:
        """A new executor for new input shapes, sharing arrays whose shapes did not change."""
        new = Executor.allocate(
            self._symbol,
            self._ctx,
            dict(zip(self._arg_names, self._grad_reqs)),
            {n: a.dtype for n, a in self.arg_dict.items()},
            shapes,
        )
        old = {**self.arg_dict, **self.aux_dict}
        for arrays, names in ((new.arg_arrays, new._arg_names), (new.aux_arrays, new._aux_names)):
            for i, name in enumerate(names):
                if old[name].shape == arrays[i].shape:
                    arrays[i] = old[name]  # shared memory, as MXNet's reshape shares unchanged arrays
        return new

    def set_monitor_callback(self, callback, monitor_all: bool = False) -> None:
        """Call `callback(name, array)` with every output after each forward."""
        self._monitor = callback

    def debug_str(self) -> str:
        return self._symbol.debug_str()


class BackwardPlan:
    """The backward graph of an executor: `grads` maps each argument index whose grad_req is not null
    to its gradient value (None where the outputs do not depend on it), `aux_updates` each auxiliary
    state's name to its new value after a training step; `graph` computes them all."""

    def __init__(self, graph: Graph, grads: dict[int, Value | None], aux_updates: dict[str, Value]):
        self.graph, self.grads, self.aux_updates = graph, grads, aux_updates

    @classmethod
    def build(cls, executor: Executor) -> BackwardPlan:
        graph, symbol = executor._graph, executor._symbol
        wanted = [i for i, req in enumerate(executor._grad_reqs) if req != "null"]
        names = symbol.list_arguments()
        wrt = [Value(executor._variables[names[i]], 0) for i in wanted]
        heads = [
            None if is_loss_head(v.node) else variable(head_grad(i)).output()
            for i, v in enumerate(graph.outputs)
        ]
        grad_values = gradients(graph, executor._shapes, wrt, heads, executor._dtypes) if wrt else []
        grads = dict(zip(wanted, grad_values))
        aux_updates = _aux_updates(graph, executor._shapes)
        outputs = [v for v in grad_values if v is not None] + list(aux_updates.values())
        return cls(Graph(outputs), grads, aux_updates)


def _aux_updates(graph: Graph, shapes) -> dict[str, Value]:
    """Auxiliary-state name -> its new value after a training step, from each op's update rule."""
    updates = {}
    for node, position, value in auxiliary_updates(graph, shapes):
        source = node.inputs[position].node
        if source.is_variable:
            updates[source.name] = value
    return updates


def infer_bound_types(symbol, shapes: Mapping[str, tuple], type_dict: Mapping | None):
    """(shape by value, dtype by value) of every value of `symbol`'s graph from the given input shapes
    (MXNet's legacy encoding) and dtypes, or a ShapeError naming what stays unknown."""
    given = {k: legacy_to_partial(tuple(v)) for k, v in shapes.items()}
    try:
        inferred = infer_shapes(symbol._graph, given)
    except ShapeError as err:
        listed = "".join(f"  {k}: {tuple(v)}\n" for k, v in shapes.items())
        raise ShapeError(f"infer_shape error. Arguments:\n{listed}{err}") from None
    unknown = [v.name for v in symbol._graph.variables if not is_known(inferred.get(Value(v, 0)))]
    if unknown:
        raise ShapeError(f"cannot decide the shapes of {', '.join(unknown)}; give them as keyword shapes")
    dtypes = infer_types(symbol._graph, dict(type_dict or {}), default=DEFAULT_DTYPE)
    return inferred, dtypes


def _variable_specs(symbol, shapes, dtypes, names):
    index = {v.name: v for v in symbol._graph.variables}
    return [(tuple(shapes[Value(index[n], 0)]), dtypes[Value(index[n], 0)]) for n in names]


def _zeros(shape, dtype, ctx, name: str) -> NDArray:
    """A zero NDArray for bound array `name`; MXNetError naming it when the memory cannot be had."""
    try:
        return NDArray(np.zeros(shape, dtype_name(dtype)), ctx)
    except (MemoryError, ValueError) as err:
        what = f"{name} of shape {tuple(shape)} ({dtype_name(dtype)})"
        raise MXNetError(f"simple_bind: cannot allocate {what}: {err}") from None


def _copy_into(target: NDArray, value, name: str) -> None:
    array = value.host_buffer() if isinstance(value, NDArray) else np.asarray(value)
    if array.shape != target.shape:
        raise ValueError(f"shape mismatch for {name!r}: bound {target.shape}, given {array.shape}")
    target.host_buffer()[...] = array


def normalize_grad_reqs(grad_req, arg_names: Sequence[str]) -> list[str]:
    """MXNet's grad_req forms (a string, a list in argument order, a dict) as one req per argument."""
    if isinstance(grad_req, str):
        reqs = [grad_req] * len(arg_names)
    elif isinstance(grad_req, dict):
        reqs = [grad_req.get(name, "null") for name in arg_names]
    else:
        reqs = list(grad_req)
        if len(reqs) != len(arg_names):
            raise MXNetError(f"grad_req has {len(reqs)} entries for {len(arg_names)} arguments")
    for req in reqs:
        if req not in GRAD_REQS:
            raise MXNetError(f"grad_req must be one of {', '.join(GRAD_REQS)}, got {req!r}")
    return reqs


__all__ = ["BackwardPlan", "Executor", "normalize_grad_reqs"]
