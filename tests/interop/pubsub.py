"""Publish/subscribe through the broker with two paho clients, at QoS 0, 1 and 2: every
message arrives once, in publish order, with the QoS granted; a QoS 2 message to a QoS 1
subscription arrives at QoS 1."""

from common import Client, expect_message, fail, parse_args, step


def main():
    args = parse_args(__doc__, lambda p: p.add_argument("--count", type=int, default=10))
    subscriber = Client(args, f"{args.prefix}-sub")
    publisher = Client(args, f"{args.prefix}-pub")
    step("connect")
    if subscriber.connect() or publisher.connect():
        fail("a clean session reported session present")

    # (subscription QoS, publish QoS, delivered QoS)
    cases = [(0, 0, 0), (1, 1, 1), (2, 2, 2), (1, 2, 1)]
    for sub_qos, pub_qos, delivered_qos in cases:
        topic = f"{args.prefix}/sub{sub_qos}/pub{pub_qos}"
        step(f"subscribe {topic} at QoS {sub_qos}")
        subscriber.subscribe(topic, sub_qos)
        step(f"publish {args.count} messages at QoS {pub_qos}")
        payloads = [f"m{i}".encode() for i in range(args.count)]
        infos = [publisher.publish(topic, p, pub_qos) for p in payloads]
        if pub_qos > 0:
            publisher.wait_published(infos)
        step(f"receive the QoS {pub_qos} messages at QoS {delivered_qos}")
        for payload in payloads:
            message = subscriber.next_message(f"{payload!r} on {topic}")
            expect_message(message, topic, payload, delivered_qos)
        subscriber.no_message_yet("after every message of the flow")

    step("disconnect")
    subscriber.disconnect()
    publisher.disconnect()
    print("ok", flush=True)


if __name__ == "__main__":
    main()
