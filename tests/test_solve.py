"""The solver against brute force: torch itself (meta device) over windows of sizes."""
import functools
import math

import pytest
import sympy
import torch
import torch.nn as nn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symshape as ss
from symshape import zoo
from symshape.floors import floor_div, preimage, scaled_floor
from symshape.sets import IntSet, SolutionSet
from symshape.solve import solve

from torch_ref import torch_shape_and_macs

H, W = ss.symbols("H W")


def torch_out(model, shape):
    """The output shape torch computes on the meta device, or None where torch raises.

    (Not under FlopCounterMode: there, meta tensors let Upsample produce a 0-size output that
    torch rejects everywhere else.)"""
    model = model.to("meta")
    try:
        with torch.no_grad():
            return tuple(model(torch.zeros(shape, device="meta")).shape)
    except Exception:
        return None


def torch_runs(model, shape):
    return torch_out(model, shape) is not None


def brute_valid(model, lead, window_h, window_w=None):
    """The (H, W) in the window at which torch runs the model (meta device)."""
    if window_w is None:
        return {h for h in window_h if torch_runs(model, (*lead, h))}
    return {(h, w) for h in window_h for w in window_w if torch_runs(model, (*lead, h, w))}


def finite_part(sol, window_h, window_w=None):
    if window_w is None:
        return {h for h in window_h if h in sol}
    return {(h, w) for h in window_h for w in window_w if (h, w) in sol}


# ---------------------------------------------------------------- the seed questions

def test_seed_case1_valid_inputs_match_torch():
    model = zoo.seed_case1()
    sol = ss.trace(model, (1, 3, H, W)).valid_inputs()
    assert str(sol) == ("H ∈ {7, 8}, W ∈ {343, 344}\nH ∈ {31, 32}, W ∈ {31, 32}\n"
                        "H ∈ {343, 344}, W ∈ {7, 8}")
    assert len(sol) == 12 and sol.is_finite and sol.method == "exact inversion, divisors"
    assert list(sol) == sorted(list(sol))
    window = range(1, 40)
    assert finite_part(sol, window, window) == brute_valid(model, (1, 3), window, window)
    # the thin solutions, checked by torch directly
    for h, w in [(7, 343), (8, 344), (344, 8)]:
        assert (h, w) in sol and torch_runs(model, (1, 3, h, w))
    assert (9, 343) not in sol and not torch_runs(model, (1, 3, 9, 343))


def test_seed_case2_and_explain():
    model = zoo.seed_case2()
    rep = ss.trace(model, "1,3,H,W")
    sol = rep.valid_inputs()
    window, widths = range(1, 48), (7, 8, 32, 39, 40, 64, 135)
    assert finite_part(sol, window, widths) == brute_valid(model, (1, 3), window, widths)
    assert (32, 32) in sol and (39, 39) in sol and (40, 32) not in sol
    flat = rep.layer("flatten").out_shape[1]
    square = ss.solve([sympy.Eq(flat, 64 * 4 * 4), sympy.Eq(H, W)], over=(H, W))
    assert str(square) == "H = W, 32 ≤ H ≤ 39" and list(square) == [(h, h) for h in range(32, 40)]
    text = rep.explain_solution(sympy.Eq(H, W))
    assert "16 = 64*floor(H/8)*floor(W/8)" not in text
    assert text.splitlines()[0] == "1024 = 64*floor(H/8)*floor(W/8) ⇔ 32 ≤ H ≤ 39"
    assert "  'layer3.3' (MaxPool2d): (1, 64, 4, 4)" in text.splitlines()
    rect = rep.explain_solution().splitlines()
    assert rect[:3] == ["1024 = 64*floor(H/8)*floor(W/8) ⇔ floor(H/8) · floor(W/8) = 16: "
                        "try every split of 16 into 2 factors", "  1 = floor(H/8) ⇔ 8 ≤ H ≤ 15",
                        "  16 = floor(W/8) ⇔ 128 ≤ W ≤ 135"]


def test_min_input_and_exact_inputs():
    rep = ss.trace(zoo.seed_case1(), (1, 3, H, W))
    assert list(rep.min_input()) == [(7, 343), (31, 31), (343, 7)]
    rep2 = ss.trace(zoo.seed_case2(), (1, 3, H, W))
    exact = rep2.exact_inputs()
    assert list(exact) == [(8, 128), (16, 64), (32, 32), (64, 16), (128, 8)]
    pools = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(3, 3, 3, stride=2), nn.MaxPool2d(3, stride=2, padding=1))
    rep3 = ss.trace(pools, "1,3,H,8")
    got = rep3.exact_inputs(bounds=(1, 200))
    want = [h for h in range(1, 201) if _covers(h)]
    assert list(got) == want


