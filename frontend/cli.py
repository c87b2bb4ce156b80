"""The `ember` command line: compile an MXNet model to an artifact, run an artifact, inspect one,
benchmark the compiler against NumPy.

    ember compile mlp-symbol.json --params mlp-0010.params --shape data=1,784 [--dtype data=float32]
                  [-o mlp.ember] [--name mlp]
    ember run mlp.ember --input data=x.npy [--input ...] [--output out.npy ...]
    ember inspect mlp.ember [--ir] [--llvm] [--graphml mlp.graphml]
    ember bench [--quick] [--json PATH] [--only NAME ...]

`compile` loads the symbol JSON and the `.params` file, calls `ember.compile` and saves the artifact
(by default `<name>.ember`, the name being the symbol file's name less `-symbol.json`); it prints one
summary line to stderr. Shapes that follow from the others (a SoftmaxOutput's label) need no
`--shape`, as in MXNet's binding. `EMBER_DEBUG=2` prints every pass's graph, the kernels and the
memory plan to stderr as it goes.

`run` loads an artifact with `ember.runtime.load` (it never imports the code generator or llvmlite)
and feeds it `.npy` files: `NAME=PATH`, or a bare `PATH` when the model has one input; an array of
another dtype is converted to the input's dtype; the label of a loss layer (SoftmaxOutput and the
like), which its forward output ignores, may be left out and is then zeros. It saves the outputs as
`.npy` files: with one `--output` per model output each goes to its own path; with a single
`--output out.npy` and several model outputs they go to `out_0.npy`, `out_1.npy`, ... in the model's
output order; with no `--output` they are printed to stdout.

`inspect` prints an artifact's manifest (versions, target, inputs, outputs, parameters, memory, content
hash), its graph and its kernel program to stdout; it reads artifacts built for other machines too.
`--ir` rebuilds the program from the artifact's graph and specs and prints the graph after each
compiler pass and the kernel program (debug level 2); `--llvm` prints the program's LLVM IR;
`--graphml PATH` writes the artifact's graph, with every value's shape and dtype, as GraphML for a
graph viewer (it needs networkx: `pip install 'ember[graph]'`).

Every failure prints one line `ember: error: <message>` to stderr and exits with status 1; usage
errors found by argparse exit with status 2. Set EMBER_DEBUG=1 to see the traceback of an unexpected
internal error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
import traceback

PROG = "ember"
# MXNet's loss layers: their forward output ignores their label (input 1)
LOSS_OUTPUTS = (
    "SoftmaxOutput", "Softmax", "LinearRegressionOutput", "LogisticRegressionOutput", "MAERegressionOutput",
    "SVMOutput",
)  # fmt: skip
SHAPE_DIMS = re.compile(r"^\(?\s*(\d+\s*(,\s*\d+\s*)*,?)?\s*\)?$")


class CliError(Exception):
    """A user mistake found by the command line itself (bad `--shape`, unknown input, ...)."""


# -- argument syntax ----------------------------------------------------------------------------------


def split_assignment(text: str, option: str, form: str) -> tuple[str, str]:
    """`NAME=VALUE` -> (NAME, VALUE); CliError naming `option` and the expected `form` otherwise."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise CliError(f"bad {option} {text!r}: expected {form}")
    return name.strip(), value.strip()


def parse_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """`data=1,784` (or `data=(1,784)`) -> ('data', (1, 784))."""
    form = "NAME=D1,D2,... with non-negative integer sizes, e.g. data=1,784"
    name, dims = split_assignment(text, "--shape", form)
    if not dims or not SHAPE_DIMS.match(dims):
        raise CliError(f"bad --shape {text!r}: expected {form}")
    return name, tuple(int(d) for d in dims.strip("()").split(",") if d.strip())


def parse_dtype(text: str) -> tuple[str, str]:
    """`data=float16` -> ('data', 'float16'), the dtype being one an artifact can hold."""
    from ember.runtime.manifest import DTYPES

    name, dtype = split_assignment(text, "--dtype", "NAME=DTYPE, e.g. data=float32")
    if dtype not in DTYPES:
        raise CliError(f"bad --dtype {text!r}: {dtype!r} is not one of {', '.join(DTYPES)}")
    return name, dtype


