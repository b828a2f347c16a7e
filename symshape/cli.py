"""The ``symshape`` command.

``symshape`` with no arguments traces the zoo's seed model (where does 5408 come from?) and
prints its per-layer formulas and its numbers at 32×32. Sub-commands take a zoo name or
``MODULE:ATTR`` (a model, or a factory that takes no arguments) and ``--input SPEC``:

* ``summary``: the per-layer table (``--format text|markdown|latex|json``; ``--depth N`` groups the text table by module path; ``--memory bfloat16`` adds a column of the bytes each layer saves for backward), and the numbers ``--at H=224,W=224``;
* ``explain``: the step-by-step derivation at the given sizes;
* ``latex``: the equations and the booktabs table (``--document`` for a whole document);
* ``plot``: output size, MACs and activation memory against the input resolution;
* ``check``: the formulas against torch at a spread of sizes;
* ``rf``: the receptive field of a layer's units (``--layer NAME``, ``--at H=224,W=224``, ``--explain``);
* ``solve``: the input sizes at which the model runs (``--exact``, ``--layer NAME --shape 7,7``,
  ``--max-macs N``, ``--max-memory 24GiB`` (``--training``, ``--optimizer adam``), ``--square`` narrow
  the question), and the minimal ones.

On a terminal, ``check`` draws a progress bar on stderr and ``solve`` shows how long it has been
working once it takes more than a second; nothing is drawn in pipes, files and CI logs.

``MODEL`` is a zoo name, ``MODULE:ATTR`` (the current directory is on the import path) or
``PATH.py:ATTR``. Exit codes, the same in every sub-command: 0 ok; 1 the answer is no (a check
failed, no solution, the model does not run at the sizes asked for); 2 a usage error or a
ShapeError. Errors go to stderr, with the command that helps (``symshape solve MODEL``). ``--square`` equates the two sizes of the input other than the batch size ``N`` (so
``N,3,H,W`` asks for H = W) and is a usage error when there are not exactly two.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import os
import sys
from typing import Optional, Sequence

from . import __version__
from .errors import ShapeError
from .progress import busy, progress_bar  # noqa: F401  (busy: used by solve, and by tests)

# torch, sympy and the tracer load only once the arguments have parsed: `symshape --help`, `--version`
# and usage errors answer at once (importing torch takes seconds)

DEFAULT_MODEL = "seed_case1"
#: the names of symshape.zoo.MODELS, for the help text (symshape.zoo imports torch; a test keeps them equal)
ZOO_NAMES = ("seed_case1", "seed_case2", "fastbook_cnn", "lenet5", "alexnet", "vgg11", "vgg16", "plainnet50",
             "alexnet2012", "resnet50", "mobilenet_v2", "unet", "unet_same", "vit_tiny")


def _load_package() -> None:
    """Import torch, sympy and the whole package (the renderers and solvers attach to Report)."""
    from . import _load

    _load()


def _import(module_name: str, ref: str):
    """The module named *module_name* (``pkg.mod``, with the current directory on the import path)
    or at the file path *module_name* (``net.py``, ``./net.py``, ``/abs/net.py``)."""
    if module_name.endswith(".py") or os.sep in module_name or "/" in module_name:
        path = os.path.abspath(module_name)
        if not os.path.isfile(path):
            raise ShapeError(f"no file {module_name!r} for {ref!r}: give MODULE:ATTR or PATH.py:ATTR")
        name = "_symshape_user_" + os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, os.path.dirname(path))  # the file's own imports of its neighbours
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # the user's file failed to run: say where, as a ShapeError
            raise ShapeError(f"running {module_name!r} for {ref!r} failed: {type(err).__name__}: {err}") from None
        finally:
            sys.path.remove(os.path.dirname(path))
        return module
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # `symshape summary net:Net` finds ./net.py, as `python -m` would
    try:
        return importlib.import_module(module_name)
    except ImportError as err:
        raise ShapeError(f"cannot import {module_name!r} for {ref!r}: {err}") from None
    except Exception as err:
        raise ShapeError(f"importing {module_name!r} for {ref!r} failed: {type(err).__name__}: {err}") from None


def load_model(ref: str) -> tuple:
    """``(model, default input spec or None, default sizes)`` for a zoo name, ``MODULE:ATTR`` or
    ``PATH.py:ATTR``."""
    import torch.nn as nn

    from . import zoo

    if ref in zoo.MODELS:
        entry = zoo.MODELS[ref]
        return entry.factory(), entry.input, dict(entry.sizes)
    module_name, sep, attr = ref.rpartition(":")
    if not sep or not module_name or not attr:
        raise ShapeError(f"unknown model {ref!r}: give a zoo name ({', '.join(zoo.MODELS)}), MODULE:ATTR "
                         f"or PATH.py:ATTR")
    obj = _import(module_name, ref)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ShapeError(f"{module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not isinstance(obj, nn.Module):
        if not callable(obj):
            raise ShapeError(f"{ref} is neither an nn.Module nor a factory that returns one")
        try:
            inspect.signature(obj).bind()
        except TypeError as err:
            raise ShapeError(f"{ref} needs arguments ({err}): the factory must take no arguments; "
                             f"write a function that builds the model and give its MODULE:ATTR") from None
        except ValueError:  # no signature to inspect (some builtins): just call it
            pass
        try:
            obj = obj()
        except Exception as err:  # the user's factory failed: a ShapeError, not a traceback
            raise ShapeError(f"{ref}() failed: {type(err).__name__}: {err}") from None
        if not isinstance(obj, nn.Module):
            raise ShapeError(f"{ref}() returned {type(obj).__name__}, not an nn.Module")
    return obj, None, {}


def parse_sizes(text: str, option: str = "--at") -> dict:
    """``"H=32,W=32"`` -> ``{"H": 32, "W": 32}`` (names and positive integers only).

    >>> parse_sizes("H=-3")
    Traceback (most recent call last):
    ...
    symshape.symbols.ShapeError: --at H=-3: a size must be a positive integer, got -3
    """
    sizes = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, sep, value = (t.strip() for t in item.partition("="))
        if not sep or not name.isidentifier():
            raise ShapeError(f"cannot parse {option} {_quote(item)}: write NAME=INTEGER pairs such as H=32,W=32")
        digits = value[1:] if value[:1] in "+-" else value
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 100:
            raise ShapeError(f"{option} {_elide(item)}: a size must be a positive integer"
                             + (f" of at most 100 digits, got {len(digits)}" if digits.isascii() and digits.isdigit()
                                else f", got {_quote(value)}"))
        if int(value) < 1:
            raise ShapeError(f"{option} {item}: a size must be a positive integer, got {int(value)}")
        sizes[name] = int(value)
    return sizes


MAX_PLOT_POINTS = 100_000


def _is_digits(text: str) -> bool:
    """Whether *text* is a plain ASCII integer of at most 20 digits (``'²'.isdigit()`` is True)."""
    return text.isascii() and text.isdigit() and len(text) <= 20


def _elide(text: str) -> str:
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text):,} characters)"


def _quote(text: str) -> str:
    return repr(text) if len(text) <= 60 else f"{text[:40]!r}... ({len(text):,} characters)"


class DoesNotRun(Exception):
    """The model does not run at the sizes asked for (exit code 1, like a failed check)."""


def evaluate_at(report, sizes: dict, model_ref: str):
    """The report at *sizes*, or :class:`DoesNotRun` naming the layer and condition that fail, with
    the CLI command that finds sizes that work."""
    failed = report.violations(**sizes)
    if failed:
        c = failed[0]
        at = ", ".join(f"{k}={v}" for k, v in sizes.items())
        raise DoesNotRun(f"the model does not run at {at}: layer {c.layer!r} ({c.kind}) needs {c!r} "
                         f"({c.reason}); "
                         f"run `symshape solve {model_ref}` for the sizes at which it runs")
    return report.at(**sizes)


# --- sub-commands ---------------------------------------------------------------------------------
# A sub-command is a function ``(args) -> exit code`` registered with @command(name, help, *options);
# the options are the shared ones below or argparse ``add_argument`` calls as (args, kwargs) pairs.

COMMANDS: dict = {}


def command(name: str, help: str, *options):
    """Register the decorated function as the sub-command *name* with the given options."""
    def deco(fn):
        COMMANDS[name] = (fn, help, options)
        return fn
    return deco


def _opt(*flags, **kwargs) -> tuple:
    return flags, kwargs


MODEL = _opt("model", nargs="?", default=DEFAULT_MODEL,
             help=f"a zoo name ({', '.join(ZOO_NAMES)}), MODULE:ATTR or PATH.py:ATTR: a model or a factory that takes "
                  f"no arguments "
                  f"(default: {DEFAULT_MODEL})")
INPUT = _opt("--input", help="input shape spec such as 1,3,H,W (default: the zoo model's)")
AT = _opt("--at", help="sizes to evaluate at, such as H=32,W=32 (default: the zoo model's)")
FORMAT = _opt("--format", choices=("text", "markdown", "latex", "json"), default="text",
              help="output format (default: text)")
DEPTH = _opt("--depth", type=int, default=None, metavar="N",
             help="group the text table by module path, N levels deep (default: one row per layer)")
MACS_AS = _opt("--macs-as", choices=("torchvision", "fvcore", "ptflops", "thop", "torchinfo"), default=None,
               metavar="TOOL", help="also print the MACs as TOOL counts them: torchvision (the default convention), "
                                    "fvcore, ptflops, thop or torchinfo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="symshape", description="Symbolic shapes, MACs and parameters of torch models.",
        epilog="exit codes: 0 ok, 1 a check failed, no solution, or the model does not run at the sizes asked "
               "for, 2 a usage error or a ShapeError")
    parser.add_argument("--version", action="version", version=f"symshape {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text, options) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        for flags, kwargs in options:
            cmd.add_argument(*flags, **kwargs)
    return parser


def _traced(args, zoo_sizes: bool = True, runs: bool = True):
    """``(model, report, sizes)`` for the model, --input and --at of a sub-command; without --at, the
    zoo model's usual sizes (when *zoo_sizes*) for the sizes that the input spec names. With
    *runs*, sizes given with --at at which the model does not run are :class:`DoesNotRun`."""
    from .trace import trace

    model, spec, sizes = load_model(args.model)
    spec = args.input or spec
    if spec is None:
        raise ShapeError(f"{args.model} is not a zoo model: give its input shape with --input, e.g. --input 1,3,H,W")
    report = trace(model, spec)
    if getattr(args, "at", None):
        sizes = parse_sizes(args.at)
        if runs:
            evaluate_at(report, sizes, args.model)  # exit 1 where the model does not run there
        return model, report, sizes
    known = {s.name for s in report.symbols}
    return model, report, {k: v for k, v in sizes.items() if k in known} if zoo_sizes else {}


MEMORY_COLUMN = _opt("--memory", choices=("float32", "float16", "bfloat16", "float64"), default=None, metavar="DTYPE",
                     help="add a column of the bytes each layer saves for backward in training, in DTYPE (float32, "
                          "float16, bfloat16, float64) to the text, Markdown and LaTeX tables (default: none)")


@command("summary", "per-layer formulas, and numbers at given sizes (the default command)", MODEL, INPUT, AT, FORMAT,
         DEPTH, MEMORY_COLUMN, MACS_AS)
def summary(args) -> int:
    if args.macs_as is not None and args.format != "text":
        raise ShapeError("--macs-as adds lines to the text table; drop it or use --format text")
    if args.depth is not None and args.format != "text":
        raise ShapeError(f"--depth groups the text table; --format {args.format} has one row per layer: "
                         f"drop --depth or use --format text")
    if args.depth is not None and args.depth < 1:
        raise ShapeError(f"--depth takes a positive number of levels (1: the top-level modules), got {args.depth}")
    import torch

    model, report, sizes = _traced(args)
    mem = getattr(torch, args.memory) if args.memory else None
    if mem is not None and args.format == "json":
        raise ShapeError("--memory adds a column to the text, Markdown and LaTeX tables; JSON has each layer's "
                         "memory already: drop --memory")
    if args.format == "text":
        print(report.summary(depth=args.depth, memory=mem))
        note = training_note(model, report)
        if note:
            print(note)
        if sizes:
            print()
            print(evaluate_at(report, sizes, args.model).summary(depth=args.depth, memory=mem))
            line = memory_line(report, sizes)
            if line:
                print(line)
        if args.macs_as is not None:
            print(macs_as_lines(report, args.macs_as, sizes))
    elif args.format == "markdown":
        print(report.to_markdown(sizes or None, memory=mem))
    elif args.format == "latex":
        print(report.to_latex(sizes or None, memory=mem))
    else:
        print(evaluate_at(report, sizes, args.model).to_json() if args.at else report.to_json())  # formulas unless --at
    return 0


def macs_as_lines(report, tool: str, sizes: dict) -> str:
    """The MACs as *tool* counts them, as a formula, at *sizes* when every size is given, and the
    rules' source."""
    from .printing import fmt

    count = report.macs_as(tool)
    lines = ["", f"MACs as {tool} counts them: {fmt(count.total)}"]
    if sizes and all(s.name in sizes for s in report.symbols):
        at = ", ".join(f"{k}={v}" for k, v in sizes.items())
        lines.append(f"at {at}: {count.at(sizes):,}")
    lines.append(f"(rules from {count.source})")
    return "\n".join(lines)


