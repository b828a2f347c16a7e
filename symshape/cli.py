"""The ``symshape`` command.

``symshape`` with no arguments traces the zoo's seed model (where does 5408 come from?) and
prints its per-layer formulas and its numbers at 32×32. ``symshape summary MODEL --input SPEC
--at H=224,W=224`` does the same for any zoo name or ``MODULE:ATTR`` (a model, or a factory
that takes no arguments).
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="symshape", description="Symbolic shapes, MACs and parameters of torch models.")
    sub = parser.add_subparsers(dest="command")
    summary = sub.add_parser("summary", help="per-layer formulas, and numbers at given sizes (the default command)")
    summary.add_argument("model", nargs="?", default=DEFAULT_MODEL,
                         help=f"a zoo name ({', '.join(zoo.MODELS)}) or MODULE:ATTR (default: {DEFAULT_MODEL})")
    summary.add_argument("--input", help="input shape spec such as 1,3,H,W (default: the zoo model's)")
    summary.add_argument("--at", help="sizes to evaluate at, such as H=32,W=32 (default: the zoo model's)")
    check = sub.add_parser("check", help="check the formulas against torch (meta device, FlopCounterMode); "
                                         "exit 1 on any mismatch")
    check.add_argument("model", help=f"a zoo name ({', '.join(zoo.MODELS)}) or MODULE:ATTR")
    check.add_argument("--input", help="input shape spec such as 1,3,H,W (default: the zoo model's)")
    check.add_argument("--at", help="check at these sizes only, such as H=32,W=32 (default: a spread of valid "
                                    "sizes and sizes just outside the domain)")
    return parser


def check(args) -> int:
    """Trace MODEL and check it against torch: 0 when every comparison passes, 1 on a mismatch."""
    from .check import check as check_report

    model, spec, _ = load_model(args.model)
    spec = args.input or spec
    if spec is None:
        raise ShapeError(f"{args.model} is not a zoo model: give its input shape with --input, e.g. --input 1,3,H,W")
    report = trace(model, spec)
    result = check_report(model, report, [parse_sizes(args.at)] if args.at else None)
    print(result)
    return 0 if result.ok else 1


def summary(args) -> int:
    model, spec, sizes = load_model(args.model)
    spec = args.input or spec
    if spec is None:
        raise ShapeError(f"{args.model} is not a zoo model: give its input shape with --input, e.g. --input 1,3,H,W")
    report = trace(model, spec)
    print(report)
    sizes = parse_sizes(args.at) if args.at else sizes
    if sizes:
        print()
        print(report.at(**sizes))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["summary", *argv]
    args = build_parser().parse_args(argv)
    try:
        return {"summary": summary, "check": check}[args.command](args)
    except ShapeError as err:
        print(f"symshape: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
