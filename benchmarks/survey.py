"""Survey symshape on models nobody on the team wrote: a timm sample (the smallest model of every
family of every timm module, plus well-known ones), segmentation_models_pytorch's architectures with
three encoders each, and torchvision's classifiers, segmentation models and detection backbones.

    python benchmarks/survey.py timm|smp|torchvision [--limit N] [--timeout S] [--out FILE.jsonl] [NAME ...]

Needs timm / segmentation_models_pytorch / torchvision, which the project does not depend on: run it
in its own environment. Each model runs in a forked child with a time limit. A model is:

- ``agree``: traced, and ``symshape.check`` (torch on the meta device, FlopCounterMode) agrees at its
  usual size, a rectangular size, and the solver's picks (edges and just outside the domain);
- ``wrong``: check found a mismatch (a shape, MACs, or where the model runs);
- ``no trace``: symshape raised (the first line of the message is kept);
- ``no check``: torch or check failed for another reason;
- ``timeout``: over the limit.
The last lines print the counts, the median and slowest trace times, and the most common reasons.
"""
from __future__ import annotations

import argparse
import collections
import gc
import json
import multiprocessing as mp
import re
import statistics
import sys
import time
import traceback
import warnings

import torch

import symshape as ss

WELL_KNOWN = ["resnet50", "efficientnet_b0", "convnext_tiny", "vit_base_patch16_224", "deit_tiny_patch16_224",
              "swin_tiny_patch4_window7_224", "mobilenetv3_large_100", "regnety_016", "densenet121",
              "tf_efficientnet_b0", "ecaresnet26t", "coatnet_0_rw_224", "edgenext_xx_small", "pit_ti_224",
              "lambda_resnet26t", "cait_xxs24_224", "maxvit_nano_rw_256", "mobilevit_xxs", "poolformer_s12"]
SMALL = ("pico", "femto", "atto", "nano", "xxs", "xxsmall", "xx_small", "tiny", "xs", "small", "s12", "b0", "18", "_t")


def family(name: str) -> str:
    """A timm model's family: the letters its name starts with, and a version ("resnet50d" ->
    "resnet", "efficientformerv2_l" -> "efficientformerv2", "tf_efficientnet_b0" -> "tf")."""
    return re.match(r"[a-z]+(?:v\d+)?", name).group(0)


def timm_names(limit=None) -> list:
    """The well-known models, then the smallest model of every family of every timm module."""
    import timm

    names = list(WELL_KNOWN)
    for module in sorted(timm.list_modules()):
        families: dict = {}
        for n in sorted(timm.list_models(module=module)):
            families.setdefault(family(n), []).append(n)
        for candidates in families.values():
            small = [n for n in candidates if any(t in n for t in SMALL)] or candidates
            pick = min(small, key=lambda n: (len(n), n))
            if pick not in names:
                names.append(pick)
    return names[:limit] if limit else names


SMP_ARCHS = ("Unet", "UnetPlusPlus", "MAnet", "Linknet", "FPN", "PSPNet", "PAN", "DeepLabV3", "DeepLabV3Plus",
             "UPerNet", "Segformer", "DPT")
SMP_ENCODERS = ("resnet18", "mobilenet_v2", "efficientnet-b0")
DPT_ENCODER = "tu-vit_small_patch16_224.augreg_in21k"  # DPT takes ViT encoders only
TV_SEGMENTATION = ("fcn_resnet50", "deeplabv3_resnet50", "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large")
TV_BACKBONES = ("resnet_fpn:resnet18", "resnet_fpn:resnet50", "mobilenet_fpn:mobilenet_v3_large",
                "mobilenet_fpn:mobilenet_v3_small")


def build(source: str, name: str):
    """(model, input spec, usual (h, w))."""
    if source == "timm":
        import timm

        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False)
        h, w = model.pretrained_cfg.get("input_size", (3, 224, 224))[1:]
        return model.eval(), "1,3,H,W", (h, w)
    if source == "smp":  # "Arch:encoder", as shipped (the model's own input check included)
        import segmentation_models_pytorch as smp

        arch, _, encoder = name.partition(":")
        with torch.device("meta"):
            model = getattr(smp, arch)(encoder_name=encoder or "resnet18", encoder_weights=None)
        return model.eval(), "1,3,H,W", (256, 256)
    try:
        return _torchvision(name, "meta")
    except NotImplementedError:  # regnet's init copies data, which meta tensors do not have: build on the CPU
        return _torchvision(name, "cpu")


def _torchvision(name: str, device: str):
    import torchvision
    from torchvision.models.detection import backbone_utils

    with torch.device(device):
        if name.startswith("resnet_fpn:"):  # the detection backbones (a dict of FPN maps)
            model = backbone_utils.resnet_fpn_backbone(backbone_name=name.split(":")[1], weights=None)
        elif name.startswith("mobilenet_fpn:"):
            model = backbone_utils.mobilenet_backbone(backbone_name=name.split(":")[1], weights=None, fpn=True)
        elif name in TV_SEGMENTATION:
            model = torchvision.models.get_model(name, weights=None, weights_backbone=None)
        else:
            model = torchvision.models.get_model(name)
    size = {"inception_v3": 320, "googlenet": 256}.get(name, 224)
    return model.eval(), "1,3,H,W", (size, size)


def names_for(source: str, limit) -> list:
    if source == "timm":
        return timm_names(limit)
    if source == "smp":
        import segmentation_models_pytorch as smp

        names = [f"{a}:{e}" for a in SMP_ARCHS if hasattr(smp, a) and a != "DPT" for e in SMP_ENCODERS]
        names += [f"DPT:{DPT_ENCODER}"] if hasattr(smp, "DPT") else []
        return names[:limit]
    import torchvision

    names = sorted(torchvision.models.list_models(module=torchvision.models)) + list(TV_SEGMENTATION)
    return (names + list(TV_BACKBONES))[:limit]


