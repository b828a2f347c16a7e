"""Huge sizes against torch on meta: torch's own size arithmetic (a float scale_factor rounds the
size to a double) and its limit of 2**63 - 1 bytes per tensor ("Storage size calculation
overflowed"). At every case symshape gives torch's shape, says the model does not run where torch
raises, or, only for a size torch computes in double precision from a size of 2**40 or more, says
it cannot give torch's value there; a trace at the numeric size always gives torch's value."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape as ss


class Interpolate(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return F.interpolate(x, scale_factor=self.scale, mode="nearest")


MODELS = {
    "Upsample x2": (lambda: nn.Upsample(scale_factor=2.0), "1,1,H"),
    "Upsample x1.5": (lambda: nn.Upsample(scale_factor=1.5), "1,1,H"),
    "Upsample x0.29": (lambda: nn.Upsample(scale_factor=0.29), "1,1,H"),
    "Upsample x2 area": (lambda: nn.Upsample(scale_factor=2.0, mode="area"), "1,1,H"),
    "interpolate x2": (lambda: Interpolate(2.0), "1,1,H"),
    "FractionalMaxPool2d 0.5": (lambda: nn.FractionalMaxPool2d(2, output_ratio=0.5), "1,1,H,4"),
    "Conv1d k3 s2": (lambda: nn.Conv1d(1, 1, 3, stride=2), "1,1,H"),
    "Conv1d 1->8": (lambda: nn.Conv1d(1, 8, 1), "1,1,H"),
    "Conv2d 1->2": (lambda: nn.Conv2d(1, 2, 3), "1,1,H,H"),
    "MaxPool1d 2": (lambda: nn.MaxPool1d(2), "1,1,H"),
    "Linear 4->8": (lambda: nn.Linear(4, 8), "H,4"),
    "Flatten": (lambda: nn.Sequential(nn.Flatten(), nn.ReLU()), "1,H,H"),
    "Conv1d double": (lambda: nn.Conv1d(1, 1, 1).double(), "1,1,H"),
}
SIZES = {
    "1,1,H": [2 ** 40 - 1, 2 ** 40 + 1, 2 ** 53 + 1, 2 ** 59 + 7, 2 ** 60 + 13, 2 ** 61 - 1, 2 ** 61, 2 ** 62 + 3],
    "1,1,H,4": [2 ** 40 + 3, 2 ** 53 + 1, 2 ** 58 + 1, 2 ** 59 + 1],
    "1,1,H,H": [2 ** 30 - 1, 2 ** 30, 2 ** 30 + 1, 2 ** 31],
    "H,4": [2 ** 57 - 1, 2 ** 58, 2 ** 59],
    "1,H,H": [2 ** 30, 2 ** 31 - 1, 2 ** 31],
}
CASES = [(name, h) for name, (_, spec) in MODELS.items() for h in SIZES[spec]]


def _torch(model, shape):
    """torch's output shape on meta, or the first line of what it raised."""
    dtype = next(model.parameters(), torch.zeros(())).dtype
    try:
        x = torch.empty(shape, device="meta", dtype=dtype if dtype.is_floating_point else torch.float32)
        with torch.no_grad():
            return tuple(model.to("meta")(x).shape)
    except RuntimeError as err:
        return str(err).splitlines()[0]


def _symshape(rep, h):
    try:
        return tuple(int(d) for d in rep.at(H=h).output_shape)
    except ss.ShapeError as err:
        return str(err)


@pytest.mark.parametrize("name,h", CASES, ids=[f"{n}-{h}" for n, h in CASES])
def test_huge_sizes_agree_with_torch_on_meta(name, h):
    make, spec = MODELS[name]
    model = make()
    shape = tuple(h if d == "H" else int(d) for d in spec.split(","))
    expected = _torch(model, shape)
    got = _symshape(ss.trace(model, spec), h)
    if "MaxPool1d" in name and h > 2 ** 32:  # torch's 32-bit output check in max_pool1d: refused
        assert got.startswith(f"symshape cannot give torch's value at H={h}: layer '' (MaxPool1d) gives an output "
                              "size above 2**31") or got.startswith(f"the model does not run at H={h}"), got
        return
    if isinstance(expected, tuple):
        if isinstance(got, str):  # a refusal, never a wrong verdict
            assert got.startswith(f"symshape cannot give torch's value at H={h}: ") and h >= 2 ** 40, got
            assert "Upsample" in name or "interpolate" in name or "Fractional" in name
        else:
            assert got == expected
    else:
        assert "Storage size calculation overflowed" in expected or "Stride calculation overflowed" in expected
        assert isinstance(got, str) and got.startswith(f"the model does not run at H={h}: ") and \
            "more than torch's limit of 2**63 - 1 bytes for one tensor" in got, got
    numeric = ss.trace(make(), ",".join(str(d) for d in shape))  # at a numeric size: torch's own arithmetic
    if isinstance(expected, tuple):
        assert tuple(int(d) for d in numeric.output_shape) == expected and numeric.violations() == []
    else:
        assert len(numeric.violations()) == 1


