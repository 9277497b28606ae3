//! A verified client certificate as the username (`--certificate-username tls` with mTLS):
//! a device with a certificate for CN "device-7" connects over TLS without a username or
//! password, on a node that refuses anonymous clients, and `%u` rules then give it
//! `devices/device-7/...` and nothing of another device's (rumqttc 5.0 and 3.1.1, and
//! `mosquitto_pub` with the certificate and key files). Behind a balancer that ends
//! TLS, the certificate's name comes in the PROXY v2 header (`--certificate-username
//! tcp`): used only when the balancer says it verified it.

use raftmq::mqtt::{Protocol, ReasonCode};

use crate::broker_support::certs::{ANY_VERSION, Pki, client_config};
use crate::broker_support::proxy_header::{source, ssl_tlv, v2_header};
use crate::broker_support::run_process;
use crate::client::{Client, Opts, Version, v5_user};
use crate::http::{acl_file, add_user};
use crate::wire::{Wire, connect_packet};
use crate::{start_node, unique};

const DEVICE_RULES: &str = r##"
[[rule]]
permission = "allow"
action = "all"
topics = ["devices/%u/#"]

[[rule]]
permission = "allow"
action = "subscribe"
username = "dashboard"
topics = ["devices/#"]

[[rule]]
permission = "deny"
action = "all"
topics = ["devices/#"]
"##;

