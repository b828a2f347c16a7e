"""Trace every torchvision classification model with symshape at a symbolic (1, 3, H, W) input and
compare output shapes and MACs with torch (meta device, FlopCounterMode // 2) at 224×224 and at a
second size.

    python benchmarks/torchvision_survey.py [NAME ...]

Models are built on the meta device (no memory for weights, no download). torch runs in eval mode
with gradients enabled, so nn.MultiheadAttention takes its ordinary path, whose matrix products
FlopCounterMode sees (its no-grad fast path hides them). Skips cleanly when torchvision is missing.
"""
from __future__ import annotations

import sys
import time
import traceback
import warnings

try:
    import torchvision
except ImportError:  # the survey needs torchvision; the project does not
    print("torchvision is not installed: survey skipped")
    sys.exit(0)

import torch
from torch.utils.flop_counter import FlopCounterMode

import symshape as ss

OTHER = {"inception_v3": 320, "googlenet": 256}


def register_swin_rule():
    """torchvision's Swin attention is a ``torch.fx.wrap``-ed function with Python control flow on
    the padded size (``if window_size[0] >= pad_H``), which fx cannot trace. A user helps symshape
    by registering a rule for it, as the error message says; this is that rule."""
    from torchvision.models import swin_transformer as swin

    @ss.register(swin.shifted_window_attention)
    def shifted_window_attention(x, qkv_weight, proj_weight, relative_position_bias, window_size, num_heads,
                                 shift_size, *args, **kwargs):
        """out = in (B, H, W, C). The map is padded to multiples of the window, (w - H mod w) mod w,
        cut into windows of N = w0·w1 tokens, and attended per window: MACs = B·pH·pW·(4·C² + 2·N·C)
        (qkv and output projections, Q·Kᵀ and attention·V)."""
        b, h, w, c = x
        ph = h + ss.mod(window_size[0] - ss.mod(h, window_size[0]), window_size[0])
        pw = w + ss.mod(window_size[1] - ss.mod(w, window_size[1]), window_size[1])
        n = window_size[0] * window_size[1]
        return ss.Out(tuple(x), b * ph * pw * (4 * c * c + 2 * n * c))


register_swin_rule()


def torch_run(model, h, w):
    """(output shape or the error, MACs) of the meta-device model at (1, 3, h, w)."""
    x = torch.zeros(1, 3, h, w, device="meta")
    try:
        with FlopCounterMode(display=False) as counter:
            out = model(x)
    except Exception as err:  # torch rejects the size: compared with symshape's domain
        return f"{type(err).__name__}: {str(err).splitlines()[0][:100]}", None
    out = out[0] if isinstance(out, (tuple, list)) else out
    return tuple(out.shape), counter.get_total_flops() // 2


def shape_of(value):
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return tuple(value[0])
    return tuple(int(d) for d in value)


def survey(names):
    rows = []
    for name in names:
        try:
            with torch.device("meta"):
                model = torchvision.models.get_model(name, weights=None)
        except NotImplementedError:  # an initialiser that reads values (inception's truncated normal)
            model = torchvision.models.get_model(name, weights=None).to("meta")
        model.eval()
        t0 = time.perf_counter()
        try:
            rep = ss.trace(model, "1,3,H,W")
        except Exception as err:
            rows.append((name, "FAIL", f"{type(err).__name__}: {str(err)[:300]}"))
            if "-v" in sys.argv:
                traceback.print_exc()
            continue
        dt = time.perf_counter() - t0
        notes = []
        ok = True
        for size in (224, OTHER.get(name, 256)):
            want, want_macs = torch_run(model, size, size)
            try:
                at = rep.at(H=size, W=size)
                got, got_macs = shape_of(at.output_shape), int(at.macs)
            except ss.ShapeError as err:
                got, got_macs = f"outside the domain ({str(err)[:80]})", None
            if isinstance(want, str) or isinstance(got, str):
                agree = isinstance(want, str) and isinstance(got, str)
                notes.append(f"{size}: {'both reject' if agree else f'torch {want} / symshape {got}'}")
            else:
                agree = want == got and want_macs == got_macs
                notes.append(f"{size}: {want} {want_macs:,} MACs" + ("" if agree else f" vs symshape {got} {got_macs:,}"))
            ok = ok and agree
        rows.append((name, "ok" if ok else "DIFF", f"{dt:.2f}s, {len(rep.layers)} layers, "
                     f"{len(rep.domain)} conditions; " + "; ".join(notes)))
    return rows


def main(argv):
    warnings.simplefilter("ignore")
    names = [a for a in argv if not a.startswith("-")] or torchvision.models.list_models(module=torchvision.models)
    rows = survey(names)
    for name, status, text in rows:
        print(f"{status:4} {name:24} {text}")
    counts = {s: sum(1 for r in rows if r[1] == s) for s in ("ok", "DIFF", "FAIL")}
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}: "
          + ", ".join(f"{n} {s}" for s, n in counts.items()))


if __name__ == "__main__":
    main(sys.argv[1:])
