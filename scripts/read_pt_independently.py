#!/usr/bin/env python3
"""Reads a torch.save checkpoint without torch and without icelens, and compares it.

Usage:
    read_pt_independently.py EXPORTED.pt --expect MANIFEST.json
    read_pt_independently.py EXPORTED.pt --same-as ORIGINAL.pt

The checkpoint is decoded with Python's own `zipfile` and `pickle`: a restricted Unpickler maps
the few globals a state_dict checkpoint may name (`collections.OrderedDict`,
`torch._utils._rebuild_tensor_v2` and the `torch.*Storage` classes) to numpy, loads each storage
from `<archive>/data/<key>` through `persistent_load`, and refuses every other global. So the
check shares no code with icelens's reader (crates/icelens-core/src/checkpoint) and needs no
PyTorch; scripts/verify_export.py is the same check with real PyTorch.

The checkpoint must hold {'model_state_dict': OrderedDict, 'epoch': int} (no 'epoch' when the
expectation has none). Compared: the top-level keys and epoch, the state_dict's keys in order,
and for every entry its dtype, shape and values, bit for bit (so -0.0 and NaN payloads count),
including the int64 `num_batches_tracked` scalars.

MANIFEST.json (written by the Rust test) is
    {"epoch": 42 or null,
     "order": ["key", ...],
     "tensors": {"key": {"dtype": "float32", "shape": [...], "bits": [u32, ...]},
                 "key.num_batches_tracked": {"dtype": "int64", "shape": [], "value": 21500}}}
With --same-as, the expectation is ORIGINAL.pt decoded the same way (e.g. the checkpoint
PyTorch wrote that icelens read and exported again).

Prints one line per problem and exits 1 on any; prints a summary and exits 0 when all agree.
"""

import collections
import io
import json
import pickle
import sys
import zipfile

import numpy as np

# torch storage classes -> numpy dtypes (little-endian; torch writes a `byteorder` member).
STORAGES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class StorageClass:
    def __init__(self, name):
        self.name = name
        self.dtype = STORAGES[name]


def rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                      backward_hooks=None, metadata=None):
    """torch._utils._rebuild_tensor_v2, as a numpy array copied out of its storage."""
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride):
        raise pickle.UnpicklingError(f"size {size} and stride {stride} differ in rank")
    if any(s < 0 for s in size) or any(s < 0 for s in stride) or storage_offset < 0:
        raise pickle.UnpicklingError("negative size, stride or offset")
    numel = int(np.prod(size, dtype=np.int64)) if size else 1
    if numel > 0:
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= storage.size:
            raise pickle.UnpicklingError(
                f"view (offset {storage_offset}, size {size}, stride {stride}) "
                f"beyond its storage of {storage.size}")
    item = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[storage_offset:], shape=size, strides=tuple(s * item for s in stride),
        writeable=False)
    return np.array(view, copy=True)


