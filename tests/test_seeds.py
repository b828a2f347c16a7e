"""The questions the project started from, answered by the library (shared seeds 000 and 001)."""
import sympy

import symshape as ss
from symshape import zoo
from symshape.floors import floor_div

H, W = ss.symbols("H W")


def test_case1_flatten_size_formula_and_5408():
    rep = ss.trace(zoo.seed_case1(), (1, 3, H, W))
    flat = rep.layer("2").out_shape[1]
    assert sympy.expand(flat - 32 * (floor_div(H - 7, 2) + 1) * (floor_div(W - 7, 2) + 1)) == 0
    assert rep.at(H=32, W=32).layer("2").out_shape == (1, 5408)
    assert rep.at(H=31, W=31).layer("2").out_shape == (1, 5408)
    # the accepted answer assumed 28x28 MNIST: that gives 32*11*11, and the model does not run
    assert flat.subs({H: 28, W: 28}) == 32 * 11 * 11
    assert rep.violations(H=28, W=28)[0].layer == "3"


def test_case2_flatten_size_is_64_4_4_at_32():
    rep = ss.trace(zoo.seed_case2(), "1,3,H,W")
    assert rep.layer("flatten").out_shape == (1, 64 * floor_div(H, 8) * floor_div(W, 8))
    assert rep.at(H=32, W=32).layer("flatten").out_shape == (1, 64 * 4 * 4)
    assert [rep.at(H=32, W=32).layer(f"layer{i}.3").out_shape[2] for i in (1, 2, 3)] == [16, 8, 4]


def test_seed001_per_layer_multiplications_at_28():
    rep = ss.trace(zoo.fastbook_cnn(), "1,1,H,W").at(H=28, W=28)
    convs = [layer for layer in rep.layers if layer.kind == "Conv2d"]
    assert [layer.out_shape for layer in convs] == [(1, 4, 14, 14), (1, 8, 7, 7), (1, 16, 4, 4), (1, 32, 2, 2),
                                                    (1, 2, 1, 1)]
    assert [layer.params for layer in convs] == [40, 296, 1168, 4640, 578]
    # 7*7*8*4*3*3 = 14,112 per image for the second layer, not the book's 56,448
    assert [layer.macs for layer in convs] == [7056, 14112, 18432, 18432, 576]
    assert convs[1].macs == 7 * 7 * 8 * 4 * 3 * 3 != 56_448
    assert ss.trace(zoo.fastbook_cnn(), "64,1,H,W").at(H=28, W=28).layer("1.0").macs == 64 * 14112
