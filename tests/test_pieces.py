"""Piecewise reports: a forward that branches on the sizes with both sides running is traced once
per path; each piece holds where its branch conditions do, and every answer covers all pieces."""
import inspect
import itertools
import math
import json

import pytest
import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape as ss
from symshape.render.json import from_json
from symshape.symbols import size_symbol

H, W, L = size_symbol("H"), size_symbol("W"), size_symbol("L")


class ConvMlp(nn.Module):
    """timm's VGG head: a 7x7 conv, with the map first pooled up to 7 where it is smaller."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Conv2d(8, 16, 7)

    def forward(self, x):
        if x.shape[-2] < 7 or x.shape[-1] < 7:
            x = F.adaptive_avg_pool2d(x, (max(7, x.shape[-2]), max(7, x.shape[-1])))
        return self.fc1(x)


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.mlp = ConvMlp()

    def forward(self, x):
        return self.mlp(self.conv(x))


def _torch_shape(model, h, w):
    try:
        return tuple(model(torch.zeros(1, 3, h, w, device="meta")).shape)
    except Exception:
        return None


def test_both_sides_of_a_branch_are_pieces_with_their_own_formulas():
    rep = ss.trace(Head(), "1,3,H,W")
    assert [tuple(c.expr for c in p.branch) for p in rep.pieces] == [(H >= 13, W >= 13), (H >= 13, W <= 12), (H <= 12,)]
    assert [p.output_shape for p in rep.pieces] == [
        (1, 16, sympy.floor((H - 1) / 2) - 5, sympy.floor((W - 1) / 2) - 5),
        (1, 16, sympy.floor((H - 1) / 2) - 5, 1),
        (1, 16, 1, sympy.Max(7, sympy.floor((W - 1) / 2) + 1) - 6)]
    assert rep.output_shape == rep.pieces[0].output_shape and rep.domain == rep.pieces[0].domain
    assert [layer.name for layer in rep.pieces[2].layers] == ["conv", "mlp.adaptive_avg_pool2d", "mlp.fc1"]
    assert str(rep.pieces[1].branch[1]) == (
        "W <= 12  [layer 'mlp' (ConvMlp): the forward of 'mlp' (ConvMlp) branches on it at test_pieces.py:"
        f"{inspect.getsourcelines(ConvMlp.forward)[1] + 1}; "
        "the other side is another piece of the report (rep.pieces)]")


def test_every_answer_covers_every_piece_as_torch_runs():
    model = Head()
    rep = ss.trace(model, "1,3,H,W")
    assert str(rep.valid_inputs()) == "H ≥ 1, W ≥ 1"
    assert str(rep.inputs_for("mlp.fc1", (1, 1))) == "1 ≤ H ≤ 14, 1 ≤ W ≤ 14"
    for h, w in itertools.product(range(1, 31), (1, 5, 12, 13, 14, 15, 40)):
        want = _torch_shape(model, h, w)
        assert rep.violations(H=h, W=w) == []
        assert rep.at(H=h, W=w).output_shape == want, (h, w)
        assert ((h, w) in rep.inputs_for("mlp.fc1", (1, 1))) == (want[2:] == (1, 1))
    assert rep.at(H=5).pieces == ()  # H = 5 selects the third piece whatever W is
    assert rep.at(H=5).output_shape == (1, 16, 1, sympy.Max(7, sympy.floor((W - 1) / 2) + 1) - 6)
    assert len(rep.at(W=5).pieces) == 2  # W = 5: the second or the third piece, by H


def test_check_compares_each_size_with_the_piece_that_holds_there():
    model = Head()
    res = ss.check(model, ss.trace(model, "1,3,H,W"))
    assert res.ok, str(res)
    points = {(p["H"] >= 13, p["W"] >= 13) for p in res.sizes} if hasattr(res, "sizes") else None
    assert points is None or len(points) >= 3


def test_conditions_on_formulas_answer_for_the_first_piece_and_say_so():
    rep = ss.trace(Head(), "1,3,H,W")
    answer = rep.solve(rep.macs <= 10 ** 6)
    assert answer.note == ("the model is piecewise and these conditions are on the formulas of its first "
                           "piece, so the answer covers only the sizes where H >= 13, W >= 13; ask the others "
                           "with rep.pieces[k].solve(...)")
    assert answer.note in str(answer) and "piecewise" in answer.to_latex()
    assert str(rep.solve(W <= 20, H <= 3)) == "1 ≤ H ≤ 3, 1 ≤ W ≤ 20"  # on the sizes: every piece


def test_summary_and_json_show_the_pieces():
    rep = ss.trace(Head(), "1,3,H,W")
    text = str(rep)
    assert ("piecewise: the forward branches on the sizes and 3 paths run (rep.pieces); the table, the totals "
            "and 'runs when' above are piece 1's") in text
    assert "  piece 3 where H <= 12: output (1, 16, 1, Max(7, floor((W - 1)/2) + 1) - 6), MACs " in text
    back = from_json(rep.to_json())
    assert [p.branch for p in back.pieces] == [p.branch for p in rep.pieces]
    assert [p.output_shape for p in back.pieces] == [p.output_shape for p in rep.pieces]
    assert str(back.valid_inputs()) == "H ≥ 1, W ≥ 1"
    assert "pieces" in json.loads(rep.to_json())


class RaisesLater(nn.Module):
    """The other side runs past the branch, then raises: not a piece but a domain condition."""

    def forward(self, x):
        if x.shape[-1] >= 8:
            x = F.max_pool1d(x, 2)
        else:
            x = x * 2
            if x.shape[-1] > 0:
                raise ValueError("too short")
        return x


def test_a_side_that_always_raises_is_no_piece():
    rep = ss.trace(RaisesLater(), "1,2,L")
    assert rep.pieces == ()
    (cond,) = [c for c in rep.domain if c.layer == ""]
    line = inspect.getsourcelines(RaisesLater.forward)[1]
    assert str(cond) == (
        f"L >= 8  [layer '' (RaisesLater): the forward of the model (RaisesLater) branches on it at test_pieces.py:{line + 1}; "
        "the other side fails: the model (RaisesLater) got input (1, 2, L): running its forward on symbolic sizes raised "
        f"ValueError at test_pieces.py:{line + 6}: `raise ValueError(\"too short\")`: too short; on every branch of the size "
        "conditions tried]")
    assert str(rep.valid_inputs()) == "L ≥ 8"
    assert ss.check(RaisesLater(), rep).ok


def test_the_path_traced_first_is_a_piece_and_each_other_side_is_traced_once(monkeypatch):
    """The trace goes on past a branch whose other side runs too: the path it takes is the first
    piece (not traced again with its conditions assumed), and each other side is traced once, with
    the sides taken before it assumed. Each piece is what a trace with its branch assumed gives."""
    import importlib

    tracing = importlib.import_module("symshape.trace")
    real, calls = tracing._trace_piece, []

    def counted(model, shape, assumed, memo=None):
        calls.append(tuple(c.expr for c in assumed))
        return real(model, shape, assumed, memo)

    monkeypatch.setattr(tracing, "_trace_piece", counted)
    model = Head()
    rep = ss.trace(model, "1,3,H,W")
    assert calls == [(), (H >= 13, W <= 12), (H <= 12,)]
    assert [tuple(c.expr for c in p.branch) for p in rep.pieces] == [(H >= 13, W >= 13), (H >= 13, W <= 12), (H <= 12,)]
    for piece in rep.pieces:
        alone = real(model, piece.input_shape, piece.branch, {})
        assert alone.output_shape == piece.output_shape
        assert [(layer.name, layer.out_shape, layer.macs) for layer in alone.layers] == [
            (layer.name, layer.out_shape, layer.macs) for layer in piece.layers]
        assert {c.expr for c in alone.domain} == {c.expr for c in piece.domain}
    assert [c.reason.rsplit("; ", 1)[-1] for c in rep.pieces[0].branch] == [
        "the other side is another piece of the report (rep.pieces)"] * 2


class Tail(nn.Module):
    """Both paths pool the map by 8 after the branch (W >= 8 on each): the slices are equal only where
    that holds (Min(8, W) = 8*floor(W/8) for 8 <= W <= 15, not below), so the paths are compared where
    the conditions both add hold, and a relation with no period (a Min) at each size a bounded region
    leaves."""

    def forward(self, x):
        w = x.shape[-1]
        y = x[..., :8] if w <= 15 else x[..., :8 * (w // 8)]
        return F.avg_pool1d(y, 8)


def test_paths_equal_where_the_conditions_they_both_add_hold_are_one_formula():
    model = Tail()
    rep = ss.trace(model, "1,1,W")
    assert rep.pieces == ()
    assert rep.output_shape == (1, 1, sympy.floor(W / 8))
    assert [c.expr for c in rep.domain] == [W >= 8]
    for w in range(1, 40):
        want = _torch_shape_1d(model, w)
        assert (rep.violations(W=w) == []) == (want is not None), w
        if want is not None:
            assert rep.at(W=w).output_shape == want, w
    assert ss.check(model, rep).ok


def _torch_shape_1d(model, w):
    try:
        return tuple(model(torch.zeros(1, 1, w)).shape)
    except Exception:
        return None


class Windows(nn.Module):
    """efficientvit's window attention: a branch on a stage size equal to the window, at two stages.
    The domain of the first branch decides the second (floor(H/2) = 7 and floor(H/4) = 7 exclude
    each other), which must not exclude sizes where torch runs."""

    def forward(self, x):
        x = F.max_pool2d(x, 2)
        x = x * 2 if x.shape[-2] == 7 else F.pad(x, (0, 0, 0, 1))
        x = F.max_pool2d(x, 2)
        x = x * 2 if x.shape[-2] == 7 else F.pad(x, (0, 0, 0, 1))
        return x


def test_a_branch_the_domain_decides_is_not_a_new_piece():
    model = Windows()
    rep = ss.trace(model, "1,1,H,W")
    assert str(rep.valid_inputs()) == "H ≥ 2, W ≥ 4"
    for h, w in itertools.product(range(1, 70), (3, 4, 9)):
        want = _torch_shape_1(model, h, w)
        assert (rep.violations(H=h, W=w) == []) == (want is not None), (h, w)
        if want is not None:
            assert rep.at(H=h, W=w).output_shape == want, (h, w)
    assert ss.check(model, rep).ok


def _torch_shape_1(model, h, w):
    try:
        return tuple(model(torch.zeros(1, 1, h, w)).shape)
    except Exception:
        return None


class Many(nn.Module):
    def forward(self, x):
        n = x.shape[-1]
        for k in (3, 5, 7, 11):
            x = F.pad(x, (0, k)) if n % k == 0 else x
        return x


class ManyAlike(nn.Module):
    def forward(self, x):
        for k in (3, 5, 7, 11):
            x = x * 2 if x.shape[-1] % k == 0 else x + 1
        return x


def test_branches_whose_paths_do_alike_ops_are_one_formula():
    """x * 2 or x + 1: the same shapes at no cost on every path, so no piece of its own."""
    rep = ss.trace(ManyAlike(), "1,L")
    assert rep.pieces == () and rep.output_shape == (1, L) and rep.domain == ()
    for n in (1, 3, 15, 105, 1155):
        assert tuple(ManyAlike()(torch.zeros(1, n)).shape) == rep.at(L=n).output_shape


def test_more_than_eight_pieces_is_refused_with_the_reason():
    with pytest.raises(ss.ShapeError) as err:
        ss.trace(Many(), "1,L")
    assert str(err.value).startswith("the model (Many) got input (1, L): its forward branches on the sizes (")
    assert str(err.value).endswith("and the other branch runs too; its branches on the sizes split it into more "
                                   "than 8 pieces, each traced on its own: register a shape rule for the module "
                                   "that branches (@symshape.register), or fix the size it branches on in the "
                                   "input spec")


class WindowAttention(nn.Module):
    """Swin/TinyViT-style windows: pad to a multiple of the window only where needed. Where nothing
    is padded the padding path gives what the other gives, so the branches are no pieces."""

    def __init__(self, ws=7):
        super().__init__()
        self.ws, self.proj = ws, nn.Linear(16, 16)

    def forward(self, x):
        B, H, W, C = x.shape
        pad_b = (self.ws - H % self.ws) % self.ws
        pad_r = (self.ws - W % self.ws) % self.ws
        padding = pad_b > 0 or pad_r > 0
        if padding:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        pH, pW = H + pad_b, W + pad_r
        nH, nW = pH // self.ws, pW // self.ws
        x = x.view(B, nH, self.ws, nW, self.ws, C).transpose(2, 3).reshape(B * nH * nW, self.ws * self.ws, C)
        x = self.proj(x)
        x = x.view(B, nH, nW, self.ws, self.ws, C).transpose(2, 3).reshape(B, pH, pW, C)
        if padding:
            x = x[:, :H, :W].contiguous()
        return x


class TwoStages(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.a, self.b = nn.Conv2d(3, 16, 3, stride=2), WindowAttention(), WindowAttention()

    def forward(self, x):
        x = self.a(self.conv(x).permute(0, 2, 3, 1))
        return self.b(F.max_pool2d(x.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1))


def test_a_branch_whose_sides_give_the_same_is_neither_a_piece_nor_a_condition():
    model = TwoStages()
    rep = ss.trace(model, "1,3,H,W")
    assert rep.pieces == ()
    assert str(rep.valid_inputs()) == "H ≥ 5, W ≥ 5"
    assert all("path" not in c.reason and "branches" not in c.reason for c in rep.domain)
    assert [layer.name for layer in rep.layers if layer.kind == "pad"] == ["a.pad", "b.pad"]
    for h, w in itertools.product(range(1, 60), (3, 5, 14, 16, 17, 30)):
        try:
            want = tuple(model(torch.zeros(1, 3, h, w)).shape)
        except RuntimeError:
            want = None
        assert (rep.violations(H=h, W=w) == []) == (want is not None), (h, w)
        if want is not None:
            assert rep.at(H=h, W=w).output_shape == want, (h, w)
    assert ss.check(model, rep).ok


def test_a_layer_only_one_path_runs_counts_where_torch_runs_it(monkeypatch):
    """The merged report lists the padding path's pad and crop; each carries where it runs (the
    regions of the paths that run it), so the activations at given sizes count it only where torch
    pads, and the symbolic totals say they are an upper bound."""
    model = TwoStages()
    rep = ss.trace(model, "1,3,H,W")
    partial = [layer.name for layer in rep.partial]
    assert partial == ["a.pad", "a.getitem", "a.contiguous", "b.pad", "b.getitem", "b.contiguous"]
    assert rep.partial_note == ("activations and memory are an upper bound: a.pad, a.getitem, a.contiguous and 3 "
                                "more run only where a branch of their module takes one side (Layer.only) and count "
                                "here at every size; rep.at(...) leaves out those torch skips at its sizes")
    assert all(rep.partial_note in text for text in (str(rep), rep.summary(depth=1), str(rep.memory())))
    pads = []
    real_pad = F.pad
    monkeypatch.setattr(F, "pad", lambda *a, **k: pads.append(1) or real_pad(*a, **k))
    for h, w in itertools.product(range(5, 40), (5, 14, 15, 16, 30)):
        pads.clear()
        model(torch.zeros(1, 3, h, w))
        at = rep.at(H=h, W=w)
        assert sum(layer.activations != 0 for layer in at.layers if layer.kind == "pad") == len(pads), (h, w)
        assert at.partial == ()
    at = rep.at(H=16, W=16)  # nothing is padded: the pads' outputs are not counted
    assert at.activations == sum(layer.activations for layer in at.layers if layer.only is None)
    assert at.activations < rep.activations.subs({H: 16, W: 16})
    back = from_json(rep.to_json())
    assert [layer.only for layer in back.layers] == [layer.only for layer in rep.layers]


class Mixed(nn.Module):
    """A branch whose sides differ (a piece each) above one whose sides merge (pad to a multiple of 4)."""

    def forward(self, x):
        if x.shape[-1] >= 16:
            x = F.max_pool1d(x, 2)
        pad = (4 - x.shape[-1] % 4) % 4
        if pad > 0:
            x = F.pad(x, (0, pad))
        return F.avg_pool1d(x, 4)


def test_a_layer_only_one_path_runs_where_the_call_merges_in_part(monkeypatch):
    """Where a call's paths merge only in part, each merged part is one piece's path: its pad carries
    the regions of every path that pads, of which only its own meets the piece's domain."""
    model = Mixed()
    rep = ss.trace(model, "1,2,L")
    assert [tuple(c.expr for c in p.branch) for p in rep.pieces] == [(L >= 16,), (L <= 15,)]
    assert all([layer.name for layer in p.partial] == ["pad"] for p in rep.pieces)
    pads = []
    real_pad = F.pad
    monkeypatch.setattr(F, "pad", lambda *a, **k: pads.append(1) or real_pad(*a, **k))
    for n in range(4, 80):
        pads.clear()
        model(torch.zeros(1, 2, n))
        at = rep.at(L=n)
        assert sum(layer.activations != 0 for layer in at.layers if layer.kind == "pad") == len(pads), n