def collect(pairs: list[tuple[str, object]], option: str) -> dict:
    """The (name, value) pairs of a repeated option as a dict; CliError when a name repeats."""
    result = {}
    for name, value in pairs:
        if name in result:
            raise CliError(f"{option} {name!r} is given twice")
        result[name] = value
    return result


def model_name(symbol_path: str) -> str:
    """The default model name: the symbol file's name less `-symbol.json` (or `.json`)."""
    base = os.path.basename(symbol_path)
    for suffix in ("-symbol.json", ".json"):
        if base.endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)]
    return base or "model"


def shape_text(shape) -> str:
    """A shape as Python writes a tuple: (2, 3), (4,), ()."""
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


# -- ember compile --------------------------------------------------------------------------------------


def load_params(path: str | None) -> dict:
    """The arrays of a `.params` file by variable name (`arg:`/`aux:` prefixes dropped); {} without one."""
    import ember

    if path is None:
        return {}
    arrays = ember.nd.load(path)
    if not isinstance(arrays, dict):
        raise CliError(
            f"'{path}' holds unnamed arrays; compile needs them by name (as a checkpoint saves them)"
        )
    return {key.split(":", 1)[1] if key.startswith(("arg:", "aux:")) else key: a for key, a in arrays.items()}


def input_shapes(symbol, shapes: dict, params: dict, args: argparse.Namespace) -> dict:
    """`shapes` checked against the symbol's variables and completed, as MXNet's binding does, with the
    shapes inference decides from the others (a SoftmaxOutput's label); CliError for what is left."""
    variables = symbol.list_arguments() + symbol.list_auxiliary_states()
    for name in shapes:
        if name not in variables:
            raise CliError(
                f"--shape {name!r}: {args.symbol} has no variable of that name; its variables are "
                f"{', '.join(variables)}"
            )
        if name in params:
            raise CliError(f"--shape {name!r}: {name!r} is a parameter in {args.params}, not an input")
    missing = [v for v in variables if v not in shapes and v not in params]
    if missing:
        known = {**{k: tuple(a.shape) for k, a in params.items() if k in variables}, **shapes}
        arg_shapes, _, aux_shapes = symbol.infer_shape_partial(**known)
        inferred = dict(zip(variables, arg_shapes + aux_shapes))
        for name in missing:
            shape = tuple(inferred.get(name) or ())
            if not shape or not all(shape):
                where = (
                    f"it is not a parameter in {args.params}" if args.params else "no --params file was given"
                )
                raise CliError(
                    f"no --shape for input {name!r}: {where}, and its shape does not follow from the other "
                    f"shapes; add --shape {name}=D1,D2,..."
                )
            shapes = {**shapes, name: shape}
    return shapes


def cmd_compile(args: argparse.Namespace) -> int:
    """Compile a symbol JSON file and its parameters to an artifact file."""
    import ember

    shapes = collect([parse_shape(s) for s in args.shape], "--shape")
    dtypes = collect([parse_dtype(d) for d in args.dtype], "--dtype")
    name = args.name or model_name(args.symbol)
    output = args.output or f"{name}.ember"
    start = time.perf_counter()
    symbol = ember.sym.load(args.symbol)
    params = load_params(args.params)
    shapes = input_shapes(symbol, shapes, params, args)
    unshaped = [n for n in dtypes if n not in shapes]
    if unshaped:
        raise CliError(
            f"--dtype {unshaped[0]!r} names no input of {args.symbol}; its inputs are {', '.join(shapes)}"
        )
    model = ember.compile(symbol, shapes=shapes, params=params, dtypes=dtypes or None, name=name)
    seconds = time.perf_counter() - start
    model.save(output)
    inputs = ", ".join(f"{s['name']} {shape_text(s['shape'])}" for s in model.manifest["inputs"])
    kernels = len(model.kernels)
    plural = "" if kernels == 1 else "s"
    print(
        f"{PROG}: compiled {args.symbol} -> {output}: inputs {inputs}; {kernels} kernel{plural}, "
        f"arena {model.arena_bytes} bytes, {seconds:.2f} s",
        file=sys.stderr,
    )
    return 0


