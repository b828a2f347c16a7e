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


# ---------------------------------------------------------------- float() of a size, arange and linspace on floats

def centered_grid(feat_shape, normalize="separate", device=None):
    """timm's _build_grid(grid_type='centered') (DINOv3's rope), reduced."""
    if normalize == "max":
        denom = [float(max(feat_shape)) for _ in feat_shape]
    else:
        denom = [float(s) for s in feat_shape]
    t = [(torch.arange(0.5, s, device=device, dtype=torch.float32) + 0.0) / d for s, d in zip(feat_shape, denom)]
    grid = torch.stack(torch.meshgrid(t, indexing="ij"), dim=-1)
    return 2.0 * grid - 1.0


class CenteredRope(nn.Module):
    def __init__(self, normalize="separate"):
        super().__init__()
        self.normalize = normalize

    def forward(self, x):
        grid = centered_grid(x.shape[-2:], self.normalize, x.device).flatten(0, 1)  # (H*W, 2)
        return x.flatten(2).transpose(1, 2) * grid[:, :1]


@pytest.mark.parametrize("normalize", ["separate", "max"])
def test_a_centered_grid_scaled_by_float_sizes(normalize):
    points = [{"H": h, "W": w} for h in (1, 2, 7, 14) for w in (1, 3, 16)]
    rep, ran = compare(CenteredRope(normalize), "1,4,H,W", points)
    assert ran == 12 and rep.pieces == ()
    assert rep.output_shape == (1, H * W, 4)
    assert [l.out_shape for l in rep.layers if l.kind == "arange"] == [(H,), (W,)]


class Ranges(nn.Module):
    def forward(self, x):
        w = x.shape[-1]
        return (torch.arange(0.5, w, device=x.device), torch.arange(0, w, 0.5, device=x.device),
                torch.arange(1.5, w, 2, device=x.device), torch.arange(w, 0.25, -0.25, device=x.device),
                torch.arange(0.1, 0.4, 0.1, device=x.device), torch.arange(0.0, 0.9, 0.3, device=x.device),
                torch.linspace(-1.0, 1.0, w - 3, device=x.device),
                torch.logspace(0.0, 1.0, steps=w, device=x.device))


def test_arange_and_linspace_with_float_arguments():
    rep = ss.trace(Ranges(), "1,W")
    # ceil((W - 1.5)/2) = floor(W/2)
    # fixed floats as torch computes them, in double precision: (0.4 - 0.1)/0.1 is 3.0000000000000004 there,
    # 0.9/0.3 is 3.0000000000000004 with the exact binary fractions but 3.0 in double precision
    assert rep.output_shape == ((W,), (2 * W,), (sympy.floor(W / 2),), (4 * W - 1,), (4,), (3,), (W - 3,), (W,))
    assert [ss.fmt(c.expr) for c in rep.domain] == ["W >= 2", "W >= 3"]  # 1.5 <= W; W - 3 >= 0 steps
    for w in range(1, 30):
        try:
            with torch.no_grad():
                got = tuple(tuple(t.shape) for t in Ranges()(torch.zeros(1, w, device="meta")))
        except RuntimeError:
            assert rep.violations(W=w), w
            continue
        assert not rep.violations(W=w)
        assert tuple(tuple(int(d) for d in s) for s in rep.at(W=w).output_shape) == got, w


class RoundedSteps(nn.Module):
    def forward(self, x):
        return torch.arange(0, x.shape[-1], 0.1, device=x.device)