def memory_line(report, sizes: dict) -> str:
    """Memory at *sizes* when every size is given: float32 parameters, the inference peak and the
    bytes a training step saves for backward (empty when a layer has no memory rule, or a size is missing)."""
    from .memory import memory
    from .printing import fmt

    if any(s.name not in sizes for s in report.symbols):
        return ""
    try:  # at the sizes: a layer that torch skips there (a merged branch's, rep.partial) counts nothing
        at = report.at(**{s.name: sizes[s.name] for s in report.symbols})
        inf, train = memory(at), memory(at, training=True)
    except ShapeError:
        return ""

    def num(e):
        import sympy

        v = sympy.sympify(e, strict=True)
        return f"{int(v):,}" if v.is_Integer else fmt(v)

    return (f"memory (float32 bytes): parameters {num(inf.params)}, inference peak of activations "
            f"{num(inf.activations)}, saved for backward in training {num(train.activations)}")


def training_note(model, report) -> str:
    """A note when the model is in training mode and that changes its domain (BatchNorm and
    InstanceNorm need more than one value per channel there)."""
    if not model.training:
        return ""
    layers = list(dict.fromkeys(c.layer for c in report.domain
                                if "training" in c.reason))
    if not layers:
        return ""
    shown = ", ".join(repr(n) for n in layers[:3]) + (" ..." if len(layers) > 3 else "")
    return (f"note: the model is in training mode, where {shown} need more than one value per channel; "
            f"in eval mode (model.eval()) the domain is wider")


