"""Rules that real models needed (the timm survey): repeat_interleave, meshgrid, math.ceil/floor on
sizes, plain functions called on symbolic sizes, list indices, and the recurrent layers. Each is
compared with torch itself (meta device; the CPU where the meta kernel differs) at several sizes,
including the edges of the domain and sizes just outside it, with exact formulas and error texts."""
import math
import warnings

import pytest
import sympy
import torch
import torch.nn.functional as F
from torch import nn

import symshape as ss

H, W, L = ss.symbols("H W L")


def torch_out(model, shape, device="meta"):
    """The output shape(s) of *model* on a zero tensor of *shape*, or the exception torch raised."""
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = model.to(device)(torch.zeros(shape, device=device))
    except Exception as err:  # torch rejects the size
        return err
    return _shapes(out)


def _shapes(out):
    if isinstance(out, torch.Tensor):
        return tuple(out.shape)
    return tuple(_shapes(o) for o in out)


def agrees(model, spec, points, device="meta"):
    """At every point (a dict of sizes), symshape's output equals torch's where torch runs, and
    symshape's domain excludes the point where torch raises. Returns how many points ran."""
    rep = ss.trace(model, spec)
    ran = 0
    for sizes in points:
        shape = tuple(int(t) if t.strip().lstrip("-").isdigit() else sizes[t.strip()] for t in spec.split(","))
        got = torch_out(model, shape, device)
        if isinstance(got, Exception):
            assert rep.violations(**sizes), (sizes, got)
            with pytest.raises(ss.ShapeError):
                rep.at(**sizes)
        else:
            ran += 1
            assert not rep.violations(**sizes), (sizes, rep.violations(**sizes), got)
            assert _ints(rep.at(**sizes).output_shape) == got, (sizes, rep.at(**sizes).output_shape, got)
    return ran


def _ints(v):
    return tuple(_ints(x) for x in v) if isinstance(v, tuple) else int(v)


