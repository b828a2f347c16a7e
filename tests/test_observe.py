"""Tests for symshape.verify.observe: the torch side of numeric verification.

MAC expectations are written from the counting convention (README), independently of FlopCounterMode.
"""

import copy

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from symshape.verify import observing
from symshape.verify import (
    FLOPCOUNTER_AVOIDED,
    FLOPCOUNTER_BLIND_SPOTS,
    META_DIVERGENCES,
    Observations,
    Observed,
    ObserveError,
    observe,
)


def seed_model():
    return nn.Sequential(nn.Conv2d(3, 32, kernel_size=7, stride=2), nn.ReLU(inplace=True),
                         nn.Flatten(), nn.Linear(5408, 10))


def attention_macs(n, l, s, e, kdim=None, vdim=None):
    """The counting convention: projections plus 2*N*L*S*E."""
    kdim, vdim = kdim or e, vdim or e
    return n * (l * e * e + s * kdim * e + s * vdim * e + l * e * e) + 2 * n * l * s * e


# ---------------------------------------------------------------- the seed model

def test_seed_model_shapes_and_macs():
    obs = observe(seed_model(), (1, 3, 32, 32))
    assert isinstance(obs, Observations) and isinstance(obs, dict)
    assert list(obs) == ["", "0", "1", "2", "3"]
    assert obs["0"] == Observed("0", "Conv2d", ((1, 3, 32, 32),), (1, 32, 13, 13), 794976, 1)
    assert obs["0"].macs == 32 * 3 * 49 * 169
    assert obs["1"] == Observed("1", "ReLU", ((1, 32, 13, 13),), (1, 32, 13, 13), 0, 1)
    assert obs["2"] == Observed("2", "Flatten", ((1, 32, 13, 13),), (1, 5408), 0, 1)
    assert obs["3"] == Observed("3", "Linear", ((1, 5408),), (1, 10), 54080, 1)
    assert obs[""] == Observed("", "Sequential", ((1, 3, 32, 32),), (1, 10), 794976 + 54080, 1)
    assert (obs.device, obs.fallback_reason) == ("meta", None)


def test_seed_model_same_on_cpu():
    meta = observe(seed_model(), (1, 3, 32, 32))
    cpu = observe(seed_model(), (1, 3, 32, 32), device="cpu")
    assert dict(cpu) == dict(meta)
    assert (cpu.device, cpu.fallback_reason) == ("cpu", None)


def test_seed_model_accepts_31_rejects_28():
    assert observe(seed_model(), (2, 3, 31, 31))["2"].out_shape == (2, 5408)
    with pytest.raises(ObserveError) as info:
        observe(seed_model(), (1, 3, 28, 28))
    err = info.value
    assert str(err) == ("torch raised in module '3' (Linear) with input shapes ((1, 3872),) on cpu: "
                        "RuntimeError: mat1 and mat2 shapes cannot be multiplied (1x3872 and 5408x10)")
    assert (err.layer, err.kind, err.in_shapes, err.device) == ("3", "Linear", ((1, 3872),), "cpu")
    assert isinstance(err, RuntimeError) and isinstance(err.__cause__, RuntimeError)


def test_error_without_fallback_is_the_meta_error():
    with pytest.raises(ObserveError) as info:
        observe(seed_model(), (1, 3, 28, 28), fallback=False)
    assert str(info.value) == ("torch raised in module '3' (Linear) with input shapes ((1, 3872),) on meta: "
                               "RuntimeError: a and b must have same reduction dim, but got [1, 3872] X [5408, 10].")


def test_bad_input_spec():
    with pytest.raises(TypeError, match=r"observe: input 1 must be a shape \(a tuple of non-negative ints\) "
                                        r"or a tensor, got \(1, 'H'\)"):
        observe(nn.Identity(), (1, 2), (1, "H"))
    with pytest.raises(TypeError, match="observe: expected an nn.Module, got function"):
        observe(lambda x: x, (1,))


# ---------------------------------------------------------------- the user's model is never touched

def _state(model):
    return {
        "params": [(n, p, p.detach().clone(), p.device, p.requires_grad) for n, p in model.named_parameters()],
        "buffers": [(n, b, b.detach().clone(), b.device) for n, b in model.named_buffers()],
        "training": [(n, m.training) for n, m in model.named_modules()],
    }


def _assert_unchanged(model, before):
    after = _state(model)
    assert [(n, m) for n, m in after["training"]] == before["training"]
    for (n, p, v, d, r), (n2, p2, _, d2, r2) in zip(before["params"], after["params"]):
        assert (n, d, r) == (n2, d2, r2) and p is p2 and torch.equal(p2.detach(), v)
    for (n, b, v, d), (n2, b2, _, d2) in zip(before["buffers"], after["buffers"]):
        assert (n, d) == (n2, d2) and b is b2 and torch.equal(b2, v)
    _assert_no_hooks(model)


def _assert_no_hooks(model):
    for name, m in model.named_modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                     "_backward_pre_hooks", "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs",
                     "_forward_hooks_always_called"):
            assert not getattr(m, attr, {}), (name, attr)


