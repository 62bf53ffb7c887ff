#!/usr/bin/env python3
"""Writes the protobuf schemas of the Kubernetes API groups the orchestrator serves, as a
FileDescriptorSet, from a kubectl binary.

kubectl's typed clients (`kubectl create namespace|configmap|secret|deployment|service|job`)
send their bodies as `application/vnd.kubernetes.protobuf` with no JSON fallback, so the API
server must read that encoding. No crate on crates.io ships the schemas as descriptors (k8s-pb
has prost structs without names or descriptors; k8s-openapi has JSON names without field
numbers), so they are taken from the client that sends the bodies: Go binaries built with
gogo/protobuf register each .proto file as a gzipped FileDescriptorProto, which this scans for.

The gogo extension file is dropped from each file's imports (it is not registered in the
binary); the fields' gogo options stay in their options as unknown fields, where the decoder
reads `nullable` (65001).

Usage: extract-k8s-descriptors.py KUBECTL OUTPUT
"""
import sys
import zlib

FILES = [
    "k8s.io/apimachinery/pkg/runtime/schema/generated.proto",
    "k8s.io/apimachinery/pkg/runtime/generated.proto",
    "k8s.io/apimachinery/pkg/api/resource/generated.proto",
    "k8s.io/apimachinery/pkg/util/intstr/generated.proto",
    "k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto",
    "k8s.io/api/core/v1/generated.proto",
    "k8s.io/api/apps/v1/generated.proto",
    "k8s.io/api/batch/v1/generated.proto",
    "k8s.io/api/autoscaling/v1/generated.proto",
    "k8s.io/api/autoscaling/v2/generated.proto",
    "k8s.io/api/coordination/v1/generated.proto",
    "k8s.io/api/discovery/v1/generated.proto",
    "k8s.io/api/events/v1/generated.proto",
    "k8s.io/api/policy/v1/generated.proto",
]
GOGO = "github.com/gogo/protobuf/gogoproto/gogo.proto"


def varint(b, i):
    value, shift = 0, 0
    while True:
        c = b[i]
        i += 1
        value |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return value, i


def encode_varint(n):
    out = bytearray()
    while True:
        c = n & 0x7F
        n >>= 7
        out.append(c | (0x80 if n else 0))
        if not n:
            return bytes(out)


def fields(b):
    """(number, wire type, raw bytes of the whole field) for each field of a message."""
    i = 0
    while i < len(b):
        start = i
        tag, i = varint(b, i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = varint(b, i)
        elif wire == 2:
            n, i = varint(b, i)
            value = b[i : i + n]
            i += n
        elif wire == 1:
            value, i = b[i : i + 8], i + 8
        elif wire == 5:
            value, i = b[i : i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield number, wire, value, b[start:i]


def file_name(proto):
    for number, wire, value, _ in fields(proto):
        if number == 1 and wire == 2:
            return value.decode()
    return None


def registered_files(binary):
    found = {}
    at = binary.find(b"\x1f\x8b\x08")
    while at >= 0:
        try:
            proto = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(binary[at : at + (1 << 22)])
            name = file_name(proto)
            if name and name.endswith(".proto"):
                found.setdefault(name, proto)
        except (zlib.error, ValueError, IndexError, UnicodeDecodeError):
            pass
        at = binary.find(b"\x1f\x8b\x08", at + 1)
    return found


def without_gogo_import(proto):
    kept = bytearray()
    for number, _, value, raw in fields(proto):
        if number == 3 and value.decode() == GOGO:
            continue
        kept += raw
    return bytes(kept)


def main():
    kubectl, output = sys.argv[1], sys.argv[2]
    found = registered_files(open(kubectl, "rb").read())
    missing = [f for f in FILES if f not in found]
    if missing:
        sys.exit(f"{kubectl} registers none of: {', '.join(missing)}")
    out = bytearray()
    for name in FILES:
        proto = without_gogo_import(found[name])
        out += b"\x0a" + encode_varint(len(proto)) + proto
    open(output, "wb").write(out)
    print(f"{output}: {len(FILES)} files, {len(out)} bytes")


if __name__ == "__main__":
    main()
