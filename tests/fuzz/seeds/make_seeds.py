#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into seeds/decode_packet/, seeds/topic_filter/ and
seeds/proxy_header/.

A decode_packet seed is a fuzz input: a 4-byte header (maximum packet size, 0xffff for the default
1 MiB; split point) followed by a client's byte stream that starts with CONNECT, so that
the server codec gets past its first packet. The packets are built by hand from the specs
(not by raftmq's encoder) so that the seeds do not inherit the encoder's mistakes;
tests/fuzz_regressions.rs checks that each stream decodes completely.

A topic_filter seed is a filter, a 0xff byte, and a topic (or share name).

A proxy_header seed is a 2-byte split point followed by what a balancer sends: a PROXY v1 line
or v2 header (built here from HAProxy's proxy-protocol.txt, not by the ppp crate) and the
start of an MQTT CONNECT that must be handed on unchanged.

Run from anywhere: python3 tests/fuzz/seeds/make_seeds.py
"""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "decode_packet")


def varint(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def u16(n):
    return struct.pack(">H", n)


def u32(n):
    return struct.pack(">I", n)


def s(text):
    raw = text.encode() if isinstance(text, str) else text
    return u16(len(raw)) + raw


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


def props(*items):
    body = b"".join(items)
    return varint(len(body)) + body


def seed(name, stream, max_size=0xFFFF, split=7):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(u16(max_size) + u16(split) + stream)


# MQTT 3.1.1: clean session, will QoS 1, user name and password.
connect_311 = packet(
    0x10,
    s("MQTT") + bytes([4, 0xCE]) + u16(60) + s("fuzz-311") + s("dead/311") + s("bye")
    + s("user") + s("pw"),
)
publish_311 = packet(0x33, s("sensors/building-7/floor-3/temperature") + u16(1) + b"21.5")
session_311 = b"".join([
    connect_311,
    packet(0x20, bytes([1, 0])),  # CONNACK, session present
    packet(0x30, s("a/b") + b"qos0"),
    publish_311,
    packet(0x3C, s("x") + u16(2) + b""),  # QoS 2, DUP
    packet(0x40, u16(1)),  # PUBACK
    packet(0x50, u16(2)),  # PUBREC
    packet(0x62, u16(2)),  # PUBREL
    packet(0x70, u16(2)),  # PUBCOMP
    packet(0x82, u16(3) + s("a/+/c") + bytes([1]) + s("#") + bytes([2])),  # SUBSCRIBE
    packet(0x90, u16(3) + bytes([1, 0x80])),  # SUBACK
    packet(0xA2, u16(4) + s("a/+/c")),  # UNSUBSCRIBE
    packet(0xB0, u16(4)),  # UNSUBACK
    packet(0xC0, b""),  # PINGREQ
    packet(0xD0, b""),  # PINGRESP
    packet(0xE0, b""),  # DISCONNECT
])

# MQTT 5.0: properties everywhere, will properties, password without user name.
connect_5 = packet(
    0x10,
    s("MQTT") + bytes([5, 0x6E]) + u16(30)
    + props(b"\x11" + u32(3600), b"\x21" + u16(20), b"\x26" + s("k") + s("v"))
    + s("fuzz-5")
    + props(b"\x18" + u32(5), b"\x03" + s("text/plain"))
    + s("dead/5") + s(b"\x00\x01") + s(b"secret"),
)
publish_5 = packet(
    0x33,
    s("sensors/building-7/floor-3/temperature") + u16(7)
    + props(b"\x02" + u32(60), b"\x23" + u16(3), b"\x08" + s("reply/here"),
            b"\x09" + s(b"\x01\x02"), b"\x0B" + varint(300), b"\x26" + s("unit") + s("C"))
    + b"21.5",
)
session_5 = b"".join([
    connect_5,
    packet(0x20, bytes([0, 0]) + props(b"\x24" + bytes([1]), b"\x12" + s("assigned"))),
    publish_5,
    packet(0x30, s("") + props(b"\x23" + u16(3)) + b"aliased"),  # empty topic + alias
    packet(0x40, u16(7)),  # PUBACK, reason omitted
    packet(0x40, u16(8) + bytes([0x10])),  # PUBACK, no matching subscribers
    packet(0x50, u16(9) + bytes([0x80]) + props(b"\x1F" + s("nope"))),  # PUBREC + reason string
    packet(0x62, u16(9) + bytes([0]) + props()),  # PUBREL, empty properties
    packet(0x70, u16(9)),  # PUBCOMP
    packet(0x82, u16(10) + props(b"\x0B" + varint(42)) + s("$share/g/a/#") + bytes([0x2A])),
    packet(0x90, u16(10) + props() + bytes([2, 0x8F])),  # SUBACK
    packet(0xA2, u16(11) + props(b"\x26" + s("a") + s("b")) + s("a/#")),  # UNSUBSCRIBE
    packet(0xB0, u16(11) + props() + bytes([0x11])),  # UNSUBACK, no subscription existed
    packet(0xF0, bytes([0x18]) + props(b"\x15" + s("SCRAM"), b"\x16" + s(b"\x00"))),  # AUTH
    packet(0xC0, b""),
    packet(0xE0, bytes([0x04]) + props(b"\x11" + u32(0))),  # DISCONNECT with will
])

os.makedirs(OUT, exist_ok=True)
seed("v311-session.bin", session_311)
seed("v5-session.bin", session_5, split=40)
seed("v311-publish.bin", connect_311 + publish_311)
seed("v5-publish.bin", connect_5 + publish_5, split=len(connect_5) + 3)
# A maximum packet size that the PUBLISH exceeds: the refusal path.
seed("v5-too-large.bin", connect_5 + publish_5, max_size=len(connect_5) + 1)
# Cut inside the two-byte remaining length of a PUBLISH.
seed(
    "v311-split-header.bin",
    connect_311 + packet(0x30, s("t") + bytes(200)),
    split=len(connect_311) + 2,
)

TOPIC_OUT = os.path.join(HERE, "topic_filter")
os.makedirs(TOPIC_OUT, exist_ok=True)
for name, filter_, topic in [
    ("plus.bin", "sport/tennis/+", "sport/tennis/player1"),
    ("hash.bin", "sport/#", "sport"),
    ("shared.bin", "$share/consumer1/sport/+/player1", "consumer1"),
    ("dollar.bin", "+/monitor/Clients", "$SYS/monitor/Clients"),
    ("empty-levels.bin", "+//+", "a//b"),
]:
    with open(os.path.join(TOPIC_OUT, name), "wb") as f:
        f.write(filter_.encode() + b"\xff" + topic.encode())

PROXY_OUT = os.path.join(HERE, "proxy_header")
os.makedirs(PROXY_OUT, exist_ok=True)
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
AFTER = b"\x10\x0c\x00\x04MQTT"


def tlv(kind, value):
    return bytes([kind]) + u16(len(value)) + value


def v2(ver_cmd, fam_proto, body):
    return V2_SIGNATURE + bytes([ver_cmd, fam_proto]) + u16(len(body)) + body


V4_ADDRESSES = bytes([192, 0, 2, 1, 10, 0, 0, 1]) + u16(51000) + u16(1883)
V6_ADDRESSES = (
    bytes.fromhex("20010db8000000000000000000000001")
    + bytes.fromhex("20010db8000000000000000000000002")
    + u16(51000)
    + u16(1883)
)
# PP2_TYPE_SSL: client = SSL | CERT_CONN, verify = 0, then version and CN sub-TLVs.
SSL = tlv(
    0x20,
    bytes([0x01 | 0x02]) + u32(0) + tlv(0x21, b"TLSv1.3") + tlv(0x22, b"dev-7"),
)
for name, header, split in [
    ("v1-tcp4.bin", b"PROXY TCP4 192.0.2.1 10.0.0.1 51000 1883\r\n", 14),
    ("v1-tcp6.bin", b"PROXY TCP6 2001:db8::1 2001:db8::2 51000 1883\r\n", 46),
    ("v1-unknown.bin", b"PROXY UNKNOWN\r\n", 3),
    ("v1-unknown-addresses.bin", b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", 200),
    ("v2-tcp4.bin", v2(0x21, 0x11, V4_ADDRESSES), 5),
    ("v2-tcp6.bin", v2(0x21, 0x21, V6_ADDRESSES), 16),
    ("v2-local.bin", v2(0x20, 0x00, b""), 14),
    ("v2-unix.bin", v2(0x21, 0x31, bytes(216)), 30),
    ("v2-tcp4-tlvs.bin", v2(0x21, 0x11, V4_ADDRESSES + tlv(0x04, b"pad") + tlv(0x02, b"broker.example")), 29),
    ("v2-tcp4-ssl-cn.bin", v2(0x21, 0x11, V4_ADDRESSES + tlv(0x04, b"pad") + SSL), 40),
    ("v2-tcp6-ssl-cn.bin", v2(0x21, 0x21, V6_ADDRESSES + SSL), 60),
]:
    with open(os.path.join(PROXY_OUT, name), "wb") as f:
        f.write(u16(split) + header + AFTER)
