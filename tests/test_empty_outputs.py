"""One rule for empty outputs (README, "Empty outputs"): where torch returns an empty tensor, on
meta and on the CPU, the model runs with an empty output; where torch raises (on either), the
domain excludes the size. Each case against torch on both devices, with the exact texts."""
import pytest
import torch
import torch.nn as nn

import symshape as ss


class Slice(nn.Module):
    def forward(self, x):
        return x[..., 3:]


def _torch(make, shape):
    """``{device: output shape or the first line of what torch raised}`` on meta and the CPU."""
    out = {}
    for device in ("meta", "cpu"):
        try:
            with torch.no_grad():
                out[device] = tuple(make().to(device)(torch.zeros(shape, device=device)).shape)
        except RuntimeError as err:
            out[device] = str(err).splitlines()[0]
    return out


RUNS_EMPTY = [  # (name, model, spec, sizes, empty output torch and symshape give)
    ("negative constant padding crops to 0", lambda: nn.ZeroPad1d((-2, 0)), "1,1,L", {"L": 2}, (1, 1, 0)),
    ("negative padding on both sides", lambda: nn.ConstantPad2d((-1, -1, 0, 0), 0.5), "1,1,3,W", {"W": 2},
     (1, 1, 3, 0)),
    ("FractionalMaxPool2d ratio rounds to 0", lambda: nn.FractionalMaxPool2d(2, output_ratio=0.5), "1,1,H,4",
     {"H": 1}, (1, 1, 0, 2)),
    ("FractionalMaxPool3d ratio rounds to 0", lambda: nn.FractionalMaxPool3d(1, output_ratio=0.5), "1,1,D,4,4",
     {"D": 1}, (1, 1, 0, 2, 2)),
    ("slicing past the end", Slice, "1,2,W", {"W": 3}, (1, 2, 0)),
    ("Upsample mode 'area' rounds to 0", lambda: nn.Upsample(scale_factor=0.5, mode="area"), "1,1,H,4", {"H": 1},
     (1, 1, 0, 2)),
    ("AdaptiveAvgPool2d to 0", lambda: nn.AdaptiveAvgPool2d((0, 2)), "1,1,H,4", {"H": 3}, (1, 1, 0, 2)),
]


@pytest.mark.parametrize("name,make,spec,sizes,empty", RUNS_EMPTY, ids=[c[0] for c in RUNS_EMPTY])
def test_torch_returns_an_empty_tensor_and_the_model_runs(name, make, spec, sizes, empty):
    shape = tuple(sizes.get(d, int(d) if d.isdigit() else d) for d in spec.split(","))
    assert _torch(make, shape) == {"meta": empty, "cpu": empty}
    rep = ss.trace(make(), spec)
    assert rep.violations(**sizes) == []
    assert tuple(rep.at(**sizes).output_shape) == empty
    assert ss.check(make(), rep, sizes=[sizes]).ok and ss.check(make(), rep, sizes=[sizes], device="cpu").ok


RAISES = [  # (name, model, spec, sizes, torch's CPU message (start), symshape's condition)
    ("constant padding cropping past the input", lambda: nn.ZeroPad1d((-2, 1)), "1,1,L", {"L": 1},
     "narrow(): length must be non-negative.",
     "L >= 2  [layer '' (ZeroPad1d): negative padding crops first (narrow), so it must not exceed the input size]"),
    ("reflection padding to 0", lambda: nn.ReflectionPad1d((-1, -1)), "1,1,L", {"L": 2},
     "input (W: 2) is too small. Calculated output W: 0",
     "L >= 3  [layer '' (ReflectionPad1d): the padded size must be >= 1]"),
    ("Upsample mode 'nearest' to 0", lambda: nn.Upsample(scale_factor=0.5), "1,1,H,4", {"H": 1},
     "Input and output sizes should be greater than 0, but got input (H: 1, W: 4) output (H: 0, W: 2)",
     "H >= 2  [layer '' (Upsample): output size >= 1 (mode 'nearest'; only 'area' allows 0)]"),
    ("Upsample mode 'bilinear' to 0 (meta runs, the CPU raises)",
     lambda: nn.Upsample(scale_factor=0.5, mode="bilinear"), "1,1,H,4", {"H": 1},
     "Input and output sizes should be greater than 0, but got input (H: 1, W: 4) output (H: 0, W: 2)",
     "H >= 2  [layer '' (Upsample): output size >= 1 (mode 'bilinear'; only 'area' allows 0)]"),
    ("ConvTranspose1d to 0", lambda: nn.ConvTranspose1d(1, 1, 2, padding=1), "1,1,L", {"L": 1},
     "Given input size per channel: (1 x 1). Calculated output size per channel: (1 x 0). Output size is too small",
     "L >= 2  [layer '' (ConvTranspose1d): output size >= 1: padding removes more than the transposed convolution "
     "produces]"),
    ("MaxPool2d to 0", lambda: nn.MaxPool2d(2), "1,1,H,4", {"H": 1},
     "Given input size: (1x1x4). Calculated output size: (1x0x2). Output size is too small",
     "H >= 2  [layer '' (MaxPool2d): output size >= 1: the padded input must cover the window extent 2]"),
]


@pytest.mark.parametrize("name,make,spec,sizes,message,condition", RAISES, ids=[c[0] for c in RAISES])
def test_torch_raises_and_the_domain_excludes_the_size(name, make, spec, sizes, message, condition):
    shape = tuple(sizes.get(d, int(d) if d.isdigit() else d) for d in spec.split(","))
    assert _torch(make, shape)["cpu"] == message
    rep = ss.trace(make(), spec)
    assert [str(c) for c in rep.violations(**sizes)] == [condition]
    res = ss.check(make(), rep, sizes=[sizes], device="cpu")
    assert res.ok, str(res)