def mixed_model():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 3), nn.Embedding(5, 2, max_norm=0.1))
    model.train()
    model[1].eval()  # mixed training flags must survive as they are
    model[4].weight.requires_grad_(False)
    return model


class WithEmbedding(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(144, 3))
        self.emb = nn.Embedding(10, 4, max_norm=0.01)  # renormalises its weight in place
        self.body.train()
        self.body[1].eval()

    def forward(self, x, idx):
        return self.body(x), self.emb(idx)


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_model_unchanged(device):
    model = WithEmbedding()
    before = _state(model)
    obs = observe(model, (2, 3, 8, 8), torch.tensor([[1, 2, 3]]), device=device)
    assert obs["emb"].out_shape == (1, 3, 4) and obs[""].out_shape == ((2, 3), (1, 3, 4))
    _assert_unchanged(model, before)


def test_model_unchanged_when_forward_raises():
    model = WithEmbedding()
    before = _state(model)
    with pytest.raises(ObserveError):
        observe(model, (2, 3, 9, 9), torch.tensor([1]))
    _assert_unchanged(model, before)


def test_hooks_removed_from_the_working_copy_when_forward_raises(monkeypatch):
    copies = []
    real_copy = observing._copy_to

    def spy(model, device):
        work = real_copy(model, device)
        copies.append(work)
        return work

    monkeypatch.setattr(observing, "_copy_to", spy)
    with pytest.raises(ObserveError):
        observe(seed_model(), (1, 3, 28, 28))
    assert [c.__class__.__name__ for c in copies] == ["Sequential", "Sequential"]  # meta, then cpu
    assert next(copies[0].parameters()).device.type == "meta"
    for work in copies:
        _assert_no_hooks(work)


def test_meta_model_is_not_copied_in_memory():
    model = seed_model()
    work = observing._copy_to(model, torch.device("meta"))
    assert all(p.device.type == "meta" for p in work.parameters())
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_tied_weights_stay_tied_in_the_copy():
    a, b = nn.Linear(4, 4), nn.Linear(4, 4)
    b.weight = a.weight
    work = observing._copy_to(nn.Sequential(a, b), torch.device("meta"))
    assert work[0].weight is work[1].weight


def test_global_state_restored():
    model = nn.Sequential(nn.FractionalMaxPool2d(2, output_ratio=0.5), nn.LSTM(5, 3))
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    fast = torch.backends.mha.get_fastpath_enabled()
    mkldnn = torch.backends.mkldnn.enabled
    grad = torch.is_grad_enabled()
    observe(model, (1, 5, 10), device="cpu")
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.backends.mha.get_fastpath_enabled() == fast
    assert torch.backends.mkldnn.enabled == mkldnn
    assert torch.is_grad_enabled() == grad


# ---------------------------------------------------------------- calls, names, outputs

def test_reused_module_reports_last_call_and_sums_macs():
    conv = nn.Conv2d(3, 3, 3)
    obs = observe(nn.Sequential(conv, nn.ReLU(), conv), (1, 3, 10, 10))
    assert list(obs) == ["", "0", "1"]  # named_modules() lists the shared conv once
    assert obs["0"] == Observed("0", "Conv2d", ((1, 3, 8, 8),), (1, 3, 6, 6), 3 * 3 * 9 * (64 + 36), 2)
    assert obs[""].macs == 3 * 3 * 9 * (64 + 36)


def test_shared_module_under_two_parents_keeps_first_name():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(nn.Sequential(shared), nn.Sequential(nn.ReLU(), shared))
    obs = observe(model, (2, 4))
    assert "0.0" in obs and "1.1" not in obs
    assert (obs["0.0"].calls, obs["0.0"].macs) == (2, 2 * 2 * 16)
    assert obs["1"].macs == 2 * 16  # the second parent's call includes one use


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.used = nn.Linear(4, 2)
        self.unused = nn.Linear(4, 2)

    def forward(self, x):
        return self.used(x)


def test_modules_that_do_not_run_have_no_entry():
    assert list(observe(Branchy(), (3, 4))) == ["", "used"]


def test_tuple_outputs():
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    obs = observe(mha, (2, 5, 8), (2, 7, 8), (2, 7, 8))
    assert obs[""].in_shapes == ((2, 5, 8), (2, 7, 8), (2, 7, 8))
    assert obs[""].out_shape == ((2, 5, 8), (2, 5, 7))
    assert obs[""].macs == attention_macs(2, 5, 7, 8)

    class NoWeights(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x):
            return self.attn(x, x, x, need_weights=False)

    obs = observe(NoWeights(), (2, 5, 8))
    assert obs["attn"].out_shape == ((2, 5, 8), None)
    assert obs["attn"].macs == attention_macs(2, 5, 5, 8)

    obs = observe(nn.LSTM(5, 7, batch_first=True), (2, 3, 5))
    assert obs[""].out_shape == ((2, 3, 7), ((1, 2, 7), (1, 2, 7)))
    assert obs[""].macs == 2 * 3 * 4 * 7 * (5 + 7)


def test_embedding_takes_an_index_tensor():
    obs = observe(nn.Embedding(10, 4), torch.tensor([[1, 2, 3]]))
    assert obs[""] == Observed("", "Embedding", ((1, 3),), (1, 3, 4), 0, 1)