#[tokio::test]
async fn a_client_certificate_names_the_user_for_the_acl() {
    let pki = Pki::new("raftmq security test CA");
    let files = pki.server_files(&pki.server("raftmq-node"));
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = acl_file(&dir, "acl.toml", DEVICE_RULES);
    let mut args = files.args();
    args.extend([
        "--tls-client-ca".to_string(),
        pki.ca_file().display().to_string(),
        "--tls-client-cert-optional=false".to_string(),
        "--certificate-username".to_string(),
        "tls".to_string(),
        "--allow-anonymous=false".to_string(),
        "--auth-failure-limit=0".to_string(),
        "--acl-file".to_string(),
        rules.display().to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cluster = start_node(&args).await;
    let node = &cluster.nodes[0];
    add_user(node, "dashboard", "dash-pw").await;
    let id = unique("cert");

    let device_cert = pki.client("device-7");
    let device_tls = client_config(&[pki.ca_cert()], ANY_VERSION, Some(&device_cert));
    // Without its certificate, on plain TCP, the same client is anonymous: refused.
    let tcp_id = format!("{id}-tcp");
    let refused = Client::try_connect(Opts::new(Version::V5, &tcp_id, &node.mqtt_addr))
        .await
        .err();
    assert_eq!(refused, Some(0x87), "no certificate, no credentials");

    let mut dashboard = v5_user(
        &format!("{id}-dash"),
        &node.mqtt_addr,
        "dashboard",
        "dash-pw",
    )
    .await;
    dashboard.subscribe("devices/#").await;

    let device_id = format!("{id}-device");
    let tls = Opts::new(Version::V5, &device_id, &node.tls_addr).tls(device_tls.clone());
    let mut device = Client::connect(tls).await;
    device.publish_ok("devices/device-7/x", "reading").await;
    dashboard
        .expect_message("devices/device-7/x", "reading")
        .await;
    assert_eq!(device.publish("devices/other/x", "forged").await, 0x87);
    assert_eq!(
        device
            .subscribe_many(&[("devices/other/#", 1), ("devices/device-7/#", 1)])
            .await,
        [0x80, 1]
    );
    device.publish_ok("devices/device-7/y", "control").await;
    dashboard
        .expect_message("devices/device-7/y", "control")
        .await;
    device.expect_message("devices/device-7/y", "control").await;
    dashboard.expect_quiet("nothing from devices/other").await;

    // 3.1.1 over the same TLS listener: the certificate is the username there too.
    let v4_id = format!("{id}-device-v4");
    let tls = Opts::new(Version::V311, &v4_id, &node.tls_addr).tls(device_tls);
    let mut device_v4 = Client::connect(tls).await;
    device_v4.publish_ok("devices/device-7/z", "v311").await;
    dashboard.expect_message("devices/device-7/z", "v311").await;

    // Mosquitto's own client with the device's certificate and key files.
    let device_files = pki.files(&device_cert, "device-7");
    let (_, port) = node.tls_addr.rsplit_once(':').expect("host:port");
    let mut command = tokio::process::Command::new("mosquitto_pub");
    command
        .args(["-h", "localhost", "-p", port, "-V", "5", "-q", "1"])
        .args(["-i", &format!("{id}-mosquitto")])
        .arg("--cafile")
        .arg(pki.ca_file())
        .arg("--cert")
        .arg(&device_files.cert)
        .arg("--key")
        .arg(&device_files.key)
        .args(["-t", "devices/device-7/m", "-m", "from mosquitto_pub"]);
    let output = run_process(command, None, std::time::Duration::from_secs(20)).await;
    assert!(
        output.status.success(),
        "mosquitto_pub with a client certificate: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    dashboard
        .expect_message("devices/device-7/m", "from mosquitto_pub")
        .await;
}

/// A raw connection through a "balancer" that ended TLS for a client certificate named
/// `cn` and says whether it verified it (`verify` 0: yes).
async fn behind_tls_balancer(addr: &str, cn: &str, verify: u32, client_id: &str) -> Wire {
    let mut wire = Wire::open(addr, "127.0.0.1", Protocol::V5).await;
    let tlv = ssl_tlv(cn, verify);
    wire.write_raw(&v2_header(source([198, 51, 100, 9], 40000), Some(&tlv)))
        .await;
    let ack = wire
        .connect(connect_packet(Protocol::V5, client_id, None, None))
        .await;
    if ack.reason != ReasonCode::Success {
        panic!("{client_id}: refused with {:?}", ack.reason);
    }
    wire
}

#[tokio::test]
async fn a_certificate_named_in_the_proxy_header_is_the_username_when_verified() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = acl_file(&dir, "acl.toml", DEVICE_RULES);
    // The dashboard comes straight to the node's TLS listener, with a password.
    let pki = Pki::new("raftmq security test CA");
    let mut args = pki.server_files(&pki.server("raftmq-node")).args();
    args.extend(
        [
            "--mqtt-proxy-protocol=true",
            "--proxy-trusted",
            "127.0.0.0/8",
            "--certificate-username",
            "tcp",
            "--allow-anonymous=false",
            "--auth-failure-limit=0",
            "--acl-file",
        ]
        .map(String::from),
    );
    args.push(rules.display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cluster = start_node(&args).await;
    let node = &cluster.nodes[0];
    add_user(node, "dashboard", "dash-pw").await;
    let id = unique("proxycert");
    let dashboard_id = format!("{id}-dash");
    let tls = client_config(&[pki.ca_cert()], ANY_VERSION, None);
    let mut dashboard = Client::connect(
        Opts::new(Version::V5, &dashboard_id, &node.tls_addr)
            .tls(tls)
            .login("dashboard", "dash-pw"),
    )
    .await;
    dashboard.subscribe("devices/#").await;

    let mut device =
        behind_tls_balancer(&node.mqtt_addr, "device-9", 0, &format!("{id}-dev")).await;
    assert_eq!(
        device.publish("devices/device-9/t", "via lb").await,
        ReasonCode::Success
    );
    dashboard
        .expect_message("devices/device-9/t", "via lb")
        .await;
    assert_eq!(
        device.publish("devices/device-7/t", "forged").await,
        ReasonCode::NotAuthorized
    );

    // A certificate the balancer could not verify names nobody: no credentials, refused.
    let mut unverified = Wire::open(&node.mqtt_addr, "127.0.0.1", Protocol::V5).await;
    let tlv = ssl_tlv("device-9", 1);
    unverified
        .write_raw(&v2_header(source([198, 51, 100, 9], 40001), Some(&tlv)))
        .await;
    let ack = unverified
        .connect(connect_packet(
            Protocol::V5,
            &format!("{id}-unverified"),
            None,
            None,
        ))
        .await;
    assert_eq!(ack.reason, ReasonCode::NotAuthorized);
    dashboard.expect_quiet("nothing forged").await;
}