# -- ember run ------------------------------------------------------------------------------------------


def load_npy(path: str, what: str):
    """The array in the `.npy` file `path` (never unpickling); CliError saying what is wrong."""
    import numpy as np

    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise CliError(f"cannot read {what} from '{path}': no such file") from None
    except OSError as err:
        raise CliError(f"cannot read {what} from '{path}': {err.strerror or err}") from None
    except (ValueError, EOFError) as err:
        problem = (
            "it is not a .npy file, or it holds Python objects"
            if "pickle" in str(err)
            else f"it is not a valid .npy file ({err})"
        )
        raise CliError(f"cannot read {what} from '{path}': {problem}") from None
    if not isinstance(array, np.ndarray):
        array.close()
        raise CliError(f"cannot read {what} from '{path}': it is an .npz archive, not a .npy file")
    return array


def loss_labels(graph_json: str) -> set[str]:
    """The variables read only as the label of MXNet loss layers (SoftmaxOutput, *RegressionOutput,
    SVMOutput), whose forward output does not depend on it."""
    nodes = json.loads(graph_json).get("nodes", [])
    uses: dict[int, list[tuple[str, int]]] = {}
    for node in nodes:
        for slot, entry in enumerate(node.get("inputs", [])):
            uses.setdefault(entry[0], []).append((node.get("op"), slot))
    return {
        nodes[index]["name"]
        for index, used in uses.items()
        if nodes[index].get("op") == "null" and all(op in LOSS_OUTPUTS and slot == 1 for op, slot in used)
    }


def run_inputs(model, texts: list[str], source: str) -> dict:
    """The model's inputs by name, read from the `--input` files and checked against its specs; a loss
    layer's label that no `--input` gives is zeros (it does not change the outputs)."""
    import numpy as np

    specs = {s["name"]: s for s in model.manifest["inputs"]}
    names = list(model.input_names)
    labels = loss_labels(model.artifact.graph_json) & set(names)
    data_names = [n for n in names if n not in labels]
    pairs = []
    for text in texts:
        name, sep, path = text.partition("=")
        if not sep:
            if len(data_names) != 1:
                raise CliError(
                    f"--input {text!r} gives no input name, but {source} takes {len(data_names)} inputs "
                    f"({', '.join(data_names)}); write NAME=PATH"
                )
            name, path = data_names[0], text
        if name not in specs:
            raise CliError(f"{source} has no input {name!r}; its inputs are {', '.join(names)}")
        pairs.append((name, path))
    paths = collect(pairs, "--input")
    missing = [n for n in data_names if n not in paths]
    if missing:
        raise CliError(f"no --input for {missing[0]!r}; {source} takes {', '.join(data_names)}")
    arrays = {n: np.zeros(specs[n]["shape"], dtype=specs[n]["dtype"]) for n in labels if n not in paths}
    for name, path in paths.items():
        array = load_npy(path, f"input {name!r}")
        expected = tuple(specs[name]["shape"])
        if array.shape != expected:
            raise CliError(
                f"input {name!r} of {source} has shape {shape_text(expected)}, but '{path}' holds an "
                f"array of shape {shape_text(array.shape)}"
            )
        arrays[name] = array
    return arrays


def output_paths(given: list[str], names: list[str]) -> list[str]:
    """Where each output goes: one path per output, or `out.npy` -> out_0.npy, out_1.npy, ..."""
    if len(given) == len(names):
        return list(given)
    if len(given) == 1:
        stem, ext = os.path.splitext(given[0])
        return [f"{stem}_{i}{ext or '.npy'}" for i in range(len(names))]
    raise CliError(
        f"{len(given)} --output paths for {len(names)} outputs ({', '.join(names)}); give one path "
        "per output, or one path to number"
    )