@command("explain", "the step-by-step derivation of every layer's shape and MACs at given sizes", MODEL, INPUT, AT)
def explain(args) -> int:
    _, report, sizes = _traced(args, runs=False)  # the explanation shows where it stops
    missing = [s.name for s in report.symbols if s.name not in sizes]
    if missing:
        raise ShapeError(f"explain needs a value for {', '.join(missing)}: add --at "
                         + ",".join(f"{name}=32" for name in missing))
    text = report.explain(sizes)
    print(text)
    if report.violations(**sizes):
        evaluate_at(report, sizes, args.model)  # DoesNotRun: exit 1 with the reason, as every sub-command
    return 0


@command("latex", "LaTeX: output-size equations (align) and a booktabs table, or a whole document",
         MODEL, INPUT, _opt("--at", help="sizes to evaluate at, such as H=32,W=32 (default: none, formulas only)"),
         _opt("--document", action="store_true", help="print a complete document that compiles with pdflatex"))
def latex(args) -> int:
    _, report, sizes = _traced(args, zoo_sizes=False)
    print(report.to_latex(sizes or None, document=args.document))
    return 0


@command("plot", "output size, MACs and activation memory against the input resolution (needs matplotlib)",
         MODEL, INPUT,
         _opt("--output", "-o", required=True, help="the image file to write (.png, .pdf, .svg)"),
         _opt("--range", default="1:257", help="resolutions START:STOP (STOP excluded), default 1:257"),
         _opt("--fixed", help="sizes that stay fixed, such as N=1 (the others vary together)"),
         _opt("--layer", help="the layer whose output size to plot (default: the last one that depends on the input)"),
         _opt("--target", type=int, help="mark the resolutions where that layer's output has this many elements"))
