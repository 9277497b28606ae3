"""Shared by the interop scripts: the command line, a watchdog that bounds every script in
time, and a thin wrapper over a paho-mqtt 2.x client that turns its callbacks into queues the
script can wait on with a timeout.

Every failure prints one line starting with `FAIL:` on stderr and exits nonzero, so the Rust
test that runs the script can show why."""

import argparse
import os
import queue
import sys
import threading
import time

try:
    import paho.mqtt
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
except ImportError as e:
    print(f"FAIL: paho-mqtt 2.x is not importable ({e}); .ci/run installs it with "
          "`python3 -m pip install 'paho-mqtt>=2,<3'`", file=sys.stderr, flush=True)
    sys.exit(4)

if int(paho.mqtt.__version__.split(".")[0]) < 2:
    print(f"FAIL: paho-mqtt {paho.mqtt.__version__} is too old; .ci/run installs 2.x",
          file=sys.stderr, flush=True)
    sys.exit(4)

_stage = ["starting"]


def fail(message):
    """Ends the script at once (also from a paho or watchdog thread)."""
    print(f"FAIL: {message} (during: {_stage[0]})", file=sys.stderr, flush=True)
    os._exit(1)


def step(name):
    """Names what the script is doing now, for the failure message and the log."""
    _stage[0] = name
    print(f"step: {name}", flush=True)


def parse_args(description, extra=None):
    """Parses the common options (and the script's own, through `extra(parser)`), then
    starts the watchdog."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--protocol", choices=["311", "5"], required=True)
    parser.add_argument("--prefix", required=True,
                        help="unique prefix for client ids and topics")
    parser.add_argument("--timeout", type=float, default=20.0,
                        help="seconds after which the script fails, whatever it is doing")
    parser.add_argument("--transport", choices=["tcp", "websockets"], default="tcp")
    parser.add_argument("--ws-path", default="/mqtt")
    parser.add_argument("--ca", default=None,
                        help="connect over TLS, trusting this CA certificate (PEM)")
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    watchdog = threading.Timer(
        args.timeout, lambda: fail(f"timed out after {args.timeout:.0f} s"))
    watchdog.daemon = True
    watchdog.start()
    args.deadline = time.monotonic() + args.timeout
    return args


def remaining(args):
    return max(0.1, args.deadline - time.monotonic())


class Client:
    """One paho client, its network loop on paho's thread, and its callbacks as queues."""

    def __init__(self, args, client_id, clean=True, session_expiry=None, will=None):
        self.args = args
        self.client_id = client_id
        self.v5 = args.protocol == "5"
        self.clean = clean
        self.session_expiry = session_expiry
        transport = getattr(args, "transport", "tcp")
        if self.v5:
            self.paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                    protocol=mqtt.MQTTv5, reconnect_on_failure=False,
                                    transport=transport)
        else:
            self.paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                    clean_session=clean, protocol=mqtt.MQTTv311,
                                    reconnect_on_failure=False, transport=transport)
        if transport == "websockets":
            self.paho.ws_set_options(path=args.ws_path)
        if getattr(args, "ca", None):
            self.paho.tls_set(ca_certs=args.ca)
        if will is not None:
            topic, payload, qos = will
            self.paho.will_set(topic, payload, qos=qos, retain=False)
        self.connacks = queue.Queue()
        self.subacks = queue.Queue()
        self.messages = queue.Queue()
        self.disconnects = queue.Queue()
        self.paho.on_connect = self._on_connect
        self.paho.on_subscribe = self._on_subscribe
        self.paho.on_message = self._on_message
        self.paho.on_publish = self._on_publish
        self.paho.on_disconnect = self._on_disconnect

    def _on_connect(self, _client, _userdata, flags, reason_code, _properties):
        self.connacks.put((flags.session_present, reason_code))

    def _on_subscribe(self, _client, _userdata, mid, reason_codes, _properties):
        self.subacks.put((mid, [rc.value for rc in reason_codes]))

    def _on_message(self, _client, _userdata, message):
        self.messages.put(message)

    def _on_publish(self, _client, _userdata, mid, reason_code, _properties):
        if reason_code.is_failure:
            fail(f"{self.client_id}: the broker refused publish mid {mid}: {reason_code}")

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties):
        self.disconnects.put(reason_code)

    def connect(self):
        """Connects, waits for CONNACK, and returns its session present flag."""
        kwargs = {}
        if self.v5:
            kwargs["clean_start"] = self.clean
            if self.session_expiry is not None:
                properties = Properties(PacketTypes.CONNECT)
                properties.SessionExpiryInterval = self.session_expiry
                kwargs["properties"] = properties
        try:
            self.paho.connect(self.args.host, self.args.port, keepalive=30, **kwargs)
        except OSError as e:
            fail(f"{self.client_id}: cannot reach {self.args.host}:{self.args.port}: {e}")
        self.paho.loop_start()
        try:
            session_present, reason_code = self.connacks.get(timeout=remaining(self.args))
        except queue.Empty:
            fail(f"{self.client_id}: no CONNACK")
        if reason_code.is_failure:
            fail(f"{self.client_id}: connection refused: {reason_code}")
        return bool(session_present)

    def subscribe(self, topic, qos):
        """Subscribes and waits for the SUBACK, which must grant `qos`."""
        rc, mid = self.paho.subscribe(topic, qos)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            fail(f"{self.client_id}: subscribe to {topic} not sent: {mqtt.error_string(rc)}")
        try:
            acked_mid, granted = self.subacks.get(timeout=remaining(self.args))
        except queue.Empty:
            fail(f"{self.client_id}: no SUBACK for {topic}")
        if acked_mid != mid or granted != [qos]:
            fail(f"{self.client_id}: SUBACK mid {acked_mid} granted {granted}, "
                 f"expected mid {mid} granted [{qos}]")

    def publish(self, topic, payload, qos, retain=False):
        info = self.paho.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            fail(f"{self.client_id}: publish to {topic} not sent: {mqtt.error_string(info.rc)}")
        return info

    def wait_published(self, infos):
        """Waits until every QoS 1/2 publish is acknowledged (PUBACK / PUBCOMP)."""
        for info in infos:
            info.wait_for_publish(timeout=remaining(self.args))
            if not info.is_published():
                fail(f"{self.client_id}: publish mid {info.mid} never acknowledged")

    def next_message(self, what):
        try:
            return self.messages.get(timeout=remaining(self.args))
        except queue.Empty:
            fail(f"{self.client_id}: never received {what}")

    def no_message_yet(self, what):
        """Fails if a message is already waiting."""
        try:
            message = self.messages.get_nowait()
        except queue.Empty:
            return
        fail(f"{self.client_id}: unexpected message {describe(message)} ({what})")

    def disconnect(self):
        """Sends DISCONNECT (normal disconnection) and waits until paho has closed."""
        self.paho.disconnect()
        try:
            self.disconnects.get(timeout=remaining(self.args))
        except queue.Empty:
            fail(f"{self.client_id}: disconnect never completed")
        self.paho.loop_stop()


def describe(message):
    return (f"topic={message.topic!r} payload={message.payload!r} qos={message.qos} "
            f"retain={int(message.retain)}")


def expect_message(message, topic, payload, qos, retain=False):
    if (message.topic, message.payload, message.qos, bool(message.retain)) != \
            (topic, payload, qos, retain):
        fail(f"received {describe(message)}, expected topic={topic!r} payload={payload!r} "
             f"qos={qos} retain={int(retain)}")
