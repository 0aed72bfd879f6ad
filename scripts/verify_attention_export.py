#!/usr/bin/env python3
"""Checks an attention U-Net that icelens trained and exported with real PyTorch.

Usage: verify_attention_export.py EXPORTED.pt ICELENS_FORWARD_DIR INPUT.npy [REFERENCE_DIR]

EXPORTED.pt is a `.pt` written by `icelens finetune` for an attention U-Net;
ICELENS_FORWARD_DIR is what `icelens forward --model EXPORTED.pt --input INPUT.npy --out DIR`
wrote (out_*.npy, attention_<k>.npy). REFERENCE_DIR defaults to ../shared/reference/attention.
Run it with a Python that has torch (bench/.venv/bin/python); scripts/verify_attention_export.sh
does all of it.

1. `UNetAttention` below is written from the domain spec (§d.1-d.4, §d.7). It is first checked
   against the reference made with the team's own class: the reference checkpoint loaded with
   strict=True must give the reference logits and ψ (max |Δ| <= 1e-4).
2. EXPORTED.pt must load into it with strict=True (every key, shape and buffer present, nothing
   extra) from `model_state_dict`, and give icelens' own logits and ψ on INPUT.npy
   (max |Δ| <= 1e-3, the parity tolerance of the spec).

Exits 1 on any mismatch.
"""

import os
import sys

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# The plain U-Net's blocks (spec §d.1), defined once for icelens' PyTorch scripts.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from forward_torch import ContractingBlock, DoubleConv, FeatureMap  # noqa: E402


class AttentionBlock(nn.Module):
    def __init__(self, f_g, f_l, n):
        super().__init__()
        conv_bn = lambda cin, cout: nn.Sequential(  # noqa: E731
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)
        )
        self.W_gate = conv_bn(f_g, n)
        self.W_x = conv_bn(f_l, n)
        self.psi = nn.Sequential(nn.Conv2d(n, 1, 3, padding=1, bias=False), nn.BatchNorm2d(1), nn.Sigmoid())
        self.last_psi = None

    def forward(self, gate, skip):
        psi = self.psi(F.relu(self.W_gate(gate) + self.W_x(skip)))
        self.last_psi = psi
        return skip * psi


class ExpandingBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.attention = AttentionBlock(cin, cout, int(cout / 2))
        self.double_conv = DoubleConv(cin + cout, cout)

    def forward(self, x, skip):
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        x = F.pad(x, [0, skip.shape[3] - x.shape[3], 0, skip.shape[2] - x.shape[2]])
        return self.double_conv(torch.cat([self.attention(x, skip), x], dim=1))


class UNetAttention(nn.Module):
    def __init__(self, filters, heads, in_channels=24):
        super().__init__()
        self.input_block = DoubleConv(in_channels, filters[0])
        self.contract_blocks = nn.ModuleList(
            ContractingBlock(filters[i - 1], filters[i]) for i in range(1, len(filters))
        )
        self.bridge = ContractingBlock(filters[-1], filters[-1])
        expand = [ExpandingBlock(filters[-1], filters[-1])]
        for k in range(1, len(filters)):
            expand.append(ExpandingBlock(filters[-k], filters[-k - 1]))
        self.expand_blocks = nn.ModuleList(expand)
        self.sic_feature_map = FeatureMap(filters[0], heads[0])
        self.sod_feature_map = FeatureMap(filters[0], heads[1])
        self.floe_feature_map = FeatureMap(filters[0], heads[2])

    def forward(self, x):
        skips = [self.input_block(x)]
        for block in self.contract_blocks:
            skips.append(block(skips[-1]))
        y = self.bridge(skips[-1])
        for block in self.expand_blocks:
            y = block(y, skips.pop())
        return [self.sic_feature_map(y), self.sod_feature_map(y), self.floe_feature_map(y)]

    def psis(self):
        return [b.attention.last_psi for b in self.expand_blocks]


def build(sd):
    n = sum(1 for k in sd if k.startswith("contract_blocks.") and k.endswith(".double_conv.0.weight"))
    filters = [sd["input_block.double_conv.0.weight"].shape[0]]
    filters += [sd[f"contract_blocks.{i}.double_conv.double_conv.0.weight"].shape[0] for i in range(n)]
    heads = [sd[f"{c}_feature_map.feature_out.bias"].shape[0] for c in ("sic", "sod", "floe")]
    net = UNetAttention(filters, heads)
    net.load_state_dict(sd, strict=True)
    return net.eval()


def run(net, x):
    with torch.no_grad():
        out = net(torch.from_numpy(x))
    return [o.numpy() for o in out], [p.numpy() for p in net.psis()]


def worst(a, b):
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def compare(what, got, want_dir, tol, psi_name):
    failed = False
    outs, psis = got
    for chart, o in zip(("SIC", "SOD", "FLOE"), outs):
        d = worst(o, np.load(os.path.join(want_dir, f"out_{chart}.npy")))
        print(f"{what}: {chart} logits max |diff| {d:.2e}")
        failed |= not d <= tol
    for k, p in enumerate(psis):
        d = worst(p, np.load(os.path.join(want_dir, psi_name(k))))
        print(f"{what}: psi of expand_blocks.{k} max |diff| {d:.2e}")
        failed |= not d <= tol
    return failed


def main():
    if len(sys.argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    exported, forward_dir, input_npy = sys.argv[1:4]
    here = os.path.dirname(os.path.abspath(__file__))
    ref = sys.argv[4] if len(sys.argv) == 5 else os.path.join(here, "..", "..", "shared", "reference", "attention")
    torch.set_num_threads(2)

    reference = torch.load(os.path.join(ref, "unet_attention_4lvl.pt"), weights_only=True)["model_state_dict"]
    failed = compare(
        "this UNetAttention vs the team's class",
        run(build(reference), np.load(os.path.join(ref, "input.npy"))),
        ref,
        1e-4,
        lambda k: f"psi_{k}.npy",
    )

    ckpt = torch.load(exported, weights_only=True)
    sd = ckpt["model_state_dict"]
    print(f"{exported}: {len(sd)} entries, loads with strict=True")
    failed |= compare(
        "PyTorch vs icelens on the exported model",
        run(build(sd), np.load(input_npy)),
        forward_dir,
        1e-3,
        lambda k: f"attention_{k}.npy",
    )
    print("FAILED" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
