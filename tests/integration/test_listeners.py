"""Device listeners (issue 18, item 3): TLS, WebSocket and WebSocket over TLS, through a sealing pair.

A throwaway CA, a server certificate for 127.0.0.1, device certificates from that CA and from
another one are made here with the openssl command line. Two nodes on one mosquitto seal between
them; each has, besides its plain `listen`, a TLS listener (node b's requires client certificates),
a WebSocket listener and a WebSocket-over-TLS listener:

  - mosquitto_pub over TLS (no client certificate) into node a, mosquitto_sub over TLS with a client
    certificate on node b: delivered in plaintext, sealed at the broker;
  - a device without a certificate, or with one from another CA, is refused by node b, and a device
    that does not trust the listener's CA refuses it: each gives a clear log line;
  - paho over TLS, paho over WebSocket (transport="websockets") and over wss, mqtt.js over WebSocket
    (node, with the mqtt package from tests/integration/js, installed by npm ci);
  - a plain MQTT client on a TLS listener, a TLS client on the plain listener: one log line each;
  - an HTTP request that is not a WebSocket upgrade gets 400 (another path 404) and a log line.
"""
# ctest-labels: listeners
# ctest-timeout: 300
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import paho.mqtt.client as mqtt

from harness import (HOST, MQSEAL, SRC, Broker, Client, Node, check, connect_packet, eventually, free_port,
                     port_open, raw_connect, read_closed, run, stop_clean, write_conf)

JS_DIR = os.path.join(SRC, "tests", "integration", "js")


def openssl(*args, cwd):
    out = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, "openssl %s: %s" % (args[0], out.stderr))


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            name + ".key", "-out", name + ".crt", "-subj", "/CN=" + name, "-days", "2", cwd=d)


def make_cert(d, name, ca, server=False):
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n" if server else "extendedKeyUsage=clientAuth\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", name + ".key",
            "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key", "-CAcreateserial",
            "-out", name + ".crt", "-days", "2", "-extfile", ext, cwd=d)
    os.chmod(os.path.join(d, name + ".key"), 0o600)


def pki(workdir):
    d = os.path.join(workdir, "pki")
    os.makedirs(d, exist_ok=True)
    make_ca(d, "ca")
    make_ca(d, "otherca")
    make_cert(d, "server", "ca", server=True)
    make_cert(d, "device", "ca")
    make_cert(d, "stranger", "otherca")
    return {k: os.path.join(d, k) for k in ("ca", "otherca", "server", "device", "stranger")}


def node_with_listeners(workdir, node_id, broker_port, p, client_ca):
    ports = {k: free_port() for k in ("tls", "ws", "wss")}
    tls = {"cert_file": p["server"] + ".crt", "key_file": p["server"] + ".key"}
    if client_ca:
        tls["client_ca_file"] = p["ca"] + ".crt"
    node = Node(workdir, node_id, broker_port, conf={"listeners": [
        {"host": HOST, "port": ports["tls"], "tls": tls},
        {"host": HOST, "port": ports["ws"], "websocket": {"path": "/mqtt"}},
        {"host": HOST, "port": ports["wss"], "tls": dict(tls), "websocket": {"path": "/mqtt"}},
    ]})
    node.lports = ports
    return node


def sealing_pair(workdir):
    p = pki(workdir)
    broker = Broker(workdir).start()
    a = node_with_listeners(workdir, "a", broker.port, p, client_ca=False)
    b = node_with_listeners(workdir, "b", broker.port, p, client_ca=True)
    a.trust(b)
    b.trust(a)
    for n in (a, b):
        n.start()
    for n in (a, b):
        eventually(lambda: n.metric("mqseal_peers_keyed") == 1, 20, msg="%s keyed" % n.node_id)
    return p, broker, a, b


def broker_sees(broker, topic):
    """A subscriber directly on the broker: what the network between the nodes carries."""
    c = Client("spy-" + topic.replace("/", "-"))
    c.connect(broker.port)
    c.subscribe(topic, 1)
    return c


def tls_args(p, ca="ca", cert=None):
    args = ["--cafile", p[ca] + ".crt"]
    if cert:
        args += ["--cert", p[cert] + ".crt", "--key", p[cert] + ".key"]
    return args


