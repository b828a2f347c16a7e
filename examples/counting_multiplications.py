"""How many multiplications does each conv layer of fastbook's stride-2 MNIST CNN do?

The book (chapter 13) says 56,448 for the second conv layer; the true count is
7·7·8·4·3·3 = 14,112 per image: with stride 2 the output has 7×7 positions, not 14×14.
MACs here are multiply-accumulates of the convolutions, bias excluded (as torch's
FlopCounterMode counts them: flops = 2·MACs).
"""
import symshape as ss
from symshape import zoo


def main() -> None:
    rep = ss.trace(zoo.fastbook_cnn(), "N,1,H,W")
    per_image = rep.at(N=1, H=28, W=28)
    per_batch = rep.at(N=64, H=28, W=28)
    print("fastbook simple_cnn at 28x28 (MACs = multiply-accumulates, bias excluded)")
    print(f"{'layer':<7}{'output (per image)':<22}{'MACs formula':<56}{'per image':>11}{'per batch of 64':>17}")
    for layer, one, batch in zip(rep.layers, per_image.layers, per_batch.layers):
        if layer.kind != "Conv2d":
            continue
        print(f"{layer.name:<7}{str(one.out_shape):<22}{ss.fmt(layer.macs):<56}{int(one.macs):>11,}{int(batch.macs):>17,}")
    print(f"{'total':<85}{int(per_image.macs):>11,}{int(per_batch.macs):>17,}")
    second = per_image.layer("1.0")
    print(f"second conv: {second.in_shape} -> {second.out_shape}: 7*7*8*4*3*3 = {int(second.macs):,} "
          f"multiplications per image, not 56,448 (= 14*14*288: that counts every input position)")


if __name__ == "__main__":
    main()
