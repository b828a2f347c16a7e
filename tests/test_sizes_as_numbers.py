"""int() of symbolic sizes in a forward (timm SAM's get_rel_pos), and branches whose two paths merge
on a region of finitely many sizes (a position table resampled unless the input has its native
size). Each is compared with torch itself (meta device) at many sizes inside and outside the
domain, with exact formulas and error texts."""
import inspect
import warnings

import pytest
import sympy
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import symshape as ss
from symshape.testing_control import build

H, W = ss.symbols("H W")


def torch_run(model, shape):
    """(output shape, MACs) of *model* on the meta device, or the exception torch raised."""
    try:
        with torch.no_grad(), warnings.catch_warnings(), FlopCounterMode(display=False) as counter:
            warnings.simplefilter("ignore")
            out = model.to("meta")(torch.zeros(shape, device="meta"))
    except Exception as err:  # torch rejects the size
        return err
    return tuple(out.shape), counter.get_total_flops() // 2


def compare(model, spec, points):
    """At every point, symshape's output and MACs equal torch's where torch runs, and the point is
    outside symshape's domain where torch raises. Returns (report, points where torch ran)."""
    rep = ss.trace(model, spec)
    ran = 0
    for sizes in points:
        shape = tuple(int(t) if t.strip().isdigit() else sizes[t.strip()] for t in spec.split(","))
        got = torch_run(model, shape)
        if isinstance(got, Exception):
            assert rep.violations(**sizes), (sizes, got)
        else:
            ran += 1
            at = rep.at(**sizes)
            assert tuple(int(d) for d in at.output_shape) == got[0], (sizes, at.output_shape, got)
            assert int(at.macs) == got[1], sizes
    return rep, ran


# ---------------------------------------------------------------- int() of a symbolic size

def get_rel_pos(q_size, k_size, rel_pos):
    """timm's SAM get_rel_pos, as written there."""
    max_rel_dist = int(2 * max(q_size, k_size) - 1)
    if rel_pos.shape[0] != max_rel_dist:
        rel_pos_resized = F.interpolate(rel_pos.reshape(1, rel_pos.shape[0], -1).permute(0, 2, 1),
                                        size=max_rel_dist, mode="linear")
        rel_pos_resized = rel_pos_resized.reshape(-1, max_rel_dist).permute(1, 0)
    else:
        rel_pos_resized = rel_pos
    q_coords = torch.arange(q_size, dtype=torch.float32)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size, dtype=torch.float32)[None, :] * max(q_size / k_size, 1.0)
    relative_coords = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return rel_pos_resized[relative_coords.long()]


class RelPosBias(nn.Module):
    """SAM's decomposed relative-position bias on a (1, C, H, W) map: a table of 2·7 - 1 rows
    resampled to 2·H - 1 rows unless H = 7, then indexed by the query/key offsets."""

    def __init__(self):
        super().__init__()
        self.rel_pos = nn.Parameter(torch.zeros(13, 4))

    def forward(self, x):
        h = x.shape[2]
        table = get_rel_pos(h, h, self.rel_pos)  # (h, h, 4)
        q = x.permute(0, 2, 3, 1).reshape(x.shape[0], h, -1, 4)
        return torch.einsum("bhwc,hkc->bhwk", q, table)


def test_int_of_an_integer_size_is_the_size_itself():
    rep, ran = compare(RelPosBias(), "1,4,H,W", [{"H": h, "W": w} for h in (1, 2, 6, 7, 8, 15) for w in (1, 3, 7)])
    assert ran == 18 and rep.pieces == ()  # H = 7 (no resampling) gives what the resampling path gives
    assert rep.output_shape == (1, H, W, H)
    assert rep.macs == 4 * H**2 * W
    layer = next(l for l in rep.layers if l.kind == "interpolate")
    assert layer.out_shape == (1, 4, 2 * H - 1)


class Truncated(nn.Module):
    """int() of rational sizes: toward zero, as Python rounds (a negative pad crops)."""

    def forward(self, x):
        w = x.shape[-1]
        x = F.pad(x, (0, int((8 - w) / 3)))
        return x.new_zeros(int(x.shape[-2] / 2), int(w * 2 / 4))


def test_int_of_a_rational_size_rounds_toward_zero():
    rep, ran = compare(Truncated(), "1,2,H,W", [{"H": h, "W": w} for h in (1, 2, 5) for w in range(1, 20)])
    assert ran == 57
    assert rep.output_shape == (sympy.floor(H / 2), sympy.floor(W / 2))
    assert [[ss.fmt(c.expr) for c in p.branch] for p in rep.pieces] == [["W >= 9"], ["W <= 8"]]
    pads = [[l.out_shape for l in p.layers if l.kind == "pad"] for p in rep.pieces]
    assert pads == [[(1, 2, H, sympy.floor((2 * W + 1) / 3) + 3)], [(1, 2, H, sympy.floor((2 * W + 2) / 3) + 2)]]