def cmd_run(args: argparse.Namespace) -> int:
    """Run an artifact on `.npy` inputs and save (or print) its outputs."""
    import numpy as np

    from ember.runtime.model import load  # the runtime only: no compiler, no llvmlite

    model = load(args.artifact)
    names = list(model.output_names)
    inputs = run_inputs(model, args.input, args.artifact)
    paths = output_paths(args.output, names) if args.output else None  # checked before running
    outputs = model(**inputs)
    if paths is None:
        for name, array in zip(names, outputs):
            print(f"{name}: {array.dtype} {shape_text(array.shape)}\n{np.array2string(array, threshold=200)}")
        return 0
    for name, array, path in zip(names, outputs, paths):
        written = save_npy(path, array, f"output {name!r}")
        print(f"{PROG}: wrote {written} ({name}: {array.dtype} {shape_text(array.shape)})", file=sys.stderr)
    return 0


def save_npy(path: str, array, what: str) -> str:
    """Write `array` to `path` as a .npy file atomically (adding `.npy` to the name, as np.save does);
    the path written. A failed write (a full disk included) leaves any previous file as it was."""
    import io

    import numpy as np

    from ember.runtime.errors import MXNetError
    from ember.runtime.files import write_atomic

    path = path if path.endswith(".npy") else f"{path}.npy"
    encoded = io.BytesIO()
    np.lib.format.write_array(encoded, np.asanyarray(array), allow_pickle=False)
    try:
        write_atomic(path, [encoded.getbuffer()], MXNetError)
    except MXNetError as err:
        raise CliError(f"{what}: {err}") from None
    return path


# -- ember inspect --------------------------------------------------------------------------------------


def host_check(manifest: dict) -> str:
    """'yes', or why this machine cannot run the artifact."""
    from ember.runtime.errors import ArtifactError
    from ember.runtime.host import check_cpu_features, check_target

    try:
        check_target(manifest, source="it")
        check_cpu_features(manifest, source="it")
    except ArtifactError as err:
        return f"no: {err}"
    return "yes"


def print_manifest(manifest: dict, path: str) -> None:
    """The manifest's summary: versions, target, inputs, outputs, parameters, memory, hash."""
    layout = manifest.get("layout", {})
    states = set(layout.get("states", {}))
    params = manifest.get("params", [])
    features = len(manifest.get("cpu_features", []))
    version = manifest.get("ember_version", "?")
    arena = layout.get("arena_bytes", manifest.get("buffer_plan", {}).get("arena_bytes", "?"))
    binaries = ", ".join(f"{b['name']} ({b['nbytes']} bytes)" for b in manifest.get("binaries", []))

    def spec(s: dict, note: str = "") -> str:
        return f"  {s['name']}: {s['dtype']} {shape_text(s['shape'])}{note}"

    lines = [
        f"artifact {path}: model {manifest.get('name', '?')!r}",
        f"  format version {manifest.get('format_version')}, built by ember {version}",
        f"  target {manifest.get('target', '?')}, cpu {manifest.get('cpu', '?')}, {features} CPU features",
        f"  runs on this machine: {host_check(manifest)}",
        "inputs:",
        *(spec(s) for s in manifest["inputs"]),
        "outputs:",
        *(spec(s) for s in manifest["outputs"]),
        f"parameters: {len(params)} ({sum(p['nbytes'] for p in params)} bytes)",
        *(spec(p, " (state)" if p["name"] in states else "") for p in params),
        f"memory: arena {arena} bytes, {len(layout.get('buffers', {}))} buffers",
        f"binaries: {binaries}",
        f"content hash: {manifest.get('content_hash')}",
    ]
    print("\n".join(lines))


