"""The independent reader: torchfile (PyPI, 2017) parses a .t7 file; its tensors and fields are flattened by path.

``python _torchfile_oracle.py FILE.t7 OUT.npz OUT.json``. Run with the OpenCV venv's Python, which has torchfile.
Paths join keys with "."; integral number keys print as integers; "#class" holds a torch object's class.
"""

import json
import sys

import numpy as np
import torchfile


def key(k):
    if isinstance(k, bytes):
        k = k.decode("utf-8")
    if isinstance(k, float) and k == int(k):
        k = int(k)
    return str(k)


def flatten(obj, path, tensors, scalars, seen):
    if isinstance(obj, np.ndarray):
        tensors[path] = obj
        return
    if isinstance(obj, (bool, int, float)):
        scalars[path] = obj
        return
    if isinstance(obj, bytes):
        scalars[path] = obj.decode("utf-8")
        return
    if obj is None:
        return
    if id(obj) in seen:
        scalars[path] = "#ref"
        return
    seen.add(id(obj))
    if isinstance(obj, torchfile.TorchObject):
        scalars[path + "#class"] = obj._typename.decode() if isinstance(obj._typename, bytes) else obj._typename
        items = obj._obj.items()
    elif isinstance(obj, dict):
        items = obj.items()
    else:
        items = ((i + 1, v) for i, v in enumerate(obj))
    for k, v in items:
        flatten(v, f"{path}.{key(k)}" if path else key(k), tensors, scalars, seen)


data = torchfile.load(sys.argv[1], use_list_heuristic=False, use_int_heuristic=False)
tensors, scalars = {}, {}
flatten(data, "", tensors, scalars, set())
np.savez(sys.argv[2], **{k or "root": v for k, v in tensors.items()})
with open(sys.argv[3], "w") as f:
    json.dump(scalars, f, sort_keys=True)
