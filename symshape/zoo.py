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


MODELS: dict = {
    "seed_case1": ZooEntry(seed_case1, "1,3,H,W", {"H": 32, "W": 32}),
    "seed_case2": ZooEntry(seed_case2, "1,3,H,W", {"H": 32, "W": 32}),
    "fastbook_cnn": ZooEntry(fastbook_cnn, "64,1,H,W", {"H": 28, "W": 28}),
    "lenet5": ZooEntry(lenet5, "1,1,H,W", {"H": 32, "W": 32}),
    "alexnet": ZooEntry(alexnet, "1,3,H,W", {"H": 224, "W": 224}),
    "vgg11": ZooEntry(vgg11, "1,3,H,W", {"H": 224, "W": 224}),
    "vgg16": ZooEntry(vgg16, "1,3,H,W", {"H": 224, "W": 224}),
    "plainnet50": ZooEntry(plainnet50, "1,3,H,W", {"H": 224, "W": 224}),
}
