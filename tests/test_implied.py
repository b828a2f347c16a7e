"""The report's domain lists the conditions that bind: one that another implies is left out, shown
exactly (checked here against evaluation size by size)."""
import itertools
import random

import sympy

from symshape.floors import floor_div
from symshape.implied import implies
from symshape.symbols import size_symbol

H, W = size_symbol("H"), size_symbol("W")


def _holds(rel, point):
    return bool(rel.subs(point))


def test_implications_shown_are_true_at_every_size():
    rng = random.Random(5)
    shown = 0
    for _ in range(300):
        def one():
            k, s, c = rng.randint(1, 5), rng.choice([1, 2, 4]), rng.randint(-3, 8)
            return floor_div(k * H + c, s) if s > 1 else k * H + c

        a = one() >= rng.randint(0, 20)
        b = one() >= rng.randint(0, 20)
        if implies(a, b):
            shown += 1
            for h in range(0, 300):
                if _holds(a, {H: h}):
                    assert _holds(b, {H: h}), (a, b, h)
    assert shown > 20


def test_products_of_sizes_factor_by_factor():
    small = (floor_div(H - 1, 32) + 1) * (floor_div(W - 1, 32) + 1) >= 2
    for k in (2, 4, 8, 16):
        big = (floor_div(H - 1, k) + 1) * (floor_div(W - 1, k) + 1) >= 2
        assert implies(small, big) and not implies(big, small)
    assert not implies(H * W >= 4, H * W >= 5)
    assert implies(H * W >= 6, 2 * H * W >= 6)
    for h, w in itertools.product(range(0, 70), range(0, 70)):
        if _holds(small, {H: h, W: w}):
            assert _holds((floor_div(H - 1, 2) + 1) * (floor_div(W - 1, 2) + 1) >= 2, {H: h, W: w})


def test_the_domain_reads_as_its_binding_conditions_and_keeps_them_all():
    """BatchNorm in training at two stages: the later stage's condition implies the earlier one's.
    ``rep.domain`` keeps both (the first tells where torch raises first), ``rep.binding`` and the
    printed summary show the one that binds; the sizes are the same either way."""
    import torch
    import torch.nn as nn

    import symshape as ss
    from symshape.render.text import domain_summary

    m = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4),
                      nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4))
    rep = ss.trace(m, "N,3,H,W")
    assert [c.layer for c in rep.domain] == ["1", "3"]
    assert [c.layer for c in rep.binding] == ["3"]
    assert domain_summary(rep.domain) == ["N*(floor((H - 1)/4) + 1)*(floor((W - 1)/4) + 1) >= 2"]
    assert rep.violations(N=1, H=1, W=1)[0].layer == "1"
    for n, h, w in itertools.product((1, 2), range(1, 9), range(1, 9)):
        try:
            m(torch.zeros(n, 3, h, w))
            runs = True
        except ValueError:
            runs = False
        assert runs == all(bool(c.expr.subs({size_symbol("N"): n, H: h, W: w})) for c in rep.binding), (n, h, w)


def test_binding_of_two_convs():
    import torch.nn as nn

    import symshape as ss

    rep = ss.trace(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3)), "1,3,H,W")
    assert [str(c.expr) for c in rep.domain] == ["H >= 3", "W >= 3", "H >= 5", "W >= 5"]
    assert [str(c.expr) for c in rep.binding] == ["H >= 5", "W >= 5"]