def _covers(h):
    """Every window grid reaches the end of its input: MaxPool2d(2), Conv k3 s2, MaxPool k3 s2 p1."""
    if h < 6:
        return False
    if h % 2:
        return False
    a = h // 2
    b = (a - 3) // 2 + 1
    if (a - 3) % 2:
        return False
    c = (b + 2 - 3) // 2 + 1
    return (c - 1) * 2 + 3 - 1 >= b


def test_exact_inputs_count_rows_against_window_coverage():
    # the same coverage rule, written out by hand from the window starts
    model = nn.Sequential(nn.Conv2d(1, 1, 5, stride=3, padding=1), nn.AvgPool2d(2))
    rep = ss.trace(model, "1,1,H,W")
    valid = ss.trace(nn.Sequential(nn.Conv2d(1, 1, 3, stride=2, padding="valid")), "1,1,H,5").exact_inputs()
    assert str(valid) == "H ≡ 1 (mod 2), H ≥ 3"
    got = rep.exact_inputs(bounds=(1, 120))

    def covers(length, k, s, p):
        out = (length + 2 * p - k) // s + 1
        return out >= 1 and -p + (out - 1) * s + k - 1 >= length - 1

    def ok(h):
        a = (h + 2 - 5) // 3 + 1
        return covers(h, 5, 3, 1) and covers(a, 2, 2, 0)

    good = [h for h in range(1, 121) if ok(h)]
    assert got.is_finite and {p[0] for p in got} == set(good) and {p[1] for p in got} == set(good)


# ---------------------------------------------------------------- targets on report quantities

def test_macs_budget_square_plainnet50_is_fast_and_exact():
    import time

    rep = ss.trace(zoo.plainnet50(), "1,3,H,W")
    t = time.perf_counter()
    sol = ss.solve([rep.macs <= 10 ** 9, sympy.Eq(H, W)], over=(H, W))
    elapsed = time.perf_counter() - t
    top = max(p[0] for p in sol)
    macs = rep.macs
    assert macs.subs({H: top, W: top}) <= 10 ** 9 < macs.subs({H: top + 1, W: top + 1})
    assert sol.min() == (1, 1) and str(sol) == f"H = W, 1 ≤ H ≤ {top}"
    assert elapsed < 0.5
    # torch agrees at the boundary (FlopCounterMode MACs)
    model = zoo.plainnet50()
    assert torch_shape_and_macs(model, (1, 3, top, top))[1] <= 10 ** 9 < torch_shape_and_macs(
        model, (1, 3, top + 1, top + 1))[1]


def test_large_sizes_stay_exact_and_fast():
    import time

    rep = ss.trace(zoo.plainnet50(), "1,3,H,W")
    final = rep.layers[-4].out_shape[2]   # the last conv's height: floor((H - 1)/32) + 1
    t = time.perf_counter()
    sol = ss.solve(sympy.Eq(final, 31_250_000), over=H)
    assert time.perf_counter() - t < 0.5  # milliseconds in practice; generous for loaded machines
    assert str(sol) == "999999969 ≤ H ≤ 1000000000"
    assert final.subs(H, 999_999_969) == 31_250_000 and final.subs(H, 999_999_968) == 31_249_999


def test_rectangular_macs_staircase_against_brute_force():
    rep = ss.trace(zoo.seed_case2(), "1,3,H,W")
    budget = 2_000_000
    sol = ss.solve([rep.macs <= budget], over=(H, W))
    assert "staircase" in sol.method
    f = sympy.lambdify((H, W), rep.macs, "math")
    window = range(1, 150)
    assert finite_part(sol, window, window) == {(h, w) for h in window for w in window if f(h, w) <= budget}
    assert all(f(h, w) <= budget for h, w in sol)


def test_macs_equality_and_fixed_width():
    rep = ss.trace(nn.Sequential(nn.Conv2d(3, 32, kernel_size=7, stride=2)), "1,3,H,W")
    target = rep.macs.subs({H: 100, W: 64})
    sol = rep.solve(sympy.Eq(rep.macs, target), sympy.Eq(W, 64))
    assert str(sol) == "H ∈ {99, 100}, W = 64" and sol.min() == (99, 64)
    both = rep.solve(sympy.Eq(rep.macs, target))
    f = sympy.lambdify((H, W), rep.macs, "math")
    window = range(7, 160)
    assert finite_part(both, window, window) == {(h, w) for h in window for w in window if f(h, w) == target}


