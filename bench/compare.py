#!/usr/bin/env python3
"""Side by side: the same `raftmq bench` scenarios against Mosquitto (Debian's, if
installed), one raftmq node and a 3-node raftmq cluster, all on loopback, in one run;
prints a table with raftmq's ratios to Mosquitto. Installs nothing.

Usage: bench/compare.py [--quick] [--scenarios name,...] [--brokers name,...]
       [--raftmq target/release/raftmq]

The machine is shared and noisy: compare the ratios, not the absolute figures.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# name -> (bench arguments, the figure compared, larger is better)
SCENARIOS = {
    "qos0 1->1": (["pubsub", "--qos", "0", "-c", "1", "--subscribers", "1"], "received_per_s", True),
    "qos0 4->1": (["pubsub", "--qos", "0", "-c", "4", "--subscribers", "1"], "received_per_s", True),
    "qos1 1->1": (["pubsub", "--qos", "1", "-c", "1", "--subscribers", "1"], "received_per_s", True),
    "qos1 4->1": (["pubsub", "--qos", "1", "-c", "4", "--subscribers", "1"], "received_per_s", True),
    # The same with a window (--inflight) of 1,024, within both brokers' Receive Maximum: a
    # durable broker's throughput per publisher is its window over its commit latency.
    "qos1 1->1 w1024": (["pubsub", "--qos", "1", "-c", "1", "--subscribers", "1",
                         "--inflight", "1024"], "received_per_s", True),
    "qos1 4->1 w1024": (["pubsub", "--qos", "1", "-c", "4", "--subscribers", "1",
                         "--inflight", "1024"], "received_per_s", True),
    "qos2 1->1": (["pubsub", "--qos", "2", "-c", "1", "--subscribers", "1"], "received_per_s", True),
    "qos1 p99 @5000/s": (
        ["pubsub", "--qos", "1", "-c", "5", "--subscribers", "1", "--rate", "1000"],
        "p99_ms", False),
    "qos0 p99.9 @1000/s": (
        ["pubsub", "--qos", "0", "-c", "1", "--subscribers", "1", "--rate", "1000"],
        "p999_ms", False),
    "qos1 p99.9 @1000/s": (
        ["pubsub", "--qos", "1", "-c", "1", "--subscribers", "1", "--rate", "1000"],
        "p999_ms", False),
    "idle conns": (["conn", "--connect-rate", "2000", "--source-ips", "8"], "rss_per_conn_b", False),
    "connect rate": (["conn", "--connect-rate", "0", "--source-ips", "8"], "connects_per_s", True),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, within=30.0):
    deadline = time.time() + within
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def rss_bytes(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


class Broker:
    """A broker under test: its processes, the MQTT port clients use, and its own pids."""

    def __init__(self, name):
        self.name, self.procs, self.port, self.dir = name, [], None, tempfile.mkdtemp(prefix="cmp-")

    def pids(self):
        return [p.pid for p in self.procs]

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGKILL)
            p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def raise_nofile():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start_mosquitto():
    if not shutil.which("mosquitto"):
        return None
    b = Broker("mosquitto")
    b.port = free_port()
    conf = os.path.join(b.dir, "mosquitto.conf")
    with open(conf, "w") as f:
        # Unlimited queues: its default (1000) drops QoS 1 messages under load, which
        # would flatter its throughput.
        f.write(f"listener {b.port} 127.0.0.1\nallow_anonymous true\n"
                "max_queued_messages 0\nmax_inflight_messages 0\nset_tcp_nodelay true\n")
    b.procs.append(subprocess.Popen(["mosquitto", "-c", conf], preexec_fn=raise_nofile,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return b if wait_port(b.port) else b.stop()


def start_raftmq(binary, nodes):
    b = Broker("raftmq" if nodes == 1 else f"raftmq x{nodes}")
    cluster = [free_port() for _ in range(nodes)]
    mqtt = [free_port() for _ in range(nodes)]
    for i in range(nodes):
        args = [binary, "--data-dir", os.path.join(b.dir, f"n{i}"),
                "--cluster-listen", f"127.0.0.1:{cluster[i]}",
                "--mqtt-listen", f"127.0.0.1:{mqtt[i]}",
                "--ws-listen", "off", "--http-listen", "off", "--dashboard-listen", "off",
                "--max-queued-messages", "1000000", "--allow-anonymous=true",
                "--max-connections-per-address", "0"]
        if i > 0:
            args += ["--join", f"127.0.0.1:{cluster[0]}"]
        log = open(os.path.join(b.dir, f"n{i}.log"), "w")
        b.procs.append(subprocess.Popen(args, preexec_fn=raise_nofile, stdout=log, stderr=log))
        if not wait_port(mqtt[i]):
            b.stop()
            return None
    if nodes > 1:
        deadline = time.time() + 90
        while time.time() < deadline:
            out = subprocess.run([binary, "cluster", "status", "--json", "--node",
                                  f"127.0.0.1:{cluster[0]}"], capture_output=True, text=True)
            try:
                status = json.loads(out.stdout)
                if sum(1 for m in status["members"] if m.get("voter")) == nodes and status["leader"]:
                    break
            except (ValueError, KeyError):
                pass
            time.sleep(0.5)
    # Clients go to the first node; with a cluster, two thirds of the Raft work is still
    # elsewhere (replication, fsync on every node).
    b.port = mqtt[0]
    return b


def run_bench(binary, broker, args, duration, connections):
    cmd = [binary, "bench"] + args + ["--port", str(broker.port), "--json"]
    if args[0] == "conn":
        cmd += ["-c", str(connections), "--duration", str(duration)]
    else:
        cmd += ["--duration", str(duration), "--client-prefix", f"cmp{time.time_ns()}"]
    rss_before = rss_bytes(broker.pids())
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = rss_before
    while proc.poll() is None:
        peak = max(peak, rss_bytes(broker.pids()))
        time.sleep(0.5)
    out = proc.stdout.read()
    try:
        summary = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": f"no summary (exit {proc.returncode})"}
    figures = {}
    m = summary.get("messages")
    if m:
        figures["received_per_s"] = m["received_per_s"]
        figures["lost"] = m["lost"]
        lat = m.get("latency_ms") or {}
        figures["p99_ms"] = lat.get("p99")
        figures["p999_ms"] = lat.get("p999")
    c = summary["connections"]
    figures["connects_per_s"] = c["per_second"]
    if args[0] == "conn":
        held = max(c["established"] - c["dropped"], 1)
        figures["rss_per_conn_b"] = (peak - rss_before) / held
        figures["established"] = c["established"]
        if c.get("open_file_limit_hit"):
            figures["note"] = c["open_file_limit_hit"]
    return figures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raftmq", default="target/release/raftmq")
    ap.add_argument("--quick", action="store_true", help="3 s per scenario, 2,000 connections")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=19000)
    ap.add_argument("--brokers", default="mosquitto,raftmq,raftmq x3",
                    help="which of mosquitto, raftmq, raftmq x3 to run")
    opts = ap.parse_args()
    duration = 3 if opts.quick else opts.duration
    connections = 2000 if opts.quick else opts.connections
    chosen = [s.strip() for s in opts.scenarios.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        sys.exit(f"unknown scenarios {unknown}; known: {list(SCENARIOS)}")

    brokers = [("mosquitto", start_mosquitto), ("raftmq", lambda: start_raftmq(opts.raftmq, 1)),
               ("raftmq x3", lambda: start_raftmq(opts.raftmq, 3))]
    wanted = [b.strip() for b in opts.brokers.split(",") if b.strip()]
    unknown = [b for b in wanted if b not in dict(brokers)]
    if unknown:
        sys.exit(f"unknown brokers {unknown}; known: {[n for n, _ in brokers]}")
    brokers = [(n, start) for n, start in brokers if n in wanted]
    results = {}
    for name, start in brokers:
        for scenario in chosen:
            # A fresh broker per scenario: leftover sessions and memory do not carry over.
            broker = start()
            if broker is None:
                results[(name, scenario)] = {"error": "not available"}
                continue
            try:
                args, _, _ = SCENARIOS[scenario]
                results[(name, scenario)] = run_bench(opts.raftmq, broker, args, duration, connections)
            finally:
                broker.stop()
            print(f"{name:10} {scenario:20} {results[(name, scenario)]}", file=sys.stderr)

    names = [n for n, _ in brokers]
    print(f"{'scenario':20} {'figure':15} " + " ".join(f"{n:>12}" for n in names) + "   ratios to mosquitto")
    for scenario in chosen:
        _, figure, higher = SCENARIOS[scenario]
        values = [results[(n, scenario)].get(figure) for n in names]
        cells = " ".join(f"{v:>12.1f}" if isinstance(v, (int, float)) else f"{'-':>12}" for v in values)
        base = values[0]
        ratios = []
        for v in values[1:]:
            if isinstance(v, (int, float)) and isinstance(base, (int, float)) and base and v:
                ratios.append(f"{v / base:.2f}x")
            else:
                ratios.append("-")
        print(f"{scenario:20} {figure:15} {cells}   {' '.join(ratios)}"
              f"  ({'higher' if higher else 'lower'} is better)")


if __name__ == "__main__":
    main()
