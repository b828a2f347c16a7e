"""Random modules with control flow on sizes against torch (symshape.testing_control, the executing
front end), and the bugs that the control campaign (benchmarks/campaign_control.py) found, each a
regression test against torch: shapes, MACs (FlopCounterMode flops / 2) and the domain both ways,
through symshape.check, and the exact texts of what symshape refuses."""
import inspect
import math
import random
import sys
from pathlib import Path

import pytest
import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape as ss
from symshape.testing_control import INT_OF_SYMBOLIC, TWO_SIDED, random_control

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from campaign_control import compare, expected_refusal  # noqa: E402

H, W = ss.symbols("H W")


@pytest.mark.parametrize("chunk", range(4))
def test_random_control_flow_agrees_with_torch(chunk):
    """Fixed seeds (10 per chunk): every module traces and agrees with torch at its reference size,
    the domain's edges, sizes just outside and random sizes near the reference, or is refused with
    the exact text expected (int() of a symbolic size); a branch where both sides run gives pieces,
    each compared at sizes inside it."""
    for seed in range(10 * chunk, 10 * chunk + 10):
        c = random_control(random.Random(seed), max_steps=5, two_sided=True, int_of_symbolic=True,
                           name=f"<control {seed}>")
        got = compare(c, random.Random(seed), extra=1, limit=6)
        assert got.refused is None and set(got.buckets) <= {"agree", "refused as expected", "refused: pieces"}, (
            f"seed {seed}\n{c.source()}\n{got}")


def test_the_seeds_draw_every_kind_of_step():
    kinds = set()
    for seed in range(40):
        kinds |= set(random_control(random.Random(seed), max_steps=5, two_sided=True, int_of_symbolic=True).kinds)
    assert {"guard", "decided", "decided mod", "upper", "one-sided", "same", "pad multiple", "int fixed",
            TWO_SIDED, INT_OF_SYMBOLIC} <= kinds, kinds


def test_source_is_what_runs():
    """The module is compiled from its source: a traceback and symshape's messages show its lines."""
    c = random_control(random.Random(3), name="<control 3>")
    model = c.model()
    assert inspect.getsource(type(model).forward).strip().startswith("def forward(self, x):")
    assert c.source().count("\n") == len(c.source().splitlines())
    lines = c.source().splitlines()
    assert [lines[i - 1].strip() for i in c.lines] == [s.lines[0] for s in c.steps]


def agrees(model, spec, points):
    rep = ss.trace(model, spec)
    res = ss.check(model, rep, sizes=points)
    assert res.ok, res.short()
    return rep, res


class UpperGuard(nn.Module):
    """Seeds 1, 8 and 16 of the first run: a guard bounds W from above, a later comparison is
    decided by it. The branch was taken at the typical size 224 instead (the domain's lower bounds
    do not decide it): refused as 'both branches run', or, with a later equation on W, refused as
    'fails for every input size'; where nothing later looked, the domain was empty."""

    def forward(self, x):
        if x.shape[-1] > 54:
            raise ValueError("the width must be at most 54")
        if x.shape[-1] <= 61:
            x = x + 1
        else:
            x = x[..., ::2]
        assert x.shape[-1] % 2 == 0, "the width must be a multiple of 2"
        return x


def test_a_comparison_decided_by_an_upper_bound():
    rep, res = agrees(UpperGuard(), "1,3,H,W", [{"H": 2, "W": w} for w in (1, 2, 52, 53, 54, 55, 56, 62, 64)])
    assert rep.output_shape == (1, 3, H, W)
    assert [ss.fmt(c.expr) for c in rep.domain] == ["W <= 54", "W ≡ 0 (mod 2)"]
    assert [p["W"] for p in res.sizes if not rep.violations(**p)] == [2, 52, 54]


class ModGuard(nn.Module):
    """A divisibility guard decides a later parity-like test: after W ≡ 0 (mod 6), W % 3 == 0 holds.
    At the typical size 224 (not a multiple of 3) the else branch was taken and W ≢ 0 (mod 3)
    added: a domain that no size satisfies, for a model that runs at every multiple of 6."""

    def forward(self, x):
        if x.shape[-1] % 6 != 0:
            raise ValueError("the width must be a multiple of 6")
        if x.shape[-1] % 3 == 0:
            x = F.pad(x, (1, 0, 1, 0))
        else:
            x = x * 2
        return x


def test_a_divisibility_decided_by_an_earlier_guard():
    rep, res = agrees(ModGuard(), "1,3,H,W", [{"H": 2, "W": w} for w in range(1, 14)])
    assert rep.output_shape == (1, 3, H + 1, W + 1)
    assert [ss.fmt(c.expr) for c in rep.domain] == ["W ≡ 0 (mod 6)"]
    assert [p["W"] for p in res.sizes if not rep.violations(**p)] == [6, 12]


