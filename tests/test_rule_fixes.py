"""Regressions: ConvTranspose output_size/output_padding, Upsample at output size 0, factories that
need arguments, and messages that print sizes through symshape's printer; each against torch."""
import pytest
import sympy
import torch
from torch import nn

import symshape as ss
from symshape.cli import main


def torch_raises(model, *inputs) -> bool:
    try:
        model(*inputs)
    except (RuntimeError, ValueError):
        return True
    return False


class Up(nn.Module):
    """A transposed convolution called with an explicit output_size built from its input."""

    def __init__(self, make_size, **kwargs):
        super().__init__()
        self.down = nn.Conv2d(2, 2, 7, stride=2)
        self.up = nn.ConvTranspose2d(2, 2, 3, stride=2, **kwargs)
        self.make_size = make_size

    def forward(self, x):
        y = self.down(x)
        return self.up(y, output_size=self.make_size(y))


@pytest.mark.parametrize("make_size, ok", [
    (lambda y: (y.shape[2] * 2 + 1, y.shape[3] * 2 + 1), True),
    (lambda y: (1, 2, y.shape[2] * 2 + 1, y.shape[3] * 2 + 1), True),
    (lambda y: (y.shape[3] * 2 + 1,), False),
    (lambda y: (2, y.shape[2] * 2 + 1, y.shape[3] * 2 + 1), False),
])
def test_conv_transpose_output_size_entries_as_torch(make_size, ok):
    model = Up(make_size)
    assert torch_raises(model, torch.randn(1, 2, 32, 32)) is not ok
    if ok:
        res = ss.check(model, ss.trace(model, "1,2,H,W"), sizes=[{"H": 32, "W": 33}, {"H": 7, "W": 40}], device="cpu")
        assert res.ok and len(res.comparisons) > 6, str(res)
        return
    n = len(make_size(torch.empty(1, 2, 13, 13)))
    with pytest.raises(ss.ShapeError, match=rf"output_size must have 2 or 4 entries \(the spatial sizes or the whole "
                                            rf"output shape\), got {n}: "):
        ss.trace(model, "1,2,H,W")


def test_conv_transpose_output_size_unbatched_takes_nd_plus_one():
    up = nn.ConvTranspose1d(2, 2, 3, stride=2)
    assert up(torch.randn(2, 5), output_size=(2, 12)).shape == (2, 12)
    with pytest.raises(ValueError):
        up(torch.randn(2, 5), output_size=(1, 2, 12))
    from symshape.rules.conv import conv_transpose
    L, two = ss.symbols("L"), sympy.Integer(2)
    assert conv_transpose(up, (two, L), output_size=(2, 2 * L + 1)).shape[-1] == 2 * L + 1
    with pytest.raises(ss.ShapeError, match=r"^for a 2-d input, output_size must have 1 or 2 entries"):
        conv_transpose(up, (two, L), output_size=(1, 2, 2 * L + 1))


@pytest.mark.parametrize("op, stride, dilation", [(1, 1, 1), (2, 2, 1), (2, 1, 2), (1, 2, 1), (2, 2, 3), (1, 1, 2)])
def test_conv_transpose_output_padding_below_stride_or_dilation(op, stride, dilation):
    m = nn.ConvTranspose1d(2, 2, 3, stride=stride, dilation=dilation, output_padding=op)
    raises = torch_raises(m, torch.randn(1, 2, 5))
    assert raises is (op >= max(stride, dilation))
    if not raises:
        assert ss.trace(m, "1,2,L").at(L=5).output_shape[-1] == m(torch.randn(1, 2, 5)).shape[-1]
        return
    with pytest.raises(ss.ShapeError) as err:
        ss.trace(m, "1,2,L")
    assert str(err.value) == (
        f"the model (ConvTranspose1d) got input (1, 2, L): output padding must be smaller than either stride or "
        f"dilation, got output_padding=({op},), stride=({stride},), dilation=({dilation},): set output_padding below "
        f"{max(stride, dilation)} (max of stride and dilation) in every dim")


