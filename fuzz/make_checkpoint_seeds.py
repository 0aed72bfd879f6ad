#!/usr/bin/env python3
"""Writes small seed inputs for the checkpoint fuzz targets, without torch.

    make_checkpoint_seeds.py OUT_DIR

Into OUT_DIR/pickle/ (for load_checkpoint) go:
  * torch-style checkpoints `{'model_state_dict': OrderedDict, 'epoch', ...}` pickled by
    Python's own pickler with protocols 0 to 5, each as a bare data.pkl and as a zip archive
    laid out as torch.save lays it out (`<folder>/data.pkl`, `<folder>/data/<key>`, `version`,
    `byteorder`). The torch globals are stand-ins registered under torch's module names, so the
    pickles name exactly what torch's do: `collections.OrderedDict`,
    `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_parameter` and every
    `torch.*Storage` class icelens knows, storages through persistent ids (BINPERSID), the
    state_dict's `_metadata` through BUILD. The values around them (lists, tuples of every
    length, bools, None, floats, large and negative ints, bytes, strings, more than 256 memo
    entries) make the pickler use every opcode of the reader
    (crates/icelens-core/src/checkpoint/pickle.rs) that protocol offers.
  * hand-assembled pickles for the opcodes no Python 3 pickler writes: DUP, POP, POP_MARK,
    SHORT_BINSTRING, BINSTRING, BINUNICODE8, LONG_BINGET/LONG_BINPUT in a tiny pickle,
    MEMOIZE with an explicit FRAME, and a few refusals (os.system, an unknown opcode, a newer
    protocol).
Into OUT_DIR/safetensors/: safetensors files with every dtype, metadata, and an empty tensor.
Into OUT_DIR/npy/: .npy files of every dtype and header version, and .npz archives (stored and
deflated) holding members `a` and `pred_SIC`.

Deterministic: the same files on every run.
"""

import collections
import io
import json
import os
import pickle
import struct
import sys
import types
import zipfile

# ---------------------------------------------------------------- torch stand-ins

torch = types.ModuleType("torch")
torch_utils = types.ModuleType("torch._utils")
sys.modules.setdefault("torch", torch)
sys.modules.setdefault("torch._utils", torch_utils)
torch._utils = torch_utils

# (class name, struct format of one element, bytes per element)
STORAGES = [
    ("FloatStorage", "<f", 4),
    ("HalfStorage", "<e", 2),
    ("BFloat16Storage", None, 2),
    ("DoubleStorage", "<d", 8),
    ("LongStorage", "<q", 8),
    ("IntStorage", "<i", 4),
    ("ShortStorage", "<h", 2),
    ("CharStorage", "<b", 1),
    ("ByteStorage", "<B", 1),
    ("BoolStorage", "<?", 1),
]

for name, _, _ in STORAGES:
    cls = type(name, (), {"__module__": "torch"})
    cls.__qualname__ = name
    setattr(torch, name, cls)


def _rebuild_tensor_v2(*args):
    raise RuntimeError("only pickled here, never called")


def _rebuild_parameter(*args):
    raise RuntimeError("only pickled here, never called")


for f in (_rebuild_tensor_v2, _rebuild_parameter):
    f.__module__ = "torch._utils"
    setattr(torch_utils, f.__name__, f)


class Storage:
    """A storage: pickled as a persistent id, its bytes go to `data/<key>`."""

    def __init__(self, cls_name, key, values):
        self.cls_name, self.key, self.values = cls_name, key, values

    def raw(self):
        fmt = dict((n, f) for n, f, _ in STORAGES)[self.cls_name]
        if fmt is None:  # bfloat16: the top half of a float32
            return b"".join(struct.pack("<f", v)[2:] for v in self.values)
        return b"".join(struct.pack(fmt, v) for v in self.values)


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce_ex__(self, proto):
        hooks = collections.OrderedDict()
        return (_rebuild_tensor_v2,
                (self.storage, self.offset, tuple(self.size), tuple(self.stride), False, hooks))


class Parameter:
    def __init__(self, tensor):
        self.tensor = tensor

    def __reduce_ex__(self, proto):
        return (_rebuild_parameter, (self.tensor, True, collections.OrderedDict()))


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", getattr(torch, obj.cls_name), obj.key, "cpu", len(obj.values))
        return None


