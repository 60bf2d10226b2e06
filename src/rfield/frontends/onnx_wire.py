"""Drop weight payloads from a serialized ONNX model without decoding them.

rfield needs the shapes of weights, never their values. Walking the protobuf
wire format and skipping the payload bytes of large initializers is much
faster than parsing them (a 528 MB VGG-16 parses in 2 s, walks in milliseconds),
and weights are then never held in memory.
"""

from __future__ import annotations

import mmap

# ModelProto.graph = 7; GraphProto.initializer = 5; TensorProto payload fields:
# float_data 4, int32_data 5, string_data 6, int64_data 7, raw_data 9, double_data 10,
# uint64_data 11, external_data 13, data_location 14
GRAPH, INITIALIZER = 7, 5
PAYLOAD = {4, 5, 6, 7, 9, 10, 11, 13, 14}
KEEP_BYTES = 1024


class WireError(ValueError):
    pass


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(buf):
            raise WireError("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise WireError("varint too long")


def _encode_varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fields(buf: bytes):
    """(field number, wire type, start of the field, start of value, end) for each field."""
    i = 0
    while i < len(buf):
        start = i
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            _, i = _varint(buf, i)
            vstart = start
        elif wt == 1:
            i += 8
            vstart = start
        elif wt == 2:
            n, j = _varint(buf, i)
            vstart, i = j, j + n
        elif wt == 5:
            i += 4
            vstart = start
        else:
            raise WireError(f"unsupported wire type {wt}")
        if i > len(buf):
            raise WireError("truncated field")
        yield num, wt, start, vstart, i


def _rebuild(buf: memoryview, keep) -> bytes:
    """buf with each length-delimited field passed through keep(num, value) -> bytes-like
    or None (dropped). Values are memoryviews: a skipped payload is never copied."""
    out: list = []
    for num, wt, start, vstart, end in _fields(buf):  # type: ignore[arg-type]
        if wt != 2:
            out.append(buf[start:end])
            continue
        value = keep(num, buf[vstart:end])
        if value is None:
            continue
        out.append(_encode_varint(num << 3 | 2) + _encode_varint(len(value)))
        out.append(value)
    return b"".join(out)


def strip_weights(data: bytes | mmap.mmap) -> bytes:
    """The model with the payloads of initializers over KEEP_BYTES removed."""
    def tensor(num, value):
        return None if num in PAYLOAD else value

    def graph(num, value):
        if num == INITIALIZER and len(value) > KEEP_BYTES:
            return _rebuild(value, tensor)
        return value

    def model(num, value):
        return _rebuild(value, graph) if num == GRAPH else value

    return _rebuild(memoryview(data), model)