def plot(args) -> int:
    _, report, _ = _traced(args, zoo_sizes=False)
    start, sep, stop = (t.strip() for t in args.range.partition(":"))
    if not (sep and _is_digits(start) and _is_digits(stop) and 0 < int(start) < int(stop)):
        raise ShapeError(f"cannot parse --range {_quote(args.range)}: write START:STOP with 0 < START < STOP, "
                         "e.g. 8:257")
    if int(stop) - int(start) > MAX_PLOT_POINTS:
        raise ShapeError(f"--range {args.range}: at most {MAX_PLOT_POINTS:,} resolutions, got "
                         f"{int(stop) - int(start):,}; plot a narrower range")
    fixed = parse_sizes(args.fixed) if args.fixed else {}
    try:
        report.plot(range(int(start), int(stop)), fixed=fixed, layer=args.layer, target=args.target, path=args.output)
    except KeyError as err:
        raise ShapeError(err.args[0]) from None
    print(f"wrote {args.output}")
    return 0


DTYPES = {"float32": "float32", "float": "float32", "float64": "float64", "double": "float64", "float16": "float16",
          "half": "float16", "bfloat16": "bfloat16", "long": "int64", "int64": "int64", "int32": "int32",
          "int": "int32", "bool": "bool"}


@command("check", "check the formulas against torch (meta device, FlopCounterMode); exit 1 on any mismatch",
         MODEL, INPUT, _opt("--at", help="check at these sizes only, such as H=32,W=32 (default: a spread of valid "
                                         "sizes and sizes just outside the domain)"),
         _opt("--dtype", choices=sorted(DTYPES), help="the input's dtype (default: long for a model that starts "
                                                      "with an embedding, else its parameters' dtype)"),
         _opt("--verbose", "-v", action="store_true", help="print every layer's comparison at every size"))
