"""Retained messages with paho: a retained message is delivered, with RETAIN set, to a client
that subscribes after it was published; publishing an empty retained payload reaches the
existing subscriber as a normal message (RETAIN clear, empty payload) and deletes the
retained message, so a later subscriber gets nothing for it."""

from common import Client, expect_message, parse_args, step


def main():
    args = parse_args(__doc__)
    topic = f"{args.prefix}/retained"
    publisher = Client(args, f"{args.prefix}-pub")
    step("connect the publisher")
    publisher.connect()

    step("publish a retained message, QoS 1")
    publisher.wait_published([publisher.publish(topic, b"kept", 1, retain=True)])

    step("a later subscriber receives it with RETAIN set")
    early = Client(args, f"{args.prefix}-early")
    early.connect()
    early.subscribe(topic, 1)
    expect_message(early.next_message("the retained message"), topic, b"kept", 1, retain=True)

    step("delete it with an empty retained payload")
    publisher.wait_published([publisher.publish(topic, b"", 1, retain=True)])
    # The subscription existed already: the deletion is forwarded as a normal message
    # (3.1.1 MQTT-3.3.1-9; 5.0 with Retain As Published 0, the default).
    expect_message(early.next_message("the empty retained publish"), topic, b"", 1)

    step("a subscriber after the deletion gets no retained message")
    late = Client(args, f"{args.prefix}-late")
    late.connect()
    late.subscribe(topic, 1)
    # A retained message is sent on SUBSCRIBE, before anything published after the SUBACK;
    # so the first message the late subscriber sees must be this marker.
    publisher.wait_published([publisher.publish(topic, b"marker", 1)])
    expect_message(late.next_message("the marker"), topic, b"marker", 1)
    expect_message(early.next_message("the marker"), topic, b"marker", 1)
    late.no_message_yet("after the marker")

    step("disconnect")
    for client in (publisher, early, late):
        client.disconnect()
    print("ok", flush=True)


if __name__ == "__main__":
    main()