class CeilPool(nn.Module):
    """math.ceil of a size with no control flow: torch.fx records a call of math.ceil, which the
    graph front end refused ('no rule for ceil on symbolic sizes'); an adaptive pool to a symbolic
    size then failed in its rule (sympy.Integer of an expression)."""

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, (math.ceil(x.shape[-2] / 2), math.floor(x.shape[-1] / 3)))


def test_math_ceil_and_an_adaptive_pool_to_a_computed_size():
    rep, _ = agrees(CeilPool(), "1,2,H,W", [{"H": h, "W": w} for h in (1, 2, 3, 5) for w in (1, 2, 3, 4, 7)])
    assert rep.output_shape == (1, 2, ss.ceil_div(H, 2), sympy.floor(W / 3))
    assert rep.at(H=5, W=2).output_shape == (1, 2, 3, 0)  # an empty output: torch runs


class CeilPoolAfterGuard(CeilPool):
    def forward(self, x):
        assert x.shape[-1] >= 3, "the width must be at least 3"
        return super().forward(x)


def test_adaptive_pool_to_a_computed_size_in_the_executor():
    rep, _ = agrees(CeilPoolAfterGuard(), "1,2,H,W", [{"H": h, "W": w} for h in (1, 2, 3) for w in (2, 3, 4, 7)])
    assert rep.output_shape == (1, 2, ss.ceil_div(H, 2), sympy.floor(W / 3))


class IntOfSize(nn.Module):
    def forward(self, x):
        x = F.max_pool2d(x, 2)
        return x[..., :int(x.shape[-1])]


def test_int_of_a_symbolic_size_in_a_module_is_the_size():
    """int() in a forward of a module's source keeps the size symbolic (the campaign's int() steps,
    exec'd from no module, are refused: expected_refusal)."""
    rep = ss.trace(IntOfSize(), "1,3,H,W")
    assert rep.output_shape == (1, 3, sympy.floor(H / 2), sympy.floor(W / 2))
    for h, w in ((2, 2), (5, 9), (8, 3)):
        assert tuple(IntOfSize()(torch.zeros(1, 3, h, w)).shape) == rep.at(H=h, W=w).output_shape


class BothRun(nn.Module):
    def forward(self, x):
        if x.shape[-1] >= 32:
            x = F.max_pool2d(x, 2, 1)
        else:
            x = x * 2
        return x


def test_a_branch_where_both_sides_run_gives_two_pieces():
    """Both sides of ``if w >= 32`` run: the report has one piece per side, each with its branch
    condition, and each agrees with torch at sizes inside its own domain and at its edge."""
    line = inspect.getsourcelines(BothRun.forward)[1] + 1
    rep = ss.trace(BothRun(), "1,1,H,W")
    assert [p.output_shape for p in rep.pieces] == [(1, 1, H - 1, W - 1), (1, 1, H, W)]
    assert [[ss.fmt(c.expr) for c in p.branch] for p in rep.pieces] == [["W >= 32"], ["W <= 31"]]
    assert rep.pieces[1].branch[0].reason == (f"the forward of the model (BothRun) branches on it at "
                                              f"test_fuzz_control.py:{line}; the other side is another piece of "
                                              "the report (rep.pieces)")
    for piece, widths in zip(rep.pieces, ((32, 33, 40), (1, 2, 31))):
        points = [{"H": h, "W": w} for h in (2, 4) for w in widths]
        assert all(rep.piece(p) is piece for p in points)
        res = ss.check(BothRun(), piece, sizes=points)
        assert res.ok and len(res.mismatches) == 0 and len(res.comparisons) >= 12, res.short()
    assert tuple(BothRun()(torch.zeros(1, 1, 4, 40)).shape) == rep.at(H=4, W=40).output_shape == (1, 1, 3, 39)
    assert tuple(BothRun()(torch.zeros(1, 1, 4, 4)).shape) == rep.at(H=4, W=4).output_shape == (1, 1, 4, 4)


def test_expected_refusal_names_the_int_step():
    """The campaign's own expectation for int() of a symbolic size: the size the module without the
    step gives, compared by value (the trace may write it otherwise than the report)."""
    seed = next(s for s in range(200) if random_control(random.Random(s), int_of_symbolic=True).kinds[-1:]
                == (INT_OF_SYMBOLIC,))
    c = random_control(random.Random(seed), int_of_symbolic=True, name="<control>")
    want = expected_refusal(c)
    with pytest.raises(ss.ShapeError) as err:
        ss.trace(c.model(), c.spec)
    assert want.matches(str(err.value)), (str(err.value), str(want))
    assert not want.matches(str(err.value).replace("at <control>:", "at <control>:1"))


