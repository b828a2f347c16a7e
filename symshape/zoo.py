"""Reference architectures as plain torch modules, for examples, tests and the default run.

Each factory builds a fresh, randomly initialised model (no download). :data:`MODELS` maps a
name to its factory, the input spec it is meant for, and the sizes it is usually run at.

>>> import symshape as ss
>>> rep = ss.trace(seed_case1(), "1,3,H,W")
>>> rep.at(H=32, W=32).output_shape
(1, 10)
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, NamedTuple

import torch.nn as nn

__all__ = ["MODELS", "ZooEntry", "seed_case1", "seed_case2", "fastbook_cnn", "lenet5", "alexnet", "vgg11",
           "vgg16", "plainnet50"]


def seed_case1() -> nn.Sequential:
    """The first network of seeds/000: where does 5408 in ``nn.Linear(5408, 10)`` come from?

    5408 = 32·13·13 at H = W = 32 (also 31), not at the 28 the accepted answer assumed.
    """
    return nn.Sequential(
        nn.Conv2d(3, 32, kernel_size=7, stride=2),
        nn.ReLU(inplace=True),
        nn.Flatten(),
        nn.Linear(5408, 10),
    )


def _conv_bn_pool(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel_size=k, padding=k // 2), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.MaxPool2d(2))


def seed_case2() -> nn.Sequential:
    """The second network of seeds/000: (conv -> batchnorm -> relu -> maxpool) × 3 -> fc(64·4·4, 10)."""
    return nn.Sequential(OrderedDict(
        layer1=_conv_bn_pool(3, 16, 5),
        layer2=_conv_bn_pool(16, 32, 3),
        layer3=_conv_bn_pool(32, 64, 3),
        flatten=nn.Flatten(),
        fc=nn.Linear(64 * 4 * 4, 10),
    ))


def fastbook_cnn() -> nn.Sequential:
    """The stride-2 MNIST network of seeds/001 (fastbook chapter 13, ``simple_cnn``): five 3×3
    stride-2 convs with padding 1, 1 -> 4 -> 8 -> 16 -> 32 -> 2 channels, then Flatten."""
    def conv(ni, nf, act=True):
        layers = [nn.Conv2d(ni, nf, kernel_size=3, stride=2, padding=1)]
        return nn.Sequential(*layers, nn.ReLU()) if act else layers[0]

    return nn.Sequential(conv(1, 4), conv(4, 8), conv(8, 16), conv(16, 32), conv(32, 2, act=False), nn.Flatten())


def lenet5() -> nn.Sequential:
    """LeNet-5 (LeCun et al. 1998) on 32×32 inputs: C1 6@5×5, S2, C3 16@5×5, S4, C5 120@5×5,
    F6 84, output 10, with tanh and average pooling (the full C3 connection table)."""
    return nn.Sequential(OrderedDict(
        c1=nn.Conv2d(1, 6, 5), act1=nn.Tanh(), s2=nn.AvgPool2d(2),
        c3=nn.Conv2d(6, 16, 5), act3=nn.Tanh(), s4=nn.AvgPool2d(2),
        c5=nn.Conv2d(16, 120, 5), act5=nn.Tanh(),
        flatten=nn.Flatten(),
        f6=nn.Linear(120, 84), act6=nn.Tanh(),
        output=nn.Linear(84, 10),
    ))


def alexnet(num_classes: int = 1000) -> nn.Sequential:
    """AlexNet as torchvision builds it (one tower, "One weird trick" channel widths), flattened
    into a Sequential: features, avgpool (6×6), flatten, classifier."""
    return nn.Sequential(OrderedDict(
        features=nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        ),
        avgpool=nn.AdaptiveAvgPool2d((6, 6)),
        flatten=nn.Flatten(),
        classifier=nn.Sequential(
            nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        ),
    ))


def _vgg(cfg, num_classes: int) -> nn.Sequential:
    layers, cin = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(cin, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            cin = v
    return nn.Sequential(OrderedDict(
        features=nn.Sequential(*layers),
        avgpool=nn.AdaptiveAvgPool2d((7, 7)),
        flatten=nn.Flatten(),
        classifier=nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, num_classes),
        ),
    ))


def vgg11(num_classes: int = 1000) -> nn.Sequential:
    """VGG-11 (configuration A of Simonyan & Zisserman 2014), torchvision's layout."""
    return _vgg([64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"], num_classes)


def vgg16(num_classes: int = 1000) -> nn.Sequential:
    """VGG-16 (configuration D of Simonyan & Zisserman 2014), torchvision's layout."""
    return _vgg([64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
                num_classes)


def plainnet50(num_classes: int = 1000) -> nn.Sequential:
    """A 50-layer ResNet-shaped network without skip connections (a plain network, as in He et
    al. 2016, section 4.1): the ResNet stem, 48 3×3 conv-BN-ReLU layers in four stages of
    (6, 8, 12, 22) layers and widths (64, 128, 256, 512), the first of stages 2-4 with stride 2,
    then global average pooling and a 1000-way fc."""
    layers: list = [nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                    nn.MaxPool2d(3, stride=2, padding=1)]
    cin = 64
    for stage, (depth, width) in enumerate(zip((6, 8, 12, 22), (64, 128, 256, 512))):
        for i in range(depth):
            stride = 2 if stage > 0 and i == 0 else 1
            layers += [nn.Conv2d(cin, width, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
            cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)]
    return nn.Sequential(*layers)


class ZooEntry(NamedTuple):
    """A zoo model: its factory, the input spec it is meant for, and its usual sizes."""

    factory: Callable[[], nn.Module]
    input: str
    sizes: dict


def _square(factory, size: int, channels: int = 3, batch: int = 1) -> ZooEntry:
    """The entry of an image model: input ``batch,channels,H,W``, usually run at H = W = size."""
    return ZooEntry(factory, f"{batch},{channels},H,W", {"H": size, "W": size})


MODELS: dict = {
    "seed_case1": _square(seed_case1, 32),
    "seed_case2": _square(seed_case2, 32),
    "fastbook_cnn": _square(fastbook_cnn, 28, channels=1, batch=64),
    "lenet5": _square(lenet5, 32, channels=1),
    "alexnet": _square(alexnet, 224),
    "vgg11": _square(vgg11, 224),
    "vgg16": _square(vgg16, 224),
    "plainnet50": _square(plainnet50, 224),
}


# ---------------------------------------------------------------- graph models (traced with torch.fx)
# Architectures whose forward is not a plain chain: residual additions, concatenations, crops,
# attention. symshape traces them through torch.fx (symshape.graph).

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class AlexNet2012(nn.Module):
    """The original two-tower AlexNet (Krizhevsky, Sutskever & Hinton 2012, figure 2).

    Each tower is one GPU: conv1 48 kernels 11×11×3, stride 4, no padding; conv2 128 of 5×5×48
    (own tower only); conv3 192 of 3×3×256 (both towers); conv4 192 of 3×3×192 and conv5 128 of
    3×3×192 (own tower); LRN (k=2, n=5, α=1e-4, β=0.75) after conv1 and conv2, overlapping 3×3
    stride-2 max pools after the LRNs and conv5; fc6 and fc7 4096, fc8 1000.

    The paper says the input is 224×224×3, but conv1 gives the paper's 55×55 only for 227 to 230
    (floor((H - 11)/4) + 1 = 55), and fc6 needs 6×6×256 = 9216 inputs, which holds for
    227 <= H <= 258: at 224 the model does not run (conv1 gives 54×54, the last pool 5×5), and
    symshape's domain says so.
    """

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        pair = lambda make: nn.ModuleList([make(), make()])  # noqa: E731  (one per tower)
        self.conv1 = pair(lambda: nn.Conv2d(3, 48, kernel_size=11, stride=4))
        self.conv2 = pair(lambda: nn.Conv2d(48, 128, kernel_size=5, padding=2))
        self.conv3 = pair(lambda: nn.Conv2d(256, 192, kernel_size=3, padding=1))
        self.conv4 = pair(lambda: nn.Conv2d(192, 192, kernel_size=3, padding=1))
        self.conv5 = pair(lambda: nn.Conv2d(192, 128, kernel_size=3, padding=1))
        self.lrn = nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2)
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        towers = [self.pool(self.lrn(F.relu(conv(x)))) for conv in self.conv1]
        towers = [self.pool(self.lrn(F.relu(conv(t)))) for conv, t in zip(self.conv2, towers)]
        both = torch.cat(towers, dim=1)  # conv3 sees both towers
        towers = [F.relu(conv(both)) for conv in self.conv3]
        towers = [F.relu(conv(t)) for conv, t in zip(self.conv4, towers)]
        towers = [self.pool(F.relu(conv(t))) for conv, t in zip(self.conv5, towers)]
        return self.classifier(torch.flatten(torch.cat(towers, dim=1), 1))


def alexnet2012(num_classes: int = 1000) -> nn.Module:
    """The original two-tower AlexNet; see :class:`AlexNet2012` (input 227×227, not 224)."""
    return AlexNet2012(num_classes)


class Bottleneck(nn.Module):
    """ResNet's bottleneck block as torchvision builds it (stride on the 3×3 conv, "ResNet v1.5")."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """ResNet (He et al. 2016) with bottleneck blocks, in torchvision's layout and module names."""

    def __init__(self, layers=(3, 4, 6, 3), num_classes: int = 1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * Bottleneck.expansion, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * Bottleneck.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * Bottleneck.expansion),
            )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet50(num_classes: int = 1000) -> nn.Module:
    """ResNet-50: 25,557,032 parameters and 4.09 GMACs at 224×224, as torchvision publishes."""
    return ResNet((3, 4, 6, 3), num_classes)


def _conv_bn_relu6(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """MobileNetV2's block (Sandler et al. 2018, table 1): 1×1 expansion, 3×3 depthwise, 1×1 linear
    projection, with a residual connection when the stride is 1 and the widths agree."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = [_conv_bn_relu6(inp, hidden, 1)] if expand_ratio != 1 else []
        layers += [_conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (width 1.0) in torchvision's layout: 3,504,872 parameters, 300.77 M MACs at 224×224."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                    (6, 320, 1, 1)]
        features, cin = [_conv_bn_relu6(3, 32, stride=2)], 32
        for t, c, n, s in settings:
            for i in range(n):
                features.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        features.append(_conv_bn_relu6(cin, 1280, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


def mobilenet_v2(num_classes: int = 1000) -> nn.Module:
    """MobileNetV2; see :class:`MobileNetV2`."""
    return MobileNetV2(num_classes)


def _double_conv(cin: int, cout: int, padding: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=padding), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=padding), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """U-Net (Ronneberger, Fischer & Brox 2015, figure 1).

    ``padding=0`` is the paper's network: unpadded 3×3 convs, 2×2 max pools, 2×2 up-convolutions
    that halve the channels, and skip connections that centre-crop the encoder's map to the
    decoder's size before concatenating; 572×572 in, 388×388 out. ``padding=1`` is the common
    "same" variant without crops, whose concatenations need H and W divisible by 16.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, padding: int = 0, widths=(64, 128, 256, 512, 1024)):
        super().__init__()
        self.padding = padding
        self.down = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.down.append(_double_conv(cin, w, padding))
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose2d(cin, w, 2, stride=2))
            self.dec.append(_double_conv(2 * w, w, padding))
            cin = w
        self.head = nn.Conv2d(cin, num_classes, 1)

    @staticmethod
    def crop(skip, h, w):
        """The centre h×w window of skip (torch.narrow fails when the window does not fit)."""
        top = (skip.size(2) - h) // 2
        left = (skip.size(3) - w) // 2
        return skip.narrow(2, top, h).narrow(3, left, w)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips[:-1])):
            x = up(x)
            if self.padding == 0:
                skip = self.crop(skip, x.size(2), x.size(3))
            x = dec(torch.cat([skip, x], dim=1))
        return self.head(x)