MODES = [("nearest", 1), ("nearest", 2), ("nearest-exact", 3), ("linear", 1), ("bilinear", 2), ("bicubic", 2),
         ("trilinear", 3), ("area", 1), ("area", 2), ("area", 3)]


@pytest.mark.parametrize("mode, nd", MODES)
def test_upsample_to_size_zero_as_torch_on_cpu(mode, nd):
    spec = ",".join(["1", "2", *"DHW"[3 - nd:]])
    scaled = nn.Upsample(scale_factor=0.25, mode=mode)
    rep = ss.trace(scaled, spec)
    res = ss.check(scaled, rep, sizes=[dict.fromkeys("DHW"[3 - nd:], 3), dict.fromkeys("DHW"[3 - nd:], 4)],
                   device="cpu")
    assert res.ok, str(res)
    runs_at_3 = not torch_raises(scaled, torch.randn(1, 2, *[3] * nd))
    assert runs_at_3 is (mode == "area") and (rep.violations(**dict.fromkeys("DHW"[3 - nd:], 3)) == []) is runs_at_3
    fixed = nn.Upsample(size=(0,) * nd, mode=mode)
    if mode == "area":
        assert fixed(torch.randn(1, 2, *[3] * nd)).shape[2:] == (0,) * nd
        assert ss.trace(fixed, spec).output_shape[2:] == (0,) * nd
    else:
        assert torch_raises(fixed, torch.randn(1, 2, *[3] * nd))
        with pytest.raises(ss.ShapeError, match=rf"mode '{mode}' needs output sizes >= 1 \(torch: \"Input and output "
                                                rf"sizes should be greater than 0\"\), got \({', '.join(['0'] * nd)},?\)"):
            ss.trace(fixed, spec)


def test_interpolate_area_allows_size_zero():
    class Shrink(nn.Module):
        def __init__(self, mode):
            super().__init__()
            self.mode = mode

        def forward(self, x):
            return nn.functional.interpolate(x, scale_factor=0.25, mode=self.mode)

    for mode, runs in (("area", True), ("nearest", False)):
        assert not torch_raises(Shrink(mode), torch.randn(1, 2, 3, 3)) is runs
        assert (ss.trace(Shrink(mode), "1,2,H,W").violations(H=3, W=3) == []) is runs


def test_cli_factory_that_needs_arguments(capsys):
    assert main(["summary", "torch.nn:Conv2d", "--input", "1,3,H,W"]) == 2
    assert capsys.readouterr().err == (
        "symshape: error: torch.nn:Conv2d needs arguments (missing a required argument: 'in_channels'): the factory "
        "must take no arguments; write a function that builds the model and give its MODULE:ATTR\n")
    assert main(["summary", "torch.nn:ReLU", "--input", "1,3,H,W"]) == 0  # a class with defaults is a factory


def test_messages_print_sizes_as_people_write_them():
    model = Up(lambda y: (y.shape[2] * 2, y.shape[3] * 2))
    assert torch_raises(model, torch.randn(1, 2, 32, 32))
    with pytest.raises(ss.ShapeError) as err:
        ss.trace(model, "1,2,H,W")
    assert str(err.value) == (
        "layer 'up' (ConvTranspose2d) got input (1, 2, floor((H - 7)/2) + 1, floor((W - 7)/2) + 1): needs output_size "
        "2*floor((H - 7)/2) + 2 >= the smallest size 2*floor((H - 7)/2) + 3, which fails for every input size")