def graph_listing(graph_json: str) -> str:
    """The nodes of MXNet symbol JSON, one a line: `%3 = relu(%2) name='relu0' {attrs}`."""
    doc = json.loads(graph_json)
    nodes = doc.get("nodes", [])
    lines = [f"graph: {len(nodes)} nodes"]
    for index, node in enumerate(nodes):
        attrs = node.get("attrs") or node.get("attr") or node.get("param") or {}
        attr_text = " {" + ", ".join(f"{k}={v}" for k, v in attrs.items()) + "}" if attrs else ""
        if node.get("op") == "null":
            lines.append(f"  %{index} = var {node.get('name')!r}{attr_text}")
            continue
        args = ", ".join(f"%{e[0]}" + (f".{e[1]}" if e[1] else "") for e in node.get("inputs", []))
        lines.append(f"  %{index} = {node.get('op')}({args}) name={node.get('name')!r}{attr_text}")
    heads = ", ".join(f"%{h[0]}.{h[1]}" for h in doc.get("heads", []))
    lines.append(f"  return {heads}")
    return "\n".join(lines)


def rebuild(artifact, debug: int):
    """The program rebuilt from the artifact's graph JSON, input specs and parameter shapes (built by
    the compile driver's pipeline, not compiled to code)."""
    from ember.codegen.driver import build
    from ember.compiler.json_graph import graph_from_json

    manifest = artifact.manifest
    layout = manifest.get("layout", {})
    facts = list(manifest["inputs"]) + list(manifest.get("params", []))
    shapes = {s["name"]: tuple(s["shape"]) for s in facts}
    dtypes = {s["name"]: s["dtype"] for s in facts}
    roles = {name: "parameter" for name in layout.get("parameters", {})}
    roles.update({name: "state" for name in layout.get("states", {})})
    graph = graph_from_json(artifact.graph_json)
    return build(graph, shapes=shapes, dtypes=dtypes, name=manifest.get("name", "model"), roles=roles, debug=debug)


def write_graph_of(artifact, path: str) -> None:
    """The artifact's graph, typed from its input and parameter specs, written to `path` as GraphML."""
    from ember.base import MXNetError
    from ember.compiler.graph_export import write_graphml
    from ember.compiler.json_graph import graph_from_json
    from ember.compiler.passes.typed import typed_graph

    facts = list(artifact.manifest["inputs"]) + list(artifact.manifest.get("params", []))
    try:
        graph = typed_graph(
            graph_from_json(artifact.graph_json),
            {s["name"]: tuple(s["shape"]) for s in facts},
            {s["name"]: s["dtype"] for s in facts},
        )
        digraph = write_graphml(graph, path)
    except MXNetError as err:
        raise CliError(f"cannot write the graph as GraphML: {err}") from None
    except OSError as err:
        raise CliError(f"cannot write the graph to '{path}': {err.strerror or err}") from None
    nodes, edges = digraph.number_of_nodes(), digraph.number_of_edges()
    print(f"{PROG}: wrote {path} (GraphML: {nodes} nodes, {edges} edges)", file=sys.stderr)


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print what an artifact holds; with --ir/--llvm, what the compiler makes of its graph."""
    from ember.runtime.artifact import read_artifact

    artifact = read_artifact(args.artifact, check_host=False)
    manifest = artifact.manifest
    print_manifest(manifest, args.artifact)
    print(graph_listing(artifact.graph_json))
    print(f"kernels: {', '.join(manifest.get('layout', {}).get('kernels', []))}")
    print(manifest.get("kernels", "(no kernel listing)"))
    if args.graphml:
        write_graph_of(artifact, args.graphml)
    if not (args.ir or args.llvm):
        return 0
    print("\n# rebuilt from the artifact's graph (ember " + _version() + ")")
    from ember.base import MXNetError

    try:
        with contextlib.redirect_stderr(sys.stdout):  # the passes print to stderr; here they are the output
            built = rebuild(artifact, debug=2 if args.ir else 0)
    except MXNetError as err:
        raise CliError(f"cannot rebuild the program of {args.artifact} from its graph: {err}") from None
    if str(built.program) != manifest.get("kernels"):
        built_by = manifest.get("ember_version")
        print(f"# note: the rebuilt program differs from the artifact's (built by ember {built_by})")
    if args.llvm:
        from ember.codegen.targets import target_of_manifest

        print("\n# LLVM IR\n" + target_of_manifest(manifest).ir_text(built.program))
    return 0


# -- ember bench ----------------------------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmark suite (ember.bench): print the machine and the table, optionally write JSON."""
    from ember.bench import run_and_report

    run_and_report(quick=args.quick, json_path=args.json, only=args.only, numpy_threads=args.numpy_threads)
    return 0


