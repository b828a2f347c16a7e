"""rep.dynamic_shapes() against torch.export itself: export succeeds with it, the exported
program runs at sizes of the box and refuses sizes just outside it, and export's range
constraints give exactly the box symshape solved for."""
import random

import pytest
import sympy
import torch
from torch.export import export
from torch.utils._sympy.numbers import int_oo

import symshape as ss
from symshape.export import export_boxes, export_sizes
from symshape.sets import IntSet


def _accepted(ep, dim):
    """The sizes export's range constraints allow for input dim *dim*, as an IntSet (the
    input's size is an expression a*s + b of a root symbol s with a range)."""
    node = next(n for n in ep.graph.nodes if n.op == "placeholder" and n.name in ep.graph_signature.user_inputs)
    size = node.meta["val"].shape[dim]
    expr = size.node.expr if isinstance(size, torch.SymInt) else sympy.Integer(size)
    if not expr.free_symbols:
        return IntSet.interval(int(expr), int(expr))
    (s,) = expr.free_symbols
    vr = ep.range_constraints[s]
    a, b = (int(c) for c in sympy.Poly(expr, s).all_coeffs())
    lo = a * int(vr.lower) + b
    hi = None if vr.upper == int_oo else a * int(vr.upper) + b
    return IntSet.congruence(a, b, lo=lo, hi=hi)


def _sample(piece, rng, n=3):
    """A few sizes of the piece (lo, hi, m, r): its first two, its last, and random ones."""
    lo, hi, m, _ = piece
    top = hi if hi is not None else lo + 20 * m
    values = {lo, min(lo + m, top), top}
    values |= {lo + m * rng.randrange((top - lo) // m + 1) for _ in range(n)}
    return sorted(values)


def check_export(model, spec, box=None, rng_seed=0, samples=4):
    """Export *model* with rep.dynamic_shapes(); check range constraints and runs. Returns the box."""
    model = model.eval()
    rep = ss.trace(model, spec)
    sizes = export_sizes(rep)
    boxes = export_boxes(sizes)
    chosen = boxes[0] if box is None else box
    dyn = rep.dynamic_shapes(box=None if len(boxes) == 1 else {
        s.name: p[0] for s, p in zip(sizes.free, chosen)})
    rng = random.Random(rng_seed)
    pieces = dict(zip(sizes.free, chosen))

    def shape_at(values):
        return tuple(int(ss.Shape([d]).subs(values)[0]) for d in rep.input_shape)

    example = {s: (p[0] + (p[2] if p[1] is None or p[0] + p[2] <= p[1] else 0)) for s, p in pieces.items()}
    ep = export(model, (torch.randn(shape_at(example)),), dynamic_shapes=dyn)
    for i, d in enumerate(rep.input_shape):
        if d.free_symbols:
            (s,) = d.free_symbols
            assert _accepted(ep, i) == IntSet([pieces[s]]), (i, ep.range_constraints)
    runner = ep.module()
    names = list(pieces)
    grids = [_sample(pieces[s], rng) for s in names]
    points = [tuple(rng.choice(g) for g in grids) for _ in range(samples)]
    points += [tuple(g[0] for g in grids), tuple(g[-1] for g in grids)]
    for point in dict.fromkeys(points):
        values = dict(zip(names, point))
        with torch.no_grad():
            out = runner(torch.randn(shape_at(values)))
        want = rep.at({s.name: v for s, v in values.items()}).output_shape
        assert tuple(out.shape) == tuple(int(v) for v in want), (values, out.shape, want)
    # just below the box in each size: refused by the exported program
    for s, (lo, hi, m, r) in pieces.items():
        below = lo - m
        if below >= 1:
            values = {**{t: g[0] for t, g in zip(names, grids)}, s: below}
            with pytest.raises(Exception):
                runner(torch.randn(shape_at(values)))
    return rep, chosen


@pytest.mark.slow
def test_padded_unet_exports_with_derived_dims():
    rep, chosen = check_export(ss.zoo.unet_same(), "1,1,H,W", samples=2)
    assert str(rep.dynamic_shapes()) == "({2: 16*H_16, 3: 16*W_16},)"
    (h, w), = [rep.dynamic_shapes()[0][2], rep.dynamic_shapes()[0][3]],
    assert (h.root.min, h.root.max, w.root.min) == (2, int_oo, 2)  # H ≥ 32: at H = 16 the bottleneck is 1×1
    assert chosen == ((32, None, 16, 0), (32, None, 16, 0))


def test_lenet_box_and_a_congruence_with_an_offset():
    rep, chosen = check_export(ss.zoo.lenet5(), "1,1,H,W")
    assert chosen == ((32, 35, 1, 0), (32, 35, 1, 0))
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, (1, 3), stride=(1, 4)), torch.nn.Flatten(), torch.nn.Linear(2 * 5, 3))
    rep = ss.trace(net, "1,1,1,W")  # floor((W - 3)/4) + 1 = 5: 19 <= W <= 22
    assert str(rep.valid_inputs()) == "19 ≤ W ≤ 22"
    (dims,) = rep.dynamic_shapes()
    assert str(dims) == "{3: Dim('W', min=19, max=22)}"