def unet(in_channels: int = 1, num_classes: int = 2) -> nn.Module:
    """The paper's U-Net: valid convs and crops, 572×572 -> 388×388."""
    return UNet(in_channels, num_classes, padding=0)


def unet_same(in_channels: int = 1, num_classes: int = 2) -> nn.Module:
    """U-Net with padded convs and no crops: the skips need H ≡ W ≡ 0 (mod 16)."""
    return UNet(in_channels, num_classes, padding=1)


class EncoderBlock(nn.Module):
    """A pre-norm transformer encoder block: x + MHA(LN(x)), then x + MLP(LN(x)) with GELU."""

    def __init__(self, dim: int, heads: int, mlp_dim: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x):
        y = self.ln_1(x)
        y, _ = self.self_attention(y, y, y, need_weights=False)
        x = x + y
        return x + self.mlp(self.ln_2(x))


class ViT(nn.Module):
    """Vision Transformer (Dosovitskiy et al. 2021): a p×p stride-p patch embedding, a class token
    concatenated in front, learned positional embeddings for a fixed number of patches (which
    fixes the input size), pre-norm encoder blocks, and a linear head on the class token."""

    def __init__(self, image_size: int = 224, patch_size: int = 16, dim: int = 192, depth: int = 12, heads: int = 3,
                 mlp_dim: int = 768, num_classes: int = 1000):
        super().__init__()
        self.patch_size = patch_size
        self.conv_proj = nn.Conv2d(3, dim, patch_size, stride=patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.zeros(1, (image_size // patch_size) ** 2 + 1, dim))
        self.layers = nn.Sequential(*[EncoderBlock(dim, heads, mlp_dim) for _ in range(depth)])
        self.ln = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.conv_proj(x).flatten(2).transpose(1, 2)  # (N, patches, dim)
        cls = self.class_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embedding
        x = self.ln(self.layers(x))
        return self.head(x[:, 0])


def vit_tiny(num_classes: int = 1000) -> nn.Module:
    """ViT-Ti/16 (dim 192, depth 12, 3 heads, MLP 768) for 224×224 inputs."""
    return ViT(224, 16, 192, 12, 3, 768, num_classes)


def vit_b16(num_classes: int = 1000) -> nn.Module:
    """ViT-B/16 (dim 768, depth 12, 12 heads, MLP 3072) for 224×224 inputs."""
    return ViT(224, 16, 768, 12, 12, 3072, num_classes)


class GPTBlock(nn.Module):
    """A GPT-2 transformer block written out (Korthikanti et al. 2022, figure 2): pre-norm
    self-attention with the heads as a batch dim (q·kᵀ/√d, softmax, dropout, ·v) and a 4·h MLP with
    GELU, dropout after the attention probabilities, the attention output and the MLP; input (b, s, h)."""

    def __init__(self, dim: int = 768, heads: int = 12, p: float = 0.1):
        super().__init__()
        self.heads = heads
        self.ln_1, self.qkv, self.proj = nn.LayerNorm(dim), nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.attn_drop, self.resid_drop = nn.Dropout(p), nn.Dropout(p)
        self.ln_2, self.fc, self.gelu = nn.LayerNorm(dim), nn.Linear(dim, 4 * dim), nn.GELU()
        self.fc_proj, self.mlp_drop = nn.Linear(4 * dim, dim), nn.Dropout(p)

    def forward(self, x):
        b, s, h = x.shape
        d = h // self.heads
        q, k, v = self.qkv(self.ln_1(x)).chunk(3, dim=-1)
        q, k, v = (t.reshape(b, s, self.heads, d).transpose(1, 2) for t in (q, k, v))
        att = self.attn_drop(torch.softmax(q @ k.transpose(-2, -1) / d ** 0.5, dim=-1))
        x = x + self.resid_drop(self.proj((att @ v).transpose(1, 2).reshape(b, s, h)))
        return x + self.mlp_drop(self.fc_proj(self.gelu(self.fc(self.ln_2(x)))))


def gpt_block(dim: int = 768, heads: int = 12, p: float = 0.1) -> nn.Module:
    """A GPT-2 block; see :class:`GPTBlock` (GPT-2 small: dim 768, 12 heads)."""
    return GPTBlock(dim, heads, p)


__all__ += ["gpt_block", "GPTBlock"]
__all__ += ["alexnet2012", "resnet50", "mobilenet_v2", "unet", "unet_same", "vit_tiny", "vit_b16", "AlexNet2012",
            "ResNet", "Bottleneck", "MobileNetV2", "InvertedResidual", "UNet", "ViT", "EncoderBlock"]
MODELS.update({
    "alexnet2012": _square(alexnet2012, 227),
    "resnet50": _square(resnet50, 224),
    "mobilenet_v2": _square(mobilenet_v2, 224),
    "unet": _square(unet, 572, channels=1),
    "unet_same": _square(unet_same, 512, channels=1),
    "vit_tiny": _square(vit_tiny, 224),
})