def test_a_float_step_torch_rounds_is_refused():
    with pytest.raises(ss.ShapeError) as err:
        ss.trace(RoundedSteps(), "1,W")
    assert str(err.value).endswith(
        "arange's length from the symbolic span W over the float step 0.1: torch rounds that quotient in double "
        "precision, so no exact formula follows; use a step of 1, an integer, or 1/2**k")

    class FineStart(nn.Module):
        def forward(self, x):
            return torch.arange(-1e-17, x.shape[-1], device=x.device)

    with pytest.raises(ss.ShapeError) as err:  # torch rounds W + 1e-17 to W: length W, not the exact W + 1
        ss.trace(FineStart(), "1,W")
    assert str(err.value).endswith(
        "arange from -1e-17 to W: a float bound with more than 10 binary digits after the point, or a symbolic bound "
        "that is not an integer size, whose difference torch rounds in double precision; no exact formula follows")
    assert torch_run(FineStart(), (1, 5))[0] == (5,)

    class IntegerDtype(nn.Module):
        def forward(self, x):
            return torch.arange(0.5, x.shape[-1], dtype=torch.int64, device=x.device)

    with pytest.raises(ss.ShapeError) as err:
        ss.trace(IntegerDtype(), "1,W")
    assert str(err.value).endswith("arange with float bounds or step and the integer dtype torch.int64: torch "
                                   "rounds the bounds to integers first; give integer bounds")
    assert torch_run(IntegerDtype(), (1, 3))[0] == (3,)  # torch runs: a limit of symshape, stated


class FloatAsSize(nn.Module):
    def __init__(self, use):
        super().__init__()
        self.use = use

    def forward(self, x):
        f = float(x.shape[-1]) / 3
        if self.use == "int":
            return x[..., :int(f * 3)]
        if self.use == "compare":
            return x * 2 if f > 2.5 else x
        return x.new_zeros(f)


@pytest.mark.parametrize("use, what", [("int", "int() of the float W"), ("compare", "a comparison of the float W/3"),
                                       ("op", "Tensor.new_zeros of the float W/3")])
def test_a_float_from_a_size_that_would_make_a_size_or_a_branch_is_refused(use, what):
    line = inspect.getsourcelines(FloatAsSize.forward)[1] + {"int": 3, "compare": 5, "op": 6}[use]
    with pytest.raises(ss.ShapeError) as err:
        ss.trace(FloatAsSize(use), "1,W")
    text = str(err.value)
    assert text.startswith(f"the model (FloatAsSize) got input (1, W): its forward uses {what} computed from a size "
                           "(Python rounds floats, so no exact formula follows) at "
                           f"test_sizes_as_numbers.py:{line}: "), text
    assert text.endswith(": compute sizes with integers (//, math.floor, math.ceil), or give its sizes a fixed value")


# ---------------------------------------------------------------- an op another path does as another op

class MultiScaleFusion(nn.Module):
    """timm MobileNetV5's multi-scale fusion adapter, reduced: the half-resolution map is resized to
    the full one where it is smaller, and the fused map brought to 4x4 by an average pool where the
    size is a multiple of 4, by interpolation elsewhere, as it is where it is 4x4 already (18 paths)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        inputs = [x, F.max_pool2d(x, 2, ceil_mode=True)]
        high = inputs[0].shape[-2:]
        resized = []
        for img in inputs:
            size = img.shape[-2:]
            if size[0] < high[0] or size[1] < high[1]:
                img = F.interpolate(img, size=high, mode="nearest")
            resized.append(img)
        img = self.conv(torch.cat(resized, dim=1)[:, :4])
        if high[0] != 4 or high[1] != 4:
            if high[0] % 4 != 0 or high[1] % 4 != 0:
                img = F.interpolate(img, size=(4, 4), mode="bilinear")
            else:
                img = F.avg_pool2d(img, kernel_size=(high[0] // 4, high[1] // 4), stride=(high[0] // 4, high[1] // 4))
        return img


def test_an_op_that_another_path_does_as_another_op_merges():
    """Every path gives a 4x4 map: where the size is a multiple of 4 the average pool has the shapes
    and the (zero) MACs of the interpolation the other path does, so one formula holds."""
    points = [{"H": h, "W": w} for h in (1, 2, 3, 4, 5, 8, 12) for w in (1, 4, 6, 16)]
    rep, ran = compare(MultiScaleFusion(), "1,2,H,W", points)
    assert ran == 28 and rep.pieces == ()
    assert rep.output_shape == (1, 4, 4, 4)
    assert rep.macs == 16 * H * W