def test_flopcounter_module_names():
    """ModuleTracker names are type(root).__name__ + '.' + qualified name; observe needs none of them."""
    shared = nn.Linear(4, 4)
    model = nn.Sequential(nn.Sequential(nn.Linear(4, 4), shared), nn.ReLU(), nn.Sequential(shared))
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(2, 4))
    counts = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}
    # the shared Linear is "0.1" for named_modules() but ModuleTracker names it by its LAST path
    assert counts == {"Global": 3 * 64, "Sequential": 3 * 64, "Sequential.0": 2 * 64,
                      "Sequential.0.0": 64, "Sequential.2": 64, "Sequential.2.0": 2 * 64}
    obs = observe(model, (2, 4))
    assert {name: o.macs * 2 for name, o in obs.items() if o.macs} == {
        "": 3 * 64, "0": 2 * 64, "0.0": 64, "0.1": 2 * 64, "2": 64}


def test_fallback_for_data_dependent_forward():
    class Positive(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(1, 3)

        def forward(self, x):
            x = x[x > 0]
            return self.lin(x[:, None])

    obs = observe(Positive(), torch.tensor([-1.0, 2.0, 3.0]))
    assert (obs.device, obs[""].out_shape, obs["lin"].in_shapes, obs["lin"].macs) == ("cpu", (2, 3), ((2, 1),), 6)
    assert obs.fallback_reason.startswith(
        "NotImplementedError in module '' (Positive): The register_meta function for torch.nonzero()")
    with pytest.raises(ObserveError, match=r"^torch raised in module '' \(Positive\) with input shapes "
                                           r"\(\(3,\),\) on meta: NotImplementedError"):
        observe(Positive(), torch.tensor([-1.0, 2.0, 3.0]), fallback=False)


class Gate(nn.Module):
    def forward(self, x):
        return x if x.sum().item() > -1e9 else -x


class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.ones(4)  # not a buffer: stays on CPU in the meta copy

    def forward(self, x):
        return x * self.scale


@pytest.mark.parametrize("module, reason", [
    (Gate(), "RuntimeError in module '' (Gate): Tensor.item() cannot be called on meta tensors"),
    (Scale(), "RuntimeError in module '' (Scale): Tensor on device cpu is not on the expected device meta!"),
])
def test_fallback_for_item_and_plain_tensor_attributes(module, reason):
    obs = observe(module, (2, 4))
    assert (obs.device, obs.fallback_reason, obs[""].out_shape) == ("cpu", reason, (2, 4))


# ---------------------------------------------------------------- the layer catalogue

N, L, E, FF = 2, 5, 8, 16
CATALOGUE = [
    # id, module factory, inputs, out_shape, MACs by the counting convention (README)
    ("Conv1d", lambda: nn.Conv1d(4, 6, 3, stride=2), [(2, 4, 17)], (2, 6, 8), 2 * 6 * 4 * 3 * 8),
    ("Conv2d-groups", lambda: nn.Conv2d(4, 6, 3, stride=2, groups=2), [(2, 4, 17, 17)], (2, 6, 8, 8), 2 * 6 * 2 * 9 * 64),
    ("Conv2d-same-reflect", lambda: nn.Conv2d(4, 6, 4, padding="same", dilation=2, padding_mode="reflect"),
     [(1, 4, 9, 10)], (1, 6, 9, 10), 6 * 4 * 16 * 90),
    ("Conv3d", lambda: nn.Conv3d(4, 6, 3), [(2, 4, 5, 6, 7)], (2, 6, 3, 4, 5), 2 * 6 * 4 * 27 * 60),
    ("ConvTranspose1d", lambda: nn.ConvTranspose1d(4, 6, 3, stride=2), [(2, 4, 9)], (2, 6, 19), 2 * 4 * 6 * 3 * 9),
    ("ConvTranspose2d-groups", lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2, output_padding=1),
     [(2, 4, 5, 6)], (2, 6, 12, 14), 2 * 4 * 3 * 9 * 30),
    ("ConvTranspose3d", lambda: nn.ConvTranspose3d(4, 6, 2, stride=2), [(2, 4, 3, 4, 5)], (2, 6, 6, 8, 10), 2 * 4 * 6 * 8 * 60),
    ("MaxPool1d-ceil-dil", lambda: nn.MaxPool1d(3, 2, ceil_mode=True, dilation=2), [(2, 3, 20)], (2, 3, 9), 0),
    ("MaxPool2d-ceil", lambda: nn.MaxPool2d(3, 2, 1, ceil_mode=True), [(2, 3, 20, 21)], (2, 3, 11, 11), 0),
    ("MaxPool2d-ceil-overhang", lambda: nn.MaxPool1d(3, 2, ceil_mode=True), [(1, 2, 2)], (1, 2, 1), 0),
    ("MaxPool3d-dil", lambda: nn.MaxPool3d(2, dilation=2), [(2, 3, 8, 9, 10)], (2, 3, 3, 4, 4), 0),
    ("MaxPool2d-indices", lambda: nn.MaxPool2d(2, return_indices=True), [(2, 3, 5, 5)], ((2, 3, 2, 2), (2, 3, 2, 2)), 0),
    ("AvgPool1d-ceil", lambda: nn.AvgPool1d(3, 2, ceil_mode=True), [(2, 3, 20)], (2, 3, 10), 0),
    ("AvgPool2d-ceil-pad", lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True), [(2, 3, 20, 21)], (2, 3, 11, 11), 0),
    ("AvgPool3d", lambda: nn.AvgPool3d(2), [(2, 3, 8, 9, 10)], (2, 3, 4, 4, 5), 0),
    ("LPPool1d", lambda: nn.LPPool1d(2, 3, 2), [(2, 3, 20)], (2, 3, 9), 0),
    ("LPPool2d", lambda: nn.LPPool2d(2, 3, 2), [(2, 3, 20, 21)], (2, 3, 9, 10), 0),
    ("LPPool3d", lambda: nn.LPPool3d(2, 2), [(2, 3, 8, 9, 10)], (2, 3, 4, 4, 5), 0),
    ("AdaptiveAvgPool1d", lambda: nn.AdaptiveAvgPool1d(5), [(2, 3, 20)], (2, 3, 5), 0),
    ("AdaptiveAvgPool2d-None", lambda: nn.AdaptiveAvgPool2d((5, None)), [(2, 3, 20, 21)], (2, 3, 5, 21), 0),
    ("AdaptiveAvgPool3d", lambda: nn.AdaptiveAvgPool3d(3), [(2, 3, 8, 9, 10)], (2, 3, 3, 3, 3), 0),
    ("AdaptiveMaxPool1d", lambda: nn.AdaptiveMaxPool1d(5), [(2, 3, 20)], (2, 3, 5), 0),
    ("AdaptiveMaxPool2d-indices", lambda: nn.AdaptiveMaxPool2d(5, return_indices=True), [(2, 3, 20, 21)],
     ((2, 3, 5, 5), (2, 3, 5, 5)), 0),
    ("AdaptiveMaxPool3d", lambda: nn.AdaptiveMaxPool3d(3), [(2, 3, 8, 9, 10)], (2, 3, 3, 3, 3), 0),
    ("FractionalMaxPool2d-size", lambda: nn.FractionalMaxPool2d(2, output_size=7), [(2, 3, 20, 21)], (2, 3, 7, 7), 0),
    ("FractionalMaxPool2d-ratio", lambda: nn.FractionalMaxPool2d(2, output_ratio=0.5), [(2, 3, 20, 21)], (2, 3, 10, 10), 0),
    ("FractionalMaxPool3d-size", lambda: nn.FractionalMaxPool3d(2, output_size=3), [(2, 3, 8, 9, 10)], (2, 3, 3, 3, 3), 0),
    ("FractionalMaxPool3d-ratio", lambda: nn.FractionalMaxPool3d(2, output_ratio=0.5), [(2, 3, 8, 9, 10)], (2, 3, 4, 4, 5), 0),
    ("Upsample-size", lambda: nn.Upsample(size=(7, 9)), [(2, 3, 20, 21)], (2, 3, 7, 9), 0),
    ("Upsample-int", lambda: nn.Upsample(scale_factor=2), [(2, 3, 20, 21)], (2, 3, 40, 42), 0),
    ("Upsample-float-0.29", lambda: nn.Upsample(scale_factor=0.29), [(1, 1, 100, 7)], (1, 1, 28, 2), 0),
    ("Upsample-bilinear", lambda: nn.Upsample(scale_factor=1.5, mode="bilinear"), [(2, 3, 20, 21)], (2, 3, 30, 31), 0),
    ("Upsample-bicubic", lambda: nn.Upsample(scale_factor=1.5, mode="bicubic"), [(2, 3, 20, 21)], (2, 3, 30, 31), 0),
    ("Upsample-linear", lambda: nn.Upsample(scale_factor=1.5, mode="linear"), [(2, 3, 21)], (2, 3, 31), 0),
    ("Upsample-trilinear", lambda: nn.Upsample(scale_factor=1.5, mode="trilinear"), [(2, 3, 4, 5, 6)], (2, 3, 6, 7, 9), 0),
    ("Upsample-nearest-exact", lambda: nn.Upsample(scale_factor=1.5, mode="nearest-exact"), [(2, 3, 20, 21)],
     (2, 3, 30, 31), 0),
    ("UpsamplingNearest2d", lambda: nn.UpsamplingNearest2d(scale_factor=2), [(2, 3, 20, 21)], (2, 3, 40, 42), 0),
    ("UpsamplingBilinear2d", lambda: nn.UpsamplingBilinear2d(scale_factor=2), [(2, 3, 20, 21)], (2, 3, 40, 42), 0),
    ("PixelShuffle", lambda: nn.PixelShuffle(2), [(2, 8, 5, 6)], (2, 2, 10, 12), 0),
    ("PixelUnshuffle", lambda: nn.PixelUnshuffle(2), [(2, 3, 6, 8)], (2, 12, 3, 4), 0),
    ("Flatten", lambda: nn.Flatten(), [(2, 3, 4, 5)], (2, 60), 0),
    ("Flatten-range", lambda: nn.Flatten(0, 2), [(2, 3, 4, 5)], (24, 5), 0),
    ("Unflatten", lambda: nn.Unflatten(1, (3, 4)), [(2, 12, 5)], (2, 3, 4, 5), 0),
    ("Linear-3d", lambda: nn.Linear(5, 7), [(2, 3, 5)], (2, 3, 7), 2 * 3 * 5 * 7),
    ("Linear-1d-nobias", lambda: nn.Linear(5, 7, bias=False), [(5,)], (7,), 5 * 7),
    ("Embedding", lambda: nn.Embedding(10, 4), [torch.tensor([[1, 2, 3]])], (1, 3, 4), 0),
    ("EmbeddingBag", lambda: nn.EmbeddingBag(10, 4), [torch.tensor([[1, 2, 3]])], (1, 4), 0),
    ("BatchNorm1d", lambda: nn.BatchNorm1d(3), [(2, 3, 5)], (2, 3, 5), 0),
    ("BatchNorm2d", lambda: nn.BatchNorm2d(3).eval(), [(1, 3, 1, 1)], (1, 3, 1, 1), 0),  # eval: 1 value/channel
    ("BatchNorm3d", lambda: nn.BatchNorm3d(3), [(2, 3, 4, 5, 6)], (2, 3, 4, 5, 6), 0),
    ("InstanceNorm1d", lambda: nn.InstanceNorm1d(3), [(2, 3, 5)], (2, 3, 5), 0),
    ("InstanceNorm2d-affine-stats", lambda: nn.InstanceNorm2d(3, affine=True, track_running_stats=True),
     [(2, 3, 5, 6)], (2, 3, 5, 6), 0),
    ("InstanceNorm3d", lambda: nn.InstanceNorm3d(3), [(2, 3, 4, 5, 6)], (2, 3, 4, 5, 6), 0),
    ("GroupNorm", lambda: nn.GroupNorm(2, 4), [(2, 4, 5, 6)], (2, 4, 5, 6), 0),
    ("LayerNorm", lambda: nn.LayerNorm((5, 6)), [(2, 4, 5, 6)], (2, 4, 5, 6), 0),
    ("LocalResponseNorm-3d", lambda: nn.LocalResponseNorm(3), [(2, 4, 5)], (2, 4, 5), 0),
    ("LocalResponseNorm-4d", lambda: nn.LocalResponseNorm(3), [(2, 4, 5, 6)], (2, 4, 5, 6), 0),
    ("CrossMapLRN2d", lambda: nn.CrossMapLRN2d(3), [(2, 4, 5, 6)], (2, 4, 5, 6), 0),
    *[(name, (lambda name=name: getattr(nn, name)(0.5)), [shape], shape, 0)
      for name, shape in [("Dropout", (2, 3, 4, 5)), ("Dropout1d", (2, 3, 5)), ("Dropout2d", (2, 3, 4, 5)),
                          ("Dropout3d", (2, 3, 4, 5, 6)), ("AlphaDropout", (2, 3)), ("FeatureAlphaDropout", (2, 3, 4, 5))]],
    ("Identity", lambda: nn.Identity(), [(2, 3, 5)], (2, 3, 5), 0),
    ("ZeroPad1d", lambda: nn.ZeroPad1d((1, 2)), [(2, 3, 5)], (2, 3, 8), 0),
    ("ZeroPad2d", lambda: nn.ZeroPad2d((1, 2, 3, 4)), [(2, 3, 5, 6)], (2, 3, 12, 9), 0),
    ("ZeroPad3d", lambda: nn.ZeroPad3d(1), [(2, 3, 4, 5, 6)], (2, 3, 6, 7, 8), 0),
    ("ConstantPad1d", lambda: nn.ConstantPad1d(2, 3.0), [(2, 3, 5)], (2, 3, 9), 0),
    ("ConstantPad2d-negative", lambda: nn.ConstantPad2d((1, -1, 2, 0), 3.0), [(2, 3, 5, 6)], (2, 3, 7, 6), 0),
    ("ConstantPad3d", lambda: nn.ConstantPad3d(1, 3.0), [(2, 3, 4, 5, 6)], (2, 3, 6, 7, 8), 0),
    ("ReflectionPad1d", lambda: nn.ReflectionPad1d(4), [(2, 3, 5)], (2, 3, 13), 0),
    ("ReflectionPad2d", lambda: nn.ReflectionPad2d((1, 2, 3, 4)), [(2, 3, 5, 6)], (2, 3, 12, 9), 0),
    ("ReflectionPad3d", lambda: nn.ReflectionPad3d(1), [(2, 3, 4, 5, 6)], (2, 3, 6, 7, 8), 0),
    ("ReplicationPad1d", lambda: nn.ReplicationPad1d(6), [(2, 3, 5)], (2, 3, 17), 0),
    ("ReplicationPad2d", lambda: nn.ReplicationPad2d(2), [(2, 3, 5, 6)], (2, 3, 9, 10), 0),
    ("ReplicationPad3d", lambda: nn.ReplicationPad3d(1), [(2, 3, 4, 5, 6)], (2, 3, 6, 7, 8), 0),
    ("CircularPad1d", lambda: nn.CircularPad1d(5), [(2, 3, 5)], (2, 3, 15), 0),
    ("CircularPad2d", lambda: nn.CircularPad2d(2), [(2, 3, 5, 6)], (2, 3, 9, 10), 0),
    ("CircularPad3d", lambda: nn.CircularPad3d(1), [(2, 3, 4, 5, 6)], (2, 3, 6, 7, 8), 0),
    ("ChannelShuffle", lambda: nn.ChannelShuffle(2), [(2, 4, 5, 6)], (2, 4, 5, 6), 0),
    ("Softmax", lambda: nn.Softmax(dim=1), [(2, 4, 5)], (2, 4, 5), 0),
    ("LogSoftmax", lambda: nn.LogSoftmax(dim=1), [(2, 4, 5)], (2, 4, 5), 0),
    ("Softmin", lambda: nn.Softmin(dim=1), [(2, 4, 5)], (2, 4, 5), 0),
    ("Softmax2d", lambda: nn.Softmax2d(), [(2, 4, 5, 6)], (2, 4, 5, 6), 0),
    *[(name, (lambda name=name: getattr(nn, name)()), [(2, 4, 6)], (2, 4, 6), 0)
      for name in ["ELU", "Hardshrink", "Hardsigmoid", "Hardtanh", "Hardswish", "LeakyReLU", "LogSigmoid",
                   "PReLU", "ReLU", "ReLU6", "RReLU", "SELU", "CELU", "GELU", "Sigmoid", "SiLU", "Mish",
                   "Softplus", "Softshrink", "Softsign", "Tanh", "Tanhshrink"]],
    ("Threshold", lambda: nn.Threshold(0.1, 0.0), [(2, 4, 6)], (2, 4, 6), 0),
    ("GLU", lambda: nn.GLU(), [(2, 4, 6)], (2, 4, 3), 0),
    ("MultiheadAttention", lambda: nn.MultiheadAttention(E, 2, batch_first=True), [(N, L, E)] * 3,
     ((N, L, E), (N, L, L)), attention_macs(N, L, L, E)),
    ("MultiheadAttention-kdim-vdim", lambda: nn.MultiheadAttention(E, 2, kdim=3, vdim=5), [(L, N, E), (7, N, 3), (7, N, 5)],
     ((L, N, E), (N, L, 7)), attention_macs(N, L, 7, E, 3, 5)),
    ("MultiheadAttention-unbatched", lambda: nn.MultiheadAttention(E, 2), [(L, E)] * 3, ((L, E), (L, L)),
     attention_macs(1, L, L, E)),
    ("TransformerEncoderLayer", lambda: nn.TransformerEncoderLayer(E, 2, FF, batch_first=True), [(N, L, E)], (N, L, E),
     attention_macs(N, L, L, E) + 2 * N * L * E * FF),
    ("TransformerDecoderLayer", lambda: nn.TransformerDecoderLayer(E, 2, FF, batch_first=True), [(N, L, E), (N, 7, E)],
     (N, L, E), attention_macs(N, L, L, E) + attention_macs(N, L, 7, E) + 2 * N * L * E * FF),
    ("RNN", lambda: nn.RNN(5, 7, batch_first=True), [(2, 3, 5)], ((2, 3, 7), (1, 2, 7)), 2 * 3 * 7 * 12),
    ("GRU", lambda: nn.GRU(5, 7), [(3, 2, 5)], ((3, 2, 7), (1, 2, 7)), 2 * 3 * 3 * 7 * 12),
    ("LSTM", lambda: nn.LSTM(5, 7, batch_first=True), [(2, 3, 5)], ((2, 3, 7), ((1, 2, 7), (1, 2, 7))), 2 * 3 * 4 * 7 * 12),
]


