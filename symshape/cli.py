"""The ``symshape`` command.

``symshape`` with no arguments traces the zoo's seed model (where does 5408 come from?) and
prints its per-layer formulas and its numbers at 32×32. Sub-commands take a zoo name or
``MODULE:ATTR`` (a model, or a factory that takes no arguments) and ``--input SPEC``:

* ``summary``: the per-layer table (``--format text|markdown|latex|json``), and the numbers ``--at H=224,W=224``;
* ``explain``: the step-by-step derivation at the given sizes;
* ``latex``: the equations and the booktabs table (``--document`` for a whole document);
* ``plot``: output size, MACs and activation memory against the input resolution.

Exit codes: 0 ok, 1 a check failed (e.g. ``explain`` at sizes where the model does not run),
2 a usage error or a ShapeError; errors go to stderr.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

import torch.nn as nn

from . import zoo
from .symbols import ShapeError
from .trace import trace

DEFAULT_MODEL = "seed_case1"


def load_model(ref: str) -> tuple:
    """``(model, default input spec or None, default sizes)`` for a zoo name or ``MODULE:ATTR``."""
    if ref in zoo.MODELS:
        entry = zoo.MODELS[ref]
        return entry.factory(), entry.input, dict(entry.sizes)
    if ":" not in ref:
        raise ShapeError(f"unknown model {ref!r}: give a zoo name ({', '.join(zoo.MODELS)}) or MODULE:ATTR")
    module_name, attr = ref.split(":", 1)
    try:
        obj = importlib.import_module(module_name)
    except ImportError as err:
        raise ShapeError(f"cannot import {module_name!r} for {ref!r}: {err}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ShapeError(f"{module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not isinstance(obj, nn.Module):
        if not callable(obj):
            raise ShapeError(f"{ref} is neither an nn.Module nor a factory that returns one")
        obj = obj()
        if not isinstance(obj, nn.Module):
            raise ShapeError(f"{ref}() returned {type(obj).__name__}, not an nn.Module")
    return obj, None, {}


def parse_sizes(text: str) -> dict:
    """``"H=32,W=32"`` -> ``{"H": 32, "W": 32}`` (names and positive integers only)."""
    sizes = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip().isidentifier() or not value.strip().isdigit():
            raise ShapeError(f"cannot parse size {item!r} in {text!r}: write NAME=INTEGER pairs such as H=32,W=32")
        sizes[name.strip()] = int(value)
    return sizes


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
             help=f"a zoo name ({', '.join(zoo.MODELS)}) or MODULE:ATTR, a model or a factory that takes no arguments "
                  f"(default: {DEFAULT_MODEL})")
INPUT = _opt("--input", help="input shape spec such as 1,3,H,W (default: the zoo model's)")
AT = _opt("--at", help="sizes to evaluate at, such as H=32,W=32 (default: the zoo model's)")
FORMAT = _opt("--format", choices=("text", "markdown", "latex", "json"), default="text",
              help="output format (default: text)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="symshape", description="Symbolic shapes, MACs and parameters of torch models.",
        epilog="exit codes: 0 ok, 1 a check failed or no solution, 2 a usage error or a ShapeError")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text, options) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        for flags, kwargs in options:
            cmd.add_argument(*flags, **kwargs)
    return parser


def _traced(args, zoo_sizes: bool = True):
    """``(report, sizes)`` for the model, --input and --at of a sub-command; without --at, the
    zoo model's usual sizes (when *zoo_sizes*) for the sizes that the input spec names."""
    model, spec, sizes = load_model(args.model)
    spec = args.input or spec
    if spec is None:
        raise ShapeError(f"{args.model} is not a zoo model: give its input shape with --input, e.g. --input 1,3,H,W")
    report = trace(model, spec)
    if getattr(args, "at", None):
        return report, parse_sizes(args.at)
    known = {s.name for s in report.symbols}
    return report, {k: v for k, v in sizes.items() if k in known} if zoo_sizes else {}


@command("summary", "per-layer formulas, and numbers at given sizes (the default command)", MODEL, INPUT, AT, FORMAT)
def summary(args) -> int:
    report, sizes = _traced(args)
    if args.format == "text":
        print(report)
        if sizes:
            print()
            print(report.at(**sizes))
    elif args.format == "markdown":
        print(report.to_markdown(sizes or None))
    elif args.format == "latex":
        print(report.to_latex(sizes or None))
    else:
        print(report.at(**sizes).to_json() if args.at else report.to_json())  # formulas unless --at is given
    return 0


@command("explain", "the step-by-step derivation of every layer's shape and MACs at given sizes", MODEL, INPUT, AT)
def explain(args) -> int:
    report, sizes = _traced(args)
    missing = [s.name for s in report.symbols if s.name not in sizes]
    if missing:
        raise ShapeError(f"explain needs a value for {', '.join(missing)}: add --at "
                         + ",".join(f"{name}=32" for name in missing))
    text = report.explain(sizes)
    print(text)
    return 1 if report.violations(**sizes) else 0


@command("latex", "LaTeX: output-size equations (align) and a booktabs table, or a whole document",
         MODEL, INPUT, _opt("--at", help="sizes to evaluate at, such as H=32,W=32 (default: none, formulas only)"),
         _opt("--document", action="store_true", help="print a complete document that compiles with pdflatex"))
def latex(args) -> int:
    report, sizes = _traced(args, zoo_sizes=False)
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
    report, _ = _traced(args, zoo_sizes=False)
    start, sep, stop = args.range.partition(":")
    if not (sep and start.strip().isdigit() and stop.strip().isdigit() and 0 < int(start) < int(stop)):
        raise ShapeError(f"cannot parse --range {args.range!r}: write START:STOP with 0 < START < STOP, e.g. 8:257")
    fixed = parse_sizes(args.fixed) if args.fixed else {}
    try:
        report.plot(range(int(start), int(stop)), fixed=fixed, layer=args.layer, target=args.target, path=args.output)
    except KeyError as err:
        raise ShapeError(err.args[0]) from None
    print(f"wrote {args.output}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
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
        return COMMANDS[args.command][0](args)
    except ShapeError as err:
        print(f"symshape: error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:
        print(f"symshape: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