def _version() -> str:
    from . import __version__

    return __version__


# -- the parser and main --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The `ember` argument parser with its subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Ember: a deep-learning graph compiler with the MXNet 1.x API."
    )
    parser.add_argument("--version", action="version", version=f"ember {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    compile_ = commands.add_parser(
        "compile", help="compile an MXNet symbol and its parameters to an artifact"
    )
    compile_.add_argument("symbol", help="the model's symbol JSON (model-symbol.json)")
    compile_.add_argument("--params", help="the model's parameters (model-0010.params)")
    compile_.add_argument(
        "--shape", action="append", default=[], metavar="NAME=D1,D2,...", help="an input's shape (repeatable)"
    )
    compile_.add_argument(
        "--dtype",
        action="append",
        default=[],
        metavar="NAME=DTYPE",
        help="an input's dtype (default float32)",
    )
    compile_.add_argument("-o", "--output", help="the artifact to write (default: NAME.ember)")
    compile_.add_argument(
        "--name", help="the model's name (default: the symbol file's name less -symbol.json)"
    )
    compile_.set_defaults(handler=cmd_compile)

    run = commands.add_parser("run", help="run an artifact on .npy inputs")
    run.add_argument("artifact", help="the artifact (model.ember)")
    run.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="an input as a .npy file (repeatable)",
    )
    run.add_argument(
        "--output",
        action="append",
        default=[],
        metavar="PATH",
        help="where to save the outputs: one path per output, or one path numbered out_0.npy, out_1.npy, ... "
        "when there are several outputs (default: print them)",
    )
    run.set_defaults(handler=cmd_run)

    inspect = commands.add_parser("inspect", help="print what an artifact holds")
    inspect.add_argument("artifact", help="the artifact (model.ember)")
    inspect.add_argument("--ir", action="store_true", help="rebuild and print the graph after each pass")
    inspect.add_argument("--llvm", action="store_true", help="also print the program's LLVM IR")
    inspect.add_argument(
        "--graphml", metavar="PATH", help="also write the graph with its shapes as GraphML (needs networkx)"
    )
    inspect.set_defaults(handler=cmd_inspect)

    bench = commands.add_parser(
        "bench", help="run the benchmark suite against NumPy (and PyTorch if installed)"
    )
    bench.add_argument(
        "--quick", action="store_true", help="small sizes and few repeats (seconds, for tests)"
    )
    bench.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    bench.add_argument("--only", nargs="+", metavar="NAME", help="run only these workloads")
    bench.add_argument(
        "--numpy-threads",
        type=int,
        metavar="N",
        help="NumPy's BLAS threads (default: Ember's; 0: NumPy's default)",
    )
    bench.set_defaults(handler=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `ember` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `ember inspect model.ember | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except Exception as err:  # noqa: BLE001  (one line to the user, never a traceback)
        return report(err)


def report(err: Exception) -> int:
    """Print `ember: error: <message>` for `err` to stderr; 1, the exit status."""
    from ember.base import MXNetError

    if isinstance(err, (CliError, MXNetError)):
        message = str(err)
    elif isinstance(err, OSError) and err.filename:
        message = f"cannot access '{err.filename}': {err.strerror or err}"
    else:
        message = f"internal error: {type(err).__name__}: {err}"
        if os.environ.get("EMBER_DEBUG", "").strip() not in ("", "0"):
            traceback.print_exc()
        else:
            message += " (set EMBER_DEBUG=1 for the traceback)"
    one_line = "; ".join(line.strip() for line in message.splitlines() if line.strip())
    print(f"{PROG}: error: {one_line}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