@pytest.mark.parametrize("device", ["meta", "cpu"])
@pytest.mark.parametrize("make, inputs, out_shape, macs", [c[1:] for c in CATALOGUE], ids=[c[0] for c in CATALOGUE])
def test_catalogue(make, inputs, out_shape, macs, device):
    """Every catalogue layer runs on meta (no fallback) and FlopCounterMode's count is the counting convention of the README."""
    obs = observe(make(), *inputs, device=device)
    assert (obs.device, obs.fallback_reason) == (device, None)
    root = obs[""]
    assert root.out_shape == out_shape
    assert root.macs == macs
    assert root.macs_caveat is None


def test_catalogue_covers_every_activation():
    activations = {name for name in dir(nn.modules.activation) if isinstance(getattr(nn, name, None), type)
                   and issubclass(getattr(nn, name), nn.Module) and name in nn.modules.activation.__all__}
    covered = {c[0].split("-")[0] for c in CATALOGUE}
    assert activations <= covered, activations - covered


# ---------------------------------------------------------------- FlopCounterMode's blind spots

def raw_flops(module, inputs, grad, device="cpu"):
    """FlopCounterMode as a user would call it: eval mode, defaults for everything else."""
    module = copy.deepcopy(module).to(device).eval()
    args = [torch.randn(s, device=device) for s in inputs]
    with torch.set_grad_enabled(grad), FlopCounterMode(display=False) as counter:
        module(*args)
    return counter.get_total_flops()