class Call(nn.Module):
    """forward(x) = fn(x)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


# ---------------------------------------------------------------- repeat_interleave

@pytest.mark.parametrize("fn, want", [
    (lambda x: x.repeat_interleave(3, dim=1), (1, 9, H, W)),
    (lambda x: x.repeat_interleave(2, dim=-1), (1, 3, H, 2 * W)),
    (lambda x: torch.repeat_interleave(x, 2), (6 * H * W,)),
    (lambda x: x.repeat_interleave(x.shape[2] // 4, dim=0), (sympy.floor(H / 4), 3, H, W)),
    (lambda x: x.repeat_interleave(x.shape[2] - 5, 1), (1, 3 * H - 15, H, W)),
    (lambda x: x.repeat_interleave(2, dim=2, output_size=2 * x.shape[2]), (1, 3, 2 * H, W)),
    (lambda x: x.repeat_interleave(torch.tensor([1, 2, 3]), dim=1, output_size=6), (1, 6, H, W)),
    (lambda x: torch.repeat_interleave(x, torch.tensor([4]), dim=2, output_size=4 * x.shape[2]), (1, 3, 4 * H, W)),
    (lambda x: x.repeat_interleave(0, dim=3), (1, 3, H, 0)),
])
def test_repeat_interleave_as_torch(fn, want):
    rep = ss.trace(Call(fn), "1,3,H,W")
    assert rep.output_shape == want
    points = [{"H": h, "W": w} for h, w in ((1, 1), (4, 7), (5, 5), (6, 3), (13, 2))]
    assert agrees(Call(fn), "1,3,H,W", points, device="cpu") >= 2


def test_repeat_interleave_domain_and_refusals():
    rep = ss.trace(Call(lambda x: x.repeat_interleave(x.shape[2] - 5, 1)), "1,3,H,W")
    assert [repr(c) for c in rep.domain] == ["H >= 5"]
    assert rep.violations(H=4, W=1) and not rep.violations(H=5, W=1)
    with pytest.raises(ss.ShapeError, match=r"repeat_interleave: repeats must be non-negative, got -1"):
        ss.trace(Call(lambda x: x.repeat_interleave(-1, dim=1)), "1,3,H,W")
    with pytest.raises(ss.ShapeError, match=r"with a repeats tensor: the output length is the sum of its values, "
                                            r"which a shape does not carry; pass output_size="):
        ss.trace(Call(lambda x: x.repeat_interleave(torch.tensor([1, 2, 3]), dim=1)), "1,3,H,W")
    with pytest.raises(ss.ShapeError, match=r"repeats must have the same size as input along dim, got 2 repeats "
                                            r"for a dim of 3"):
        ss.trace(Call(lambda x: x.repeat_interleave(torch.tensor([1, 2]), dim=1, output_size=3)), "1,3,H,W")
    with pytest.raises(ss.ShapeError, match=r"repeats must be 0-dim or 1-dim tensor, got \(1, 1\)"):
        ss.trace(Call(lambda x: x.repeat_interleave(torch.tensor([[1]]), dim=1, output_size=3)), "1,3,H,W")
    with pytest.raises(ss.ShapeError, match=r"output_size 5 is not the length 6 \(= 3·2\)"):
        ss.trace(Call(lambda x: x.repeat_interleave(2, dim=1, output_size=5)), "1,3,H,W")
    with pytest.raises(ss.ShapeError, match=r"repeat_interleave: dim 4 is out of range for a 4-d input"):
        ss.trace(Call(lambda x: x.repeat_interleave(2, dim=4)), "1,3,H,W")
    # a repeats tensor along a symbolic dim: one count per element, a domain condition
    fn = lambda x: x.repeat_interleave(torch.ones(5, dtype=torch.long), dim=2, output_size=5)  # noqa: E731
    rep = ss.trace(Call(fn), "1,3,H,W")
    assert rep.output_shape == (1, 3, 5, W) and [repr(c) for c in rep.domain] == ["H = 5"]
    assert agrees(Call(fn), "1,3,H,W", [{"H": h, "W": 2} for h in (1, 4, 5, 6)], device="cpu") == 1


# ---------------------------------------------------------------- meshgrid

def _grid(indexing, listed=False, extra=False):
    def fn(x):
        ts = [torch.arange(x.shape[2]), torch.arange(x.shape[3] - 1)] + ([torch.zeros((), dtype=torch.long)] if extra else [])
        return torch.meshgrid(ts, indexing=indexing) if listed else torch.meshgrid(*ts, indexing=indexing)
    return Call(fn)


@pytest.mark.parametrize("indexing, listed, extra, want", [
    ("ij", False, False, (H, W - 1)),
    ("xy", False, False, (W - 1, H)),
    ("xy", True, False, (W - 1, H)),
    ("ij", True, True, (H, W - 1, 1)),
    ("xy", False, True, (W - 1, H, 1)),
    (None, False, False, (H, W - 1)),
])
def test_meshgrid_as_torch(indexing, listed, extra, want):
    model = _grid(indexing, listed, extra)
    rep = ss.trace(model, "1,3,H,W")
    assert rep.output_shape == (want,) * (3 if extra else 2)
    points = [{"H": h, "W": w} for h, w in ((1, 1), (1, 2), (4, 7), (9, 3))]
    assert agrees(model, "1,3,H,W", points) == 4


def test_meshgrid_refusals():
    with pytest.raises(ss.ShapeError, match=r"meshgrid expects 0-d or 1-d tensors, got \(1, 3, H, W\)"):
        ss.trace(Call(lambda x: torch.meshgrid(x, x, indexing="ij")), "1,3,H,W")
    with pytest.raises(ss.ShapeError, match=r"meshgrid: indexing must be one of 'xy' or 'ij', got 'yx'"):
        ss.trace(Call(lambda x: torch.meshgrid(x[0, 0, 0], indexing="yx")), "1,3,H,W")