def check(args) -> int:
    import torch

    from .verify import check as check_report

    model, report, _ = _traced(args, zoo_sizes=False, runs=False)  # outside the domain, torch must raise too
    dtype = getattr(torch, DTYPES[args.dtype]) if args.dtype else None
    result = check_report(model, report, [parse_sizes(args.at)] if args.at else None, dtype=dtype,
                          progress=progress_bar())
    print(result if args.verbose else result.short())
    return 0 if result.ok else 1


def parse_target(text: str) -> tuple:
    """``"7,7"`` -> ``(7, 7)``; ``_`` or ``None`` matches any size: ``"_,7"`` -> ``(None, 7)``."""
    items = [t.strip() for t in text.split(",")]
    if not all(_is_digits(t) or t in ("_", "None") for t in items):
        raise ShapeError(f"cannot parse --shape {_quote(text)}: write the trailing output dims as integers, "
                         f"with _ for any size, e.g. 7,7 or _,7")
    return tuple(None if t in ("_", "None") else int(t) for t in items)


def _solution_json(answer, minimal: list) -> str:
    import json

    names = [s.name for s in answer.symbols]
    boxes = [{s.name: [{"lo": lo, "hi": hi, "mod": m, "residue": r} for lo, hi, m, r in part.pieces]
              for s, part in zip(answer.free, box)} for box in answer.boxes]
    return json.dumps({"schema": "symshape.solution/1", "symbols": names,
                       "ties": {s.name: str(t) for s, t in answer.ties.items()}, "boxes": boxes,
                       "minimal": minimal, "text": str(answer), "method": answer.method, "note": answer.note,
                       "caveat": answer.note if answer.scanned else None,
                       "exact_up_to": {s.name: top for s, top in answer.scanned.items()},
                       "reason": answer.reason}, indent=2, ensure_ascii=False)


@command("solve", "solve backwards: the input sizes at which the model runs (and meets the options), and the "
                  "minimal ones; exit 1 when there are none",
         MODEL, INPUT,
         _opt("--exact", action="store_true", help="only sizes at which no conv or pool drops input rows or columns"),
         _opt("--layer", help="with --shape: the layer (qualified name) whose output shape is asked for"),
         _opt("--shape", help="with --layer: its trailing output dims, such as 7,7 (_ for any size)"),
         _opt("--max-macs", type=int, help="only sizes at which the model takes at most this many MACs"),
         _opt("--max-memory", help="only sizes at which the model fits in this memory, such as 24GiB or 16GB: "
                                   "parameters and the peak of live activations, or with --training parameters, "
                                   "gradients, optimizer state and the tensors saved for backward"),
         _opt("--training", action="store_true", help="with --max-memory: the memory of a training step"),
         _opt("--optimizer", choices=("sgd", "adam", "adamw"), help="with --max-memory --training: the optimizer "
                                                                     "state (sgd: momentum, 1 × params; adam: 2 ×)"),
         _opt("--memory-dtype", choices=("float32", "float16", "bfloat16", "float64"), default="float32",
              help="with --max-memory: the dtype of parameters and activations (default: float32)"),
         _opt("--square", action="store_true",
              help="only square inputs: the two sizes other than the batch size N are equal"),
         _opt("--explain", action="store_true", help="print how the answer was found, and each layer's output "
                                                     "shapes over it"),
         _opt("--format", choices=("text", "latex", "json"), default="text", help="output format (default: text)"))
