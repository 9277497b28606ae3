//! Packet identifiers used against the rules (QoS 2 reuse is in `broker_malformed`):
//! - a publisher that sends several QoS 1 PUBLISHes under one packet id before the first
//!   PUBACK (the spec forbids reuse until then, §2.2.1): raftmq takes each as a new
//!   message, so every one is PUBACKed and every one delivered, once;
//! - a subscriber that sends PUBACK, PUBCOMP and PUBREC for ids the broker never sent it
//!   (before any message, and for ids not in flight), and PUBCOMP for QoS 1 messages in
//!   flight: nothing is released by them — after a reconnect the broker resends every
//!   message the subscriber did not really acknowledge. A PUBREC for an unknown id is
//!   answered with PUBREL (5.0: 0x92 Packet Identifier not found).

use std::collections::BTreeSet;

use raftmq::mqtt::{Ack, Packet, Protocol, ReasonCode};

use crate::broker_support::{cluster, port_of};
use crate::raw::{Raw, Recv, connect_packet, frame, pid, publish_bytes};
use crate::witness::Witness;
use crate::{WAIT, unique};

/// A QoS 1 PUBLISH with packet id `id` and no properties.
fn qos1(protocol: Protocol, topic: &str, id: u16, payload: &[u8]) -> Vec<u8> {
    publish_bytes(protocol, 0b0010, topic.as_bytes(), id, &[0], payload)
}

/// Receives `count` PUBLISHes and returns their payloads (and ids), acknowledging each
/// if `ack`.
async fn receive(sub: &mut Raw, count: usize, ack: bool) -> Vec<(u16, Vec<u8>)> {
    let mut got = Vec::new();
    for _ in 0..count {
        let publish = sub.expect_publish().await;
        let id = publish.packet_id.expect("QoS 1");
        if ack {
            sub.puback(id).await;
        }
        got.push((id.get(), publish.payload.to_vec()));
    }
    got
}

#[tokio::test]
async fn qos1_packet_id_reused_before_its_puback_is_a_new_message() {
    let cluster = cluster(1).await;
    let addr = &cluster.nodes[0].mqtt_addr;
    let tag = unique("reuse1");
    let witness = Witness::start(port_of(addr), &tag).await;
    for protocol in [Protocol::V311, Protocol::V5] {
        let topic = format!("{tag}/t{}", protocol.level());
        let mut sub = Raw::connect(addr, protocol, &format!("{topic}-sub")).await;
        sub.subscribe(std::slice::from_ref(&topic)).await;
        let mut publisher = Raw::connect(addr, protocol, &format!("{topic}-pub")).await;
        let payloads: [&[u8]; 4] = [b"a", b"b", b"c", b"d"];
        // One write: every PUBLISH is in before the first PUBACK can be out.
        let burst: Vec<u8> = payloads
            .iter()
            .flat_map(|p| qos1(protocol, &topic, 5, p))
            .collect();
        publisher.write(&burst).await.expect("send the burst");
        for payload in payloads {
            match publisher.expect("PUBACK").await {
                Packet::PubAck(ack) => {
                    assert_eq!(ack.packet_id, pid(5));
                    assert_eq!(ack.reason, ReasonCode::Success, "{payload:?}");
                }
                other => panic!("expected PUBACK 5, got {other:?}"),
            }
        }
        // Acknowledged: id 5 is free again.
        publisher
            .write(&qos1(protocol, &topic, 5, b"e"))
            .await
            .expect("send e");
        assert!(
            matches!(publisher.expect("PUBACK").await, Packet::PubAck(a) if a.packet_id == pid(5))
        );
        let got: Vec<Vec<u8>> = receive(&mut sub, 5, true)
            .await
            .into_iter()
            .map(|(_, payload)| payload)
            .collect();
        assert_eq!(
            got,
            [b"a", b"b", b"c", b"d", b"e"],
            "{protocol:?}: each once, in order"
        );
        // Nothing duplicated: a copy of any of them would come before this (one publisher's
        // messages keep their order, §4.6).
        publisher
            .write(&qos1(protocol, &topic, 6, b"end"))
            .await
            .expect("send end");
        assert!(matches!(
            publisher.expect("PUBACK").await,
            Packet::PubAck(_)
        ));
        assert_eq!(receive(&mut sub, 1, true).await[0].1, b"end");
        witness.served().await;
    }
    witness.finish().await;
}

