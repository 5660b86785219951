"""read_safetensors.py -- an independent safetensors reader (json + struct only) for tests.

usage: read_safetensors.py FILE NAME:D0,D1,... [...]
Checks the header, that every named tensor exists with that shape, that offsets tile the data,
and that float32 values are finite.
"""
import json
import math
import struct
import sys

path, specs = sys.argv[1], sys.argv[2:]
with open(path, "rb") as f:
    blob = f.read()
(n,) = struct.unpack("<Q", blob[:8])
header = json.loads(blob[8:8 + n])
data = blob[8 + n:]
meta = header.pop("__metadata__", {})
assert all(isinstance(v, str) for v in meta.values()), meta
sizes = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1}
end = 0
for name, entry in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
    b, e = entry["data_offsets"]
    assert b == end, (name, b, end)
    count = math.prod(entry["shape"]) if entry["shape"] else 1
    assert e - b == count * sizes[entry["dtype"]], name
    if entry["dtype"] == "F32":
        values = struct.unpack("<%df" % count, data[b:e])
        assert all(math.isfinite(v) for v in values), name
    end = e
assert end == len(data), (end, len(data))
for spec in specs:
    name, shape = spec.split(":")
    assert name in header, (name, list(header))
    assert header[name]["shape"] == [int(d) for d in shape.split(",")], (name, header[name]["shape"])
print("ok", len(header), "tensors")
