#!/usr/bin/env python3
"""PyTorch CPU reference timing for the challenge U-Net forward pass.

    forward_torch.py [MODEL] [SIZE] [RUNS]

MODEL defaults to shared/reference/pizza_marinara.pt, SIZE to 1024, RUNS to 3.
The network is rebuilt from the architecture in docs/ai4arctic.md section d
(the starter kit's unet.py), its filters inferred from the checkpoint, and
loaded with load_state_dict(strict=True). Before timing, the forward pass is
checked against shared/reference/out_*.npy (input.npy and odd_input.npy).
Timing: float32, eval mode, no_grad, 2 threads, one warm-up then RUNS timed
runs on a 1 x 24 x SIZE x SIZE input. The output line has the same layout as
the icelens `forward` bench.
"""

import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "reference"))
if not os.path.isdir(REFERENCE):
    REFERENCE = "/work/shared/reference"
THREADS = 2


class DoubleConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
        )

    def forward(self, x):
        return self.double_conv(x)


class ContractingBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.contract_block = nn.MaxPool2d(2, 2)
        self.double_conv = DoubleConv(cin, cout)

    def forward(self, x):
        return self.double_conv(self.contract_block(x))


class ExpandingBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.double_conv = DoubleConv(cin + cout, cout)

    def forward(self, x, skip):
        x = self.upsample(x)
        pad_y = skip.shape[2] - x.shape[2]
        pad_x = skip.shape[3] - x.shape[3]
        x = F.pad(x, [pad_x // 2, pad_x - pad_x // 2, pad_y // 2, pad_y - pad_y // 2])
        return self.double_conv(torch.cat([x, skip], dim=1))


class FeatureMap(nn.Module):
    def __init__(self, cin, n):
        super().__init__()
        self.feature_out = nn.Conv2d(cin, n, 1)

    def forward(self, x):
        return self.feature_out(x)


class UNet(nn.Module):
    def __init__(self, filters, n_sic, n_sod, n_floe, in_channels=24):
        super().__init__()
        f = filters
        L = len(f)
        self.input_block = DoubleConv(in_channels, f[0])
        self.contract_blocks = nn.ModuleList(
            [ContractingBlock(f[i - 1], f[i]) for i in range(1, L)]
        )
        self.bridge = ContractingBlock(f[-1], f[-1])
        expand = [ExpandingBlock(f[-1], f[-1])]
        for k in range(1, L):
            expand.append(ExpandingBlock(f[L - k], f[L - k - 1]))
        self.expand_blocks = nn.ModuleList(expand)
        self.sic_feature_map = FeatureMap(f[0], n_sic)
        self.sod_feature_map = FeatureMap(f[0], n_sod)
        self.floe_feature_map = FeatureMap(f[0], n_floe)

    def forward(self, x):
        skips = [self.input_block(x)]
        for block in self.contract_blocks:
            skips.append(block(skips[-1]))
        x = self.bridge(skips[-1])
        for block, skip in zip(self.expand_blocks, reversed(skips)):
            x = block(x, skip)
        return {
            "SIC": self.sic_feature_map(x),
            "SOD": self.sod_feature_map(x),
            "FLOE": self.floe_feature_map(x),
        }


def load_model(path):
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    sd = ckpt["model_state_dict"] if "model_state_dict" in ckpt else ckpt
    in_channels = sd["input_block.double_conv.0.weight"].shape[1]
    filters = [sd["input_block.double_conv.0.weight"].shape[0]]
    i = 0
    while f"contract_blocks.{i}.double_conv.double_conv.0.weight" in sd:
        filters.append(sd[f"contract_blocks.{i}.double_conv.double_conv.0.weight"].shape[0])
        i += 1
    heads = [sd[f"{h}_feature_map.feature_out.weight"].shape[0] for h in ("sic", "sod", "floe")]
    net = UNet(filters, *heads, in_channels=in_channels)
    net.load_state_dict(sd, strict=True)
    net.eval()
    return net, filters, heads, in_channels


def check(net):
    """Max abs difference against the PyTorch reference outputs, per case."""
    worst = 0.0
    for prefix in ("", "odd_"):
        x = np.load(os.path.join(REFERENCE, f"{prefix}input.npy"))
        with torch.no_grad():
            out = net(torch.from_numpy(x))
        diffs = []
        for head in ("SIC", "SOD", "FLOE"):
            ref = np.load(os.path.join(REFERENCE, f"{prefix}out_{head}.npy"))
            got = out[head].numpy()
            assert got.shape == ref.shape, (head, got.shape, ref.shape)
            diffs.append(f"{head} {float(np.abs(got - ref).max()):.2e}")
            worst = max(worst, float(np.abs(got - ref).max()))
        print(f"check {prefix}input.npy {list(x.shape)}: max abs diff " + ", ".join(diffs))
    return worst


def main():
    args = sys.argv[1:]
    model = args[0] if len(args) > 0 else os.path.join(REFERENCE, "pizza_marinara.pt")
    size = int(args[1]) if len(args) > 1 else 1024
    runs = int(args[2]) if len(args) > 2 else 3

    torch.set_num_threads(THREADS)
    torch.set_grad_enabled(False)
    net, filters, heads, cin = load_model(model)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"filters {filters}, heads SIC/SOD/FLOE {heads}, {cin} input channels"
    )

    worst = check(net)
    if worst > 1e-3:
        sys.exit(f"forward pass differs from the reference by {worst:.2e} (> 1e-3)")

    # Same smooth, input-like values as the icelens bench.
    i = np.arange(24 * size * size, dtype=np.int64)
    x = torch.from_numpy(np.sin((i % 977).astype(np.float32) * np.float32(0.013)))
    x = x.reshape(1, 24, size, size)

    with torch.no_grad():
        net(x)  # warm-up: allocator, thread pool
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            out = net(x)
            times.append(time.perf_counter() - t)
            del out
    times.sort()
    best = times[0]
    median = times[len(times) // 2]
    mpx = size * size / 1e6
    print(
        f"{'torch-cpu':<12} {size}x{size}: best {best:.3f} s, median {median:.3f} s, "
        f"{mpx / best:.3f} Mpixel/s"
    )


if __name__ == "__main__":
    main()
