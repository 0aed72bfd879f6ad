#!/usr/bin/env python3
"""How many pixels of an upload package equal a PyTorch whole-scene reference.

    compare_upload.py UPLOAD.nc REFERENCE_DIR

REFERENCE_DIR holds pred_<chart>.npy and margin_<chart>.npy from predict_torch.py
--reference. Prints, per chart, the share of equal pixels and, of the pixels that differ, the
largest and the median reference margin (top-1 minus top-2 logit): differences at margins of
a few 1e-4 are near-ties that float32 summation order decides.
"""

import os
import sys

import netCDF4
import numpy as np


def main():
    upload, ref = sys.argv[1], sys.argv[2]
    worst = 100.0
    with netCDF4.Dataset(upload) as ds:
        for chart in ("SIC", "SOD", "FLOE"):
            [name] = [v for v in ds.variables if v.endswith(f"_{chart}")]
            got = np.asarray(ds[name][:])
            want = np.load(os.path.join(ref, f"pred_{chart}.npy"))
            margin = np.load(os.path.join(ref, f"margin_{chart}.npy"))
            if got.shape != want.shape:
                sys.exit(f"{chart}: shape {got.shape} against the reference's {want.shape}")
            differ = got != want
            equal = 100.0 * (1.0 - differ.mean())
            worst = min(worst, equal)
            m = margin[differ]
            detail = (
                f", differing pixels' reference margin: max {m.max():.2e}, median {np.median(m):.2e}"
                if m.size
                else ""
            )
            print(f"equal {chart}: {equal:.5f} % ({int(differ.sum())} of {differ.size} differ){detail}")
    print(f"equal worst chart: {worst:.5f} %")


if __name__ == "__main__":
    main()