def test_blind_spot_table_is_exactly_what_is_demonstrated():
    assert set(FLOPCOUNTER_BLIND_SPOTS) == {nn.Bilinear}
    assert set(FLOPCOUNTER_AVOIDED) == {nn.MultiheadAttention, nn.TransformerEncoderLayer,
                                        nn.TransformerDecoderLayer, nn.TransformerEncoder, nn.LSTM}
    assert set(META_DIVERGENCES) == {nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
                                     nn.AdaptiveAvgPool2d, nn.Embedding, nn.Upsample}


@pytest.mark.parametrize("device", ["meta", "cpu"])
@pytest.mark.parametrize("grad", [False, True])
def test_blind_spot_bilinear_counts_zero(device, grad):
    bilinear = nn.Bilinear(5, 6, 7)
    assert raw_flops(bilinear, [(2, 5), (2, 6)], grad, device) == 0  # convention: 2 * 5 * 6 * 7


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 5)
        self.pair = Pair()
        self.out = nn.Linear(3, 2)

    def forward(self, x):
        h = self.proj(x)
        return self.out(self.pair(h))


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.bilinear = nn.Bilinear(5, 5, 3)

    def forward(self, h):
        return self.bilinear(h, h)


def test_blind_spot_caveat_marks_the_module_and_its_callers():
    obs = observe(Head(), (2, 4))
    assert obs["pair.bilinear"].macs == 0
    caveat = "contains Bilinear 'pair.bilinear': " + FLOPCOUNTER_BLIND_SPOTS[nn.Bilinear]
    assert obs["pair.bilinear"].macs_caveat == obs["pair"].macs_caveat == obs[""].macs_caveat == caveat
    assert obs["proj"].macs_caveat is None and obs["out"].macs_caveat is None
    assert obs[""].macs == 2 * 4 * 5 + 2 * 3 * 2  # the Bilinear's 2*5*5*3 is missing