#[tokio::test]
async fn acks_for_packet_ids_never_sent_release_nothing() {
    let cluster = cluster(1).await;
    let addr = &cluster.nodes[0].mqtt_addr;
    let tag = unique("bogusacks");
    let witness = Witness::start(port_of(addr), &tag).await;
    for protocol in [Protocol::V311, Protocol::V5] {
        let topic = format!("{tag}/t{}", protocol.level());
        let sub_id = format!("{topic}-sub");
        let (mut sub, _) = Raw::connect_with(addr, connect_packet(protocol, &sub_id, false)).await;
        sub.subscribe(std::slice::from_ref(&topic)).await;

        // Before any message: PUBACK 1–40, PUBCOMP 41–60, PUBREC 61–70, then PINGREQ.
        let mut bogus = Vec::new();
        for id in 1..=40u16 {
            bogus.extend(frame(0x40, &id.to_be_bytes()));
        }
        for id in 41..=60u16 {
            bogus.extend(frame(0x70, &id.to_be_bytes()));
        }
        for id in 61..=70u16 {
            bogus.extend(frame(0x50, &id.to_be_bytes()));
        }
        bogus.extend([0xc0, 0x00]);
        sub.write(&bogus).await.expect("send the bogus acks");
        let mut pubrels = BTreeSet::new();
        let mut pong = false;
        while !pong || pubrels.len() < 10 {
            match sub.expect("PUBREL or PINGRESP").await {
                Packet::PingResp => pong = true,
                Packet::PubRel(rel) => {
                    if protocol == Protocol::V5 {
                        assert_eq!(rel.reason, ReasonCode::PacketIdentifierNotFound);
                    }
                    assert!(pubrels.insert(rel.packet_id.get()), "one PUBREL per PUBREC");
                }
                other => panic!("expected PUBREL or PINGRESP, got {other:?}"),
            }
        }
        assert_eq!(
            pubrels,
            (61..=70).collect(),
            "PUBREL for each unknown PUBREC"
        );

        // Twenty messages; the subscriber takes them without acknowledging, then sends
        // PUBACK for ids it was not sent and PUBCOMP for the ones it was.
        let mut publisher = Raw::connect(addr, Protocol::V5, &format!("{topic}-pub")).await;
        let sent: Vec<Vec<u8>> = (0..20).map(|i| format!("m{i}").into_bytes()).collect();
        for (i, payload) in sent.iter().enumerate() {
            let id = i as u16 + 1;
            publisher
                .write(&qos1(Protocol::V5, &topic, id, payload))
                .await
                .expect("publish");
            match publisher.expect("PUBACK").await {
                Packet::PubAck(ack) => assert_eq!(ack.reason, ReasonCode::Success),
                other => panic!("expected PUBACK, got {other:?}"),
            }
        }
        let first = receive(&mut sub, sent.len(), false).await;
        let payloads: Vec<Vec<u8>> = first.iter().map(|(_, p)| p.clone()).collect();
        assert_eq!(payloads, sent);
        let in_flight: BTreeSet<u16> = first.iter().map(|(id, _)| *id).collect();
        let mut bogus = Vec::new();
        for id in (1..=200u16).filter(|id| !in_flight.contains(id)) {
            bogus.extend(frame(0x40, &id.to_be_bytes()));
        }
        for id in &in_flight {
            bogus.extend(frame(0x70, &id.to_be_bytes()));
        }
        sub.write(&bogus).await.expect("send the bogus acks");
        sub.ping().await;
        drop(sub);

        // Back: every message comes again (DUP), because none was acknowledged.
        let (mut sub, connack) =
            Raw::connect_with(addr, connect_packet(protocol, &sub_id, false)).await;
        assert!(connack.session_present, "{protocol:?}: the session is kept");
        let mut again = Vec::new();
        for _ in 0..sent.len() {
            let publish = sub.expect_publish().await;
            assert!(publish.dup, "{protocol:?}: a resend has DUP set");
            sub.send(&Packet::PubAck(Ack::new(publish.packet_id.expect("QoS 1"))))
                .await;
            again.push(publish.payload.to_vec());
        }
        assert_eq!(
            again, sent,
            "{protocol:?}: nothing released by the bogus acks"
        );
        // Acknowledged now: nothing more comes before a new message.
        publisher
            .write(&qos1(Protocol::V5, &topic, 100, b"end"))
            .await
            .expect("publish end");
        assert!(matches!(
            publisher.expect("PUBACK").await,
            Packet::PubAck(_)
        ));
        match sub.recv(WAIT).await {
            Recv::Packet(Packet::Publish(p)) => assert_eq!(p.payload.as_ref(), b"end"),
            other => panic!("expected the end marker, got {other:?}"),
        }
        witness.served().await;
    }
    witness.finish().await;
}
