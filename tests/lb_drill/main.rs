//! The failover drill of a cluster behind a real load balancer: the shipped
//! `deploy/haproxy/haproxy.cfg` and `deploy/nginx/nginx.conf`, rendered onto loopback
//! ports, in front of three raftmq node processes that expect PROXY headers.
//!
//! Through HAProxy (TLS ended there, PROXY v2 to the nodes): the node holding a persistent
//! QoS 1 + QoS 2 subscriber is SIGKILLed mid-flow, and in a second drill drained with
//! `raftmq node drain`; the clients reconnect through HAProxy, resume their sessions and
//! get every message (QoS 2 exactly once, QoS 1 at least once); the nodes report the
//! clients' real addresses from the PROXY header. Through NGINX's stream module (TLS
//! ended there, PROXY v1), the kill drill once more. Each prints the time from the fault
//! to the first resumed delivery and to full catch-up.

#[path = "../broker_support/mod.rs"]
mod broker_support;
// Shared with broker_cluster, which uses all of it; the drill uses part.
#[allow(dead_code)]
#[path = "../broker_cluster/client.rs"]
mod client;

mod drill;
mod setup;

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use drill::{Fault, clients};

fn report(balancer: &str, fault: Fault, times: drill::Times) {
    eprintln!(
        "DRILL {balancer} {fault:?}: after the fault, session resumed on another node at \
         {:.2} s, first resumed delivery {:.2} s, caught up {:.2} s",
        times.resumed.as_secs_f64(),
        times.first_delivery.as_secs_f64(),
        times.caught_up.as_secs_f64()
    );
}

#[tokio::test]
async fn haproxy_tls_kill_the_subscribers_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = setup::certs(dir.path());
    let mut cluster = setup::proxied_cluster(1500).await;
    let haproxy = setup::haproxy(&cluster, &certs).await;
    let tls = setup::client_tls(&certs);

    // The nodes see the client's own address (from the PROXY v2 header), not HAProxy's.
    let stream = tokio::net::TcpStream::connect(&haproxy.mqtt_tls)
        .await
        .expect("TCP to HAProxy");
    let local = stream.local_addr().expect("local address");
    let connector = tokio_rustls::TlsConnector::from(tls.clone());
    let server = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let mut probe = connector
        .connect(server, stream)
        .await
        .expect("TLS to HAProxy");
    // MQTT 3.1.1 CONNECT, clean session, client id "drill-addr".
    let mut connect = vec![0x10, 22, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 30, 0, 10];
    connect.extend_from_slice(b"drill-addr");
    probe.write_all(&connect).await.expect("CONNECT");
    let node = loop {
        if let Some(node) = drill::node_of(&cluster, "drill-addr").await {
            break node;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let body = cluster.nodes[node]
        .api()
        .expect("the node's API token")
        .get("/clients")
        .await
        .expect("/clients");
    let entry = clients(&body)
        .into_iter()
        .find(|c| c["client_id"] == "drill-addr")
        .expect("listed");
    assert_eq!(entry["peer"], local.to_string(), "{entry}");
    assert_ne!(entry["via"], local.to_string(), "{entry}");
    drop(probe);

    let times = drill::run(&mut cluster, &haproxy, tls, Fault::Kill, "hk").await;
    report("haproxy", Fault::Kill, times);
}

#[tokio::test]
async fn haproxy_tls_drain_the_subscribers_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = setup::certs(dir.path());
    let mut cluster = setup::proxied_cluster(1500).await;
    let haproxy = setup::haproxy(&cluster, &certs).await;
    let tls = setup::client_tls(&certs);
    let times = drill::run(&mut cluster, &haproxy, tls, Fault::Drain, "hd").await;
    report("haproxy", Fault::Drain, times);
}

#[tokio::test]
async fn nginx_tls_kill_the_subscribers_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = setup::certs(dir.path());
    let mut cluster = setup::proxied_cluster(1500).await;
    let nginx = setup::nginx(&cluster, &certs).await;
    let tls = setup::client_tls(&certs);
    let times = drill::run(&mut cluster, &nginx, tls, Fault::Kill, "nk").await;
    report("nginx", Fault::Kill, times);
}
