#!/usr/bin/env python3
"""The challenge's own inference over one whole scene in PyTorch (spec section f).

    predict_torch.py MODEL SCENE UPLOAD [--threads N] [--reference DIR]

What `test_upload.ipynb` does per scene, on the CPU in float32: open the scene with xarray,
build the [1, 24, H, W] input as the starter kit's loader does (the four full-grid variables,
then the twenty 2 km variables upsampled with nearest interpolation in torch), one forward pass
over the whole scene under no_grad, argmax per chart to uint8, and the upload package written
as netCDF-4 with zlib level 1. The network is the starter kit's U-Net (forward_torch.py).

--reference DIR also writes pred_<chart>.npy and margin_<chart>.npy (top-1 minus top-2 logit)
there, for judging which pixels another implementation may legitimately see differently.
"""

import argparse
import os
import sys
import time

START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import xarray as xr  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward_torch import load_model  # noqa: E402

SAR = ["nersc_sar_primary", "nersc_sar_secondary", "sar_incidenceangle", "distance_map"]
AMSRENV = [
    f"btemp_{b}{p}" for b in ("6_9", "7_3", "10_7", "18_7", "23_8", "36_5", "89_0") for p in "hv"
] + ["u10m_rotated", "v10m_rotated", "t2m", "skt", "tcwv", "tclw"]
CHARTS = ["SIC", "SOD", "FLOE"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("scene")
    ap.add_argument("upload")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--reference")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)

    net, *_ = load_model(args.model)
    ds = xr.open_dataset(args.scene, engine="netcdf4")
    sar = np.stack([ds[v].values for v in SAR]).astype(np.float32)[None]
    amsr = np.stack([ds[v].values for v in AMSRENV]).astype(np.float32)[None]
    h, w = sar.shape[2:]
    up = F.interpolate(torch.from_numpy(amsr), size=(h, w), mode="nearest")
    x = torch.cat([torch.from_numpy(sar), up], dim=1)
    del sar, amsr, up
    loaded = time.perf_counter()

    out = net(x)
    del x
    forward = time.perf_counter()

    name = os.path.basename(args.scene)[:19]
    preds = {}
    for chart in CHARTS:
        logits = out[chart]
        preds[chart] = torch.argmax(logits, dim=1).squeeze(0).numpy().astype(np.uint8)
        if args.reference:
            top2 = torch.topk(logits, 2, dim=1).values.squeeze(0)
            os.makedirs(args.reference, exist_ok=True)
            np.save(os.path.join(args.reference, f"pred_{chart}.npy"), preds[chart])
            np.save(os.path.join(args.reference, f"margin_{chart}.npy"), (top2[0] - top2[1]).numpy())
    del out
    data = {
        f"{name}_{c}": xr.DataArray(p, dims=(f"{name}_{c}_dim0", f"{name}_{c}_dim1"))
        for c, p in preds.items()
    }
    upload = xr.Dataset(data)
    upload.to_netcdf(
        args.upload,
        format="NETCDF4",
        engine="netcdf4",
        encoding={v: {"zlib": True, "complevel": 1} for v in data},
    )
    done = time.perf_counter()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {h} x {w}: "
        f"start, model, scene and input {loaded - START:.1f} s, "
        f"forward {forward - loaded:.1f} s, argmax+write {done - forward:.1f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