class IntOfFloat(nn.Module):
    def forward(self, x):
        return x.new_zeros(int(x.shape[-1] * 0.1))


class CountOfWindows(nn.Module):
    def forward(self, x):
        return torch.stack([x[..., i] for i in range(int(x.shape[-1] // 2))], dim=-1)


def test_int_where_python_needs_a_number_is_refused_with_its_line():
    line = inspect.getsourcelines(IntOfFloat.forward)[1] + 1
    with pytest.raises(ss.ShapeError) as err:
        ss.trace(IntOfFloat(), "1,2,H,W")
    assert str(err.value) == (
        "the model (IntOfFloat) got input (1, 2, H, W): its forward uses int() of the size 0.1*W, a floating-point "
        f"value (Python rounds the float before int() truncates it, so no exact formula follows) at "
        f"test_sizes_as_numbers.py:{line}: `return x.new_zeros(int(x.shape[-1] * 0.1))`: use // or math.floor/"
        "math.ceil on integer sizes instead")
    assert torch_run(IntOfFloat(), (1, 2, 3, 30))[0] == (3,)  # torch runs: the refusal is symshape's limit
    line = inspect.getsourcelines(CountOfWindows.forward)[1] + 1
    with pytest.raises(ss.ShapeError) as err:
        ss.trace(CountOfWindows(), "1,2,H,W")
    assert str(err.value) == (
        "the model (CountOfWindows) got input (1, 2, H, W): its forward uses the symbolic size floor(W/2) as a "
        "Python index or count (range(), a list index), which only a fixed size can be at "
        f"test_sizes_as_numbers.py:{line}: `return torch.stack([x[..., i] for i in range(int(x.shape[-1] // 2))], "
        "dim=-1)`")
    assert ss.trace(CountOfWindows(), "1,2,H,6").output_shape == (1, 2, H, 3)


def test_int_in_code_outside_a_module_is_refused():
    """Source that no module of sys.modules holds (exec'd) keeps Python's own int(): refused."""
    Net = build("class Net(nn.Module):\n    def forward(self, x):\n        return x[..., :int(x.shape[-1] / 2)]\n",
                "<exec'd>")
    with pytest.raises(ss.ShapeError) as err:
        ss.trace(Net(), "1,3,H,W")
    assert str(err.value) == (
        "the model (Net) got input (1, 3, H, W): its forward uses int() of the symbolic size W/2 at <exec'd>:3: "
        "`return x[..., :int(x.shape[-1] / 2)]`: Python's int() must return a number; use // or math.floor/"
        "math.ceil instead, register a shape rule for Net, or give W a fixed value")


def test_int_outside_a_trace_is_pythons():
    assert int("12") == 12 and isinstance(3, int) and int(7.9) == 7
    RelPosBias()(torch.zeros(1, 4, 3, 2))  # a real run after a trace: the module's int is Python's again
    assert "int" not in vars(inspect.getmodule(RelPosBias))


# ---------------------------------------------------------------- paths that merge on finitely many sizes

class ResampleUnlessNative(nn.Module):
    """timm's resample_abs_pos_embed_nhwc after a 4x4 patch embedding: the 5x5 table is used as it
    is where the patch grid is 5x5 (H, W in 20..23), resampled otherwise."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 4, 4)
        self.pos = nn.Parameter(torch.zeros(1, 5, 5, 8))

    def forward(self, x):
        x = self.patch(x).permute(0, 2, 3, 1)
        h, w = x.shape[1:3]
        if h == self.pos.shape[1] and w == self.pos.shape[2]:
            pos = self.pos
        else:
            pos = F.interpolate(self.pos.permute(0, 3, 1, 2), size=(h, w), mode="bilinear").permute(0, 2, 3, 1)
        x = (x + pos).reshape(1, -1, 8)
        return x.permute(0, 2, 1)


def test_paths_that_agree_on_a_finite_region_merge():
    """Where the grid is 5x5 the path that resamples gives what the other gives: its layers (two
    permutes before the one both paths run), and its domain's condition of two sizes
    (floor(H/4)·floor(W/4) >= 1), checked at each of the 16 sizes of that region."""
    points = [{"H": h, "W": w} for h in (3, 4, 19, 20, 21, 23, 24, 40) for w in (4, 20, 23, 31)]
    rep, ran = compare(ResampleUnlessNative(), "1,3,H,W", points)
    assert ran == 28 and rep.pieces == ()
    assert rep.output_shape == (1, 8, sympy.floor(H / 4) * sympy.floor(W / 4))
    assert rep.macs == 384 * sympy.floor(H / 4) * sympy.floor(W / 4)
