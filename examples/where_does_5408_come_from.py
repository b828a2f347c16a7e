"""Where does 5408 in ``nn.Linear(5408, 10)`` come from? And the 64·4·4 of the second network?

The two questions of a well-known Q&A thread, answered with formulas instead of one guessed input
size: the accepted answer assumed 28×28 inputs, for which case 1 does not even run.
"""
import symshape as ss
from symshape import zoo


def case1() -> None:
    H, W = ss.symbols("H W")
    rep = ss.trace(zoo.seed_case1(), (1, 3, H, W))
    flat = rep.layer("2").out_shape[1]
    print("Case 1: Conv2d(3, 32, kernel_size=7, stride=2) -> ReLU -> Flatten -> Linear(5408, 10)")
    print(f"  Flatten gives {ss.fmt(flat)}")
    for size in (28, 31, 32):
        value = flat.subs({H: size, W: size})
        problems = rep.violations(H=size, W=size)
        verdict = "runs" if not problems else f"does not run: layer {problems[0].layer!r} needs {problems[0]!r}"
        print(f"  at {size}x{size}: {value} -> {verdict}")
    print("  so 5408 = 32*13*13 comes from 31x31 or 32x32 inputs, not 28x28")


def case2() -> None:
    rep = ss.trace(zoo.seed_case2(), "1,3,H,W")
    at = rep.at(H=32, W=32)
    print("Case 2: (Conv -> BatchNorm -> ReLU -> MaxPool2d(2)) x 3 -> Linear(64*4*4, 10)")
    for i in (1, 2, 3):
        name = f"layer{i}.3"
        print(f"  after {name} (MaxPool2d): {rep.layer(name).out_shape} -> {at.layer(name).out_shape} at 32x32")
    print(f"  Flatten gives {rep.layer('flatten').out_shape[1]} -> {at.layer('flatten').out_shape[1]} = 64*4*4")
    print(f"  the model runs where {'; '.join(repr(c) for c in rep.domain if c.layer == 'fc')}")


if __name__ == "__main__":
    case1()
    print()
    case2()