def solve(args) -> int:
    import sympy

    from .solve import exactness_conditions

    _, report, _ = _traced(args, zoo_sizes=False)
    if (args.layer is None) != (args.shape is None):
        raise ShapeError("--layer and --shape go together: e.g. --layer 0 --shape 13,13")
    conditions = list(exactness_conditions(report)) if args.exact else []
    if args.layer is not None:
        try:
            conditions += report.shape_conditions(args.layer, parse_target(args.shape))
        except KeyError as err:
            raise ShapeError(err.args[0]) from None
    if args.max_macs is not None:
        conditions.append(report.macs <= args.max_macs)
    if (args.training or args.optimizer) and args.max_memory is None:
        raise ShapeError("--training and --optimizer go with --max-memory: e.g. --max-memory 24GiB --training")
    if args.max_memory is not None:
        import torch

        from .memory import parse_bytes

        budget = parse_bytes(args.max_memory)
        mem = report.memory(training=args.training, dtype=getattr(torch, args.memory_dtype), optimizer=args.optimizer)
        conditions.append(sympy.sympify(mem.total, strict=True) <= budget)
    if args.square:
        spatial = [s for s in report.symbols if s.name != "N"]
        if len(spatial) != 2:
            raise ShapeError(f"--square needs exactly two sizes besides the batch size N, this input has "
                             f"{len(spatial)}: {', '.join(s.name for s in spatial) or 'none'}")
        conditions.append(sympy.Eq(*spatial))
    with busy("solving"):
        answer = report.solve(*conditions)
        names = [s.name for s in answer.symbols]
        minimal = [dict(zip(names, p if isinstance(p, tuple) else (p,))) for p in answer.minimal()]
        explained = report.explain_solution(*conditions) if args.explain and args.format == "text" else None
    if args.format == "json":
        print(_solution_json(answer, minimal))
    elif args.format == "latex":
        print(f"% input sizes\n\\[ {answer.to_latex()} \\]")
        if minimal:
            rows = r" \;\lor\; ".join(r",\ ".join(f"{k} = {v}" for k, v in p.items()) for p in minimal)
            print(f"% minimal input sizes\n\\[ {rows} \\]")
    else:
        print(explained if args.explain else answer)
        if minimal:
            print("minimal:", *(", ".join(f"{k} = {v}" for k, v in p.items()) for p in minimal), sep="\n")
    return 1 if answer.is_empty else 0


@command("rf", "the receptive field of a layer's units: size, effective stride and effective padding per spatial "
               "dim, as formulas of the input sizes (numbers with --at)",
         MODEL, INPUT, _opt("--at", help="sizes to evaluate at, such as H=224,W=224 (default: none, formulas only)"),
         _opt("--layer", help="the layer's qualified name (default: the last layer with spatial dims)"),
         _opt("--explain", action="store_true", help="the recurrences layer by layer"),
         _opt("--format", choices=("text", "json"), default="text", help="output format (default: text)"))
def rf(args) -> int:
    import json

    _, report, sizes = _traced(args, zoo_sizes=False)
    field = report.receptive_field(args.layer)
    if sizes:
        field = field.at(sizes)
    if args.format == "json":
        print(json.dumps(field.to_data(), indent=2, ensure_ascii=False))
    elif args.explain:
        print(field.explain() if not sizes else field.explain() + "\nat " + ", ".join(
            f"{k}={v}" for k, v in sizes.items()) + ": " + str(field).split(": ", 1)[1])
    else:
        print(field)
        for m in field.misaligned:
            print(f"  misaligned: {m}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--version"]:
        print(f"symshape {__version__}")
        return 0
    if not argv or argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        argv = ["summary", *argv]  # `symshape`, `symshape lenet5`, `symshape --at H=64,W=64`
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit:  # argparse: --help (0) or a usage error (2), already printed
        return exit.code if isinstance(exit.code, int) else 2
    if args.command is None:
        build_parser().print_usage(sys.stderr)
        return 2
    try:
        _load_package()
        return COMMANDS[args.command][0](args)
    except DoesNotRun as err:
        print(f"symshape: {err}", file=sys.stderr)
        return 1
    except ShapeError as err:
        print(f"symshape: error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:
        print(f"symshape: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `symshape check | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