def contiguous_stride(size):
    stride, acc = [], 1
    for d in reversed(size):
        stride.append(acc)
        acc *= d
    return list(reversed(stride))


def state_dict(many_keys=False):
    """A state_dict with a tensor of every storage type, views, a parameter and buffers."""
    storages, sd = [], collections.OrderedDict()

    def add(key, cls_name, values, size, offset=0, stride=None, param=False):
        st = Storage(cls_name, str(len(storages)), values)
        storages.append(st)
        t = Tensor(st, offset, size, stride or contiguous_stride(size))
        sd[key] = Parameter(t) if param else t
        return st

    add("conv.weight", "FloatStorage", [0.5, -1.0, 2.0, 0.25, 3.0, -0.0], [2, 1, 3])
    add("conv.bias", "FloatStorage", [1.5, -2.5], [2], param=True)
    add("bn.weight", "HalfStorage", [1.0, 0.5, -2.0], [3])
    add("bn.bias", "BFloat16Storage", [0.5, 1.0, -1.0], [3])
    add("bn.running_mean", "DoubleStorage", [0.125, 0.0, -4.0], [3])
    add("bn.running_var", "FloatStorage", [1.0, 2.0, 3.0], [3])
    add("bn.num_batches_tracked", "LongStorage", [21500], [])
    add("i32", "IntStorage", [1, -2, 3, 4], [2, 2])
    add("i16", "ShortStorage", [7, -7], [2])
    add("i8", "CharStorage", [-1, 1], [2])
    add("u8", "ByteStorage", [0, 255, 3], [3])
    add("mask", "BoolStorage", [True, False], [2])
    # A transposed view and an offset view of one storage.
    shared = add("head.weight", "FloatStorage", [float(i) for i in range(12)], [3, 4])
    sd["head.weight_t"] = Tensor(shared, 0, [4, 3], [1, 4])
    sd["head.row"] = Tensor(shared, 4, [4], [1])
    sd["empty"] = Tensor(Storage("FloatStorage", str(len(storages)), []), 0, [0, 3], [3, 1])
    storages.append(sd["empty"].storage)
    if many_keys:
        # Over 256 memo entries: LONG_BINPUT / LONG_BINGET (or MEMOIZE past 255 in protocol 4+).
        for i in range(140):
            add(f"blocks.{i}.w", "FloatStorage", [float(i)], [1])
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("bn", {"version": 2})])
    return sd, storages


def checkpoint(many_keys=False):
    sd, storages = state_dict(many_keys)
    top = {
        "model_state_dict": sd,
        "epoch": 42,
        # Values beyond tensors, as training scripts save them.
        "best_loss": 0.3125,
        "lr": [1e-4, 5e-5],
        "betas": (0.9, 0.999),
        "step": 2**40 + 3,
        "neg": -70000,
        "small": 200,
        "medium": 60000,
        "flags": (True, False, None),
        "one": (1,),
        "two": (1, 2),
        "four": (1, 2, 3, 4),
        "note": "trained on synthetic scenes",
        "blob": b"\x00\x01binary",
        "empty": [],
        "single": ["x"],
        "nested": {"a": {"b": [1, 2, {"c": ()}]}},
    }
    return top, storages


def pickle_bytes(obj, protocol):
    buf = io.BytesIO()
    TorchPickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