class WindowsThenBounds(nn.Module):
    """Campaign seed 3558406063 (and 3428074291, 1673822090): after padding to a multiple of 3 and
    partitioning into windows the width is ceil(W/3); an assert bounds it from below, and a later
    test of the same size was not decided (the domain's lower bounds on W do not invert the ceil):
    refused as 'the other branch runs too'."""

    def forward(self, x):
        _, _, h, w = x.shape
        x = F.pad(x, (0, (3 - w % 3) % 3))
        n, c, hp, wp = x.shape
        x = x.view(n, c, hp, wp // 3, 3).sum(-1)
        assert x.shape[-1] >= 13, "the width must be at least 13"
        if x.shape[-1] < 5:
            x = x * 2
        else:
            x = F.max_pool2d(x, 2, 1, 1)
        return x


def test_bounds_on_the_same_size_decide_a_later_comparison():
    rep, res = agrees(WindowsThenBounds(), "1,3,H,W", [{"H": 2, "W": w} for w in (1, 36, 37, 38, 39, 40, 60)])
    assert rep.output_shape[:3] == (1, 3, H + 1)
    assert all(rep.at(H=2, W=w).output_shape[3] == -(-w // 3) + 1 for w in range(37, 100))
    assert [p["W"] for p in res.sizes if not rep.violations(**p)] == [37, 38, 39, 40, 60]


class TokenBudget(nn.Module):
    """A bound on the number of positions H·W (the solver does not decide products), then a test
    of the same product: the else branch was taken at the typical size, and its flatten reached a
    conv as a 3-d input (refused as 'a spatial dim missing')."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 1)

    def forward(self, x):
        if x.shape[-2] * x.shape[-1] > 1005:
            raise ValueError("at most 1005 positions")
        if x.shape[-2] * x.shape[-1] <= 1013:
            x = x + 1
        else:
            x = x.flatten(2)
        return self.conv(x)


def test_a_bound_on_a_product_of_sizes_decides_a_test_of_it():
    rep, res = agrees(TokenBudget(), "1,2,H,W", [{"H": h, "W": w} for h, w in ((1, 1), (1, 1005), (1, 1006),
                                                                                (31, 32), (32, 32), (3, 335))])
    assert rep.output_shape == (1, 3, H, W)
    assert [ss.fmt(c.expr) for c in rep.domain] == ["H*W <= 1005"]
    assert [(p["H"], p["W"]) for p in res.sizes if not rep.violations(**p)] == [(1, 1), (1, 1005), (31, 32), (3, 335)]


class PinnedAfterPool(nn.Module):
    """torch._assert(x.shape[-2] == 38) after a pool that gives H + 1: the equation fixes H = 37, but
    only a size equal to a number was taken as fixed, so a later test of the same size
    (2·(H + 1) == 76) was not decided: refused as 'the other branch runs too'."""

    def forward(self, x):
        x = F.max_pool2d(x, 4, 1, 2)
        torch._assert(x.shape[-2] == 38, "the height must be 38")
        if x.shape[-2] * 2 == 76:
            x = x + 1
        else:
            x = x.flatten(2)
        return F.avg_pool2d(x, 2)


def test_a_linear_equation_in_one_size_fixes_it():
    rep, res = agrees(PinnedAfterPool(), "2,1,H,W", [{"H": h, "W": w} for h in (36, 37, 38) for w in (1, 5)])
    assert rep.output_shape == (2, 1, 19, sympy.floor((W - 1) / 2) + 1)
    assert [(p["H"], p["W"]) for p in res.sizes if not rep.violations(**p)] == [(37, 1), (37, 5)]


class AssertMessage(nn.Module):
    """timm's PatchEmbed: torch._assert(H == 224, f"Input height ({H}) doesn't match model (224).")
    with no other control flow goes through torch.fx, which formats the message with its proxy:
    the reason read 'Input height (Proxy(getitem_2))'."""

    def forward(self, x):
        B, C, H, W = x.shape
        torch._assert(H == 32, f"Input height ({H}) doesn't match model (32).")
        return x.flatten(2)


def test_an_assert_message_formatted_by_fx_shows_the_size():
    rep, _ = agrees(AssertMessage(), "1,3,H,W", [{"H": 32, "W": 4}, {"H": 31, "W": 4}])
    assert str(rep.domain[0]) == "H = 32  [layer 'assert' (_assert): Input height (H) doesn't match model (32).]"


class FloorEquation(nn.Module):
    """Campaign seed 200: torch._assert(x.shape[-1] == 5) after a stride-4 pool (floor((W - 1)/4) + 1
    = 5: W from 17 to 20, no single value to fix), then a test of twice that size: not decided,
    refused as 'the other branch runs too'."""

    def forward(self, x):
        x = F.max_pool2d(x, 1, 4)
        torch._assert(x.shape[-1] == 5, f"the width must be 5, not {x.shape[-1]}")
        if x.shape[-1] * 2 == 10:
            x = x + 1
        else:
            x = x * 2
        return x


def test_an_equation_on_a_floor_decides_a_test_of_a_multiple():
    rep, res = agrees(FloorEquation(), "1,2,H,W", [{"H": 1, "W": w} for w in range(15, 23)])
    assert [p["W"] for p in res.sizes if not rep.violations(**p)] == [17, 18, 19, 20]
    assert str(rep.domain[0]) == ("floor((W - 1)/4) + 1 = 5  [layer '' (FloorEquation): the width must be 5, not "
                                  "floor(W/4 - 1/4) + 1 (asserted at test_fuzz_control.py:"
                                  f"{inspect.getsourcelines(FloorEquation.forward)[1] + 2})]")


class BranchThenPin(nn.Module):
    """Campaign seeds 1752660907 and 4114596829: a branch taken at the typical size (H >= 40), then
    an assert that fixes the size to one the branch excludes (H - 1 = 37 needs H = 38): the trace
    stopped with 'fails for every input size' instead of trying the branch's other side, where the
    model runs (H = 37)."""

    def forward(self, x):
        if x.shape[-2] >= 40:
            x = F.max_pool2d(x, 2, 1)
        else:
            x = x * 2
        torch._assert(x.shape[-2] == 37, "the height must be 37")
        return x


def test_a_branch_whose_path_runs_at_no_size_is_left_for_the_other():
    rep, res = agrees(BranchThenPin(), "1,1,H,W", [{"H": h, "W": 3} for h in range(35, 42)])
    assert rep.output_shape == (1, 1, H, W)  # the formula before the assert; the domain fixes H = 37
    line = inspect.getsourcelines(BranchThenPin.forward)[1] + 1
    # the paths of the forward are compared (explore.py): no size takes the side H >= 40, so the
    # branch adds no condition of its own (H <= 39 follows from H = 37)
    assert [str(c) for c in rep.domain] == [
        f"H = 37  [layer '' (BranchThenPin): the height must be 37 (asserted at test_fuzz_control.py:{line + 4})]"]
    assert [p["H"] for p in res.sizes if not rep.violations(**p)] == [37]


class LoopOverChannels(nn.Module):
    """Campaign seeds 4013429303 and 2878895044 (and its four modules over 60 s): a crop that can be
    empty (H < 5), then x = x + x[:, i:i + 1] in a loop over the channels. Broadcasting a size
    against itself gave size·Min(1, size), nested once more each time round: the size doubled in
    length per iteration (over 800 characters after three)."""

    def forward(self, x):
        x = x[:, :, :x.shape[-2] - x.shape[-2] % 5]
        for i in range(x.shape[1]):
            x = x + x[:, i:i + 1]
        return x


def test_a_size_broadcast_against_itself_stays_itself():
    rep, _ = agrees(LoopOverChannels(), "1,4,H,W", [{"H": h, "W": 2} for h in (1, 4, 5, 6, 10, 11)])
    assert rep.output_shape == (1, 4, 5 * sympy.floor(H / 5), W)


class GuardBranchThenEmpty(nn.Module):
    """Campaign seed 3944063324 (its module without the last step): a guard that raises at the
    typical size, then a branch whose one side meets a condition no size satisfies (a multiple of 5
    below 25 that is a multiple of 8). When every branch had been tried, the guard's ValueError
    from the first run escaped trace as a raw exception."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 5, stride=2)

    def forward(self, x):
        if x.shape[-1] > 55:
            raise ValueError("the width must be at most 55")
        x = self.conv(x)
        h = x.shape[-2]
        x = F.pad(x, (0, 0, 0, (5 - h % 5) % 5))
        if x.shape[-2] >= 25:
            x = F.max_pool2d(x, 2, 1)
        else:
            x = x * 2
        torch._assert(x.shape[-2] % 8 == 0, "the height must be a multiple of 8")
        return x


def test_a_guard_then_a_branch_with_no_size_on_one_side():
    rep, res = agrees(GuardBranchThenEmpty(), "1,1,H,W", [{"H": h, "W": w} for h in range(40, 70, 3) for w in (20, 56)])
    assert len(rep.pieces) <= 1
    runs = []
    for h in range(40, 70, 3):
        try:
            GuardBranchThenEmpty()(torch.zeros(1, 1, h, 20))
            runs.append(h)
        except (ValueError, AssertionError, RuntimeError):
            pass
    assert runs and [p["H"] for p in res.sizes if not rep.violations(**p) and p["W"] == 20] == runs