class SelfAttention(nn.Module):
    """The MultiheadAttention fast path needs query is key is value and need_weights=False."""

    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(E, 2, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


def test_avoided_attention_fast_paths_and_cpu_flash_kernel():
    mha = SelfAttention()
    x = [(N, L, E)]
    full = attention_macs(N, L, L, E)
    assert raw_flops(mha, x, grad=False) == 0                                 # fast path
    assert raw_flops(mha, x, grad=True) == 2 * (full - 2 * N * L * L * E)      # CPU flash SDPA
    assert raw_flops(mha, x, grad=False, device="meta") == 2 * full            # fast paths refuse meta
    tel = nn.TransformerEncoderLayer(E, 2, FF, batch_first=True)
    tel_full = full + 2 * N * L * E * FF
    assert raw_flops(tel, [(N, L, E)], grad=False) == 0
    assert raw_flops(tel, [(N, L, E)], grad=True) == 2 * (tel_full - 2 * N * L * L * E)  # CPU flash SDPA
    dec = nn.TransformerDecoderLayer(E, 2, FF, batch_first=True)
    dec_full = 2 * full + 2 * N * L * E * FF
    assert raw_flops(dec, [(N, L, E), (N, L, E)], grad=True) == 2 * (dec_full - 2 * 2 * N * L * L * E)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, 2, FF, batch_first=True), 2, enable_nested_tensor=False)
    assert raw_flops(enc, [(N, L, E)], grad=False) == 0
    for module, inputs, macs in [(mha, x, full), (tel, [(N, L, E)], tel_full),
                                 (dec, [(N, L, E), (N, L, E)], dec_full), (enc, [(N, L, E)], 2 * tel_full)]:
        for device in ["meta", "cpu"]:
            assert observe(module, *inputs, device=device)[""].macs == macs, (type(module), device)