def test_upsample_rounds_the_size_to_a_double_as_torch_does():
    h = 2 ** 53 + 1
    up = nn.Upsample(scale_factor=2.0)
    torch_shape = tuple(up(torch.empty(1, 1, h, device="meta")).shape)
    assert torch_shape == (1, 1, 18014398509481984) != (1, 1, 2 * h)
    assert ss.trace(up, f"1,1,{h}").output_shape == torch_shape
    cpu = torch.zeros(1).expand(1, 1, h)  # no memory: CPU computes the size, then fails to allocate it
    with pytest.raises(RuntimeError, match=r"you tried to allocate 72057594037927936 bytes"):
        up(cpu)  # 4 * 18014398509481984
    rep = ss.trace(up, "1,1,H")
    assert rep.at(H=2 ** 40 - 1).output_shape == (1, 1, 2 ** 41 - 2)
    with pytest.raises(ss.ShapeError) as err:
        rep.at(H=h)
    assert str(err.value) == (
        "symshape cannot give torch's value at H=9007199254740993: layer '' (Upsample) computes its output size "
        "from the input size 9007199254740993 in double precision, which may round above 2**40, where symshape's "
        "closed form is not exact; trace the model at these sizes (a numeric input spec) for torch's value")
    assert rep.violations(H=h) == []  # torch runs there
    two = ss.trace(up, "1,1,H,W")  # where the double is exact, a size above 2**40 is given (W left free)
    assert str(two.at(H=2 ** 41).output_shape) == "(1, 1, 4398046511104, 2*W)"


def test_a_tensor_beyond_2_63_bytes_is_outside_the_domain_with_torchs_reason():
    up = nn.Upsample(scale_factor=2.0)
    h = 2 ** 60 + 13
    with pytest.raises(RuntimeError, match=r"Storage size calculation overflowed with sizes=\[1, 1, "
                                           r"2305843009213693952\]"):
        up(torch.empty(1, 1, h, device="meta"))
    with pytest.raises(RuntimeError, match="Storage size calculation overflowed"):
        up(torch.zeros(1).expand(1, 1, h))  # CPU raises the same, before allocating
    rep = ss.trace(up, "1,1,H")
    with pytest.raises(ss.ShapeError) as err:
        rep.at(H=h)
    assert str(err.value) == (
        "the model does not run at H=1152921504606846989: layer '' (Upsample) gives a tensor of shape (1, 1, "
        "2305843009213693978): 2,305,843,009,213,693,978 elements of 4 bytes are more than torch's limit of "
        "2**63 - 1 bytes for one tensor (torch: \"Storage size calculation overflowed\")")
    (cond,) = rep.violations(H=h)
    assert str(cond) == ("8*H <= 9223372036854775807  [layer '' (Upsample): a tensor holds at most 2**63 - 1 bytes "
                         "(4 per element)]")
    conv = ss.trace(nn.Conv1d(1, 1, 1).double(), "1,1,H")  # float64: 8 bytes per element
    assert conv.itemsize == 8 and ss.Report.from_json(conv.to_json()).itemsize == 8
    assert [str(c.expr) for c in conv.violations(H=2 ** 60)] == ["8*H <= 9223372036854775807"]
    assert conv.violations(H=2 ** 60 - 1) == []
    with pytest.raises(ss.ShapeError, match=r"^the model does not run at H=1152921504606846976: the model's input "
                                            r"gives a tensor of shape \(1, 1, 1152921504606846976\)"):
        conv.at(H=2 ** 60)