def survey_one(source: str, name: str) -> dict:
    warnings.filterwarnings("ignore")
    row = {"source": source, "model": name}
    try:
        model, spec, (h, w) = build(source, name)
    except Exception as err:
        return {**row, "status": "no build", "reason": f"{type(err).__name__}: {err}".splitlines()[0][:200]}
    start = time.perf_counter()
    try:
        rep = ss.trace(model, spec)
    except ss.ShapeError as err:
        return {**row, "status": "no trace", "trace_s": time.perf_counter() - start,
                "reason": str(err).splitlines()[0][:300]}
    except Exception as err:
        return {**row, "status": "no trace", "trace_s": time.perf_counter() - start,
                "reason": f"raw {type(err).__name__}: {err}".splitlines()[0][:300]}
    row["trace_s"] = time.perf_counter() - start
    if rep.pieces:
        row["pieces"] = len(rep.pieces)
    try:
        from symshape.verify import default_sizes

        sizes = [{"H": h, "W": w}, {"H": h - 32 if h > 64 else h, "W": w + 64}]
        sizes += [s for s in default_sizes(rep, n=2) if s not in sizes][:4]
        sizes = [{k: v for k, v in s.items() if k in {x.name for x in rep.symbols}} for s in sizes]
        result = ss.check(model, rep, sizes=sizes)
    except Exception as err:
        return {**row, "status": "no check", "reason": f"{type(err).__name__}: {err}".splitlines()[0][:300]}
    if result.ok:
        return {**row, "status": "agree", "sizes": len(sizes), "comparisons": len(result.comparisons)}
    return {**row, "status": "wrong", "reason": str(result.mismatches[0])[:400]}


def _child(queue, source, name):
    try:
        queue.put(survey_one(source, name))
    except BaseException as err:  # noqa: BLE001 - reported, not raised
        queue.put({"source": source, "model": name, "status": "no check",
                   "reason": f"{type(err).__name__}: {err}  {traceback.format_exc(limit=1)}"[:300]})


def warm_up() -> float:
    """Import symshape's tracing modules and trace a one-layer model, in this process, before any
    model is timed: ``import symshape`` is lazy, so the first trace of a process would otherwise
    pay for importing the tracer, the rules and the solver (about 0.2 s) in the model's time. The
    forked children inherit the imports; each model's own trace still starts with its formulas
    unseen. Returns the seconds it took (printed once). Then it freezes the objects made so far
    (``gc.freeze``), as a server that forks workers does."""
    import torch.nn as nn

    start = time.perf_counter()
    import symshape.execute  # noqa: F401  (the executing front end, beside the tracer below)
    import symshape.trace  # noqa: F401

    ss.trace(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), "1,3,H,W")
    gc.collect()
    gc.freeze()  # the children's collections skip what they inherit (timm's and torchvision's modules):
    # else a full collection of that heap (~0.2 s) lands in whichever model's trace triggers it
    return time.perf_counter() - start


def in_child(target, args: tuple, timeout: float):
    """``("done", value)`` where ``target(queue, *args)`` put *value* on the queue in a forked child
    within *timeout* seconds, ``("timeout", None)`` where it ran longer (killed), else
    ``("exit", exit code)``."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(queue, *args))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return "timeout", None
    try:
        return "done", queue.get(timeout=5)
    except Exception:
        return "exit", proc.exitcode


def run(source: str, name: str, timeout: float) -> dict:
    how, value = in_child(_child, (source, name), timeout)
    if how == "done":
        return value
    if how == "timeout":
        return {"source": source, "model": name, "status": "timeout", "reason": f"over {timeout:.0f} s"}
    return {"source": source, "model": name, "status": "no check", "reason": f"child exit {value}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", choices=("timm", "smp", "torchvision"))
    parser.add_argument("names", nargs="*")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--out", default=None, help="also write one JSON line per model here")
    args = parser.parse_args()
    names = args.names or names_for(args.source, args.limit)
    print(f"symshape import and a one-layer trace, once, not in the times below: {warm_up():.2f} s", flush=True)
    out = open(args.out, "w") if args.out else None
    rows = []
    for i, name in enumerate(names, 1):
        row = run(args.source, name, args.timeout)
        rows.append(row)
        t = f"{row['trace_s']:.2f}s" if "trace_s" in row else "-"
        print(f"[{i}/{len(names)}] {name:<40} {row['status']:<9} {t:>8}  {row.get('reason', '')[:150]}", flush=True)
        if out:
            out.write(json.dumps(row) + "\n")
            out.flush()
    counts = collections.Counter(r["status"] for r in rows)
    print(f"\n{args.source}: {len(rows)} models: " + ", ".join(f"{v} {k}" for k, v in counts.most_common()))
    times = [r["trace_s"] for r in rows if "trace_s" in r]
    if times:
        slow = max(rows, key=lambda r: r.get("trace_s", 0))
        print(f"trace time: median {statistics.median(times):.2f} s, slowest {slow['model']} {slow['trace_s']:.1f} s, "
              f"{sum(t > 2 for t in times)} over 2 s")
    reasons = collections.Counter(r.get("reason", "")[:90] for r in rows if r["status"] != "agree")
    for reason, n in reasons.most_common(12):
        print(f"  {n:3d}  {reason}")


if __name__ == "__main__":
    main()