def test_offset_congruence():
    """H ≡ 3 (mod 4) becomes 4*Dim + 3 where the root can start at 2, else 4*Dim - 5 (root ≥ 2 as
    export needs, so H = 3 stays in)."""
    from symshape.export import _dim

    rep = ss.trace(torch.nn.Identity(), "1,1,H,4")
    (H,) = rep.symbols
    for lo, text in ((3, "4*H_4 - 5"), (11, "4*H_4 + 3")):
        sizes = rep.solve(sympy.Eq(ss.mod(H, 4), 3), bounds=(lo, None))
        assert str(sizes) == f"H ≡ 3 (mod 4), H ≥ {lo}"
        dim = _dim("H", sizes.boxes[0][0].pieces[0])
        assert str(dim) == text and dim.root.min == 2
        ep = export(torch.nn.Identity(), (torch.randn(1, 1, lo + 4, 4),), dynamic_shapes=({2: dim},))
        assert _accepted(ep, 2) == sizes.boxes[0][0]
        for h in (lo, lo + 4, lo + 40):
            assert tuple(ep.module()(torch.randn(1, 1, h, 4)).shape) == (1, 1, h, 4)
        if lo > 4:  # below the range: refused (torch 2.13's exported program checks ranges, not steps)
            with pytest.raises(AssertionError, match="Guard failed"):
                ep.module()(torch.randn(1, 1, lo - 4, 4))


def test_several_boxes_need_a_choice():
    rep = ss.trace(ss.zoo.seed_case1(), "1,3,H,W")
    with pytest.raises(ss.ShapeError) as e:
        rep.dynamic_shapes()
    assert str(e.value) == (
        "the sizes torch.export can take are 3 separate boxes, and torch.export takes one range (and one step) "
        "per size: choose one with box=: box=0: H ∈ {7, 8}, W ∈ {343, 344}; box=1: H ∈ {31, 32}, W ∈ {31, 32}; "
        "box=2: H ∈ {343, 344}, W ∈ {7, 8}; or pass box={name: size, ...} for the box that holds those sizes")
    assert str(rep.dynamic_shapes(box=1)) == str(rep.dynamic_shapes(box={"H": 32, "W": 31}))
    with pytest.raises(ss.ShapeError, match=r"^no box of the sizes torch.export can take holds H=28, W=28; they"):
        rep.dynamic_shapes(box={"H": 28, "W": 28})
    with pytest.raises(ss.ShapeError, match=r"^box= takes an index from 0 to 2 or a dict of sizes, got 3$"):
        rep.dynamic_shapes(box=3)
    with pytest.raises(ss.ShapeError, match=r"^box= takes a size for each of H, W, got \{'H': 32\}$"):
        rep.dynamic_shapes(box={"H": 32})
    with pytest.raises(ss.ShapeError, match=r"^box= takes a size for each of H, W, got \{'X': 1\}$"):
        rep.dynamic_shapes(box={"X": 1})
    check_export(ss.zoo.seed_case1(), "1,3,H,W", box=((31, 32, 1, 0), (31, 32, 1, 0)))


