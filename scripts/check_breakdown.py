#!/usr/bin/env python3
"""Independent check of icelens' "errors by condition" breakdown (crates/icelens-core/src/breakdown.rs).

Usage: check_breakdown.py DIR

DIR holds manifest.json, {"scenes": [{"prefix", "name", "service", "region", "mission",
"acquired" (ISO 8601 or null), "lines", "samples"}]}, and per scene the arrays as the scene
file stores them:
  <prefix>_truth.npy  uint8 (3, lines, samples)  reference SIC, SOD, FLOE (255 = no label)
  <prefix>_pred.npy   uint8 (3, lines, samples)  predicted class indices
  <prefix>_hh.npy     float32 (lines, samples)   stored HH (0 = no SAR data)
  <prefix>_inc.npy    float32 (lines, samples)   stored (standard scaled) incidence angle
  <prefix>_dist.npy   float32 (lines, samples)   stored (standard scaled) distance map

Prints JSON {"rows": [{"dimension", "group", "SIC", "SOD", "FLOE", "combined", "pixels":
[SIC, SOD, FLOE], "scenes"}]}, scores as the challenge computes them (spec §e): per chart the
pixels whose reference is 255 are dropped, the pixels of all scenes in a group are pooled,
SIC is sklearn's r2_score, SOD and FLOE sklearn's f1_score(average='weighted'), each x100
rounded to 3 decimals, combined = round((2 SIC + 2 SOD + FLOE) / 5, 3). A score that is not
defined is null: r2_score itself returns NaN for a single pixel; for a chart without any
labelled pixel (sklearn refuses empty input) the score is NaN. Any NaN makes combined NaN.

The bands are defined here on their own, from the spec (§a.3, §b.2), not taken from icelens.
"""

import json
import os
import sys
import warnings

import numpy as np
from sklearn.metrics import f1_score, r2_score

DIST_MEAN, DIST_STD = 23.627669500714102, 14.99018630794473
INC_MEAN, INC_STD = 33.99801788456536, 8.322267212079046
CHARTS = ["SIC", "SOD", "FLOE"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
SEASONS = {12: "DJF winter", 1: "DJF winter", 2: "DJF winter", 3: "MAM spring", 4: "MAM spring",
           5: "MAM spring", 6: "JJA summer", 7: "JJA summer", 8: "JJA summer",
           9: "SON autumn", 10: "SON autumn", 11: "SON autumn"}


def scene_level_groups(s):
    """(dimension, group) of a scene from its metadata."""
    acquired = s.get("acquired")
    year = month = None
    if acquired:
        year, month = int(acquired[0:4]), int(acquired[5:7])
    return [
        ("scene", s["name"] or "unknown"),
        ("service", s.get("service") or "unknown"),
        ("region", s.get("region") or "unknown"),
        ("mission", s.get("mission") or "unknown"),
        ("year", str(year) if year else "unknown"),
        ("month", "%02d %s" % (month, MONTHS[month - 1]) if month else "unknown"),
        ("season", SEASONS[month] if month else "unknown"),
    ]


def land_masks(dist):
    x = dist.astype(np.float64) * DIST_STD + DIST_MEAN
    finite = np.isfinite(x)
    zone = np.where(finite, np.floor(np.where(finite, x, 0.0) + 0.5), 0.0)
    return [
        ("land", finite & (zone <= 0)),
        ("0-2 km", finite & (zone >= 1) & (zone <= 3)),
        ("2-10 km", finite & (zone >= 4) & (zone <= 11)),
        ("10-50 km", finite & (zone >= 12) & (zone <= 27)),
        ("over 50 km", finite & (zone >= 28)),
        ("unknown", ~finite),
    ]


def incidence_masks(hh, inc):
    deg = inc.astype(np.float64) * INC_STD + INC_MEAN
    ok = (hh != 0) & np.isfinite(deg)
    return [
        ("near (<30°)", ok & (deg < 30.0)),
        ("mid (30-38°)", ok & (deg >= 30.0) & (deg < 38.0)),
        ("far (>=38°)", ok & (deg >= 38.0)),
        ("no SAR data", ~ok),
    ]


def class_masks(truth):
    out = []
    for c, chart in enumerate(CHARTS):
        for k in np.unique(truth[c]):
            if k != 255:
                out.append(("%s %d" % (chart, k), truth[c] == k))
    return out


def score(chart, t, p):
    if len(t) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if chart == "SIC":
            v = r2_score(t, p)
        else:
            v = f1_score(t, p, average="weighted")
    return float(np.round(v * 100, 3))


def main():
    d = sys.argv[1]
    with open(os.path.join(d, "manifest.json")) as f:
        manifest = json.load(f)
    groups = {}  # (dimension, group) -> {"t": [[],[],[]], "p": [[],[],[]], "scenes": set()}

    def add(key, scene, mask, truth, pred, always):
        labelled = [mask & (truth[c] != 255) for c in range(3)]
        if not always and not any(m.any() for m in labelled):
            return
        g = groups.setdefault(key, {"t": [[], [], []], "p": [[], [], []], "scenes": set()})
        for c in range(3):
            g["t"][c].append(truth[c][labelled[c]])
            g["p"][c].append(pred[c][labelled[c]])
        g["scenes"].add(scene)

    for s in manifest["scenes"]:
        pre = os.path.join(d, s["prefix"])
        truth = np.load(pre + "_truth.npy").reshape(3, -1)
        pred = np.load(pre + "_pred.npy").reshape(3, -1)
        hh = np.load(pre + "_hh.npy").reshape(-1)
        inc = np.load(pre + "_inc.npy").reshape(-1)
        dist = np.load(pre + "_dist.npy").reshape(-1)
        everything = np.ones(hh.shape, dtype=bool)
        for key in scene_level_groups(s):
            add(key, s["name"], everything, truth, pred, True)
        for dim, masks in (("land", land_masks(dist)), ("incidence", incidence_masks(hh, inc)),
                           ("class", class_masks(truth))):
            for group, m in masks:
                add((dim, group), s["name"], m, truth, pred, False)

    rows = []
    for (dim, group), g in groups.items():
        t = [np.concatenate(g["t"][c]).astype(np.int64) for c in range(3)]
        p = [np.concatenate(g["p"][c]).astype(np.int64) for c in range(3)]
        sc = [score(chart, t[c], p[c]) for c, chart in enumerate(CHARTS)]
        combined = float(np.round((2 * sc[0] + 2 * sc[1] + sc[2]) / 5, 3))
        nan = lambda v: None if np.isnan(v) else v  # noqa: E731
        rows.append({
            "dimension": dim, "group": group,
            "SIC": nan(sc[0]), "SOD": nan(sc[1]), "FLOE": nan(sc[2]), "combined": nan(combined),
            "pixels": [int(len(x)) for x in t], "scenes": len(g["scenes"]),
        })
    json.dump({"rows": rows}, sys.stdout, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main()