def test_avoided_lstm_mkldnn_kernel():
    lstm = nn.LSTM(5, 7, batch_first=True)
    assert raw_flops(lstm, [(2, 3, 5)], grad=False) == 0
    assert raw_flops(lstm, [(2, 3, 5)], grad=False, device="meta") == 2 * 2 * 3 * 4 * 7 * 12
    assert observe(lstm, (2, 3, 5), device="cpu")[""].macs == 2 * 3 * 4 * 7 * 12


def test_avoided_sdpa_flash_kernel_in_plain_code():
    class Attend(nn.Module):
        def forward(self, q, k, v):
            return nn.functional.scaled_dot_product_attention(q, k, v)

    shapes = [(2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 8)]
    assert raw_flops(Attend(), shapes, grad=False) == 0
    for device in ["meta", "cpu"]:
        assert observe(Attend(), *shapes, device=device)[""].macs == 2 * 2 * 3 * 5 * 7 * 8


# ---------------------------------------------------------------- where meta is more permissive than CPU

@pytest.mark.parametrize("module, inputs, meta_shape", [
    (nn.ConvTranspose1d(2, 2, 3, stride=2, output_padding=2), [(1, 2, 5)], (1, 2, 13)),
    (nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2), [(1, 2, 5, 5)], (1, 2, 13, 13)),
    (nn.ConvTranspose3d(2, 2, 3, stride=2, output_padding=2), [(1, 2, 3, 3, 3)], (1, 2, 9, 9, 9)),
    (nn.AdaptiveAvgPool2d(3), [(1, 2, 0, 5)], (1, 2, 3, 3)),
    (nn.Embedding(10, 3), [torch.tensor([11])], (1, 3)),
    (nn.Upsample(scale_factor=0.5, mode="trilinear"), [(1, 2, 1, 2, 2)], (1, 2, 0, 1, 1)),
], ids=["ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "AdaptiveAvgPool2d", "Embedding", "Upsample"])
def test_meta_divergences(module, inputs, meta_shape):
    assert type(module) in META_DIVERGENCES
    assert observe(module, *inputs)[""].out_shape == meta_shape
    with pytest.raises(ObserveError, match=r"^torch raised in module '' \(%s\) .* on cpu: (RuntimeError|IndexError)"
                       % type(module).__name__):
        observe(module, *inputs, device="cpu")


def test_meta_does_not_check_dtypes():
    half = nn.Linear(5, 4).half()
    assert observe(half, (2, 5), dtype=torch.float32)[""].out_shape == (2, 4)
    with pytest.raises(ObserveError, match="on cpu: RuntimeError: mat1 and mat2 must have the same dtype"):
        observe(half, (2, 5), device="cpu", dtype=torch.float32)
    # by default the input takes the model's dtype, so CPU runs it
    assert observe(half, (2, 5), device="cpu")[""].out_shape == (2, 4)
    assert observe(nn.Linear(5, 4).double(), (2, 5), device="cpu")[""].macs == 40


def test_lazy_modules_materialise_on_the_copy_only():
    model = nn.Sequential(nn.LazyConv2d(4, 3), nn.LazyBatchNorm2d(), nn.Flatten(), nn.LazyLinear(4))
    for device in ["meta", "cpu"]:
        obs = observe(model, (2, 3, 5, 5), device=device)
        assert (obs.device, obs.fallback_reason) == (device, None)
        assert {k: (o.out_shape, o.macs) for k, o in obs.items()} == {
            "": ((2, 4), 2 * 4 * 3 * 9 * 9 + 2 * 36 * 4), "0": ((2, 4, 3, 3), 2 * 4 * 3 * 9 * 9),
            "1": ((2, 4, 3, 3), 0), "2": ((2, 36), 0), "3": ((2, 4), 2 * 36 * 4)}
    assert isinstance(model[0].weight, nn.parameter.UninitializedParameter)
    assert isinstance(model[3].weight, nn.parameter.UninitializedParameter)


class CachedBias(nn.Module):
    """timm's EfficientViT / TinyViT attention: in eval mode a bias gathered from a parameter is cached
    in a plain dict (a non-leaf tensor, with autograd history), and a scale computed from a parameter
    is kept as a plain attribute. torch deep-copies only graph leaves."""

    def __init__(self):
        super().__init__()
        self.biases = nn.Parameter(torch.zeros(2, 3))
        self.register_buffer("idxs", torch.tensor([[0, 1], [2, 0]]), persistent=False)
        self.scale = self.biases.sum() + 1
        self.cache = {}

    def bias(self, device):
        if self.training:
            return self.biases[:, self.idxs]
        key = str(device)
        if key not in self.cache:
            self.cache[key] = self.biases[:, self.idxs]
        return self.cache[key]

    def forward(self, x):
        return x * self.scale.to(x.device) + self.bias(x.device)


def test_a_module_keeping_non_leaf_tensors_is_observed_and_checked():
    import symshape as ss

    model = nn.Sequential(nn.Conv2d(3, 2, 3), CachedBias()).eval()
    model(torch.zeros(1, 3, 4, 4))  # fills the cache, as a user's inference with grad on does
    cached = model[1].cache["cpu"]
    assert not cached.is_leaf and not model[1].scale.is_leaf
    with pytest.raises(RuntimeError, match="Only Tensors created explicitly by the user"):
        copy.deepcopy(model)  # what a plain deep copy does
    for device in ("meta", "cpu"):
        obs = observe(model, (1, 3, 4, 4), device=device)
        assert obs["1"].out_shape == (1, 2, 2, 2) and obs["0"].macs == 1 * 2 * 3 * 9 * 4
    rep = ss.trace(model, "1,3,4,4")
    assert model[1].cache == {"cpu": cached}  # the trace ran the forward on stand-ins and left no entry
    before = dict(model[1].cache)
    assert ss.check(model, rep, sizes=[{}]).ok and ss.check(model, rep, sizes=[{}], device="cpu").ok
    assert model[1].cache == before and model[1].cache["cpu"] is cached  # the model's own cache is untouched


def test_a_model_that_cannot_be_copied_is_a_shape_error():
    import threading

    import symshape as ss

    model = nn.Sequential(nn.Linear(3, 2))
    model[0].lock = threading.Lock()
    with pytest.raises(ss.ShapeError) as err:
        observe(model, (1, 3))
    assert str(err.value) == (
        "cannot run the model (Sequential) on a copy: copy.deepcopy raised TypeError: cannot pickle '_thread.lock' "
        "object; the model is never run itself, so keep objects that cannot be deep-copied out of its modules' "
        "attributes (or give their class a __deepcopy__)")
    with pytest.raises(ss.ShapeError, match="cannot run the model"):
        ss.check(model, ss.trace(model, "N,3"), sizes=[{"N": 2}])
