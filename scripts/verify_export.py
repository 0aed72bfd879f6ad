#!/usr/bin/env python3
"""Checks a .pt written by icelens (crates/icelens-core/src/checkpoint/export.rs) with real PyTorch.

Usage: verify_export.py EXPORTED.pt ORIGINAL.pt

Run it with a Python that has torch (in this repository: bench/.venv/bin/python). To produce
EXPORTED.pt from ORIGINAL = ../shared/reference/pizza_marinara.pt:

    mkdir -p /tmp/icelens_export
    ICELENS_EXPORT_DIR=/tmp/icelens_export \\
        cargo test -p icelens-core --test checkpoints torch_export_round_trips
    bench/.venv/bin/python scripts/verify_export.py \\
        /tmp/icelens_export/icelens_export_test.pt ../shared/reference/pizza_marinara.pt

Both files are loaded with torch.load(weights_only=True) (the exported one also with
mmap=True, which maps the storages in place), and the exported 'model_state_dict' must have the
original's keys in the original's order, and for each the same dtype, shape and values
(torch.equal), and the same 'epoch'. No model class is needed. Exits 1 on any mismatch.

For information it also prints whether the exported data.pkl is byte-identical to the pickle
torch.save writes for {'model_state_dict': OrderedDict(the original's items), 'epoch': ...}
(torch's also carries the state_dict's `_metadata` attribute, which icelens does not keep;
the comparison drops it).
"""

import collections
import io
import sys
import zipfile

import torch


def data_pkl(raw: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        name = next(n for n in z.namelist() if n.endswith("/data.pkl") and n.count("/") == 1)
        return z.read(name)


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    exported_path, original_path = sys.argv[1], sys.argv[2]
    problems = []

    exported = torch.load(exported_path, map_location="cpu", weights_only=True)
    mapped = torch.load(exported_path, map_location="cpu", weights_only=True, mmap=True)
    original = torch.load(original_path, map_location="cpu", weights_only=True)

    if set(exported) - {"model_state_dict", "epoch"}:
        problems.append(f"unexpected top-level keys {sorted(exported)}")
    if exported.get("epoch") != original.get("epoch"):
        problems.append(f"epoch {exported.get('epoch')!r} != {original.get('epoch')!r}")

    want = original["model_state_dict"]
    for label, got in (("torch.load", exported["model_state_dict"]),
                       ("torch.load(mmap=True)", mapped["model_state_dict"])):
        if list(got) != list(want):
            missing = [k for k in want if k not in got]
            extra = [k for k in got if k not in want]
            problems.append(f"{label}: keys differ (missing {missing[:5]}, extra {extra[:5]}, "
                            f"or order)")
        for k, w in want.items():
            g = got.get(k)
            if g is None:
                continue
            if g.dtype != w.dtype or g.shape != w.shape:
                problems.append(f"{label}: {k}: {g.dtype}{tuple(g.shape)} != "
                                f"{w.dtype}{tuple(w.shape)}")
            elif not torch.equal(g, w):
                problems.append(f"{label}: {k}: values differ")

    # Informational: does icelens write the very pickle torch writes?
    buf = io.BytesIO()
    plain = collections.OrderedDict(want.items())  # without `_metadata`
    torch.save({"model_state_dict": plain, "epoch": original.get("epoch")}, buf)
    with open(exported_path, "rb") as f:
        same_pickle = data_pkl(f.read()) == data_pkl(buf.getvalue())

    n = len(want)
    floats = sum(1 for t in want.values() if t.is_floating_point())
    print(f"torch {torch.__version__}: {exported_path} vs {original_path}")
    print(f"  {n} keys ({floats} float, {n - floats} integer), epoch {exported.get('epoch')!r}")
    print(f"  data.pkl byte-identical to torch.save's: {'yes' if same_pickle else 'no'}")
    if problems:
        for p in problems[:40]:
            print(f"  MISMATCH {p}")
        print(f"FAIL ({len(problems)} mismatches)")
        return 1
    print("OK: same keys, order, dtypes, shapes and values (torch.equal), with and without mmap")
    return 0


if __name__ == "__main__":
    sys.exit(main())
