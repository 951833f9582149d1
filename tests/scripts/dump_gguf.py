#!/usr/bin/env python3
"""Dump a GGUF file's structure as plain text, read by gguf-py's GGUFReader.

tests/test_gguf.cpp parses the same model with osprey's reader and compares line by line,
so the two implementations check each other. Output format (one record per line):
  file_size <bytes>
  version <n> / alignment <n> / data_offset <absolute byte offset>
  kv <key> <type> [<value>]        scalars: the value (ints exact, floats as %.17g);
                                   strings: their byte length; arrays: array:<elem>:<count>
  tensor <name> <type id> <absolute data offset> <nbytes> <n_dims> <ne0> <ne1> ...

Usage: python3 tests/scripts/dump_gguf.py MODEL.gguf > tests/data/models/MODEL.gguf.txt
"""
import os
import sys

from gguf import GGUFReader, GGUFValueType

TYPE_NAMES = {
    GGUFValueType.UINT8: "u8", GGUFValueType.INT8: "i8", GGUFValueType.UINT16: "u16",
    GGUFValueType.INT16: "i16", GGUFValueType.UINT32: "u32", GGUFValueType.INT32: "i32",
    GGUFValueType.FLOAT32: "f32", GGUFValueType.BOOL: "bool", GGUFValueType.STRING: "string",
    GGUFValueType.ARRAY: "array", GGUFValueType.UINT64: "u64", GGUFValueType.INT64: "i64",
    GGUFValueType.FLOAT64: "f64",
}


def main(path):
    r = GGUFReader(path, "r")
    out = [f"file_size {os.path.getsize(path)}"]
    out.append(f"version {r.fields['GGUF.version'].contents()}")
    out.append(f"alignment {r.alignment}")
    out.append(f"data_offset {r.data_offset}")
    for name, f in r.fields.items():
        if name.startswith("GGUF."):
            continue
        t = f.types[0]
        if t == GGUFValueType.ARRAY:
            out.append(f"kv {name} array:{TYPE_NAMES[f.types[-1]]}:{len(f.data)}")
        elif t == GGUFValueType.STRING:
            out.append(f"kv {name} string {len(f.parts[-1])}")
        elif t in (GGUFValueType.FLOAT32, GGUFValueType.FLOAT64):
            out.append(f"kv {name} {TYPE_NAMES[t]} {float(f.contents()):.17g}")
        else:
            out.append(f"kv {name} {TYPE_NAMES[t]} {int(f.contents())}")
    for t in r.tensors:
        dims = [int(d) for d in t.shape]
        out.append(f"tensor {t.name} {int(t.tensor_type)} {t.data_offset} {t.n_bytes} {len(dims)} "
                   + " ".join(map(str, dims)))
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