class Unpickler(pickle.Unpickler):
    def __init__(self, data, archive, prefix):
        super().__init__(io.BytesIO(data))
        self.archive = archive
        self.prefix = prefix
        self.storages = {}
        self.globals_seen = set()

    def find_class(self, module, name):
        self.globals_seen.add(f"{module}.{name}")
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return rebuild_tensor_v2
        if module == "torch" and name in STORAGES:
            return StorageClass(name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, cls, key, location, numel = pid
        if not isinstance(cls, StorageClass):
            raise pickle.UnpicklingError(f"storage class {cls!r}")
        if key in self.storages:
            return self.storages[key]
        raw = self.archive.read(f"{self.prefix}data/{key}")
        if len(raw) != numel * cls.dtype.itemsize:
            raise pickle.UnpicklingError(
                f"storage {key}: {len(raw)} bytes for {numel} x {cls.name}")
        arr = np.frombuffer(raw, dtype=cls.dtype)
        self.storages[key] = arr
        return arr


def read_checkpoint(path):
    """(top-level dict, globals named by the pickle) of a torch.save zip checkpoint."""
    with zipfile.ZipFile(path) as z:
        bad = z.testzip()
        if bad is not None:
            raise ValueError(f"{path}: member {bad} fails its CRC")
        pkls = [n for n in z.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise ValueError(f"{path}: expected one <folder>/data.pkl, found {pkls}")
        prefix = pkls[0][: -len("data.pkl")]
        names = set(z.namelist())
        if f"{prefix}byteorder" in names and z.read(f"{prefix}byteorder") != b"little":
            raise ValueError(f"{path}: byteorder is {z.read(prefix + 'byteorder')!r}")
        u = Unpickler(z.read(pkls[0]), z, prefix)
        top = u.load()
        return top, u.globals_seen


def expectation_from_manifest(path):
    m = json.load(open(path))
    entries = collections.OrderedDict()
    for key in m["order"]:
        t = m["tensors"][key]
        shape = tuple(t["shape"])
        if t["dtype"] == "float32":
            arr = np.array(t["bits"], dtype=np.uint32).view(np.float32).reshape(shape)
        elif t["dtype"] == "int64":
            arr = np.array(t["value"], dtype=np.int64).reshape(shape)
        else:
            raise ValueError(f"manifest: {key}: dtype {t['dtype']}")
        entries[key] = arr
    if set(m["tensors"]) != set(m["order"]):
        raise ValueError("manifest: tensors and order name different keys")
    return entries, m["epoch"]


def expectation_from_checkpoint(path):
    top, _ = read_checkpoint(path)
    sd = top["model_state_dict"] if "model_state_dict" in top else top
    return collections.OrderedDict(sd.items()), top.get("epoch")


def compare(path, want, want_epoch):
    problems = []
    top, globals_seen = read_checkpoint(path)
    if not isinstance(top, dict):
        return [f"top level is {type(top).__name__}, not a dict"], {}
    want_top = {"model_state_dict"} | ({"epoch"} if want_epoch is not None else set())
    if set(top) != want_top:
        problems.append(f"top-level keys {sorted(top)}, expected {sorted(want_top)}")
    if top.get("epoch") != want_epoch:
        problems.append(f"epoch {top.get('epoch')!r}, expected {want_epoch!r}")
    got = top.get("model_state_dict")
    if not isinstance(got, collections.OrderedDict):
        problems.append(f"model_state_dict is {type(got).__name__}, not an OrderedDict")
        return problems, {}
    if list(got) != list(want):
        for i, (g, w) in enumerate(zip(got, want)):
            if g != w:
                problems.append(f"key order differs first at {i}: {g!r}, expected {w!r}")
                break
        missing = [k for k in want if k not in got]
        extra = [k for k in got if k not in want]
        if missing or extra or len(got) != len(want):
            problems.append(f"keys differ: missing {missing[:5]}, extra {extra[:5]}")
    counts = collections.Counter()
    for key, w in want.items():
        if key not in got:
            continue
        g = got[key]
        if not isinstance(g, np.ndarray):
            problems.append(f"{key}: a {type(g).__name__}, not a tensor")
            continue
        if g.dtype != w.dtype or g.shape != w.shape:
            problems.append(f"{key}: {g.dtype}{g.shape}, expected {w.dtype}{w.shape}")
            continue
        if g.dtype.kind == "f":
            bits = f"u{g.dtype.itemsize}"
            differ = np.flatnonzero(g.reshape(-1).view(bits) != w.reshape(-1).view(bits))
        else:
            differ = np.flatnonzero(g.reshape(-1) != w.reshape(-1))
        if differ.size:
            i = differ[0]
            problems.append(f"{key}: {differ.size} of {g.size} values differ, first at {i}: "
                            f"{g.reshape(-1)[i]!r}, expected {w.reshape(-1)[i]!r}")
        counts[str(g.dtype)] += 1
        if key.endswith("num_batches_tracked"):
            counts["num_batches_tracked"] += 1
            if g.shape != () or g.dtype != np.int64:
                problems.append(f"{key}: num_batches_tracked must be an int64 scalar")
    allowed = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
               "torch.FloatStorage", "torch.LongStorage"}
    if globals_seen - allowed:
        problems.append(f"globals beyond torch's weights_only set: {sorted(globals_seen - allowed)}")
    return problems, counts


def main(argv):
    if len(argv) != 4 or argv[2] not in ("--expect", "--same-as"):
        print(__doc__, file=sys.stderr)
        return 2
    exported, mode, source = argv[1], argv[2], argv[3]
    if mode == "--expect":
        want, want_epoch = expectation_from_manifest(source)
    else:
        want, want_epoch = expectation_from_checkpoint(source)
    if not want:
        print(f"the expectation from {source} is empty", file=sys.stderr)
        return 1
    try:
        problems, counts = compare(exported, want, want_epoch)
    except (pickle.UnpicklingError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
        problems, counts = [f"cannot read {exported}: {type(e).__name__}: {e}"], {}
    for p in problems:
        print(f"problem: {p}")
    if problems:
        return 1
    print(f"ok: {len(want)} entries in order ({dict(counts)}), epoch {want_epoch!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
