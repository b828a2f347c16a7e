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
from torch.utils.flop_counter import FlopCounterMode

import symshape as ss

H, W, L = ss.symbols("H W L")


def torch_out(model, shape, device="meta", macs=False):
    """The output shape(s) of *model* on a zero tensor of *shape* (with FlopCounterMode's MACs =
    flops / 2 when *macs*), or the exception torch raised."""
    try:
        with torch.no_grad(), warnings.catch_warnings(), FlopCounterMode(display=False) as counter:
            warnings.simplefilter("ignore")
            if device != "meta" and any(p.is_meta for p in model.parameters()):
                model = model.to_empty(device=device)  # an earlier comparison moved it to the meta device
            out = model.to(device)(torch.zeros(shape, device=device))
    except Exception as err:  # torch rejects the size
        return err
    return (_shapes(out), counter.get_total_flops() // 2) if macs else _shapes(out)


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
            assert int(rep.at(**sizes).macs) == torch_out(model, shape, device, macs=True)[1], sizes
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
    counts = Call(lambda x: torch.repeat_interleave(x[0, 0, 0].long(), output_size=7))  # counts of a symbolic length
    assert ss.trace(counts, "1,3,H,W").output_shape == (7,)
    assert agrees(counts, "1,3,H,W", [{"H": 2, "W": 1}, {"H": 1, "W": 9}]) == 2  # meta: torch trusts output_size
    with pytest.raises(ss.ShapeError, match=r"repeat_interleave\(counts\): the output length is the sum of the "
                                            r"counts, which a shape does not carry; pass output_size=<that sum>"):
        ss.trace(Call(lambda x: torch.repeat_interleave(x[0, 0, 0].long())), "1,3,H,W")
    with pytest.raises(ss.ShapeError, match=r"repeat_interleave\(counts\) needs a 1-d tensor of counts, got "
                                            r"\(1, 3, H, W\)"):
        ss.trace(Call(lambda x: torch.repeat_interleave(x.long(), output_size=7)), "1,3,H,W")
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


# ---------------------------------------------------------------- math.ceil / floor / trunc on sizes, fold

class SizeMath(nn.Module):
    def forward(self, x):
        _, _, h, w = x.shape
        return x.new_zeros(math.ceil(h / 8), math.floor((w - 1) / 3), math.trunc(h / 3), math.ceil((h // 2 + 1) / 2))


def test_math_ceil_floor_trunc_of_sizes_in_a_graph():
    rep = ss.trace(SizeMath(), "1,3,H,W")
    assert [layer.kind for layer in rep.layers] == ["Tensor.new_zeros"]  # fx traced it: no executor
    assert rep.output_shape == (sympy.floor((H + 7) / 8), sympy.floor((W - 1) / 3), sympy.floor(H / 3),
                                sympy.floor(H / 4) + 1)
    points = [{"H": h, "W": w} for h, w in ((1, 1), (7, 4), (8, 9), (9, 10), (31, 3), (224, 225))]
    assert agrees(SizeMath(), "1,3,H,W", points) == 6


def test_math_trunc_of_a_size_that_may_be_negative_is_refused():
    class Trunc(nn.Module):
        def forward(self, x):
            return x.new_zeros(math.trunc((x.shape[2] - 5) / 3))

    with pytest.raises(ss.ShapeError, match=r"math.trunc\(\) of the size H/3 - 5/3, which may be negative: use "
                                            r"math.floor or // instead"):
        ss.trace(Trunc(), "1,3,H,W")


class Outlook(nn.Module):
    """timm VOLO's outlook attention, reduced to its shapes: unfold at stride 2, ceil of the size, fold back."""

    def __init__(self, c=4, k=3, s=2):
        super().__init__()
        self.c, self.k, self.s = c, k, s

    def forward(self, x):
        b, c, h, w = x.shape
        v = F.unfold(x, self.k, padding=1, stride=self.s)
        hh, ww = math.ceil(h / self.s), math.ceil(w / self.s)
        v = v.reshape(b, c * self.k * self.k, hh * ww)
        return F.fold(v, output_size=(h, w), kernel_size=self.k, padding=1, stride=self.s)


def test_fold_after_unfold_with_ceil_sizes_as_torch():
    rep = ss.trace(Outlook(), "1,4,H,W")
    assert rep.output_shape == (1, 4, H, W) and rep.domain == ()
    points = [{"H": h, "W": w} for h, w in ((1, 1), (2, 3), (7, 8), (16, 5))]
    assert agrees(Outlook(), "1,4,H,W", points) == 4


@pytest.mark.parametrize("module, spec, points, want, domain", [
    (nn.Fold((7, 5), 3, padding=1, stride=2), "1,27,L", [{"L": n} for n in (11, 12, 13)], (1, 3, 7, 5), ["L = 12"]),
    (nn.Fold((7, 5), 3, padding=1, stride=2), "27,L", [{"L": n} for n in (11, 12)], (3, 7, 5), ["L = 12"]),
    (nn.Fold((4, 4), 2), "2,C,9", [{"C": c} for c in (1, 3, 4, 8, 9, 12)], (2, sympy.floor(ss.symbols("C") / 4), 4, 4),
     ["C ≡ 0 (mod 4)"]),
    (nn.Fold((1, 1), 3), "1,27,1", [{}], None, None),
])
def test_fold_as_torch(module, spec, points, want, domain):
    if want is None:
        with pytest.raises(ss.ShapeError, match=r"needs floor\(\(1 - 3\)/1\) \+ 1 >= 1|never|fails for every"):
            ss.trace(module, spec)
        assert isinstance(torch_out(module, (1, 27, 1)), Exception)
        return
    rep = ss.trace(module, spec)
    assert rep.output_shape == want
    assert [repr(c) for c in rep.domain] == domain
    assert agrees(module, spec, points) == 1 if "L" in spec else agrees(module, spec, points) >= 2


def test_fold_refuses_other_ranks():
    with pytest.raises(ss.ShapeError, match=r"fold expects a 2-d \(C·kh·kw, L\) or 3-d \(N, C·kh·kw, L\) input, "
                                            r"got 4-d \(1, 27, L, 1\)"):
        ss.trace(nn.Fold((7, 5), 3), "1,27,L,1")
    with pytest.raises(ss.ShapeError, match=r"fold needs dim -2 \(18\) divisible by the kernel's 4 positions"):
        ss.trace(nn.Fold((3, 3), 2), "1,18,L")


# ---------------------------------------------------------------- plain functions fx keeps as calls

def build_grid(feat_shape, indexing="ij", device=None):
    """timm's _build_grid, reduced: a coordinate grid (*feat_shape, len(feat_shape))."""
    if len(feat_shape) != 2:
        raise ValueError(f"Expected 2 spatial dimensions, got {len(feat_shape)}")
    t = [torch.arange(s, device=device).to(torch.float32) for s in feat_shape]
    return torch.stack(torch.meshgrid(t, indexing=indexing), dim=-1)


def crop_to(x, size):
    """x cropped to size rows, with a Python branch on the sizes."""
    if x.shape[-1] > size:
        return x[..., :size]
    return x


torch.fx.wrap("build_grid")
torch.fx.wrap("crop_to")


class GridModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 4, stride=4)

    def forward(self, x):
        y = self.conv(x)
        grid = build_grid((y.shape[2], y.shape[3]), device=y.device)
        return grid.reshape(-1, 2) + crop_to(y.flatten(2).transpose(1, 2)[0], 2)


def test_a_wrapped_function_on_symbolic_sizes_runs_as_written():
    rep = ss.trace(GridModel(), "1,3,H,W")
    gh, gw = sympy.floor(H / 4), sympy.floor(W / 4)
    assert rep.output_shape == (gh * gw, 2)
    names = [layer.name for layer in rep.layers]
    assert "conv" in names and "build_grid.meshgrid" in names and "crop_to.getitem" in names, names
    assert [repr(c) for c in rep.domain] == ["H >= 4", "W >= 4"]
    points = [{"H": h, "W": w} for h, w in ((3, 8), (4, 4), (8, 13), (31, 17))]
    assert agrees(GridModel(), "1,3,H,W", points) == 3


# ---------------------------------------------------------------- list indices (advanced indexing)

ZIGZAG = [0, 1, 8, 16, 9, 2, 3, 10]  # the start of a JPEG zigzag order, as timm's csatv2 indexes its DCT


@pytest.mark.parametrize("fn, want", [
    (lambda x: x[:, :, ZIGZAG], (1, 3, 8, W)),
    (lambda x: x[:, :, [0, 2]], (1, 3, 2, W)),
    (lambda x: x[..., [-1, 0, 3]], (1, 3, H, 3)),
    (lambda x: x[:, [0, 1], 0, [1, 2]], (1, 2)),  # the int selects first: the two lists stay adjacent
    (lambda x: x[:, [0, 1], :, [1, 2]], (2, 1, H)),  # not adjacent: their shape goes first
    (lambda x: x[0, [0, 1], :, [1, 2]], (2, H)),
    (lambda x: x[:, [0, 1], None, [1, 2]], (2, 1, 1, W)),
    (lambda x: x[:, :, [[0, 1], [2, 3]]], (1, 3, 2, 2, W)),
    (lambda x: x[:, [0, 2], [[0], [1]]], (1, 2, 2, W)),
    (lambda x: x[:, [True, False, True]], (1, 2, H, W)),
    (lambda x: x[:, :, []], (1, 3, 0, W)),
    (lambda x: x[[0]][:, torch.tensor([2, 1])], (1, 2, H, W)),
    (lambda x: x[:, 1:, [5, -6], ::2], (1, 2, 2, sympy.floor((W + 1) / 2))),
    (lambda x: x[[[0], [1]]], (1, H, W)),  # a list of lists is read as a tuple of indices (torch 2.13, deprecated)
])
def test_list_index_as_torch(fn, want):
    rep = ss.trace(Call(fn), "1,3,H,W")
    assert rep.output_shape == want
    points = [{"H": h, "W": w} for h, w in ((1, 1), (2, 2), (3, 5), (4, 3), (5, 4), (6, 6), (17, 9))]
    assert agrees(Call(fn), "1,3,H,W", points, device="cpu") >= 1


def test_list_index_bounds_on_symbolic_and_fixed_dims():
    rep = ss.trace(Call(lambda x: x[:, :, ZIGZAG]), "1,3,H,W")
    assert [repr(c) for c in rep.domain] == ["H >= 17"]
    assert rep.domain[0].reason == "the list index's entries (0 to 16) must lie in [-size, size) of a dim of size H"
    assert not rep.violations(H=17, W=1) and rep.violations(H=16, W=1)
    assert isinstance(torch_out(Call(lambda x: x[:, :, ZIGZAG]), (1, 3, 16, 1), "cpu"), IndexError)
    rep = ss.trace(Call(lambda x: x[:, :, [5, -6]]), "1,3,H,W")
    assert [repr(c) for c in rep.domain] == ["H >= 6"]
    with pytest.raises(ss.ShapeError, match=r"index 3 is out of bounds for a dim of size 3 \(entries must lie in "
                                            r"\[-3, 2\]\)"):
        ss.trace(Call(lambda x: x[:, [0, 3]]), "1,3,H,W")
    with pytest.raises(ss.ShapeError, match=r"index -4 is out of bounds for a dim of size 3"):
        ss.trace(Call(lambda x: x[:, [-4]]), "1,3,H,W")
    with pytest.raises(ss.ShapeError, match=r"shape mismatch: indexing tensors could not be broadcast together "
                                            r"with shapes \(3,\), \(2,\)"):
        ss.trace(Call(lambda x: x[0, [0, 1, 2], [0, 1]]), "1,3,H,W")
    with pytest.raises(ss.ShapeError, match=r"the mask of 2 bools does not match the dim of size 3"):
        ss.trace(Call(lambda x: x[:, [True, False]]), "1,3,H,W")
    with pytest.raises(ss.ShapeError, match=r"a nested list index must be rectangular"):
        ss.trace(Call(lambda x: x[:, [[0, 1], [2]]]), "1,3,H,W")
    rep = ss.trace(Call(lambda x: x[:, :, [True, False, True]]), "1,3,H,W")
    assert rep.output_shape == (1, 3, 2, W) and [repr(c) for c in rep.domain] == ["H = 3"]


# ---------------------------------------------------------------- recurrent layers

N = ss.symbols("N")
RNNS = [
    (nn.LSTM(8, 16), "L,N,8", ((L, N, 16), ((1, N, 16), (1, N, 16))), 1536),
    (nn.LSTM(8, 16, batch_first=True, num_layers=2, bidirectional=True), "N,L,8",
     ((N, L, 32), ((4, N, 16), (4, N, 16))), 9216),
    (nn.LSTM(8, 16, proj_size=4, num_layers=2), "L,N,8", ((L, N, 4), ((2, N, 4), (2, N, 16))), 832 + 512 + 64),
    (nn.LSTM(8, 16, proj_size=4, bidirectional=True), "L,8", ((L, 8), ((2, 4), (2, 16))), 2 * 832),
    (nn.GRU(8, 16, num_layers=3), "L,N,8", ((L, N, 16), (3, N, 16)), 1152 + 1536 + 1536),
    (nn.GRU(8, 16, batch_first=True, bidirectional=True), "N,L,8", ((N, L, 32), (2, N, 16)), 2 * 1152),
    (nn.RNN(8, 16, nonlinearity="relu", bias=False), "L,8", ((L, 16), (1, 16)), 384),
    (nn.RNN(8, 16, num_layers=2, bidirectional=True), "L,N,8", ((L, N, 32), (4, N, 16)), 2 * (384 + 768)),
]


def _hand_count(m, length, n):
    """The gate matrix products, counted from the weights: each weight matrix (rows x cols) multiplies
    a vector of cols per step, per sample, per direction (bias excluded)."""
    return sum(w.shape[0] * w.shape[1] for name, w in m.named_parameters() if name.startswith("weight")) * length * n


@pytest.mark.parametrize("module, spec, want, per_step", RNNS)
def test_recurrent_as_torch(module, spec, want, per_step):
    rep = ss.trace(module, spec)
    assert rep.output_shape == want
    batched = spec.count(",") == 2
    assert rep.macs == per_step * L * (N if batched else 1)
    assert rep.macs.subs({L: 5, N: 3}) == _hand_count(module, 5, 3 if batched else 1)
    assert rep.domain == ()  # L >= 1 holds for every size symbol
    points = [{"L": length, "N": n} for length, n in ((1, 1), (5, 3), (2, 7))]
    assert agrees(module, spec, [{k: v for k, v in p.items() if k in spec} for p in points]) == 3
    # torch raises at L = 0 ("Expected sequence length to be larger than 0"): a sequence that can be empty
    dim = spec.split(",").index("L")
    seq = nn.Sequential(Call(lambda x: x.narrow(dim, 2, x.shape[dim] - 2)), module)
    rep = ss.trace(seq, spec)
    assert [repr(c) for c in rep.domain] == ["L >= 3"]
    assert rep.domain[0].reason == f"{type(module).__name__} needs a sequence length larger than 0"
    assert agrees(seq, spec, [{k: v for k, v in p.items() if k in spec} for p in [{"L": 2, "N": 1}, {"L": 3, "N": 2}]]) == 1
    assert isinstance(torch_out(module, tuple(0 if t == "L" else 1 if t == "N" else int(t) for t in spec.split(","))),
                      RuntimeError)


def test_recurrent_macs_on_the_cpu():
    # GRU and RNN decompose into addmm on the CPU too; the CPU's fused LSTM kernel counts nothing
    for module, spec, _, per_step in RNNS:
        shape = tuple(5 if t == "L" else 2 if t == "N" else int(t) for t in spec.split(","))
        got = torch_out(module, shape, "cpu", macs=True)[1]
        want = per_step * 5 * (2 if "N" in spec else 1)
        if isinstance(module, nn.LSTM) and not module.proj_size:
            assert got == 0
        else:
            assert got == want, module


class WithState(nn.Module):
    def __init__(self, rnn, batch_dim=1, states=None):
        super().__init__()
        self.rnn, self.batch_dim, self.states = rnn, batch_dim, states

    def forward(self, x):
        layers = self.rnn.num_layers * (2 if self.rnn.bidirectional else 1)
        h0 = x.new_zeros(layers, x.shape[self.batch_dim] if self.states is None else self.states, self.rnn.hidden_size)
        if isinstance(self.rnn, nn.LSTM):
            return self.rnn(x, (h0, h0.clone()))
        return self.rnn(x, h0)


def test_recurrent_with_given_state():
    rep = ss.trace(WithState(nn.LSTM(8, 16, num_layers=2)), "L,N,8")
    assert rep.output_shape == ((L, N, 16), ((2, N, 16), (2, N, 16)))
    assert agrees(WithState(nn.GRU(8, 16, bidirectional=True)), "L,3,8", [{"L": 1}, {"L": 4}]) == 2
    with pytest.raises(ss.ShapeError, match=r"GRU: expected hidden state of shape \(2, 3, 16\), got \(2, 4, 16\)"):
        ss.trace(WithState(nn.GRU(8, 16, bidirectional=True), states=4), "L,3,8")
    assert isinstance(torch_out(WithState(nn.GRU(8, 16, bidirectional=True), states=4), (2, 3, 8)), RuntimeError)
    rep = ss.trace(WithState(nn.RNN(8, 16), states=3), "L,N,8")
    assert [repr(c) for c in rep.domain] == ["N = 3"]


def test_recurrent_refusals():
    with pytest.raises(ss.ShapeError, match=r"LSTM: the input's last dim must be input_size=8, got 7"):
        ss.trace(nn.LSTM(8, 16), "L,N,7")
    assert isinstance(torch_out(nn.LSTM(8, 16), (2, 2, 7)), RuntimeError)
    with pytest.raises(ss.ShapeError, match=r"GRU: expected input to be 2-d \(L, input_size\) unbatched or 3-d "
                                            r"batched, got 4-d \(1, L, N, 8\)"):
        ss.trace(nn.GRU(8, 16), "1,L,N,8")
    rep = ss.trace(nn.RNN(8, 16), "L,N,C")
    assert [repr(c) for c in rep.domain] == ["C = 8"]


# ---------------------------------------------------------------- int() of a symbolic size

class RelPos(nn.Module):
    """timm SAM's get_rel_pos, reduced: a fixed table interpolated to 2·max(q, k) - 1 rows, sized by int()."""

    def __init__(self):
        super().__init__()
        self.rel_pos = nn.Parameter(torch.zeros(27, 8))

    def forward(self, x):
        q = x.shape[2]
        max_rel_dist = int(2 * max(q, q) - 1)
        table = F.interpolate(self.rel_pos.reshape(1, 27, -1).permute(0, 2, 1), size=max_rel_dist, mode="linear")
        return table.reshape(-1, max_rel_dist).permute(1, 0)


def test_int_of_a_symbolic_size_is_the_size():
    rep = ss.trace(RelPos(), "1,3,H,W")
    assert rep.output_shape == (2 * H - 1, 8)
    assert agrees(RelPos(), "1,3,H,W", [{"H": h, "W": 2} for h in (1, 2, 14, 15)]) == 4
    rep = ss.trace(RelPos(), "1,3,14,W")  # with H fixed the table keeps its size
    assert rep.output_shape == (27, 8)

    class Half(nn.Module):
        def forward(self, x):
            return x.new_zeros(int(x.shape[2] / 2))

    assert ss.trace(Half(), "1,3,H,W").output_shape == (sympy.floor(H / 2),)
    assert agrees(Half(), "1,3,H,W", [{"H": h, "W": 1} for h in (1, 2, 3, 8)]) == 4


# ---------------------------------------------------------------- one_hot

class PositionOneHot(nn.Module):
    """timm Gemma4's position embedding, reduced: one-hot positions times a table."""

    def __init__(self, classes=10):
        super().__init__()
        self.table = nn.Parameter(torch.zeros(2, classes, 6))
        self.classes = classes

    def forward(self, x):
        ids = torch.zeros(1, x.shape[2] * x.shape[3], 2, dtype=torch.long, device=x.device)
        hot = F.one_hot(ids, num_classes=self.classes).permute(0, 2, 1, 3).to(self.table)
        return (hot @ self.table).sum(dim=1)


def test_one_hot_as_torch():
    rep = ss.trace(PositionOneHot(), "1,3,H,W")
    assert rep.output_shape == (1, H * W, 6)
    assert rep.macs == 120 * H * W
    assert agrees(PositionOneHot(), "1,3,H,W", [{"H": 1, "W": 1}, {"H": 3, "W": 5}, {"H": 8, "W": 2}]) == 3
    with pytest.raises(ss.ShapeError, match=r"one_hot with num_classes=-1 takes the number of classes from the largest "
                                            r"value in the tensor, which a shape does not carry; pass num_classes"):
        ss.trace(Call(lambda x: F.one_hot(x.long())), "1,3,H,W")
    with pytest.raises(ss.ShapeError, match=r"one_hot's num_classes must be a fixed integer, got H"):
        ss.trace(Call(lambda x: F.one_hot(x.long(), x.shape[2])), "1,3,H,W")
