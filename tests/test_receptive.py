"""Receptive fields against torch: the support of the gradient of one output unit with respect to
the input, with positive weights and stand-ins through which the gradient reaches every input
(ReLU -> identity, max pool -> a window average), compared with -P + i·j and r for every unit."""
import copy
import json
import random

import pytest
import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape as ss
from symshape import zoo

H, W = ss.symbols("H W")


# ---------------------------------------------------------------- the oracle

class ThinConv(nn.Module):
    """A conv's geometry on one channel: the channel sum, then a positive averaging kernel."""

    def __init__(self, m, transposed=False):
        super().__init__()
        self.m, self.transposed = m, transposed

    def forward(self, x):
        m = self.m
        x = x.sum(1, keepdim=True)
        weight = torch.ones((1, 1, *m.kernel_size), dtype=x.dtype) / sum(m.kernel_size)
        if self.transposed:
            return F.conv_transpose2d(x, weight, None, m.stride, m.padding, m.output_padding, 1, m.dilation)
        if m.padding_mode != "zeros":
            raise AssertionError("the oracle models zero padding only")
        return F.conv2d(x, weight, None, m.stride, m.padding, m.dilation)


class WindowMean(nn.Module):
    """A max pool's windows, every input of a window reaching the output (dilation as a conv)."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        m = self.m
        if m.dilation in (1, (1, 1)):
            return F.avg_pool2d(x, m.kernel_size, m.stride, m.padding, m.ceil_mode, True)
        assert not m.ceil_mode
        k = nn.modules.utils._pair(m.kernel_size)
        weight = torch.ones((x.shape[1], 1, *k), dtype=x.dtype)
        return F.conv2d(x, weight, None, m.stride, m.padding, m.dilation, x.shape[1])


def stand_in(model):
    """A copy of *model* on one channel, with positive weights and the stand-ins."""
    model = copy.deepcopy(model).eval()

    def swap(parent):
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                setattr(parent, name, ThinConv(child))
            elif isinstance(child, nn.ConvTranspose2d):
                setattr(parent, name, ThinConv(child, transposed=True))
            elif isinstance(child, nn.MaxPool2d):
                setattr(parent, name, WindowMean(child))
            elif isinstance(child, (nn.ReLU, nn.ReLU6, nn.BatchNorm2d, nn.LocalResponseNorm, nn.Dropout)):
                setattr(parent, name, nn.Identity())
            else:
                swap(child)
    swap(model)
    return model


def support(model, target: str, hw, units):
    """For each output unit (row, col) of module *target*, the hull of the input rows and columns
    its gradient reaches: ((first row, last row), (first col, last col))."""
    out = {}
    module = model.get_submodule(target)
    handle = module.register_forward_hook(lambda m, i, o: out.__setitem__("y", o))
    x = torch.ones((1, 1, *hw), dtype=torch.float64, requires_grad=True)
    try:
        model(x)
    except Exception:
        pass  # past the target (a flatten of a 1-channel map): the hook has the output
    finally:
        handle.remove()
    y = out["y"]
    hulls = {}
    for unit in units:
        (g,) = torch.autograd.grad(y[0, :, unit[0], unit[1]].sum(), x, retain_graph=True)
        g = g[0].abs().sum(0)
        rows = torch.nonzero(g.sum(1)).flatten()
        cols = torch.nonzero(g.sum(0)).flatten()
        if not len(rows):  # the unit sees padding only
            hulls[unit] = None
            continue
        hulls[unit] = ((int(rows.min()), int(rows.max())), (int(cols.min()), int(cols.max())))
    return y.shape[2:], hulls


def mismatches(model, target, hw, rf, units=None):
    """Units whose gradient hull disagrees with the formula: exact where the formula's window lies
    inside the image, contained in it (clipped) at the borders. Returns (mismatches, interior units)."""
    model = stand_in(model)
    out = {}
    with torch.no_grad():
        handle = model.get_submodule(target).register_forward_hook(lambda m, i, o: out.__setitem__("y", o))
        try:
            model(torch.ones((1, 1, *hw), dtype=torch.float64))
        except Exception:
            pass
        handle.remove()
    oh, ow = out["y"].shape[2:]
    if units is None:
        units = [(i, ow // 2) for i in range(oh)] + [(oh // 2, k) for k in range(ow)]
    _, hulls = support(model, target, hw, units)
    bad, interior = [], 0
    for unit, got in hulls.items():
        if got is None:  # only a unit whose window leaves the image may see padding only
            if all(0 <= rf.start(unit)[d] and rf.end(unit)[d] <= hw[d] - 1 for d in (0, 1)):
                bad.append((unit, "no gradient"))
            continue
        inside = True
        for d, (i, (lo, hi)) in enumerate(zip(unit, got)):
            a, b = rf.start(unit)[d], rf.end(unit)[d]
            size = hw[d]
            if a >= 0 and b <= size - 1:
                if (lo, hi) != (a, b):
                    bad.append((unit, d, (lo, hi), (a, b)))
            else:
                inside = False
                if not (max(a, 0) <= lo and hi <= min(b, size - 1)):
                    bad.append((unit, d, (lo, hi), (a, b)))
        interior += inside
    return bad, interior


def rf_at(model, name, hw, shape="1,1,H,W"):
    return ss.trace(model, shape).at(H=hw[0], W=hw[1]).receptive_field(name)


# ---------------------------------------------------------------- random chains, residual and concat blocks

def random_layer(rng, c):
    kind = rng.choice(["conv", "conv", "max", "avg", "relu"])
    k = rng.randint(1, 5)
    d = rng.choice([1, 1, 2, 3]) if kind != "avg" else 1
    s = rng.randint(1, 3)
    if kind == "conv":
        return nn.Conv2d(c, c, k, stride=s, padding=rng.randint(0, (k - 1) * d), dilation=d)
    if kind == "relu":
        return nn.ReLU()
    k = max(k, 2)
    p = rng.randint(0, k // 2)
    ceil = rng.random() < 0.3 and d == 1
    if kind == "max":
        return nn.MaxPool2d(k, s, p, d, ceil_mode=ceil)
    return nn.AvgPool2d(k, s, p, ceil_mode=ceil)


class Residual(nn.Module):
    def __init__(self, body, shortcut):
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


class Concat(nn.Module):
    """Two branches concatenated along channels, then (merge=c) a 1x1 conv back to c channels."""

    def __init__(self, a, b, merge=None):
        super().__init__()
        self.a, self.b = a, b
        self.merge = nn.Conv2d(2 * merge, merge, 1) if merge else nn.Identity()

    def forward(self, x):
        return self.merge(torch.cat([self.a(x), self.b(x)], 1))


def random_block(rng, c):
    """A residual or concat block whose branches give the same size: odd kernels with 'same'-style
    padding, or a branch shifted by a one-sided pad (misaligned)."""
    def same_conv(s=1):
        k, d = rng.choice([1, 3, 5]), rng.choice([1, 2])
        return nn.Conv2d(c, c, k, stride=s, padding=(k - 1) * d // 2, dilation=d)
    s = rng.choice([1, 2])
    body = nn.Sequential(same_conv(s), nn.ReLU(), same_conv())
    if rng.random() < 0.3:  # a shifted branch: kernel 2 then a pad on one side
        other = nn.Sequential(nn.Conv2d(c, c, 2, stride=s), nn.ZeroPad2d((1, 0, 1, 0)) if s == 1 else nn.Identity())
        if s == 2:
            other = nn.Sequential(nn.Conv2d(c, c, 2, stride=2, padding=1))
    else:
        other = nn.Conv2d(c, c, 1, stride=s) if s > 1 or rng.random() < 0.5 else nn.Identity()
    return Residual(body, other) if rng.random() < 0.5 else Concat(body, other, merge=c)


def random_model(rng, blocks: bool):
    layers = []
    for _ in range(rng.randint(2, 6)):
        layers.append(random_block(rng, 2) if blocks and rng.random() < 0.5 else random_layer(rng, 2))
    return nn.Sequential(*layers)


def run_case(seed, blocks):
    rng = random.Random(seed)
    model = random_model(rng, blocks)
    rep = ss.trace(model, "1,2,H,W")
    for _ in range(20):
        hw = (rng.randint(20, 90), rng.randint(20, 90))
        try:
            at = rep.at(H=hw[0], W=hw[1])
        except ss.ShapeError:
            continue
        if at.output_shape[2] < 1 or at.output_shape[3] < 1:
            continue
        rf = at.receptive_field()
        bad, _ = mismatches(model, str(len(model) - 1), hw, rf)
        return bad, rf, hw
    return [], None, None


@pytest.mark.parametrize("blocks", [False, True], ids=["chains", "blocks"])
def test_random_models_match_the_gradient_support(blocks):
    checked, interior = 0, 0
    for seed in range(60 if not blocks else 40):
        bad, rf, hw = run_case(seed * 2 + blocks, blocks)
        assert bad == [], (seed, rf, hw, bad[:3])
        checked += rf is not None
    assert checked >= 35


def test_a_misaligned_concat_is_reported_and_its_hull_is_exact():
    model = nn.Sequential(Concat(nn.Conv2d(2, 2, 3, padding=1), nn.Sequential(nn.Conv2d(2, 2, 2), nn.ZeroPad2d((1, 0, 1, 0)))))
    rep = ss.trace(model, "1,2,H,W")
    rf = rep.receptive_field()
    assert (rf.size, rf.stride, rf.padding, rf.exact) == ((3, 3), (1, 1), (1, 1), True)
    assert [str(m) for m in rf.misaligned] == [
        "layer '0.cat' (cat) dim H: branches differ in centre (effective padding): r=3, j=1, P=1; r=2, j=1, P=1",
        "layer '0.cat' (cat) dim W: branches differ in centre (effective padding): r=3, j=1, P=1; r=2, j=1, P=1",
    ]
    bad, interior = mismatches(model, "0", (12, 13), rep.at(H=12, W=13).receptive_field("0.cat"))
    assert bad == [] and interior > 0


def test_branches_with_different_strides_are_not_exact():
    class TwoStrides(nn.Module):
        def forward(self, x):
            return x[:, :, :8, :8] + x[:, :, ::2, ::2][:, :, :8, :8]

    rf = ss.trace(TwoStrides(), "1,1,H,W").receptive_field()
    assert (rf.exact, rf.size, rf.stride, rf.padding) == (False, (1, 1), (2, 2), (0, 0))
    assert str(rf.misaligned[0]) == "layer 'add' (add) dim H: branches differ in stride: r=1, j=1, P=0; r=1, j=2, P=0"
    assert "misaligned branches (the numbers are maxima, not exact):" in rf.explain()


def test_pooling_then_upsampling_is_a_nested_branch():
    class TwoScales(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(1, 1, 3, padding=1)
            self.b = nn.Sequential(nn.MaxPool2d(2), nn.Upsample(scale_factor=2))

        def forward(self, x):
            return self.a(x) + self.b(x)

    rep = ss.trace(TwoScales(), "1,1,H,W")
    rf = rep.receptive_field()
    assert (rf.exact, rf.size, rf.stride, rf.padding, rf.misaligned) == (False, (3, 3), (1, 1), (1, 1), ())
    assert rf.transposed == ("b.1",) and str(rf).endswith("(a bound: transposed windows)")
    up = rep.receptive_field("b.1")
    assert (up.size, up.stride, up.padding) == ((3, 3), (1, 1), (1, 1))
    bad, interior = mismatches(TwoScales(), "", (10, 12), rep.at(H=10, W=12).receptive_field())
    assert bad == [] and interior > 0


@pytest.mark.parametrize("layer", [nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1), nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1),
                                   nn.ConvTranspose2d(1, 1, 3, stride=3, dilation=2), nn.Upsample(scale_factor=3)],
                         ids=["k3s2p1", "k4s2p1", "k3s3d2", "nearest3"])
def test_fractional_strides_hold_the_gradient_support(layer):
    """After a transposed window j = j_in/s (a Rational): the units aligned with the input grid
    (i + p - e + 1 ≡ 0 mod s) match exactly, the others lie inside the formula's window."""
    model = nn.Sequential(nn.Conv2d(1, 1, 3), nn.ReLU(), layer, nn.Conv2d(1, 1, 3, padding=1))
    rep = ss.trace(model, "1,1,H,W")
    rf = rep.receptive_field()
    assert any(isinstance(v, sympy.Rational) and not v.is_Integer for v in rf.stride + rf.padding + rf.size)
    assert rf.exact is False and rf.transposed == ("2",)
    at = rep.at(H=31, W=29).receptive_field()
    got = support(stand_in(model), "3", (31, 29), [(i, 5) for i in range(12)])[1]
    for (i, _), ((lo, hi), _) in got.items():
        a, b = at.start(i)[0], at.end(i)[0]
        assert a <= lo and hi <= b, (i, (lo, hi), (a, b))
    w = model[2] if isinstance(model[2], nn.ConvTranspose2d) else None
    s, p, e = (w.stride[0], w.padding[0], w.dilation[0] * (w.kernel_size[0] - 1) + 1) if w else (3, 0, 3)
    # the last conv (k3 p1) spans units i - 1 .. i + 1: exact where both ends are on the grid
    aligned = [i for i in range(1, 12) if (i - 1 + p - e + 1) % s == 0 and (i + 1 + p) % s == 0]
    assert aligned or e % s != 1
    for i in aligned:
        (lo, hi), _ = got[(i, 5)]
        if at.start(i)[0] >= 0:
            assert (lo, hi) == (at.start(i)[0], at.end(i)[0]), i


