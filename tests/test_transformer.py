"""torch.nn's Transformer layers, traced through their forward (they have children and no rule)."""
import pytest
import torch.nn as nn

import symshape as ss


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("make", [
    lambda: nn.TransformerEncoderLayer(64, 4, 128, batch_first=True),
    lambda: nn.TransformerEncoderLayer(64, 4, 128, norm_first=True, activation="gelu"),
    lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(64, 4, 128, batch_first=True), 2,
                                  enable_nested_tensor=False),
], ids=["post-norm", "pre-norm seq-first", "encoder x2"])
def test_transformer_encoders_agree_with_torch(make, mode):
    model = getattr(make(), mode)()
    rep = ss.trace(model, "N,L,64")
    assert rep.output_shape == ss.parse_shape("N,L,64")
    res = ss.check(model, rep)
    assert res.ok, res
    assert {c.layer for c in res.comparisons} >= {"self_attn", "linear1"} or \
        {c.layer for c in res.comparisons} >= {"layers.0.self_attn", "layers.1"}


def test_an_encoder_layer_has_its_parts_named_and_its_macs_exact():
    rep = ss.trace(nn.TransformerEncoderLayer(64, 4, 128, batch_first=True).eval(), "N,L,64")
    assert [layer.name for layer in rep.layers] == [
        "self_attn", "dropout1", "add", "norm1", "linear1", "relu", "dropout", "linear2", "dropout2", "add_1", "norm2"]
    N, L = ss.symbols("N L")
    # attention: q, k, v and out projections 4·64², scores and weighted sum 2·L·64; the MLP 2·64·128
    assert (rep.macs - N * L * (4 * 64 * 64 + 2 * L * 64 + 2 * 64 * 128)).expand() == 0
    assert rep.at(N=2, L=10).macs == 2 * 10 * (4 * 64 * 64 + 2 * 10 * 64 + 2 * 64 * 128)
