"""A paho client that connects with a will (QoS 1, payload `gone: <client id>`) and then,
with `--mode kill`, prints `connected` and waits to be killed; with `--mode disconnect`, it
disconnects normally (DISCONNECT, reason 0 in 5.0) and prints `ok`, so the broker
must discard the will."""

import time

from common import Client, fail, parse_args, step


def main():
    def extra(parser):
        parser.add_argument("--will-topic", required=True)
        parser.add_argument("--mode", choices=["kill", "disconnect"], required=True)

    args = parse_args(__doc__, extra)
    client_id = f"{args.prefix}-will"
    client = Client(args, client_id, will=(args.will_topic, f"gone: {client_id}".encode(), 1))
    step("connect with a will")
    client.connect()
    if args.mode == "disconnect":
        step("disconnect normally")
        client.disconnect()
        print("ok", flush=True)
        return
    print("connected", flush=True)
    step("wait to be killed")
    time.sleep(args.timeout)
    fail("nobody killed this client")


if __name__ == "__main__":
    main()