# ---------------------------------------------------------------- published and zoo figures

def test_vgg16_pool5_is_212_32_90():
    rep = ss.trace(zoo.vgg16(), "1,3,H,W")
    rf = rep.receptive_field()
    assert (rf.layer, rf.size, rf.stride, rf.padding, rf.exact) == ("features.30", (212, 212), (32, 32), (90, 90), True)
    bad, interior = mismatches(zoo.vgg16().features, "30", (260, 260), rf, units=[(0, 0), (3, 3), (3, 4), (7, 7)])
    assert bad == [] and interior == 2


@pytest.mark.parametrize("factory, target, module, hw, figures", [
    (zoo.resnet50, "layer4.2.relu#3", "layer4", (460, 460), (427, 32, 213)),
    (zoo.alexnet, "features.12", "features.12", (300, 300), (195, 32, 66)),
    (zoo.mobilenet_v2, "features.18.2", "features.18", (520, 520), (491, 32, 245)),
], ids=["resnet50", "alexnet", "mobilenet_v2"])
def test_zoo_figures_against_the_oracle(factory, target, module, hw, figures):
    rep = ss.trace(factory(), "1,3,H,W")
    rf = rep.receptive_field()
    assert rf.layer == target
    assert (rf.size[0], rf.stride[0], rf.padding[0]) == figures and rf.exact and rf.misaligned == ()
    oh = rep.at(H=hw[0], W=hw[1]).layer(target).out_shape[2]
    units = [(0, 0), (int(oh) // 2, int(oh) // 2), (int(oh) - 1, int(oh) // 2)]
    bad, interior = mismatches(factory(), module, hw, rf, units=units)
    assert bad == [] and interior >= 1


# ---------------------------------------------------------------- formulas of the size, solving

class Conv2dSame(nn.Module):
    """TensorFlow's 'SAME' padding computed from the size (as timm's Conv2dSame, for k >= s)."""

    def __init__(self, k, s):
        super().__init__()
        self.k, self.s = k, s
        self.weight = nn.Parameter(torch.rand(1, 1, k, k) + 0.1)

    def forward(self, x):
        ih, iw = x.size(2), x.size(3)
        ph = ((ih + self.s - 1) // self.s - 1) * self.s + self.k - ih
        pw = ((iw + self.s - 1) // self.s - 1) * self.s + self.k - iw
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, None, self.s)


def same_net():
    return nn.Sequential(Conv2dSame(3, 2), nn.ReLU(), Conv2dSame(3, 2))


def test_same_padding_gives_the_effective_padding_as_a_formula_of_the_size():
    rep = ss.trace(same_net(), "1,1,H,W")
    rf = rep.receptive_field()
    assert (rf.size, rf.stride) == ((7, 7), (4, 4))
    assert rf.padding == (sympy.Mod(-H, 4), sympy.Mod(-W, 4))
    assert ("'0.pad' (pad) H: kernel 1, stride 1, padding Mod(H, 2) (left), 1 (right): r = 1 + (1 - 1)·1·1 = 1, "
            "j = 1·1 = 1, P = 0 + (Mod(H, 2))·1 = Mod(H, 2)") in rf.explain().splitlines()[1]
    for h in range(9, 30):
        at = rep.at(H=h, W=h + 1).receptive_field()
        assert at.padding == ((-h) % 4, (-h - 1) % 4) and at.dims == ("dim 2", "dim 3")
        model = same_net().double()
        bad, interior = mismatches(model, "", (h, h + 1), at)
        assert bad == [], (h, bad)
    assert interior > 0


def test_conditions_on_the_receptive_field_are_solved_like_any_other():
    rep = ss.trace(same_net(), "1,1,H,W")
    rf = rep.receptive_field()
    assert str(rep.solve(sympy.Eq(rf.padding[0], 0), sympy.Eq(H, W))) == "H = W, H ≡ 0 (mod 4), H ≥ 4"
    vgg = ss.trace(zoo.vgg16(), "1,3,H,W")
    rf = vgg.receptive_field()
    n = vgg.layer(rf.layer).out_shape[2]
    # every unit of pool5 sees the whole image: the first reaches the last row, the last starts before row 0
    whole = vgg.solve(rf.end(0)[0] >= H - 1, rf.start(n - 1)[0] <= 0, sympy.Eq(H, W))
    assert str(whole) == "H = W, 32 ≤ H ≤ 122"
    for h in (32, 122, 123):
        at = vgg.at(H=h, W=h).receptive_field()
        units = vgg.at(H=h, W=h).layer(rf.layer).out_shape[2]
        sees = at.end(0)[0] >= h - 1 and at.start(units - 1)[0] <= 0
        assert sees == ((h, h) in whole)


def test_per_layer_fields_json_and_explain():
    rep = ss.trace(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()), "1,3,H,W")
    assert rep.receptive_fields() == (((3, 1, 1), (3, 1, 1)), ((3, 1, 1), (3, 1, 1)), ((4, 2, 1), (4, 2, 1)), None)
    rf = rep.receptive_field()
    assert rf.layer == "2"
    assert rf.to_data() == {"layer": "2", "kind": "MaxPool2d", "dims": ["H", "W"], "size": ["4", "4"],
                            "stride": ["2", "2"], "padding": ["1", "1"], "exact": True, "transposed": [],
                            "misaligned": []}
    assert rf.explain().splitlines()[1:3] == [
        "  '0' (Conv2d) H: kernel 3, stride 1, padding 1: r = 1 + (3 - 1)·1·1 = 3, j = 1·1 = 1, P = 0 + 1·1 = 1",
        "  '0' (Conv2d) W: kernel 3, stride 1, padding 1: r = 1 + (3 - 1)·1·1 = 3, j = 1·1 = 1, P = 0 + 1·1 = 1",
    ]
    data = json.loads(rep.to_json())
    assert data["layers"][2]["receptive_field"] == {"size": ["4", "4"], "stride": ["2", "2"], "padding": ["1", "1"]}
    assert "receptive_field" not in data["layers"][3]
    assert [layer["inputs"] for layer in data["layers"]] == [[-1], [0], [1], [2]]
    back = ss.render.json.from_json(rep.to_json())
    assert back.layers == rep.layers and back.receptive_field() == rf
    for layer in data["layers"]:  # a report written before the edges were kept: read as a chain
        del layer["inputs"]
    assert ss.render.json.from_dict(data).receptive_field() == rf


def test_errors_name_the_layer_and_the_fix():
    rep = ss.trace(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()), "1,3,H,W")
    with pytest.raises(ss.ShapeError) as err:
        rep.receptive_field("1")
    assert str(err.value) == (
        "layer '1' (Flatten) outputs (1, 4*(H - 2)*(W - 2)), which has no spatial dim that maps to the input's by "
        "windows: its field is lost at a flatten, reshape, adaptive pool or resize before it; ask for an earlier layer")
    with pytest.raises(ss.ShapeError, match="no spatial dims: a receptive field needs an"):
        ss.trace(nn.Linear(3, 4), "1,3").receptive_field()
    with pytest.raises(ss.ShapeError) as err:
        rep.receptive_field("x")
    assert str(err.value) == "no layer named 'x'; layers: '0', '1'"
    assert ss.trace(zoo.resnet50(), "1,3,H,W").receptive_field("layer2").layer == "layer2.3.relu#3"


def test_explain_shows_the_hull_where_branches_meet():
    text = ss.trace(zoo.resnet50(), "1,3,H,W").receptive_field("layer1.1").explain().splitlines()
    assert ("  'layer1.0.add' (add) H: the hull of its branches (r=19, j=4, P=9; r=11, j=4, P=5): P = max P_b = 9, "
            "r = max(r_b - P_b) + P = 19, j = 4") in text
    assert text[-2:] == ["H: r = 27, j = 4, P = 13", "W: r = 27, j = 4, P = 13"]


# ---------------------------------------------------------------- the command line

def cli(capsys, *argv):
    from symshape.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_rf(capsys):
    assert cli(capsys, "rf", "vgg16") == (
        0, "receptive field of 'features.30': H: r=212 j=32 P=90, W: r=212 j=32 P=90\n", "")
    assert cli(capsys, "rf", "resnet50", "--layer", "layer2", "--at", "H=224,W=224") == (
        0, "receptive field of 'layer2.3.relu#3': H: r=91 j=8 P=45, W: r=91 j=8 P=45\n", "")
    code, out, err = cli(capsys, "rf", "vgg16", "--layer", "features.4", "--format", "json")
    assert (code, json.loads(out)["size"], err) == (0, ["6", "6"], "")
    code, out, err = cli(capsys, "rf", "vgg16", "--layer", "features.4", "--explain")
    assert out.splitlines()[-2:] == ["H: r = 6, j = 2, P = 2", "W: r = 6, j = 2, P = 2"]
    code, out, err = cli(capsys, "rf", "vgg16", "--layer", "nope")
    assert (code, out) == (2, "") and err.startswith("symshape: error: no layer named 'nope'; layers: 'features.0', ")
    code, out, err = cli(capsys, "rf", "seed_case1", "--at", "H=28,W=28")
    assert code == 1 and err.startswith("symshape: the model does not run at H=28, W=28: layer '3' (Linear)")


def test_tables_show_each_layers_receptive_field():
    rep = ss.trace(nn.Sequential(nn.Conv2d(3, 4, (3, 5), padding=(1, 0)), nn.MaxPool2d(2), nn.Flatten()), "1,3,H,W")
    lines = str(rep).splitlines()
    assert lines[1].split() == ["layer", "type", "output", "shape", "params", "MACs", "RF", "r/j/P"]
    assert lines[3].endswith("  3/1/1; 5/1/0") and lines[4].endswith("  4/2/1; 6/2/0")
    assert lines[5].endswith("0")  # Flatten: no field
    md = [line for line in rep.to_markdown().splitlines() if line.startswith("| `")]
    assert md[1].endswith("| $4/2/1; 6/2/0$ |") and md[2].endswith("| |")
    tex = rep.to_latex()
    assert r"\begin{tabular}{lllrrl}" in tex and r"& $4/2/1; 6/2/0$ \\" in tex
    same = ss.trace(same_net(), "1,1,H,W")
    rows = [line for line in str(same).splitlines() if line.startswith("2.conv2d ")]
    assert rows[0].endswith("7/4/Mod(3*H, 4); 7/4/Mod(3*W, 4)")


def test_unet_field_contains_every_units_gradient_support():
    """The paper's U-Net (valid convs, crops, up-convolutions): a bound, tight at the ends on the grid."""
    rep = ss.trace(zoo.unet(), "1,1,H,W")
    rf = rep.receptive_field()
    assert (rf.layer, rf.size, rf.stride, rf.padding, rf.exact) == ("head", (215, 215), (1, 1), (15, 15), False)
    assert rf.transposed == ("up.0", "up.1", "up.2", "up.3")
    units = [(i, i) for i in (0, 1, 100, 101, 199, 387)]
    _, hulls = support(stand_in(zoo.unet()), "head", (572, 572), units)
    for (i, _), ((lo, hi), _) in hulls.items():
        assert rf.start(i)[0] <= lo and hi <= rf.end(i)[0], (i, lo, hi)
    assert hulls[(100, 100)][0] == (96, rf.end(100)[0])  # the end is exact at a unit on the grid


def test_the_reports_explanation_shows_the_recurrences_at_the_sizes():
    text = ss.trace(same_net(), "1,1,H,W").explain(H=33, W=32).splitlines()
    start = text.index("layer '2.conv2d' (conv2d)")
    assert [line for line in text[start:] if "receptive field" in line][:2] == [
        "  receptive field H: r = 3 + (3 - 1)·1·2 = 7, j = 2·2 = 4, P = 3 + 0·2 = 3",
        "  receptive field W: r = 3 + (3 - 1)·1·2 = 7, j = 2·2 = 4, P = 0 + 0·2 = 0",
    ]
    vgg = ss.trace(zoo.vgg16(), "1,3,H,W").explain(H=224, W=224).splitlines()
    start = vgg.index("layer 'features.30' (MaxPool2d, kernel 2×2, stride 2×2, padding 0×0)")
    assert "  receptive field (H, W): r = 196 + (2 - 1)·1·16 = 212, j = 16·2 = 32, P = 90 + 0·16 = 90" in vgg[start:]
