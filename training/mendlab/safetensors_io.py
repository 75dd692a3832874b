"""Minimal safetensors reader/writer (F32 / F16 / BF16), plus HF-style sharding.

Format: 8-byte little-endian header length N, then N bytes of JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the raw
little-endian tensor bytes. Offsets are relative to the end of the header.
"""
import ctypes
import json
import os
import struct

import torch  # no numpy: the GPU machine's python may not have it

_TORCH_TO_ST = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


_ST_TO_TORCH = {v: k for k, v in _TORCH_TO_ST.items()}


def _tensor_bytes(t):
    """Raw little-endian bytes of a tensor (x86/ARM hosts are little-endian)."""
    t = t.detach().cpu().contiguous()
    return ctypes.string_at(t.data_ptr(), t.numel() * t.element_size())


def serialize(tensors, metadata=None):
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        if t.dtype not in _TORCH_TO_ST:
            raise ValueError(f"{name}: unsupported dtype {t.dtype}")
        b = _tensor_bytes(t)
        header[name] = {"dtype": _TORCH_TO_ST[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)  # pad so the data section is 8-byte aligned
    return struct.pack("<Q", len(h)) + h + b"".join(chunks)


def save_file(tensors, path, metadata=None):
    with open(path, "wb") as f:
        f.write(serialize(tensors, metadata or {"format": "pt"}))


def load_file(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        if info["dtype"] not in _ST_TO_TORCH:
            raise ValueError(f"{name}: unsupported dtype {info['dtype']}")
        dtype = _ST_TO_TORCH[info["dtype"]]
        if e > b:
            t = torch.frombuffer(bytearray(data[base + b:base + e]), dtype=dtype)
        else:
            t = torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"])
    return out


def save_model(tensors, folder, max_shard_bytes=None):
    """Write model.safetensors, or (when the total exceeds max_shard_bytes) model-0000i-of-0000n.safetensors
    plus model.safetensors.index.json, as Hugging Face does. Returns the list of files written."""
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    if max_shard_bytes is None or total <= max_shard_bytes:
        save_file(tensors, os.path.join(folder, "model.safetensors"))
        return ["model.safetensors"]
    shards, cur, cur_bytes = [], {}, 0
    for name in sorted(tensors):  # greedy packing in name order
        nb = tensors[name].numel() * tensors[name].element_size()
        if cur and cur_bytes + nb > max_shard_bytes:
            shards.append(cur)
            cur, cur_bytes = {}, 0
        cur[name] = tensors[name]
        cur_bytes += nb
    shards.append(cur)
    files, weight_map = [], {}
    for i, shard in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, os.path.join(folder, fname))
        files.append(fname)
        weight_map.update({k: fname for k in shard})
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1, sort_keys=True)
    return files + ["model.safetensors.index.json"]


def load_model(folder):
    """Read a model folder written by save_model (single file or sharded)."""
    idx = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            weight_map = json.load(f)["weight_map"]
        out = {}
        for fname in sorted(set(weight_map.values())):
            out.update(load_file(os.path.join(folder, fname)))
        return out
    return load_file(os.path.join(folder, "model.safetensors"))
