"""The exact text of symshape's errors: each names the layer, the shape that arrived, what was
expected and a fix."""
import pytest
import torch.nn as nn

import symshape as ss
from symshape.symbols import parse_shape

H, W = ss.symbols("H W")


class MyBlock(nn.Module):
    """A block whose forward is not a plain chain of its children and branches on a size."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        if x.size(2) > 4:  # Python control flow on a size: torch.fx cannot trace it
            return self.conv(x) + x
        return x


def message(fn):
    with pytest.raises(ss.ShapeError) as info:
        fn()
    return str(info.value)


CASES = {
    "channel mismatch after a 3-channel input": (
        lambda: ss.trace(nn.Sequential(nn.Conv2d(4, 8, 3)), "1,3,H,W"),
        "layer '0' (Conv2d) got input (1, 3, H, W): expected 4 channels (in_channels=4), got 3; "
        "set in_channels=3 or make the previous layer produce 4 channels"),
    "channel mismatch between layers": (
        lambda: ss.trace(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(4, 8, 3)), "1,3,H,W"),
        "layer '1' (Conv2d) got input (1, 8, H - 2, W - 2): expected 4 channels (in_channels=4), got 8; "
        "set in_channels=8 or make the previous layer produce 4 channels"),
    "a spatial dim missing reads as unbatched with the wrong channels": (
        lambda: ss.trace(nn.Sequential(nn.Conv2d(3, 8, 3)), "1,3,H"),
        "layer '0' (Conv2d) got input (1, 3, H): a 3-d input reads as unbatched (C, H, W) with C = 1, but "
        "in_channels=3 is its dim 1: it looks like (N, C, H, W) with a spatial dim missing; give a 4-d input such "
        "as (1, 3, H, W)"),
    "a spatial dim missing, transposed and 1-d": (
        lambda: ss.trace(nn.ConvTranspose1d(4, 2, 3), "2,4"),
        "the model (ConvTranspose1d) got input (2, 4): a 2-d input reads as unbatched (C, L) with C = 2, "
        "but in_channels=4 is its dim 1: it looks like (N, C, L) with a spatial dim missing; give a 3-d input such "
        "as (2, 4, L)"),
    "a bare module is 'the model'": (
        lambda: ss.trace(nn.BatchNorm2d(4), "1,3,H,W"),
        "the model (BatchNorm2d) got input (1, 3, H, W): expected 4 channels (num_features=4), got 3; "
        "set num_features=3 or make the previous layer produce 4 channels"),
    "Linear after a constant flatten": (
        lambda: ss.trace(nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(33, 10)),
                         "1,3,H,W"),
        "layer '3' (Linear) got input (1, 32): expected the last dim of the input to be in_features=33, got 32; "
        "set in_features=32, or change the layers before it"),
    "Linear that no size can match": (
        lambda: ss.trace(nn.Sequential(nn.Flatten(), nn.Linear(5, 2)), "1,4,H,H"),
        "layer '1' (Linear) got input (1, 4*H**2): needs the last dim of the input, 4*H**2, to equal "
        "in_features=5, which fails for every input size: 5 is not a multiple of 4, the factor common to every "
        "value of 4*H**2"),
    "a kernel larger than a constant input": (
        lambda: ss.trace(nn.Conv2d(3, 8, 7), "1,3,5,W"),
        "the model (Conv2d) got input (1, 3, 5, W): needs output size >= 1: the padded input must cover the "
        "kernel extent 7, which fails for every input size"),
    "wrong rank": (
        lambda: ss.trace(nn.Conv2d(3, 8, 3), "3,H"),
        "the model (Conv2d) got input (3, H): expected a 4-d (N, C, H, W) or 3-d unbatched input, got 2-d (3, H)"),
    "0-d input to Linear": (
        lambda: ss.trace(nn.Linear(3, 8), "()"),
        "the shape spec '()' is empty; write one dim or more, such as '1,3,H,W'"),
    "PixelShuffle with bad channels": (
        lambda: ss.trace(nn.PixelShuffle(2), "1,3,H,W"),
        "the model (PixelShuffle) got input (1, 3, H, W): PixelShuffle(2) needs channels divisible by 4, got 3"),
    "PixelUnshuffle with a bad height": (
        lambda: ss.trace(nn.PixelUnshuffle(2), "1,3,5,W"),
        "the model (PixelUnshuffle) got input (1, 3, 5, W): PixelUnshuffle(2) needs the height divisible by 2, "
        "got 5"),
    "LayerNorm over the wrong trailing dims": (
        lambda: ss.trace(nn.LayerNorm(4), "1,3,H,5"),
        "the model (LayerNorm) got input (1, 3, H, 5): expected trailing dims normalized_shape=(4,), got "
        "(1, 3, H, 5); set normalized_shape=(5,)"),
    "pool padding over half the kernel": (
        lambda: ss.trace(nn.MaxPool2d(3, padding=2, dilation=2), "1,3,H,W"),
        "the model (MaxPool2d) got input (1, 3, H, W): padding 2 must be at most half the kernel size 3 "
        "(with dilation too): use padding <= 1"),
    "Unflatten with the wrong product": (
        lambda: ss.trace(nn.Unflatten(1, (2, 2)), "1,3,H,W"),
        "the model (Unflatten) got input (1, 3, H, W): dim 1 has size 3, but unflattened_size (2, 2) has 4 "
        "elements; choose sizes whose product is 3"),
    "a spec with an expression": (
        lambda: ss.trace(nn.ReLU(), "1,3,H+1,W"),
        "cannot parse shape spec '1,3,H+1,W': item 3, 'H+1', is neither an integer nor a name; "
        "write a spec such as '1,3,H,W'"),
    "an empty spec": (
        lambda: parse_shape(""),
        "the shape spec '' is empty; write one dim or more, such as '1,3,H,W'"),
    "a negative size": (
        lambda: parse_shape("1,3,-2,W"),
        "a size must be >= 0, got -2; write a non-negative integer or a name such as 'H'"),
    "a spec of the wrong type": (
        lambda: parse_shape(3.5),
        "a shape must be a string such as '1,3,H,W' or a tuple, got float"),
    "not a module": (
        lambda: ss.trace(3, "1,3,H,W"),
        "trace() needs a torch.nn.Module, got int"),
    "rep.at outside the domain": (
        lambda: ss.trace(nn.Sequential(nn.Conv2d(3, 8, 7, stride=2)), "1,3,H,W").at(H=5, W=32),
        "the model does not run at H=5, W=32: layer '0' (Conv2d) needs H >= 7 (output size >= 1: the padded "
        "input must cover the kernel extent 7); solve for valid sizes with report.valid_inputs() or pick sizes "
        "that satisfy it"),
    "an unknown size name": (
        lambda: ss.trace(nn.Conv2d(3, 8, 7), "1,3,H,W").at(X=5),
        "'X' is not a size of this model; its sizes are H, W"),
    "a size that is not positive": (
        lambda: ss.trace(nn.Conv2d(3, 8, 7), "1,3,H,W").at(H=0),
        "size H must be a positive integer, got 0"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_error_text(case):
    fn, text = CASES[case]
    assert message(fn) == text


def test_data_dependent_branch_names_layer_and_line():
    """Branching on tensor values cannot be traced on shapes: the layer, its input and the line are named."""
    import inspect

    class DataBlock(nn.Module):
        def forward(self, x):
            if x.mean() > 0:
                return x[:, :1]
            return x

    line = inspect.getsourcelines(DataBlock.forward)[1] + 1
    text = message(lambda: ss.trace(nn.Sequential(nn.ReLU(), DataBlock()), "1,3,H,W"))
    assert text == ("layer '1' (DataBlock) got input (1, 3, H, W): its forward uses the value of a tensor in a condition "
                    f"(data-dependent control flow) at test_errors.py:{line}: `if x.mean() > 0:`")


def test_violations_name_the_layer():
    rep = ss.trace(nn.Sequential(nn.Conv2d(3, 8, 7, stride=2), nn.Flatten(), nn.Linear(8 * 13 * 13, 10)), "1,3,H,W")
    assert [str(v) for v in rep.violations(H=28, W=32)] == [
        "8*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1) = 1352  [layer '2' (Linear): the last dim of the input, "
        "8*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1), to equal in_features=1352]"]


def test_strings_are_parsed_never_evaluated():
    # a string reaches no eval: names go through the hand-written parser, anything else is refused
    assert ss.Shape(("N", 3, "H")) == (ss.symbols("N"), 3, ss.symbols("H"))
    with pytest.raises(ss.ShapeError) as err:
        ss.Shape(("__import__('os').getcwd()",))
    assert str(err.value) == ("\"__import__('os').getcwd()\" is not a valid size name: use a Python identifier "
                              "such as 'H' or 'W'")

    class Block(nn.Module):
        def forward(self, x):
            return x

    @ss.register(Block)
    def block(m, x):
        return ss.Out(x, macs="__import__('os').getcwd()")

    try:
        with pytest.raises(ss.ShapeError) as err:
            ss.trace(nn.Sequential(Block()), "1,3,H,W")
        assert str(err.value) == ("layer '0' (Block) got input (1, 3, H, W): its rule returned MACs "
                                  "\"__import__('os').getcwd()\": return an int or a sympy expression of the sizes")
    finally:
        del ss.rules.RULES[Block]