def mosquitto_pub(port, topic, msg, extra):
    return subprocess.run(["mosquitto_pub", "-h", HOST, "-p", str(port), "-t", topic, "-m", msg, "-q", "1",
                           "-i", "pub-%d" % port] + extra, capture_output=True, text=True, timeout=20)


def test_mosquitto_tls_with_and_without_client_certs(workdir):
    p, broker, a, b = sealing_pair(workdir)
    spy = broker_sees(broker, "tls/#")
    sub = subprocess.Popen(["mosquitto_sub", "-h", HOST, "-p", str(b.lports["tls"]), "-t", "tls/#", "-q", "1",
                            "-C", "1", "-W", "20", "-i", "sub-dev"] + tls_args(p, cert="device"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        eventually(lambda: "sub-dev" in b.output(), 10,
                   msg="mosquitto_sub connected over TLS with its certificate")
        out = mosquitto_pub(a.lports["tls"], "tls/one", "hello over tls", tls_args(p))
        check(out.returncode == 0, "mosquitto_pub over TLS failed: " + out.stderr)
        got, err = sub.communicate(timeout=25)
    finally:
        if sub.poll() is None:
            sub.kill()
    check(got.strip() == "hello over tls", "mosquitto_sub got %r (%s)" % (got, err))
    seen = spy.expect(1)[0]
    check(b"hello over tls" not in seen.payload, "the broker saw the plaintext")
    spy.disconnect()
    for n in (a, b):
        stop_clean(n)


def test_client_certificates_refused(workdir):
    p, broker, a, b = sealing_pair(workdir)
    out = mosquitto_pub(b.lports["tls"], "tls/x", "no cert", tls_args(p))
    check(out.returncode != 0, "a device without a certificate was accepted")
    b.wait_log("TLS handshake failed")
    eventually(lambda: "requires a client certificate" in b.output() or "did not return a certificate" in b.output(),
               10, msg="log line naming the missing client certificate")
    out = mosquitto_pub(b.lports["tls"], "tls/x", "wrong CA", tls_args(p, cert="stranger"))
    check(out.returncode != 0, "a device with a certificate of another CA was accepted")
    eventually(lambda: "certificate verify failed" in b.output(), 10, msg="log line: certificate verify failed")
    # The device trusts another CA than the one that signed the listener's certificate.
    out = mosquitto_pub(a.lports["tls"], "tls/x", "wrong server CA", tls_args(p, ca="otherca"))
    check(out.returncode != 0, "a device accepted a listener certificate from an untrusted CA")
    eventually(lambda: "does not trust this listener's certificate" in a.output(), 10,
               msg="log line: the device refused the listener's certificate")
    # And the right certificate still works on the same listener.
    out = mosquitto_pub(b.lports["tls"], "tls/x", "good cert", tls_args(p, cert="device"))
    check(out.returncode == 0, "the device's certificate was refused: " + out.stderr)


def paho_client(cid, transport="tcp", tls=None, path="/mqtt"):
    c = Client(cid)
    if transport == "websockets":
        c.c = mqtt.Client(client_id=cid, clean_session=True, protocol=mqtt.MQTTv311, transport="websockets")
        c.c.ws_set_options(path=path)
        c.c.on_message = lambda cl, u, m: c.msgs.put(__import__("harness").Msg(m))
        c.c.on_connect = lambda cl, u, f, rc: c.connack.put((rc, f))
        c.c.on_subscribe = lambda cl, u, mid, rcs: c.subacks.put((mid, rcs))
        c.c.on_disconnect = lambda cl, u, rc: c.disconnected.set()
    if tls:
        c.c.tls_set(ca_certs=tls["ca"], certfile=tls.get("cert"), keyfile=tls.get("key"))
    return c


def test_paho_tls_ws_wss(workdir):
    p, broker, a, b = sealing_pair(workdir)
    dev_tls = {"ca": p["ca"] + ".crt", "cert": p["device"] + ".crt", "key": p["device"] + ".key"}
    spy = broker_sees(broker, "x/#")
    subs = [
        (paho_client("s-tls", tls=dev_tls), b.lports["tls"]),
        (paho_client("s-ws", transport="websockets"), b.lports["ws"]),
        (paho_client("s-wss", transport="websockets", tls=dev_tls), b.lports["wss"]),
    ]
    for c, port in subs:
        c.connect(port)
        c.subscribe("x/#", 1)
    pubs = [
        (paho_client("p-tls", tls={"ca": p["ca"] + ".crt"}), a.lports["tls"]),
        (paho_client("p-ws", transport="websockets"), a.lports["ws"]),
        (paho_client("p-wss", transport="websockets", tls={"ca": p["ca"] + ".crt"}), a.lports["wss"]),
    ]
    big = bytes(range(256)) * 1024  # 256 KiB: many WebSocket frames and TLS records
    for c, port in pubs:
        c.connect(port)
        c.publish("x/" + c.c._client_id.decode(), b"small from " + c.c._client_id, qos=1)
        c.publish("x/big", big, qos=1)
    for c, _ in subs:
        got = c.expect(6, timeout=20)
        small = sorted(m.payload for m in got if m.topic != "x/big")
        check(small == sorted(b"small from " + x for x in (b"p-tls", b"p-ws", b"p-wss")),
              "%s got %r" % (c.c._client_id, small))
        check(all(m.payload == big for m in got if m.topic == "x/big"), "a large message arrived damaged")
    for m in spy.expect(6, timeout=20):
        check(b"small from" not in m.payload and m.payload != big, "the broker saw plaintext")
    for c, _ in subs + pubs:
        c.disconnect()
    for n in (a, b):
        stop_clean(n)  # no leak, no sanitizer report: TLS, WebSocket and wss sessions freed


def test_mqttjs_websocket(workdir):
    node = shutil.which("node")
    check(node is not None and os.path.isdir(os.path.join(JS_DIR, "node_modules", "mqtt")),
          "node and tests/integration/js/node_modules/mqtt are needed (scripts/deps.sh runs npm ci there)")
    p, broker, a, b = sealing_pair(workdir)
    sub = paho_client("s-js", transport="websockets")
    sub.connect(b.lports["ws"])
    sub.subscribe("js/#", 1)
    out = subprocess.run([node, os.path.join(JS_DIR, "pubsub.js"), "ws://%s:%d/mqtt" % (HOST, a.lports["ws"]),
                          "ws://%s:%d/mqtt" % (HOST, b.lports["ws"])],
                         capture_output=True, text=True, timeout=60, cwd=JS_DIR)
    check(out.returncode == 0, "mqtt.js failed: %s %s" % (out.stdout, out.stderr))
    check("received hello from mqtt.js" in out.stdout, "mqtt.js did not receive its message: " + out.stdout)
    got = sub.expect(1, timeout=10)[0]
    check(got.payload == b"hello from mqtt.js", "paho got %r" % got.payload)
    sub.disconnect()


def test_wrong_protocol_log_lines(workdir):
    p, broker, a, b = sealing_pair(workdir)
    # A plain MQTT client on the TLS listener.
    s = raw_connect(a.lports["tls"])
    s.sendall(connect_packet("plain-on-tls"))
    check(read_closed(s) is not None, "the TLS listener kept a plain client's connection")
    a.wait_log("a client that does not speak TLS connected (it sent a plain MQTT CONNECT")
    # A TLS client on the plain listener (listen): the sniff the device port has.
    ctx = ssl.create_default_context(cafile=p["ca"] + ".crt")
    try:
        with ctx.wrap_socket(socket.create_connection((HOST, a.port), timeout=5), server_hostname=HOST) as t:
            t.recv(1)
    except (ssl.SSLError, OSError):
        pass
    a.wait_log("a TLS client connected to the plain MQTT port")
    # A TLS client on the plain WebSocket listener.
    try:
        with ctx.wrap_socket(socket.create_connection((HOST, a.lports["ws"]), timeout=5), server_hostname=HOST) as t:
            t.recv(1)
    except (ssl.SSLError, OSError):
        pass
    a.wait_log("a client that does not speak WebSocket connected (it sent a TLS ClientHello")
    # Plain HTTP that is not an upgrade: 400; another path: 404.
    for path, status in (("/mqtt", b"400"), ("/other", b"404")):
        s = raw_connect(a.lports["ws"])
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_closed(s) or b""
        check(data.startswith(b"HTTP/1.1 " + status), "expected %s, got %r" % (status, data[:80]))
    a.wait_log("refused a WebSocket upgrade with HTTP 400: not a WebSocket upgrade")
    a.wait_log("refused a WebSocket upgrade with HTTP 404")
    m = a.metrics()
    check(m['mqseal_device_handshake_failures_total{transport="tls"}'] == 1, "the plain client on TLS counted")
    check(m['mqseal_device_handshake_failures_total{transport="websocket"}'] == 3, "TLS on ws, 400, 404 counted")
    # TLS below 1.2 is refused.
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(p["ca"] + ".crt")
    try:
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        return
    try:
        with old.wrap_socket(socket.create_connection((HOST, a.lports["tls"]), timeout=5), server_hostname=HOST):
            raise AssertionError("a TLS 1.1 handshake succeeded")
    except (ssl.SSLError, OSError):
        pass
    a.wait_log("TLS handshake failed")
    stop_clean(a)


def test_check_and_start_load_the_tls_files(workdir):
    """`mqseal check` and start build each TLS listener's context: a key that is not the certificate's,
    or a certificate file that is not PEM, is refused at FILE:LINE under the listener's option."""
    p = pki(workdir)
    bad_pem = os.path.join(workdir, "pki", "not-a-cert.pem")
    with open(bad_pem, "w") as f:
        f.write("hello\n")
    node = Node(workdir, "c", free_port(), conf={"listeners": [
        {"host": HOST, "port": free_port(), "tls": {"cert_file": p["server"] + ".crt", "key_file": p["device"] + ".key"}},
        {"host": HOST, "port": free_port(), "tls": {"cert_file": bad_pem, "key_file": p["server"] + ".key"}},
    ]})
    write_conf(node.conf_path, node.conf)
    lines = open(node.conf_path).read().splitlines()
    line_of = [i + 1 for i, text in enumerate(lines) if text.startswith("listeners")][0]
    out = subprocess.run([MQSEAL, "check", "-c", node.conf_path], capture_output=True, text=True, timeout=30)
    check(out.returncode == 2, "check accepted a mismatched key: %r" % out.stderr)
    check(re.search(r"^%s:%d: listeners\[0\]\.tls\.key_file: .*key values mismatch" % (re.escape(node.conf_path),
                                                                                      line_of), out.stderr, re.M),
          "the mismatch named at FILE:LINE: %r" % out.stderr)
    m = re.search(r"^%s:(\d+): listeners\[1\]\.tls\.cert_file: %s: .*no start line" % (
        re.escape(node.conf_path), re.escape(bad_pem)), out.stderr, re.M)
    check(m and int(m.group(1)) > line_of, "the bad certificate named at its entry's line: %r" % out.stderr)
    node.start(wait=False)
    eventually(lambda: not node.alive(), 10, msg="start refused the mismatched key")
    check("listeners[0].tls.key_file" in node.output(), "start names the option: " + node.output()[-500:])


def test_reload_keeps_the_listeners(workdir):
    """SIGHUP with a changed listeners list: a warning that it takes a restart; the running listeners
    stay as they were."""
    broker = Broker(workdir).start()
    ws_port = free_port()
    node = Node(workdir, "r", broker.port, conf={"listeners": [{"host": HOST, "port": ws_port,
                                                               "websocket": {"path": "/mqtt"}}]}).start()
    node.conf["listeners"][0]["websocket"]["path"] = "/other"
    write_conf(node.conf_path, node.conf)
    node.signal(signal.SIGHUP)
    node.wait_log("SIGHUP: listeners (and perhaps more) changed: it takes a restart")
    c = paho_client("still-mqtt", transport="websockets", path="/mqtt")
    c.connect(ws_port)
    c.disconnect()


# ---------------------------------------------------------------- orderly close of the transport

WS_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def tls_client(p, port):
    """A TLS client socket that reports a close without close_notify (suppress_ragged_eofs=False:
    recv raises SSLEOFError "EOF occurred in violation of protocol" instead of returning b'')."""
    ctx = ssl.create_default_context(cafile=p["ca"] + ".crt")
    ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)  # Python 3.11 sets it by default
    return ctx.wrap_socket(socket.create_connection((HOST, port), timeout=5), server_hostname=HOST,
                           suppress_ragged_eofs=False)


def read_to_eof(sock, timeout=10.0):
    """Reads until EOF: (bytes, how) with how "clean" (recv returned b''), "no close_notify"
    (SSLEOFError), "reset" or "open" (no EOF within timeout)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                return data, "clean"
            data += chunk
    except ssl.SSLError as e:  # SSLEOFError, or "unexpected eof while reading"
        return data, "no close_notify" if "eof" in str(e).lower() else "TLS error %s" % e
    except ConnectionResetError:
        return data, "reset"
    except socket.timeout:
        pass
    return data, "open"


def recv_exactly(sock, n):
    data = b""
    sock.settimeout(5)
    for _ in range(n):
        if len(data) >= n:
            break
        chunk = sock.recv(n - len(data))
        check(chunk, "closed after %r" % data)
        data += chunk
    return data


def listeners_up(node):
    for port in node.lports.values():
        eventually(lambda: port_open(port), 10, msg="listener on %d" % port)
    return node


def ws_upgrade(sock):
    sock.sendall(b"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: " + WS_KEY + b"\r\nSec-WebSocket-Version: 13\r\n"
                 b"Sec-WebSocket-Protocol: mqtt\r\n\r\n")
    head = b""
    for _ in range(1024):
        if b"\r\n\r\n" in head:
            break
        chunk = sock.recv(1)
        check(chunk, "the WebSocket upgrade was not answered")
        head += chunk
    check(head.startswith(b"HTTP/1.1 101"), "upgrade refused: %r" % head[:80])


def ws_send(sock, payload, opcode=2):
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
    sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def ws_frames(data):
    """Server frames (unmasked) in data: [(opcode, payload)]; a partial frame at the end is left out."""
    out, i = [], 0
    while i + 2 <= len(data):
        op, n, h = data[i] & 0x0F, data[i + 1] & 0x7F, 2
        if n == 126:
            n, h = int.from_bytes(data[i + 2:i + 4], "big"), 4
        elif n == 127:
            n, h = int.from_bytes(data[i + 2:i + 10], "big"), 10
        if i + h + n > len(data):
            break
        out.append((op, data[i + h:i + h + n]))
        i += h + n
    return out


def ws_close_code(frames):
    """The status code of the last frame when it is a Close frame (opcode 8), else None."""
    if not frames or frames[-1][0] != 8:
        return None
    body = frames[-1][1]
    return int.from_bytes(body[:2], "big") if len(body) >= 2 else 0


def test_orderly_close_sends_close_notify_and_close_frames(workdir):
    """A session mqseal ends in order (here: the broker is unreachable, the CONNACK refuses the device,
    then the close) ends its transport in order too: TLS with close_notify (a clean TLS EOF, not
    "EOF occurred in violation of protocol"), WebSocket with a Close frame 1000 before the TCP close,
    wss with both."""
    p = pki(workdir)
    node = listeners_up(node_with_listeners(workdir, "c", free_port(), p, client_ca=False).start())  # no broker
    t = tls_client(p, node.lports["tls"])
    t.sendall(connect_packet("tls-refused"))
    data, how = read_to_eof(t)
    check(data[:1] == b"\x20", "no CONNACK over TLS: %r" % data)
    check(how == "clean", "TLS device: the close was %s" % how)
    t.close()
    w = raw_connect(node.lports["ws"])
    ws_upgrade(w)
    ws_send(w, connect_packet("ws-refused"))
    data, how = read_to_eof(w)
    frames = ws_frames(data)
    check(frames and frames[0][0] == 2 and frames[0][1][:1] == b"\x20", "no CONNACK over ws: %r" % frames)
    check(ws_close_code(frames) == 1000, "ws device: no Close 1000 before the TCP close: %r (%s)" % (frames, how))
    check(how == "clean", "ws device: the close was %s" % how)
    w.close()
    s = tls_client(p, node.lports["wss"])
    ws_upgrade(s)
    ws_send(s, connect_packet("wss-refused"))
    data, how = read_to_eof(s)
    frames = ws_frames(data)
    check(ws_close_code(frames) == 1000, "wss device: no Close 1000: %r (%s)" % (frames, how))
    check(how == "clean", "wss device: the close was %s" % how)
    s.close()
    stop_clean(node)


def test_shutdown_sends_going_away(workdir):
    """SIGTERM: each device session ends with its transport closed in order, a WebSocket one with
    Close 1001 (going away), a TLS one with close_notify."""
    p = pki(workdir)
    broker = Broker(workdir).start()
    node = listeners_up(node_with_listeners(workdir, "d", broker.port, p, client_ca=False).start())
    t = tls_client(p, node.lports["tls"])
    t.sendall(connect_packet("tls-stop"))
    check(recv_exactly(t, 4)[:1] == b"\x20", "no CONNACK over TLS")
    socks = {}
    for kind in ("ws", "wss"):
        w = raw_connect(node.lports["ws"]) if kind == "ws" else tls_client(p, node.lports["wss"])
        ws_upgrade(w)
        ws_send(w, connect_packet(kind + "-stop"))
        first = recv_exactly(w, 6)
        check(first[:1] == b"\x82" and first[2:3] == b"\x20", "no CONNACK over %s: %r" % (kind, first))
        socks[kind] = w
    node.signal(signal.SIGTERM)
    data, how = read_to_eof(t)
    check(how == "clean", "TLS device at shutdown: the close was %s" % how)
    for kind, w in socks.items():
        data, how = read_to_eof(w)
        frames = ws_frames(data)
        check(ws_close_code(frames) == 1001, "%s device at shutdown: no Close 1001: %r (%s)" % (kind, frames, how))
        check(how == "clean", "%s device at shutdown: the close was %s" % (kind, how))
        w.close()
    t.close()
    stop_clean(node)


def test_protocol_error_close_1002(workdir):
    """An MQTT 5 WebSocket device that breaks the protocol gets a DISCONNECT, then Close 1002
    (protocol error), then the TCP close."""
    p = pki(workdir)
    broker = Broker(workdir).start()
    node = listeners_up(node_with_listeners(workdir, "e", broker.port, p, client_ca=False).start())
    w = raw_connect(node.lports["ws"])
    ws_upgrade(w)
    ws_send(w, connect_packet("ws-bad", level=5))
    first = recv_exactly(w, 2)
    check(first[:1] == b"\x82", "no CONNACK frame: %r" % first)
    recv_exactly(w, first[1])
    ws_send(w, b"\x00\x00")  # packet type 0: reserved (MQTT 5 §2.1.2)
    data, how = read_to_eof(w)
    frames = ws_frames(data)
    check(frames and frames[0][0] == 2 and frames[0][1][:1] == b"\xe0" and frames[0][1][2] in (0x81, 0x82),
          "no DISCONNECT (malformed or protocol error) first: %r" % frames)
    check(ws_close_code(frames) == 1002, "no Close 1002 before the TCP close: %r (%s)" % (frames, how))
    check(how == "clean", "the close was %s" % how)
    w.close()
    stop_clean(node)


class FakeTlsBroker:
    """A TLS server standing in for the broker: answers every CONNECT with a CONNACK (success),
    ignores the rest, and notes per client id how each connection ended (read_to_eof's words)."""

    def __init__(self, p):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(p["server"] + ".crt", p["server"] + ".key")
        self.ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind((HOST, 0))
        self.lsock.listen(8)
        self.lsock.settimeout(0.5)
        self.port = self.lsock.getsockname()[1]
        self.ended = {}
        self.stopped = False
        self.threads = [threading.Thread(target=self.accept_loop, daemon=True)]
        self.threads[0].start()

    def accept_loop(self):
        for _ in range(600):  # at most 5 minutes
            if self.stopped:
                return
            try:
                conn, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:  # stop() closed the socket under accept()
                return
            t = threading.Thread(target=self.serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def serve(self, conn):
        try:
            t = self.ctx.wrap_socket(conn, server_side=True, suppress_ragged_eofs=False)
            t.settimeout(10)
            head = recv_exactly(t, 2)
            n, shift, i = head[1] & 0x7F, 7, 1
            while head[i] & 0x80 and i < 4:
                head += recv_exactly(t, 1)
                i += 1
                n |= (head[i] & 0x7F) << shift
                shift += 7
            body = recv_exactly(t, n)
            level = body[6]
            pos = 10
            if level == 5:  # properties: short here (a one-byte length)
                pos = 11 + body[10]
            cid = body[pos + 2:pos + 2 + int.from_bytes(body[pos:pos + 2], "big")].decode()
            t.sendall(b"\x20\x03\x00\x00\x00" if level == 5 else b"\x20\x02\x00\x00")
            data, how = read_to_eof(t, timeout=60)
            self.ended[cid] = (data, how)
        except (OSError, ssl.SSLError, IndexError):
            pass  # not the connection under test (the key-exchange one ends when the node stops)

    def stop(self):
        self.stopped = True
        self.lsock.close()


def test_tls_upstream_gets_close_notify(workdir):
    """mqseal closes its TLS connection to the broker in order (the device left: what it sent is
    flushed, then the close) with close_notify: the broker reads a clean TLS EOF."""
    p = pki(workdir)
    fake = FakeTlsBroker(p)
    try:
        node = Node(workdir, "f", fake.port, conf={"broker": {"tls": {
            "enabled": True, "ca_file": p["ca"] + ".crt", "server_name": "localhost"}}}).start()
        d = raw_connect(node.port)
        d.sendall(connect_packet("dev-up"))
        check(recv_exactly(d, 4)[:1] == b"\x20", "no CONNACK through the TLS upstream")
        d.sendall(b"\xe0\x00")  # DISCONNECT
        d.close()
        eventually(lambda: "dev-up" in fake.ended, 10, msg="the broker side saw the connection end")
        data, how = fake.ended["dev-up"]
        check(data == b"\xe0\x00", "the DISCONNECT was relayed: %r" % data)
        check(how == "clean", "the TLS upstream close was %s" % how)
        stop_clean(node)
    finally:
        fake.stop()


# ---------------------------------------------------------------- certificates renewed on reload

def server_cert(p, port):
    """What a new TLS client of port sees: the listener certificate's (serial, notAfter as Unix time)."""
    ctx = ssl.create_default_context(cafile=p["ca"] + ".crt")
    with ctx.wrap_socket(socket.create_connection((HOST, port), timeout=5), server_hostname=HOST) as s:
        cert = s.getpeercert()
    return cert["serialNumber"], int(ssl.cert_time_to_seconds(cert["notAfter"]))


def install(src, dst):
    """Replaces dst with src's bytes the way a renewal tool does (a new file renamed over the old)."""
    shutil.copyfile(src, dst + ".new")
    os.chmod(dst + ".new", 0o600)
    os.replace(dst + ".new", dst)


def serial_of(path, cwd):
    out = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", path], cwd=cwd, capture_output=True,
                         text=True, timeout=30)
    return out.stdout.strip().split("=", 1)[1].upper()


def reload_result(node):
    with open(os.path.join(node.dir, "reload-result")) as f:
        return dict(line.rstrip("\n").split(" ", 1) for line in f if " " in line)


def hup_and_wait(node):
    before = reload_result(node)["reloads"]
    node.signal(signal.SIGHUP)
    eventually(lambda: reload_result(node)["reloads"] != before, 10, msg="the reload was not reported")
    return reload_result(node)


def test_certificate_reload(workdir):
    """A TLS listener re-reads its certificate and key on SIGHUP (a renewal without a restart): new
    clients get certificate B, a client connected before keeps working; a broken key file is refused
    for that listener, which keeps B, the node stays up, and the log and reload-result name the file."""
    p = pki(workdir)
    d = os.path.dirname(p["ca"])
    make_cert(d, "server-b", "ca", server=True)
    p["server-b"] = os.path.join(d, "server-b")
    live = {"crt": os.path.join(d, "live.crt"), "key": os.path.join(d, "live.key")}
    install(p["server"] + ".crt", live["crt"])
    install(p["server"] + ".key", live["key"])
    broker = Broker(workdir).start()
    port = free_port()
    node = Node(workdir, "t", broker.port, conf={"topics": {"plaintext": ["#"]}, "listeners": [
        {"host": HOST, "port": port, "tls": {"cert_file": live["crt"], "key_file": live["key"]}}]}).start()
    eventually(lambda: port_open(port), 10, msg="TLS listener up")
    serial_a, _ = server_cert(p, port)
    check(serial_a == serial_of(p["server"] + ".crt", d), "certificate A at start: %s" % serial_a)
    expiry = 'mqseal_tls_cert_expiry_seconds{listener="%s:%d"}' % (HOST, port)
    old = paho_client("before-reload", tls={"ca": p["ca"] + ".crt"})
    old.connect(port)
    old.subscribe("renew/t", 1)
    # Certificate B, same CA, another CN and serial.
    install(p["server-b"] + ".crt", live["crt"])
    install(p["server-b"] + ".key", live["key"])
    res = hup_and_wait(node)
    check(res["result"] == "ok", "the reload with certificate B: %r" % res)
    serial_b, not_after_b = server_cert(p, port)
    check(serial_b == serial_of(p["server-b"] + ".crt", d) and serial_b != serial_a,
          "a new client sees B's serial (%s), not A's (%s)" % (serial_b, serial_a))
    node.wait_log("listener %s:%d: certificate reloaded (subject CN=server-b, expires " % (HOST, port))
    check(node.metric(expiry) == not_after_b, "the expiry gauge is B's notAfter: %r vs %d" % (
        node.metric(expiry, None), not_after_b))
    old.publish("renew/t", b"still-here", qos=1)
    check(old.expect(1)[0].payload == b"still-here", "the client connected before the reload still works")
    # A broken key: refused for this listener, which keeps B.
    with open(live["key"], "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
    res = hup_and_wait(node)
    check(res["result"] == "refused" and live["key"] in res["message"] and "listeners[0].tls.key_file" in
          res["message"], "reload-result names the key file: %r" % res)
    check(re.search(r"^%s:\d+: listeners\[0\]\.tls\.key_file: %s: " % (re.escape(node.conf_path),
                                                                     re.escape(live["key"])), res["message"]),
          "in FILE:LINE form: %r" % res["message"])
    node.wait_log("listener %s:%d: certificate not reloaded" % (HOST, port))
    check(node.alive(), "the node stays up")
    check(server_cert(p, port)[0] == serial_b, "new clients still get B")
    check(node.metric(expiry) == not_after_b, "the gauge still says B")
    # A key that is not the certificate's (a half-done renewal): refused the same way, by `mqseal reload`.
    install(p["server"] + ".key", live["key"])
    out = subprocess.run([MQSEAL, "reload", "-c", node.conf_path], capture_output=True, text=True, timeout=60)
    check(out.returncode == 1 and "key values mismatch" in out.stderr and live["key"] in out.stderr,
          "mqseal reload says why: %d %r" % (out.returncode, out.stderr))
    check(server_cert(p, port)[0] == serial_b, "new clients still get B")
    old.publish("renew/t", b"still-here-2", qos=1)
    check(old.expect(1)[0].payload == b"still-here-2", "the old client still works after the refusals")
    old.disconnect()
    stop_clean(node)


def test_broker_tls_reload(workdir):
    """broker.tls's files are read again on reload into a new client context for new broker
    connections: a CA file that did not trust the broker, replaced by the right one, lets devices
    through after SIGHUP; a CA file that cannot be read is refused and the working context stays."""
    p = pki(workdir)
    d = os.path.dirname(p["ca"])
    ca_live = os.path.join(d, "broker-ca.crt")
    install(p["otherca"] + ".crt", ca_live)
    fake = FakeTlsBroker(p)
    try:
        node = Node(workdir, "u", fake.port, conf={"broker": {"tls": {
            "enabled": True, "ca_file": ca_live, "server_name": "localhost"}}}).start()

        def device(cid):
            dsock = raw_connect(node.port)
            dsock.sendall(connect_packet(cid))
            ack = recv_exactly(dsock, 4)
            dsock.close()
            return ack[3]

        check(device("dev-1") != 0, "an untrusted broker certificate: the device is refused")
        install(p["ca"] + ".crt", ca_live)
        res = hup_and_wait(node)
        check(res["result"] == "ok", "reload: %r" % res)
        check(device("dev-2") == 0, "after the reload the broker is trusted: CONNACK 0")
        with open(ca_live, "w") as f:
            f.write("not a certificate\n")
        res = hup_and_wait(node)
        check(res["result"] == "refused" and "broker.tls.ca_file" in res["message"] and
              res["message"].startswith(node.conf_path + ": "), "refused naming the file: %r" % res)
        check(device("dev-3") == 0, "the working context stays")
        check(node.alive(), "the node stays up")
        stop_clean(node)
    finally:
        fake.stop()


if __name__ == "__main__":
    run([test_mosquitto_tls_with_and_without_client_certs, test_client_certificates_refused, test_paho_tls_ws_wss,
         test_mqttjs_websocket, test_wrong_protocol_log_lines, test_check_and_start_load_the_tls_files,
         test_reload_keeps_the_listeners,
         test_orderly_close_sends_close_notify_and_close_frames, test_shutdown_sends_going_away,
         test_protocol_error_close_1002, test_tls_upstream_gets_close_notify, test_certificate_reload,
         test_broker_tls_reload])