def test_input_dims_that_are_formulas():
    """An input dim a*S + b is a*Dim + b; the Dim (S) itself is at least 2, as export takes it
    (H + 2 >= 4 although H + 2 = 3 is valid: the conv's output H would be 1)."""
    B, H, W = ss.symbols("B H W")
    conv = torch.nn.Conv2d(3, 4, 3)
    rep = ss.trace(conv, (2 * B, 3, H + 2, W))
    assert str(rep.valid_inputs()) == "B ≥ 1, H ≥ 1, W ≥ 3"
    dims = rep.dynamic_shapes()
    assert str(dims) == "({0: 2*B, 2: H + 2, 3: Dim('W', min=4)},)"  # the conv's output W - 2 >= 2
    assert (dims[0][0].root.min, dims[0][2].root.min) == (2, 2)
    ep = export(conv, (torch.randn(4, 3, 7, 6),), dynamic_shapes=dims)
    assert [_accepted(ep, i) for i in (0, 2, 3)] == [IntSet.congruence(2, 0, lo=4), IntSet.interval(4, None),
                                                     IntSet.interval(4, None)]
    assert tuple(ep.module()(torch.randn(4, 3, 4, 4)).shape) == (4, 4, 2, 2)
    with pytest.raises(ss.ShapeError, match=r"^input dim 2 is H\*W, a formula of several sizes; torch.export"):
        ss.trace(conv, (B, 3, H * W, W)).dynamic_shapes()


def test_no_dynamic_size():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3), torch.nn.Flatten(), torch.nn.Linear(1, 1))
    rep = ss.trace(net, "1,1,H,W")  # runs at 3×3 only
    assert str(rep.valid_inputs()) == "H = 3, W = 3"
    assert rep.dynamic_shapes() == ({},)


ZOO_SLOW = ["seed_case2", "fastbook_cnn", "alexnet", "vgg11", "vgg16", "plainnet50", "alexnet2012", "resnet50",
            "mobilenet_v2", "vit_tiny"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO_SLOW)
def test_zoo_exports(name):
    entry = ss.zoo.MODELS[name]
    check_export(entry.factory(), entry.input, samples=2)


@pytest.mark.slow
def test_paper_unet_as_the_readme_says():
    """The README's word on the paper's U-Net in torch 2.13: export fails with its exact Dims (a
    torch error), Dim.AUTO claims 172, and eager torch fails below symshape's 188."""
    model = ss.zoo.unet().eval()
    rep = ss.trace(model, "1,1,H,W")
    assert str(rep.dynamic_shapes()) == "({2: Dim('H', min=188), 3: Dim('W', min=188)},)"
    for bounds in (None, (188, 1024)):
        with pytest.raises(AssertionError, match="^Expected op to be '=='"):
            export(model, (torch.randn(1, 1, 200, 200),), dynamic_shapes=rep.dynamic_shapes(bounds=bounds))
    auto = torch.export.Dim.AUTO
    ep = export(model, (torch.randn(1, 1, 572, 572),), dynamic_shapes=({2: auto, 3: auto},))
    assert sorted(int(vr.lower) for vr in ep.range_constraints.values()) == [172, 172]
    with torch.no_grad():
        with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input size"):
            model(torch.randn(1, 1, 187, 187))
        assert tuple(model(torch.randn(1, 1, 188, 188)).shape) == tuple(rep.at(H=188, W=188).output_shape)


@pytest.mark.slow
def test_resnet50_minimum_is_tight():
    """ResNet-50 exports from H, W >= 33 (the last map at least 2x2); one less and torch.export fails
    (torch 2.13 suggests no fix)."""
    model = ss.zoo.resnet50().eval()
    assert str(ss.trace(model, "1,3,H,W").dynamic_shapes()) == "({2: Dim('H', min=33), 3: Dim('W', min=33)},)"
    dims = ({2: torch.export.Dim("H", min=32), 3: torch.export.Dim("W", min=32)},)
    with pytest.raises(Exception, match="Constraints violated"):
        export(model, (torch.randn(1, 3, 64, 64),), dynamic_shapes=dims)
