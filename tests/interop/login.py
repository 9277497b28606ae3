"""Logging in with a username and password (run by tests/security against a broker without
anonymous access): a client without credentials is refused "not authorized", one with a
wrong password "bad user name or password" (paho reports 3.1.1's return codes 5 and 4 as
the 5.0 reasons 135 and 134), and one with the right password connects and gets its own
QoS 1 message back."""

import queue

from common import Client, expect_message, fail, parse_args, remaining, step

NOT_AUTHORIZED = 135
BAD_CREDENTIALS = 134


def refused_with(args, client_id, credentials):
    """Connects and returns the CONNACK's reason code value, which must be a refusal."""
    client = Client(args, client_id)
    if credentials is not None:
        client.paho.username_pw_set(*credentials)
    try:
        client.paho.connect(args.host, args.port, keepalive=30)
    except OSError as e:
        fail(f"{client_id}: cannot reach {args.host}:{args.port}: {e}")
    client.paho.loop_start()
    try:
        _, reason_code = client.connacks.get(timeout=remaining(args))
    except queue.Empty:
        fail(f"{client_id}: no CONNACK")
    client.paho.loop_stop()
    if not reason_code.is_failure:
        fail(f"{client_id}: connected with credentials {credentials!r}")
    return reason_code.value


def main():
    def extra(parser):
        parser.add_argument("--username", required=True)
        parser.add_argument("--password", required=True)

    args = parse_args(__doc__, extra)

    step("connect without credentials")
    got = refused_with(args, f"{args.prefix}-anon", None)
    if got != NOT_AUTHORIZED:
        fail(f"anonymous CONNACK {got}, expected {NOT_AUTHORIZED}")

    step("connect with a wrong password")
    got = refused_with(args, f"{args.prefix}-wrong", (args.username, args.password + "x"))
    if got != BAD_CREDENTIALS:
        fail(f"wrong-password CONNACK {got}, expected {BAD_CREDENTIALS}")

    step("connect with the right password")
    client = Client(args, f"{args.prefix}-ok")
    client.paho.username_pw_set(args.username, args.password)
    client.connect()
    topic = f"login/{args.prefix}"
    client.subscribe(topic, 1)
    client.wait_published([client.publish(topic, b"logged in", 1)])
    expect_message(client.next_message("its own message"), topic, b"logged in", 1)
    client.disconnect()
    print("ok", flush=True)


if __name__ == "__main__":
    main()