def test_a_module_repeated_in_a_sequential_runs_each_time():
    # nn.Sequential(conv, pool, conv2, pool): named_children() lists the pool once, but
    # Sequential.forward runs it twice; the trace once missed the second pool (a wrong domain)
    pool = nn.MaxPool2d(2)
    model = nn.Sequential(nn.Conv2d(3, 6, 5), pool, nn.Conv2d(6, 16, 5), pool, nn.Flatten(), nn.Linear(400, 10))
    rep = ss.trace(model, "1,3,H,W")
    assert [layer.name for layer in rep.layers] == ["0", "1", "2", "3", "4", "5"]
    assert str(rep.layers[4].out_shape) == "(1, 16*(floor(H/4) - 3)*(floor(W/4) - 3))"
    assert tuple(model(torch.zeros(1, 3, 32, 32)).shape) == (1, 10)
    assert rep.violations(H=32, W=32) == []
    assert ss.check(model, rep, sizes=[{"H": 32, "W": 32}, {"H": 31, "W": 32}]).ok


def test_a_condition_undefined_at_a_size_is_a_violation_not_a_crash():
    H = ss.symbols("H")
    rep = ss.trace(nn.Identity(), "1,H")
    cond = ss.Condition(sympy.Eq(sympy.floor(12 / sympy.floor(H / 4)), 3), "", "Identity", "a test condition")
    rep = rep.__class__(**{**rep.__dict__, "domain": (*rep.domain, cond)})
    assert rep.violations(H=2) == [cond]  # floor(H/4) = 0: the condition divides by zero there
    assert rep.violations(H=16) == []


def test_a_linear_that_fits_no_size_says_why():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(5401, 10))
    with pytest.raises(ss.ShapeError) as err:
        ss.trace(model, "1,3,H,W")
    assert str(err.value) == (
        "layer '2' (Linear) got input (1, 8*(H - 2)*(W - 2)): needs the last dim of the input, 8*(H - 2)*(W - 2), "
        "to equal in_features=5401, which fails for every input size: 5401 is not a multiple of 8, the factor common "
        "to every value of 8*(H - 2)*(W - 2)")


def test_eye_of_a_symbolic_size_as_torch():
    """timm's BilinearAttnTransform builds torch.eye(x.shape[-1]) (bat_resnext26ts)."""
    import torch.nn as nn

    class Eye(nn.Module):
        def forward(self, x):
            return x @ torch.eye(x.shape[-1]) + torch.eye(x.shape[-2], x.shape[-1])

    rep = ss.trace(Eye(), "2,H,W")
    H, W = rep.symbols
    assert rep.output_shape == (2, H, W) and rep.macs == 2 * H * W ** 2
    for h, w in ((1, 1), (3, 5), (7, 2)):
        assert rep.at(H=h, W=w).output_shape == tuple(Eye()(torch.zeros(2, h, w)).shape)
    assert ss.check(Eye(), rep).ok


class InPlaceShortcut(nn.Module):
    """timm's anti-aliased ResNets add the shortcut in place (``x += shortcut``): torch writes into x,
    whose dims do not stretch, so a main path of size 1 against a shortcut of 2 raises there, where
    ``x + shortcut`` would broadcast. fx turns ``x += s`` into an add; the instruction tells them apart."""

    def __init__(self, branch=False):
        super().__init__()
        self.main = nn.MaxPool2d(4)
        self.short = nn.Sequential(nn.AvgPool2d(2, ceil_mode=True), nn.AvgPool2d(2, ceil_mode=True))
        self.branch = branch

    def forward(self, x):
        if self.branch and x.shape[-1] < 0:
            raise ValueError("never")
        s = self.short(x)
        x = self.main(x)
        x += s
        return x + s  # an ordinary add broadcasts


@pytest.mark.parametrize("branch", [False, True], ids=["fx", "executor"])
def test_an_in_place_add_does_not_stretch_its_target(branch):
    model = InPlaceShortcut(branch)
    rep = ss.trace(model, "1,2,H,W")
    for h in range(4, 40):
        try:
            want = tuple(model(torch.zeros(1, 2, h, 8)).shape)
        except RuntimeError:
            want = None
        got = None if rep.violations(H=h, W=8) else rep.at(H=h, W=8).output_shape
        assert got == want, (h, got, want)
    assert ss.check(model, rep).ok