def torch_zip(pkl, storages, folder="archive", compression=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        z.writestr(f"{folder}/data.pkl", pkl)
        z.writestr(f"{folder}/byteorder", b"little")
        for st in storages:
            z.writestr(f"{folder}/data/{st.key}", st.raw())
        z.writestr(f"{folder}/version", b"3\n")
    return buf.getvalue()


# ---------------------------------------------------------------- hand-assembled pickles

def u32(n):
    return struct.pack("<I", n)


def u64(n):
    return struct.pack("<Q", n)


def hand_pickles():
    od = b"ccollections\nOrderedDict\n"
    rebuild = b"ctorch._utils\n_rebuild_tensor_v2\n"
    storage = b"ctorch\nFloatStorage\n"
    # {'w': tensor([1., 2.])} with the storage key '0'.
    tensor_w = (rebuild + b"(" + b"(X\x07\x00\x00\x00storage" + storage + b"X\x01\x00\x00\x000"
                + b"X\x03\x00\x00\x00cpuK\x02tQ" + b"K\x00K\x02\x85K\x01\x85\x89" + od + b")Rt" + b"R")
    framed = b"\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94h\x02)R\x86."
    out = {
        # DUP: the key duplicated, then POP of the copy.
        "dup_pop": b"\x80\x02" + od + b")R" + b"X\x01\x00\x00\x00w" + b"2" + b"0" + tensor_w + b"s.",
        # POP_MARK: a mark and values dropped.
        "pop_mark": b"\x80\x02" + od + b")R" + b"(K\x01K\x02" + b"1" + b"X\x01\x00\x00\x00w" + tensor_w + b"s.",
        # SHORT_BINSTRING / BINSTRING (Python 2 str) as keys.
        "binstring": b"\x80\x02}(U\x01a" + b"K\x01" + b"T\x02\x00\x00\x00bb" + b"K\x02u.",
        # BINUNICODE8 and SHORT_BINUNICODE.
        "binunicode8": b"\x80\x04}(\x8d" + u64(5) + b"hello" + b"K\x01\x8c\x02hiK\x02u.",
        # A FRAME around MEMOIZE, STACK_GLOBAL, BINGET.
        "frame_memoize": b"\x80\x04\x95" + u64(len(framed)) + framed,
        # LONG_BINPUT / LONG_BINGET with small indices, BININT, LONG1 of each width.
        "long_memo": b"\x80\x02]r\x05\x00\x00\x00(j\x05\x00\x00\x00J\xff\xff\xff\xff\x8a\x01\x80\x8a\x02\xff\x7f"
                     b"\x8a\x08" + b"\xff" * 8 + b"\x8a\x00e.",
        # LIST / DICT / TUPLE from a mark, APPEND, SETITEM, NEWTRUE/NEWFALSE/NONE, BINFLOAT.
        "containers": b"\x80\x02(K\x01K\x02l]K\x03a(X\x01\x00\x00\x00kG?\xf0\x00\x00\x00\x00\x00\x00d"
                      b"}X\x01\x00\x00\x00z\x88s(\x89Nt\x87\x87.",
        # BUILD on an OrderedDict (a state_dict's _metadata).
        "build": b"\x80\x02" + od + b")R}X\t\x00\x00\x00_metadata}sb.",
        # SHORT_BINBYTES / BINBYTES.
        "bytes": b"\x80\x03(C\x02\x00\x01B\x03\x00\x00\x00abcl.",
        # A bare state_dict through _rebuild_parameter.
        "parameter": b"\x80\x02" + od + b")RX\x01\x00\x00\x00w" + b"ctorch._utils\n_rebuild_parameter\n("
                     + tensor_w + b"\x88" + od + b")Rt" + b"Rs.",
        # Refusals.
        "evil_global": b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.",
        "unknown_opcode": b"\x80\x02}\xff.",
        "protocol_6": b"\x80\x06}.",
        "empty_stack_stop": b"\x80\x02.",
    }
    return out


def zip_with_w(pkl):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("m/data.pkl", pkl)
        z.writestr("m/data/0", struct.pack("<2f", 1.0, 2.0))
    return buf.getvalue()


# ---------------------------------------------------------------- safetensors

def safetensors(tensors, metadata=None):
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def safetensors_seeds():
    f32 = struct.pack("<4f", 0.5, -1.0, 2.0, 0.25)
    every = [
        ("conv.weight", "F32", [2, 2], f32),
        ("half", "F16", [2], struct.pack("<2e", 1.0, -2.0)),
        ("bf16", "BF16", [2], struct.pack("<f", 1.0)[2:] + struct.pack("<f", -3.0)[2:]),
        ("f64", "F64", [1], struct.pack("<d", 0.125)),
        ("bn.num_batches_tracked", "I64", [], struct.pack("<q", 21500)),
        ("i32", "I32", [2], struct.pack("<2i", 1, -1)),
        ("i16", "I16", [1], struct.pack("<h", 5)),
        ("i8", "I8", [1], struct.pack("<b", -5)),
        ("u8", "U8", [2], b"\x00\xff"),
        ("mask", "BOOL", [2], b"\x01\x00"),
        ("empty", "F32", [0, 4], b""),
    ]
    order = json.dumps([t[0] for t in every])
    return {
        "every_dtype.safetensors": safetensors(every),
        "metadata.safetensors": safetensors(every[:1] + every[4:5],
                                            {"format": "pt", "epoch": "42",
                                             "icelens.key_order": json.dumps(["conv.weight", "bn.num_batches_tracked"])}),
        "key_order.safetensors": safetensors(every, {"icelens.key_order": order}),
        "no_tensors.safetensors": safetensors([], {"format": "pt"}),
    }


# ---------------------------------------------------------------- npy / npz

NPY_DTYPES = [("<f4", "<f", [0.5, -1.0, 2.0, 3.5]), ("|u1", "<B", [0, 1, 255, 7]),
              ("<f8", "<d", [0.5, -1.0, 2.0, 3.5]), ("<i8", "<q", [1, -1, 2, 3]),
              ("<i4", "<i", [1, -1, 2, 3]), ("<f2", "<e", [0.5, -1.0, 2.0, 3.5]),
              ("|b1", "<?", [True, False, True, True]), ("<u2", "<H", [1, 2, 3, 4])]


def npy(descr, shape, raw, version=1, fortran=False):
    shape_text = "(" + "".join(f"{d}," if len(shape) == 1 else f"{d}, " for d in shape).rstrip(" ")
    if len(shape) > 1:
        shape_text = shape_text.rstrip(",")
    shape_text += ")"
    d = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape_text}, }}"
    pre = 10 if version == 1 else 12
    d += " " * (-(pre + len(d) + 1) % 64) + "\n"
    hl = struct.pack("<H", len(d)) if version == 1 else struct.pack("<I", len(d))
    return b"\x93NUMPY" + bytes([version, 0]) + hl + d.encode("latin-1") + raw


