#!/usr/bin/python3
"""idle_clients.py - holds N idle MQTT device connections open, for bench/run.sh's memory figures.

Each connection is raw TCP: it sends one MQTT 3.1.1 CONNECT (clean session, keepalive 600 s, so no
PINGREQ is due while the benchmark measures), reads the CONNACK, and then stays silent. When all
are up, the number accepted is written to --ready-file; then the process sleeps until --hold
seconds have passed or it is killed (the sockets close with it).
--tls CAFILE: over TLS (a TLS listener); --ws PATH: over WebSocket (RFC 6455, subprotocol mqtt;
with --tls, wss), for the memory of an idle TLS or WebSocket device connection.
"""
import argparse
import base64
import os
import socket
import ssl
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


def ws_upgrade(sock, host, path):
    """RFC 6455 section 4.1: the opening handshake; raises unless the answer is 101."""
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
                  % (path, host, key)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk or len(head) > 4096:
            raise ConnectionError("no WebSocket upgrade")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError("upgrade refused: %r" % head[:40])


def ws_frame(payload):
    """A client's binary frame (section 5.2), masked; payloads under 126 bytes."""
    mask = os.urandom(4)
    return bytes([0x82, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def open_one(host, port, client_id, tls=None, ws=None):
    """Returns the socket once CONNACK (section 3.2: 0x20 0x02 flags rc) says accepted, else None."""
    sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
    try:
        if tls:
            sock = tls.wrap_socket(sock, server_hostname=host)
        if ws:
            ws_upgrade(sock, host, ws)
            sock.sendall(ws_frame(connect_packet(client_id)))
            read_exact(sock, 2)  # the server's frame header: 0x82, length 4
        else:
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
    ap.add_argument("--tls", metavar="CAFILE", help="connect over TLS, verifying with these CA certificates")
    ap.add_argument("--ws", metavar="PATH", help="MQTT over WebSocket at this request path")
    args = ap.parse_args()
    tls = ssl.create_default_context(cafile=args.tls) if args.tls else None
    if not 0 <= args.count <= 20000:
        ap.error("--count must be in [0, 20000]")
    socks = []
    for i in range(args.count):
        try:
            sock = open_one(args.host, args.port, "%s-%d-%d" % (args.tag, os.getpid(), i), tls, args.ws)
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
