//! Benchmarks of the MQTT codec on the broker's hottest packet: a QoS 1 PUBLISH with a
//! 64-byte payload to a four-level topic, in MQTT 3.1.1, in 5.0 without properties and in
//! 5.0 with a Message Expiry Interval. Each variant is measured three ways:
//!
//! - `decode`: the frame is copied into a read buffer that is reused across iterations (as
//!   a connection's read buffer is), then `Codec::decode` parses it. The copy is a ~100-byte
//!   memcpy into capacity the buffer already owns, so no allocation of the input is timed;
//!   dropping the decoded packet (its topic `String`, the payload's reference) is.
//! - `encode`: `Packet::encode` into a write buffer that is cleared, not reallocated, each
//!   iteration.
//! - `decode+encode`: both, as a broker forwarding a message does.
//!
//! Throughput is one packet per iteration, so criterion reports packets per second.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use raftmq::mqtt::{
    Codec, DEFAULT_MAX_PACKET_SIZE, Packet, PacketId, Properties, Protocol, Publish, QoS,
};

/// The topic of every benchmarked PUBLISH.
const TOPIC: &str = "sensors/building-7/floor-3/temperature";

/// One benchmarked PUBLISH: a name, the protocol it is coded in, the packet and its frame.
struct Variant {
    name: &'static str,
    protocol: Protocol,
    packet: Packet,
    frame: Bytes,
}

fn variant(name: &'static str, protocol: Protocol, properties: Properties) -> Variant {
    let packet = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: TOPIC.to_owned(),
        packet_id: PacketId::new(4711),
        properties,
        payload: Bytes::from(vec![0xa5; 64]),
    });
    let mut frame = BytesMut::new();
    packet
        .encode(protocol, &mut frame)
        .expect("benchmark PUBLISH encodes");
    Variant {
        name,
        protocol,
        packet,
        frame: frame.freeze(),
    }
}

fn variants() -> [Variant; 3] {
    let expiry = Properties {
        message_expiry_interval: Some(3600),
        ..Properties::default()
    };
    [
        variant("v311", Protocol::V311, Properties::default()),
        variant("v5", Protocol::V5, Properties::default()),
        variant("v5+expiry", Protocol::V5, expiry),
    ]
}

/// Refills the reused read buffer with one frame and decodes it.
fn decode(codec: &mut Codec, input: &mut BytesMut, frame: &[u8]) -> Packet {
    input.clear();
    input.extend_from_slice(frame);
    match codec.decode(input) {
        Ok(Some(packet)) => packet,
        other => panic!("benchmark frame does not decode: {other:?}"),
    }
}

fn publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("publish_qos1_64B");
    group.throughput(Throughput::Elements(1));
    for v in variants() {
        let mut codec = Codec::for_protocol(v.protocol, DEFAULT_MAX_PACKET_SIZE);
        let mut input = BytesMut::with_capacity(4096);
        let mut output = BytesMut::with_capacity(4096);
        assert_eq!(decode(&mut codec, &mut input, &v.frame), v.packet);

        group.bench_function(BenchmarkId::new("decode", v.name), |b| {
            b.iter(|| black_box(decode(&mut codec, &mut input, black_box(&v.frame))));
        });
        group.bench_function(BenchmarkId::new("encode", v.name), |b| {
            b.iter(|| {
                output.clear();
                black_box(&v.packet)
                    .encode(v.protocol, &mut output)
                    .expect("encodes");
                black_box(&output);
            });
        });
        group.bench_function(BenchmarkId::new("decode+encode", v.name), |b| {
            b.iter(|| {
                let packet = decode(&mut codec, &mut input, black_box(&v.frame));
                output.clear();
                packet.encode(v.protocol, &mut output).expect("encodes");
                black_box(&output);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, publish);
criterion_main!(benches);
