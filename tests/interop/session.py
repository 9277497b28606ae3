"""A persistent session with paho: a subscriber (3.1.1 clean session 0; 5.0 clean start 0 and
a session expiry interval) subscribes at QoS 2 and disconnects; QoS 1 and QoS 2 messages are
published while it is away; it reconnects with the same client id, is told the session is
present, and receives every message once, each at the QoS it was published with, in publish
order within each QoS."""

from common import Client, expect_message, fail, parse_args, step


def main():
    args = parse_args(__doc__, lambda p: p.add_argument("--count", type=int, default=10))
    topic = f"{args.prefix}/session"
    client_id = f"{args.prefix}-persistent"

    step("first connection of the persistent subscriber")
    subscriber = Client(args, client_id, clean=False, session_expiry=300)
    if subscriber.connect():
        fail("a client id never used before got session present")
    subscriber.subscribe(topic, 2)
    step("the subscriber disconnects normally")
    subscriber.disconnect()

    step(f"publish {args.count} messages at QoS 1 and 2 while the subscriber is away")
    publisher = Client(args, f"{args.prefix}-pub")
    publisher.connect()
    sent = [(f"m{i}".encode(), 1 + i % 2) for i in range(args.count)]
    publisher.wait_published([publisher.publish(topic, p, qos) for p, qos in sent])

    step("the subscriber reconnects and finds its session")
    resumed = Client(args, client_id, clean=False, session_expiry=300)
    if not resumed.connect():
        fail("reconnecting with clean session/start 0 did not report session present")
    received = [resumed.next_message(f"message {i + 1} of {len(sent)}") for i in range(len(sent))]
    # paho hands a QoS 2 message over on PUBREL, a QoS 1 message on PUBLISH: the order
    # holds within each QoS.
    for qos in (1, 2):
        expected = [p for p, q in sent if q == qos]
        got = [m for m in received if m.qos == qos]
        if len(got) != len(expected):
            fail(f"received {len(got)} QoS {qos} messages, expected {len(expected)}: "
                 f"{[m.payload for m in received]}")
        for message, payload in zip(got, expected):
            expect_message(message, topic, payload, qos)
    resumed.no_message_yet("after every queued message")

    step("disconnect")
    resumed.disconnect()
    publisher.disconnect()
    print("ok", flush=True)


if __name__ == "__main__":
    main()