def test_paths_that_differ_are_not_taken_for_a_side_no_size_takes():
    """explore's merge: below a branch, two paths that do not merge ("apart") are not an empty side
    (both were None once, and the other side was then followed as if it were the only one)."""
    from symshape.explore import Leaf, Node, inert_conditions
    from symshape.report import Layer

    def leaf(w, region):
        layer = Layer("fc", "Linear", ((1, w),), (1, w), 0, 3 * w)
        return Leaf(tuple(region), (1, w), (layer,), ())

    a, b = sympy.Ge(W, 8), sympy.Ge(H, 8)
    apart = Node("m", a, True, {True: leaf(W, [a, b]), False: leaf(2 * W, [sympy.Lt(W, 8), b])})
    tree = Node("m", b, True, {True: apart, False: leaf(W, [sympy.Lt(H, 8)])})
    assert inert_conditions(tree) == {}
    empty = Node("m", a, True, {True: leaf(W, [a, b]), False: None})  # no size takes W < 8 there
    assert inert_conditions(Node("m", b, True, {True: empty, False: leaf(W, [sympy.Lt(H, 8)])})) == {
        ("m", a): True, ("m", b): True}


class ShiftedWindows(nn.Module):
    """torchvision's swin: the window shift is dropped in a dim the window covers; where either shift
    is left, a mask is written slice by slice (``mask[h0:h1, w0:w1] = count``). The four paths give
    the same shapes, so the branches are no pieces, though two of them have as many layers."""

    def __init__(self, ws=4, shift=2):
        super().__init__()
        self.ws, self.shift, self.proj = ws, shift, nn.Linear(8, 8)

    def forward(self, x):
        B, H, W, C = x.shape
        ws = self.ws
        x = F.pad(x, (0, 0, 0, (ws - W % ws) % ws, 0, (ws - H % ws) % ws))
        _, pH, pW, _ = x.shape
        shift = [self.shift, self.shift]
        if ws >= pH:
            shift[0] = 0
        if ws >= pW:
            shift[1] = 0
        if sum(shift) > 0:
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        n = (pH // ws) * (pW // ws)
        x = x.view(B, pH // ws, ws, pW // ws, ws, C).permute(0, 1, 3, 2, 4, 5).reshape(B * n, ws * ws, C)
        attn = x @ x.transpose(1, 2)
        if sum(shift) > 0:
            mask = x.new_zeros((pH, pW))
            count = 0
            for h in ((0, -ws), (-ws, -shift[0]), (-shift[0], None)):
                for w in ((0, -ws), (-ws, -shift[1]), (-shift[1], None)):
                    mask[h[0]:h[1], w[0]:w[1]] = count
                    count += 1
            mask = mask.view(pH // ws, ws, pW // ws, ws).permute(0, 2, 1, 3).reshape(n, ws * ws)
            attn = attn.view(B, n, ws * ws, ws * ws) + (mask.unsqueeze(1) - mask.unsqueeze(2)).unsqueeze(0)
            attn = attn.view(-1, ws * ws, ws * ws)
        x = self.proj(attn.softmax(-1) @ x)
        x = x.view(B, pH // ws, pW // ws, ws, ws, C).permute(0, 1, 3, 2, 4, 5).reshape(B, pH, pW, C)
        if sum(shift) > 0:
            x = torch.roll(x, shifts=(shift[0], shift[1]), dims=(1, 2))
        return x[:, :H, :W, :].contiguous()


def test_shifted_windows_whose_paths_have_as_many_layers_merge_into_one_formula():
    """Where the shift is kept in one dim only, each of the two sides has as many layers; the nodes
    that branch on the W condition (one with the H shift, one without) must agree on a side that gives
    the other's results, or the branches became pieces (torchvision's swin_t: more than 8)."""
    model = ShiftedWindows()
    rep = ss.trace(model, "1,H,W,8")
    assert rep.pieces == ()
    assert rep.output_shape == (1, H, W, 8)
    assert str(rep.valid_inputs()) == "H ≥ 1, W ≥ 1"
    assert [layer.kind for layer in rep.layers].count("setitem") == 9
    for h, w in itertools.product(range(1, 14), range(1, 14)):
        assert rep.at(H=h, W=w).output_shape == tuple(model(torch.zeros(1, h, w, 8)).shape), (h, w)
    assert ss.check(model, rep).ok


def test_a_verdict_keeps_the_sides_every_node_allows():
    """explore's merge: a node whose two paths each give the other's results allows both sides; the
    verdict is the side every node branching on the condition allows."""
    from symshape.explore import Leaf, Node, inert_conditions
    from symshape.report import Layer

    def leaf(shift, region, layers=1):
        return Leaf(tuple(region), (1, W), tuple(Layer(f"roll_{i}", "roll", ((1, W),), (1, W), 0, 0,
                                                       attrs={"shift": shift}) for i in range(layers)), ())

    a, b = sympy.Ge(W, 8), sympy.Ge(H, 8)
    both = Node("m", a, True, {True: leaf(3, [a, b]), False: leaf(0, [sympy.Lt(W, 8), b])})
    rich_false = Node("m", a, True, {True: leaf(0, [a, sympy.Lt(H, 8)]),
                                     False: leaf(0, [sympy.Lt(W, 8), sympy.Lt(H, 8)], layers=2)})
    assert inert_conditions(Node("m", b, True, {True: both, False: rich_false})) == {("m", a): False, ("m", b): False}
    rich_true = Node("m", a, True, {True: leaf(0, [a, sympy.Lt(H, 8)], layers=2),
                                    False: leaf(0, [sympy.Lt(W, 8), sympy.Lt(H, 8)])})
    assert inert_conditions(Node("m", b, True, {True: rich_true, False: rich_false})) == {}


class PatchesInTraining(nn.Module):
    """timm's MobileViT block in training: the map is interpolated up to a multiple of the patch only
    where it is not one, then normalised with BatchNorm (more than one value per channel). The
    paths' BatchNorm conditions are written on different sizes (the interpolated and the given one),
    equal where a path runs, so the branches are no pieces."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4)

    def forward(self, x):
        x = self.conv(x)
        B, C, H, W = x.shape
        new_h, new_w = math.ceil(H / 4) * 4, math.ceil(W / 4) * 4
        interpolate = new_h != H or new_w != W
        if interpolate:
            x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False)
        x = x.reshape(B, C, new_h // 4, 4, new_w // 4, 4).transpose(3, 4).reshape(B, C, new_h, new_w)
        if interpolate:
            x = F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False)
        return self.bn(x)


def test_conditions_written_on_different_sizes_that_agree_on_a_path_merge():
    model = PatchesInTraining().train()
    rep = ss.trace(model, "N,3,H,W")
    assert rep.pieces == ()
    N = size_symbol("N")
    assert [c.expr for c in rep.domain] == [N * (sympy.floor((H - 1) / 2) + 1) * (sympy.floor((W - 1) / 2) + 1) >= 2]
    for n, h, w in itertools.product((1, 2), range(1, 12), range(1, 12)):
        try:
            want = tuple(model(torch.zeros(n, 3, h, w)).shape)
        except ValueError:
            want = None
        assert (rep.violations(N=n, H=h, W=w) == []) == (want is not None), (n, h, w)
        if want is not None:
            assert rep.at(N=n, H=h, W=w).output_shape == want, (n, h, w)


class WindowOrWhole(nn.Module):
    """timm's efficientvit LocalWindowAttention: a map of exactly one window goes to the attention
    as it is, any other is padded and cut into windows. The attention adds a bias over the window's
    ws² positions, so its path asks for N = ws² and its MACs are a square of the map's floors; on
    the one-window region the windowed path gives the same (every point evaluated: H, W in 13..16)."""

    def __init__(self, ws=4):
        super().__init__()
        self.ws, self.conv = ws, nn.Conv2d(3, 8, 3, stride=4, padding=1)
        self.bias = nn.Parameter(torch.zeros(ws * ws, ws * ws))

    def attn(self, x):
        q = x.flatten(2)
        a = (q.transpose(-2, -1) @ q) + self.bias
        return (q @ a.softmax(-1)).view(x.shape)

    def forward(self, x):
        x = self.conv(x)
        B, C, H, W = x.shape
        ws = self.ws
        if H == ws and W == ws:
            return self.attn(x)
        x = x.permute(0, 2, 3, 1)
        pad_b, pad_r = (ws - H % ws) % ws, (ws - W % ws) % ws
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        pH, pW = H + pad_b, W + pad_r
        x = x.view(B, pH // ws, ws, pW // ws, ws, C).transpose(2, 3).reshape(-1, ws, ws, C).permute(0, 3, 1, 2)
        x = self.attn(x)
        x = x.permute(0, 2, 3, 1).view(B, pH // ws, pW // ws, ws, ws, C).transpose(2, 3).reshape(B, pH, pW, C)
        return x[:, :H, :W].contiguous().permute(0, 3, 1, 2)


def test_a_window_path_that_is_the_whole_map_on_a_finite_region_merges():
    model = WindowOrWhole()
    rep = ss.trace(model, "1,3,H,W")
    assert rep.pieces == ()
    assert str(rep.valid_inputs()) == "H ≥ 1, W ≥ 1"
    for h, w in itertools.product(range(1, 40, 3), (1, 13, 14, 16, 17, 30)):
        assert rep.at(H=h, W=w).output_shape == tuple(model(torch.zeros(1, 3, h, w)).shape), (h, w)
    assert ss.check(model, rep, sizes=[{"H": 16, "W": 16}, {"H": 13, "W": 15}, {"H": 30, "W": 14}]).ok


class WholeOrWindows(nn.Module):
    """timm's TinyViT block: a map of exactly one window goes to the attention as a sequence
    (``x.reshape(B, L, C)``), any other is padded and cut into windows; after it, a view back to the
    map, a depthwise conv and the block's own last view. The direct path's layers are matched to the
    windowed path's that give the same output (the window cut's reshape, the window reverse's), never
    past a layer that counts MACs (the last view, after the conv, gives the map too)."""

    def __init__(self, ws=4, c=8):
        super().__init__()
        self.ws, self.proj, self.conv = ws, nn.Linear(c, c), nn.Conv2d(c, c, 3, padding=1, groups=c)

    def forward(self, x):
        B, H, W, C = x.shape
        ws, shortcut = self.ws, x
        if H == ws and W == ws:
            x = self.proj(x.reshape(B, H * W, C)).view(B, H, W, C)
        else:
            pad_b, pad_r = (ws - H % ws) % ws, (ws - W % ws) % ws
            if pad_b > 0 or pad_r > 0:
                x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
            pH, pW = H + pad_b, W + pad_r
            x = x.view(B, pH // ws, ws, pW // ws, ws, C).transpose(2, 3).reshape(-1, ws * ws, C)
            x = self.proj(x)
            x = x.view(B, pH // ws, pW // ws, ws, ws, C).transpose(2, 3).reshape(B, pH, pW, C)
            if pad_b > 0 or pad_r > 0:
                x = x[:, :H, :W].contiguous()
        x = self.conv((shortcut + x).permute(0, 3, 1, 2))
        return x.permute(0, 2, 3, 1).reshape(B, H * W, C).view(B, H, W, C)


def test_a_direct_path_matches_the_windowed_path_layer_by_output_up_to_the_next_macs():
    model = WholeOrWindows()
    rep = ss.trace(model, "1,H,W,8")
    assert rep.pieces == ()
    assert rep.output_shape == (1, H, W, 8)
    assert str(rep.valid_inputs()) == "H ≥ 1, W ≥ 1"
    for h, w in itertools.product(range(1, 13), range(1, 13)):
        want = model(torch.zeros(1, h, w, 8))
        assert rep.at(H=h, W=w).output_shape == tuple(want.shape), (h, w)
    assert ss.check(model, rep, sizes=[{"H": 4, "W": 4}, {"H": 4, "W": 5}, {"H": 9, "W": 4}]).ok


@torch.fx.wrap
def windowed(x, window: int):
    """torchvision's shifted_window_attention in small: pad to a multiple of the window where the
    map is not one, attend within windows, crop back."""
    B, L, C = x.shape
    pad = (window - L % window) % window
    if pad > 0:
        x = F.pad(x, (0, 0, 0, pad))
    n = x.shape[1] // window
    w = x.reshape(B * n, window, C)
    w = (w @ w.transpose(1, 2)).softmax(-1) @ w
    return w.reshape(B, n * window, C)[:, :L]


class WindowBlocks(nn.Module):
    def __init__(self, depth=4):
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(8, 8) for _ in range(depth))

    def forward(self, x):
        for block in self.blocks:
            x = windowed(block(x), 4)
        return x


def test_a_function_called_by_every_block_is_explored_once(monkeypatch):
    """The paths of a function whose result depends on its arguments alone are traced once; the
    other calls with the same arguments under the same domain take its verdicts under their own
    names (and record nothing twice)."""
    from symshape.explore import Paths

    explored, real = [], Paths._paths

    def counted(self, module, frame, *rest):
        if not rest[3]:  # the call's root (nothing forced yet), not one of its paths
            explored.append(frame[0])
        return real(self, module, frame, *rest)

    monkeypatch.setattr(Paths, "_paths", counted)
    model = WindowBlocks()
    rep = ss.trace(model, "1,L,8")
    assert explored == ["windowed"]
    assert rep.pieces == () and rep.output_shape == (1, L, 8)
    kinds = [layer.kind for layer in rep.layers]
    assert kinds.count("pad") == 4 and kinds.count("Linear") == 4
    assert [layer.name for layer in rep.partial] == ["windowed.pad", "windowed_1.pad", "windowed_2.pad", "windowed_3.pad"]
    for n in (1, 3, 4, 9, 16):
        assert rep.at(L=n).output_shape == tuple(model(torch.zeros(1, n, 8)).shape)
    assert ss.check(model, rep).ok