def test_upsample_transposed_and_ceil_mode_preimages():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.MaxPool2d(3, stride=2, ceil_mode=True),
                          nn.Upsample(scale_factor=0.7), nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=1))
    rep = ss.trace(model, "1,1,H,16")
    final = rep.output_shape[2]
    window = range(1, 300)
    values = {}
    for h in window:
        out = torch_out(model, (1, 1, h, 16))
        if out is not None:
            values.setdefault(out[2], set()).add(h)
    assert values
    for v in sorted(values)[:12]:
        sol = rep.solve(sympy.Eq(final, v), bounds=(1, 299))
        assert set(sol) == values[v], v
    assert "bisection" in rep.solve(sympy.Eq(final, sorted(values)[3])).method


# ---------------------------------------------------------------- empties say why

def test_empty_answer_names_the_layer():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 10 * 10, 4))
    rep = ss.trace(model, "1,3,H,W")
    sol = rep.solve(H <= 2)
    assert sol.is_empty and len(sol) == 0 and str(sol) == (
        "no solution: the condition needs H <= 2, which no size satisfies together with "
        "8*(H - 2)*(W - 2) = 800 (layer '2' (Linear))")
    assert list(rep.solve(H <= 4)) == [(3, 102), (4, 52)]
    square = rep.solve(sympy.Eq(H, W))
    assert list(square) == [(12, 12)]


