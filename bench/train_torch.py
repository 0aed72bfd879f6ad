#!/usr/bin/env python3
"""PyTorch CPU reference timing of one training step of the challenge U-Net.

    train_torch.py [MODEL] [BATCH] [SIZE] [RUNS]

Defaults: shared/reference/pizza_marinara.pt, 8, 256, 3. The network of forward_torch.py,
loaded from the checkpoint, in train mode; per step: forward, cross-entropy per chart with
ignore_index=255 summed, backward, Adam (lr 1e-4). Random inputs and targets, 2 threads,
one warm-up step, then RUNS timed steps. Compare with icelens' own step time
(`cargo test --workspace --release --test train -- --ignored step_time --nocapture`).
"""

import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward_torch import REFERENCE, THREADS, load_model  # noqa: E402


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REFERENCE, "pizza_marinara.pt")
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 256
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    net = load_model(model)[0]
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.randn(batch, 24, size, size)
    y = {
        "SIC": torch.randint(0, 11, (batch, size, size)),
        "SOD": torch.randint(0, 6, (batch, size, size)),
        "FLOE": torch.randint(0, 7, (batch, size, size)),
    }
    for t in y.values():
        t[:, : size // 8] = 255

    def step():
        opt.zero_grad()
        out = net(x)
        loss = sum(F.cross_entropy(out[k], y[k], ignore_index=255) for k in y)
        loss.backward()
        opt.step()
        return float(loss.detach())

    step()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(f"pytorch train step {batch}x{size}x{size}: best {min(times):.2f} s, "
          f"median {sorted(times)[len(times) // 2]:.2f} s ({THREADS} threads)")


if __name__ == "__main__":
    main()
