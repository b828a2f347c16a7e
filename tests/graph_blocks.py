"""Small blocks of the architectures people use, for the graph front end's tests."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class SqueezeExcite(nn.Module):
    """Inverted residual with squeeze-and-excitation (MobileNetV3 / EfficientNet style)."""

    def __init__(self, c=16, hidden=48):
        super().__init__()
        self.expand = nn.Conv2d(c, hidden, 1)
        self.dw = nn.Conv2d(hidden, hidden, 3, stride=1, padding=1, groups=hidden)
        self.fc1 = nn.Conv2d(hidden, 8, 1)
        self.fc2 = nn.Conv2d(8, hidden, 1)
        self.project = nn.Conv2d(hidden, c, 1)

    def forward(self, x):
        y = F.hardswish(self.dw(F.relu6(self.expand(x))))
        s = F.adaptive_avg_pool2d(y, 1)
        y = y * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x + self.project(y)


class DenseBlock(nn.Module):
    """DenseNet: every layer sees the concatenation of all earlier maps."""

    def __init__(self, c=8, growth=4, layers=3):
        super().__init__()
        self.layers = nn.ModuleList(nn.Conv2d(c + i * growth, growth, 3, padding=1) for i in range(layers))
        self.pool = nn.AvgPool2d(2)

    def forward(self, x):
        feats = [x]
        for conv in self.layers:
            feats.append(conv(torch.cat(feats, 1)))
        return self.pool(torch.cat(feats, 1))


class ShuffleUnit(nn.Module):
    """ShuffleNetV2's unit: split, branch, concatenate, channel shuffle through view/transpose."""

    def __init__(self, c=16):
        super().__init__()
        self.branch = nn.Sequential(nn.Conv2d(c // 2, c // 2, 1), nn.Conv2d(c // 2, c // 2, 3, padding=1, groups=c // 2))

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        out = torch.cat((a, self.branch(b)), dim=1)
        n, c, h, w = out.size()
        out = out.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous()
        return out.view(n, -1, h, w)


class ConvNeXtBlock(nn.Module):
    """ConvNeXt: depthwise 7×7, permute to channels-last, LayerNorm, MLP, permute back, residual."""

    def __init__(self, c=16):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c)
        self.pw1 = nn.Linear(c, 4 * c)
        self.pw2 = nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(torch.ones(c))

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.gamma * self.pw2(F.gelu(self.pw1(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


class WindowAttention(nn.Module):
    """Swin-style: pad H and W to multiples of the window, attend within windows, crop back."""

    def __init__(self, c=16, window=4, heads=2):
        super().__init__()
        self.window, self.heads = window, heads
        self.qkv = nn.Linear(c, 3 * c)
        self.proj = nn.Linear(c, c)

    def forward(self, x):  # (B, H, W, C)
        b, h, w, c = x.shape
        win = self.window
        pad_b = (win - h % win) % win
        pad_r = (win - w % win) % win
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        ph, pw = x.shape[1], x.shape[2]
        x = x.view(b, ph // win, win, pw // win, win, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, win * win, c)
        q, k, v = self.qkv(x).reshape(x.size(0), win * win, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(-1, win * win, c)
        x = self.proj(x).view(b, ph // win, pw // win, win, win, c).permute(0, 1, 3, 2, 4, 5).reshape(b, ph, pw, c)
        return x[:, :h, :w, :].contiguous()


class TinyTransformer(nn.Module):
    """Patch embedding, class token, positional embedding of fixed length, one MHA block with
    scaled_dot_product_attention in a hand-written layer, and einsum."""

    def __init__(self, dim=32, patch=4, grid=4):
        super().__init__()
        self.embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, grid * grid + 1, dim))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.mix = nn.Parameter(torch.zeros(dim, dim))

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        q, k, v = self.qkv(x).view(x.size(0), x.size(1), 3, 4, -1).permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)
        return torch.einsum("bld,de->ble", y, self.mix).mean(dim=1)


class UpCat(nn.Module):
    """A decoder step that resizes to the skip's size with interpolate(size=...) and concatenates."""

    def __init__(self, c=8):
        super().__init__()
        self.down = nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.fuse = nn.Conv2d(2 * c, c, 1)

    def forward(self, x):
        y = self.down(x)
        y = F.interpolate(y, size=x.shape[-2:], mode="nearest")
        return self.fuse(torch.cat([x, y], 1))


class Ops(nn.Module):
    """Many function and method rules in one forward, each output reduced into the result."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(6, 4, 3, 3))
        self.lin = nn.Parameter(torch.zeros(5, 6))

    def forward(self, x):  # (N, 4, H, W)
        y = F.conv2d(x, self.w, None, 2, 1)                        # (N, 6, ceil(H/2), ceil(W/2))
        y = F.avg_pool2d(F.max_pool2d(y, 3, 1, 1, ceil_mode=True), 2, ceil_mode=True)
        z = F.interpolate(x, scale_factor=0.5)[:, :2, 1:, ::2]     # floor(H/2) - 1, ceil(floor(W/2)/2)
        z = torch.roll(z.flip(-1), 1, 2).transpose(2, 3).contiguous()
        p = F.pad(x, (1, -1, 2, 0))[..., -3:, :]                   # the last 3 rows of the padded map
        q = x.unsqueeze(0).squeeze(0).mean(dim=(2, 3), keepdim=True).expand(-1, -1, 2, 3).repeat(1, 1, 2, 1)
        a, b = x.split([1, 3], dim=1)
        s = torch.stack([a, b[:, :1]], dim=2).sum(2)
        r = F.adaptive_avg_pool2d(y, (2, 3)).permute(0, 2, 3, 1)   # (N, 2, 3, 6)
        f = F.linear(F.layer_norm(r, (6,)), self.lin).reshape(x.size(0), -1)
        n = x.size(2) * x.size(3)
        v = x.view(x.shape[0], 4, n // x.size(3), -1).amax(dim=-1)  # (N, 4, H)
        return (y.sum() + z.sum() + p.sum() + q.sum() + s.sum() + f.sum() + v.sum()).unsqueeze(0).expand(3)