def test_trace_rejects_a_linear_that_never_fits():
    bad = nn.Sequential(nn.Conv2d(3, 32, kernel_size=7, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(5400, 10))
    with pytest.raises(ss.ShapeError) as err:
        ss.trace(bad, "1,3,H,W")
    assert str(err.value) == (
        "layer '3' (Linear) got input (1, 32*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1)): needs the last dim of "
        "the input, 32*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1), to equal in_features=5400, which fails for "
        "every input size: 5400 is not a multiple of 32, the factor common to every value of "
        "32*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1)")
    # 32·p with p prime above the largest factor reachable is fine: feasible, so trace keeps it
    ss.trace(nn.Sequential(nn.Conv2d(3, 32, 7, stride=2), nn.Flatten(), nn.Linear(32 * 7919, 2)), "1,3,H,W")


def test_trace_of_plainnet50_stays_fast():
    import time

    model = zoo.plainnet50()
    ss.trace(model, "1,3,H,W")
    t = time.perf_counter()
    ss.trace(model, "1,3,H,W")
    assert time.perf_counter() - t < 0.5


# ---------------------------------------------------------------- sets, printing, inputs

def test_solution_set_printing_and_latex():
    s = solve(sympy.Eq(sympy.Mod(H, 32), 0), over=H)
    assert str(s) == "H ≡ 0 (mod 32), H ≥ 32" and s.min() == 32 and 64 in s and 48 not in s
    assert s.to_latex() == r"H \equiv 0 \pmod{32},\ H \geq 32" and s._repr_latex_().startswith("$")
    with pytest.raises(ValueError, match="infinite"):
        len(s)
    assert list(zip(range(3), s)) == [(0, 32), (1, 64), (2, 96)]
    t = solve(H >= 7, over=H)
    assert str(t) == "H ≥ 7" and t.method == "exact inversion"
    both = solve([H >= 7, W >= 7, sympy.Eq(floor_div(H, 2), 5)], over=(H, W))
    assert str(both) == "H ∈ {10, 11}, W ≥ 7"
    assert both.to_latex() == r"H \in \{10, 11\},\ W \geq 7"
    assert str(solve(sympy.Eq(H, 5), over="H")) == "H = 5"


def test_scan_fallback_says_so():
    s = solve(sympy.Eq(sympy.Mod(H * H, 7), 1), over=H, bounds=(1, 50))
    assert list(s) == [h for h in range(1, 51) if h * h % 7 == 1]
    assert "congruence" in s.method  # a polynomial mod 7: exact, by its residues
    odd = sympy.Ne(sympy.Mod(floor_div(H * H, 7), 5), 1)
    b = solve(odd, over=H, bounds=(1, 50))
    assert list(b) == [h for h in range(1, 51) if (h * h // 7) % 5 != 1] and "scan" in b.method and not b.scanned
    u = solve(odd, over=H)
    assert "scanned H in [1, 4096] only" in u.note and "scanned" in str(u)


def test_unknown_symbol_is_an_error():
    with pytest.raises(ss.ShapeError, match="mentions W, which is not among the symbols solved for"):
        solve(sympy.Eq(H + W, 3), over=H)


@pytest.mark.parametrize("a,b,m,k,c", [(1, -7, 2, 1, 1), (2, 3, 5, 3, -4), (3, 0, 1, 1, 0), (1, 5, 8, 2, 7)])
def test_preimage_is_exact(a, b, m, k, c):
    expr = k * floor_div(a * H + b, m) + c
    assert [expr.subs(H, h) for h in (1, 7, 50)] == [k * ((a * h + b) // m) + c for h in (1, 7, 50)]
    for v in range(-5, 40):
        _, lo, hi = preimage(expr, v)
        want = [h for h in range(1, 120) if k * ((a * h + b) // m) + c == v]
        assert want == [h for h in range(max(lo, 1), hi + 1) if h < 120]


def test_intset_algebra_against_sets():
    a = IntSet.congruence(6, (1, 4), lo=3, hi=100) | IntSet.interval(20, 30)
    b = IntSet.congruence(4, 0, lo=1, hi=None) & IntSet.interval(1, 90)
    ref_a = {x for x in range(0, 200) if (3 <= x <= 100 and x % 6 in (1, 4)) or 20 <= x <= 30}
    ref_b = {x for x in range(0, 200) if x % 4 == 0 and 1 <= x <= 90}
    assert set(a) == ref_a and list(a) == sorted(ref_a) and len(a) == len(ref_a)
    assert set(a & b) == ref_a & ref_b and set(a | b) == ref_a | ref_b


# ---------------------------------------------------------------- random networks (hypothesis)

_layer = st.one_of(
    st.tuples(st.just("conv"), st.integers(1, 5), st.integers(1, 3), st.integers(0, 2), st.integers(1, 2)),
    st.tuples(st.just("max"), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2), st.booleans()),
    st.tuples(st.just("avg"), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2), st.booleans()),
    st.tuples(st.just("up"), st.sampled_from([0.5, 0.7, 1.5, 2.0]), st.just(0), st.just(0), st.just(0)),
    st.tuples(st.just("tconv"), st.integers(1, 4), st.integers(1, 3), st.integers(0, 1), st.just(0)),
)


def _build(spec):
    layers = []
    for kind, k, s, p, x in spec:
        if kind == "conv":
            layers.append(nn.Conv1d(2, 2, k, stride=s, padding=min(p, k // 2 + 1), dilation=x))
        elif kind in ("max", "avg"):
            cls = nn.MaxPool1d if kind == "max" else nn.AvgPool1d
            layers.append(cls(k, stride=s, padding=min(p, k // 2), ceil_mode=x))
        elif kind == "up":
            layers.append(nn.Upsample(scale_factor=k))
        else:
            layers.append(nn.ConvTranspose1d(2, 2, k, stride=s, padding=min(p, (k - 1) // 2)))
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(6, 3)) if False else nn.Sequential(*layers)


@functools.lru_cache(maxsize=None)
def _lengths(spec):
    model = _build(spec)
    got = {}
    for n in range(1, 90):
        out = torch_out(model, (1, 2, n))
        got[n] = None if out is None else out[2]
    return got


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_layer, min_size=1, max_size=4).map(tuple), st.integers(1, 12))
def test_random_networks_valid_and_preimages_match_torch(spec, target):
    L = ss.symbols("L")
    try:
        rep = ss.trace(_build(spec), (1, 2, L))
    except ss.ShapeError:
        return
    got = _lengths(spec)
    valid = rep.valid_inputs(bounds=(1, 89))
    assert set(valid) == {n for n, v in got.items() if v is not None}
    pre = rep.solve(sympy.Eq(rep.output_shape[2], target), bounds=(1, 89))
    assert set(pre) == {n for n, v in got.items() if v == target}
    budget = rep.solve(rep.output_shape[2] <= target, bounds=(1, 89))
    assert set(budget) == {n for n, v in got.items() if v is not None and v <= target}


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 5), st.integers(1, 4), st.integers(1, 400))
def test_random_flatten_targets_match_brute_force(s1, s2, k, cout, target):
    model = nn.Sequential(nn.Conv2d(1, cout, k, stride=s1), nn.MaxPool2d(2, stride=s2), nn.Flatten())
    rep = ss.trace(model, "1,1,H,W")
    flat = rep.output_shape[1]
    sol = rep.solve(sympy.Eq(flat, target), bounds=(1, 40))

    def side(n):  # conv k, stride s1, then pool 2, stride s2, written out by hand
        conv = (n - k) // s1 + 1
        return (conv - 2) // s2 + 1 if n >= k and conv >= 2 else None

    sides = {n: side(n) for n in range(1, 41)}
    brute = {(h, w) for h, a in sides.items() for w, b in sides.items()
             if a is not None and b is not None and cout * a * b == target}
    assert set(sol) == brute
    if brute:   # torch agrees at a solution
        h, w = min(brute)
        assert torch_shape_and_macs(model, (1, 1, h, w))[0] == (1, target)


def test_divisibility_domains_match_torch():
    model = nn.Sequential(nn.PixelUnshuffle(2), nn.Conv2d(12, 4, 3, stride=2), nn.MaxPool2d(2, ceil_mode=True))
    rep = ss.trace(model, "1,3,H,W")
    sol = rep.valid_inputs()
    assert str(sol) == "H ≡ 0 (mod 2), H ≥ 6, W ≡ 0 (mod 2), W ≥ 6" and "congruence" in sol.method
    window = range(1, 30)
    assert finite_part(sol, window, window) == brute_valid(model, (1, 3), window, window)
    last = rep.output_shape[2]
    for v in range(1, 5):
        got = rep.solve(sympy.Eq(last, v), sympy.Eq(W, 6))
        assert {h for h, _ in got} == {h for h in range(1, 80) if (torch_out(model, (1, 3, h, 6)) or (0,) * 4)[2] == v}
    C = ss.symbols("C")
    groups = ss.trace(nn.Sequential(nn.ChannelShuffle(4)), (1, C, 5, 5)).valid_inputs()
    assert str(groups) == "C ≡ 0 (mod 4), C ≥ 4"


_block = st.tuples(st.sampled_from(["conv", "max", "avg"]), st.integers(1, 4), st.integers(1, 3), st.integers(0, 1),
                   st.booleans())


def _build2d(spec, flat=None):
    layers = []
    for kind, k, s, p, ceil in spec:
        if kind == "conv":
            layers.append(nn.Conv2d(2, 2, k, stride=s, padding=p))
        else:
            cls = nn.MaxPool2d if kind == "max" else nn.AvgPool2d
            layers.append(cls(k, stride=s, padding=min(p, k // 2), ceil_mode=ceil))
    if flat is not None:
        layers += [nn.Flatten(), nn.Linear(flat, 2)]
    return nn.Sequential(*layers)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_block, min_size=1, max_size=3).map(tuple), st.integers(6, 24), st.integers(6, 24))
def test_random_2d_networks_with_a_linear_match_torch(spec, h0, w0):
    out = torch_out(_build2d(spec), (1, 2, h0, w0))
    if out is None:
        return
    flat = math.prod(out[1:])
    model = _build2d(spec, flat)
    sol = ss.trace(model, "1,2,H,W").valid_inputs()
    assert (h0, w0) in sol
    window = range(1, 21)
    assert finite_part(sol, window, window) == brute_valid(model, (1, 2), window, window)


def test_inputs_for_a_final_feature_map_matches_torch():
    model = zoo.plainnet50()
    rep = ss.trace(model, "1,3,H,W")
    sol = rep.inputs_for("146", (7, 7))
    assert str(sol) == "193 ≤ H ≤ 224, 193 ≤ W ≤ 224"
    body = nn.Sequential(*list(model)[:147])
    for h in (192, 193, 224, 225):
        assert (torch_out(body, (1, 3, h, h))[2:] == (7, 7)) == ((h, h) in sol)
    # in training mode BatchNorm needs more than one value per channel: a 1x1 final map needs H >= 33
    assert str(rep.inputs_for("146", (512, None, 1))) == "H ≥ 33, 1 ≤ W ≤ 32"
    assert str(ss.trace(model.eval(), "1,3,H,W").inputs_for("146", (512, None, 1))) == "H ≥ 1, 1 ≤ W ≤ 32"
    with pytest.raises(ss.ShapeError, match="outputs 4-d shapes"):
        rep.inputs_for("146", (1, 1, 1, 1, 1))


def test_exact_inputs_need_no_model_and_survive_json():
    # the hyper-parameters come from Layer.attrs, so a report read back from JSON answers too
    for model in (zoo.vgg16(), zoo.seed_case2(), zoo.plainnet50().eval()):
        rep = ss.trace(model, "1,3,H,W")
        again = ss.Report.from_json(rep.to_json())
        assert str(again.exact_inputs()) == str(rep.exact_inputs())
    assert str(ss.trace(zoo.vgg16(), "1,3,H,W").exact_inputs()) == "H ≡ 0 (mod 32), H ≥ 32, W ≡ 0 (mod 32), W ≥ 32"