def npy_seeds():
    out = {}
    for descr, fmt, vals in NPY_DTYPES:
        raw = b"".join(struct.pack(fmt, v) for v in vals)
        tag = descr.strip("<|").replace("?", "b")
        out[f"{tag}_2x2.npy"] = npy(descr, [2, 2], raw)
    raw = struct.pack("<4f", 1, 2, 3, 4)
    out["f4_1d.npy"] = npy("<f4", [4], raw)
    out["f4_scalar.npy"] = npy("<f4", [], raw[:4])
    out["f4_1x1x2x2.npy"] = npy("<f4", [1, 1, 2, 2], raw)
    out["f4_v2.npy"] = npy("<f4", [2, 2], raw, version=2)
    out["f4_v3.npy"] = npy("<f4", [2, 2], raw, version=3)
    out["f4_fortran.npy"] = npy("<f4", [2, 2], raw, fortran=True)
    out["f4_empty.npy"] = npy("<f4", [0, 3], b"")
    for comp, tag in ((zipfile.ZIP_STORED, "stored"), (zipfile.ZIP_DEFLATED, "deflated")):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", comp) as z:
            z.writestr("a.npy", out["f4_2x2.npy"])
            z.writestr("pred_SIC.npy", out["u1_2x2.npy"])
        out[f"{tag}.npz"] = buf.getvalue()
    return out


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = sys.argv[1]
    for sub in ("pickle", "safetensors", "npy"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)

    def write(sub, name, data):
        with open(os.path.join(root, sub, name), "wb") as f:
            f.write(data)

    n = 0
    for protocol in range(0, 6):
        for many in (False, True):
            top, storages = checkpoint(many_keys=many)
            pkl = pickle_bytes(top, protocol)
            tag = f"p{protocol}{'_many' if many else ''}"
            write("pickle", f"seed_{tag}.pkl", pkl)
            write("pickle", f"seed_{tag}.pt", torch_zip(pkl, storages))
            n += 2
            if protocol == 2 and not many:
                write("pickle", f"seed_{tag}_deflated.pt",
                      torch_zip(pkl, storages, compression=zipfile.ZIP_DEFLATED))
                # A bare state_dict, as `torch.save(model.state_dict())` writes it.
                sd, st = state_dict()
                bare = pickle_bytes(sd, protocol)
                write("pickle", "seed_bare_state_dict.pt", torch_zip(bare, st, folder="model"))
                n += 2
    for name, pkl in hand_pickles().items():
        write("pickle", f"hand_{name}.pkl", pkl)
        write("pickle", f"hand_{name}.pt", zip_with_w(pkl))
        n += 2
    for name, data in safetensors_seeds().items():
        write("safetensors", name, data)
        n += 1
    for name, data in npy_seeds().items():
        write("npy", name, data)
        n += 1
    print(f"{n} seeds in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
