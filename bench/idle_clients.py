#!/usr/bin/python3
"""idle_clients.py - holds N idle MQTT device connections open, for bench/run.sh's memory figures.

Each connection is raw TCP: it sends one MQTT 3.1.1 CONNECT (clean session, keepalive 600 s, so no
PINGREQ is due while the benchmark measures), reads the CONNACK, and then stays silent. When all
are up, the number accepted is written to --ready-file; then the process sleeps until --hold
seconds have passed or it is killed (the sockets close with it).
"""
import argparse
import os
import socket
import struct
import sys
import time

KEEPALIVE_S = 600
CONNECT_TIMEOUT_S = 5.0


def mqtt_string(text):
    """MQTT 3.1.1 section 1.5.3: u16 length + UTF-8 bytes."""
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id):
    """MQTT 3.1.1 section 3.1: CONNECT, protocol "MQTT" level 4, flags 0x02 (clean session)."""
    body = mqtt_string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", KEEPALIVE_S)
    body += mqtt_string(client_id)
    assert len(body) < 128  # one-byte remaining length (section 2.2.3)
    return bytes([0x10, len(body)]) + body


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed before CONNACK")
        data += chunk
    return data


def open_one(host, port, client_id):
    """Returns the socket once CONNACK (section 3.2: 0x20 0x02 flags rc) says accepted, else None."""
    sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
    try:
        sock.sendall(connect_packet(client_id))
        ack = read_exact(sock, 4)
    except OSError:
        sock.close()
        return None
    if ack[0] != 0x20 or ack[1] != 0x02 or ack[3] != 0:
        sock.close()
        return None
    return sock


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--hold", type=float, default=120.0)
    ap.add_argument("--tag", default="idle")
    args = ap.parse_args()
    if not 0 <= args.count <= 20000:
        ap.error("--count must be in [0, 20000]")
    socks = []
    for i in range(args.count):
        try:
            sock = open_one(args.host, args.port, "%s-%d-%d" % (args.tag, os.getpid(), i))
        except OSError as exc:
            print("idle_clients: connection %d: %s" % (i, exc), file=sys.stderr)
            break
        if sock is not None:
            socks.append(sock)
    tmp = args.ready_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % len(socks))
    os.replace(tmp, args.ready_file)
    deadline = time.monotonic() + args.hold
    while time.monotonic() < deadline:
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
