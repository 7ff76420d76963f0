"""compat.py - paired compatibility runs (issue 14): the same scenario runs twice, once with the
device talking to mosquitto directly and once through a sealing mqseal node in front of the same
broker, and what the device observed (CONNACK, SUBACK, acks, delivered PUBLISHes with QoS, flags and
properties, DISCONNECT reasons, whether the connection was closed) must be equal after
normalisation.

Wire is a synchronous MQTT 3.1/3.1.1/5.0 client on a raw socket: it sends exactly what a scenario
asks for and reports every byte it gets back, which paho hides in places (paho 1.6.1 ignores a
DISCONNECT that carries only a reason code). Properties are decoded here, in order; the
normalisation keeps the order of repeated properties (User Property, Subscription Identifier) and
ignores the order between different property identifiers, which MQTT does not define.
"""
import json
import socket
import struct
import time
import traceback

from harness import HOST, TestFailure, mqtt_str, varint

# identifier -> (name, type): B byte, H u16, I u32, V varint, S string, D binary, P string pair
PROPS = {
    0x01: ("PayloadFormatIndicator", "B"), 0x02: ("MessageExpiryInterval", "I"),
    0x03: ("ContentType", "S"), 0x08: ("ResponseTopic", "S"), 0x09: ("CorrelationData", "D"),
    0x0B: ("SubscriptionIdentifier", "V"), 0x11: ("SessionExpiryInterval", "I"),
    0x12: ("AssignedClientIdentifier", "S"), 0x13: ("ServerKeepAlive", "H"),
    0x15: ("AuthenticationMethod", "S"), 0x16: ("AuthenticationData", "D"),
    0x17: ("RequestProblemInformation", "B"), 0x18: ("WillDelayInterval", "I"),
    0x19: ("RequestResponseInformation", "B"), 0x1A: ("ResponseInformation", "S"),
    0x1C: ("ServerReference", "S"), 0x1F: ("ReasonString", "S"), 0x21: ("ReceiveMaximum", "H"),
    0x22: ("TopicAliasMaximum", "H"), 0x23: ("TopicAlias", "H"), 0x24: ("MaximumQoS", "B"),
    0x25: ("RetainAvailable", "B"), 0x26: ("UserProperty", "P"), 0x27: ("MaximumPacketSize", "I"),
    0x28: ("WildcardSubscriptionAvailable", "B"), 0x29: ("SubscriptionIdentifierAvailable", "B"),
    0x2A: ("SharedSubscriptionAvailable", "B"),
}
PROP_ID = {name: pid for pid, (name, _) in PROPS.items()}
REPEATED = ("UserProperty", "SubscriptionIdentifier")
TYPE_NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
              7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
              12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH"}


# ---------------------------------------------------------------- encoding

s16 = mqtt_str  # a two-byte-length string or binary (harness.py)


def enc_props(props):
    """props: list of (name, value) or dict (a list value of a repeated property = several)."""
    items = list(props.items()) if isinstance(props, dict) else list(props or [])
    out = b""
    for name, value in items:
        values = value if name in REPEATED and isinstance(value, list) else [value]
        pid = PROP_ID[name]
        kind = PROPS[pid][1]
        for v in values:
            out += bytes([pid])
            if kind == "B":
                out += bytes([v])
            elif kind == "H":
                out += struct.pack(">H", v)
            elif kind == "I":
                out += struct.pack(">I", v)
            elif kind == "V":
                out += varint(v)
            elif kind in "SD":
                out += s16(v)
            else:
                out += s16(v[0]) + s16(v[1])
    return varint(len(out)) + out


def dec_varint(b, pos):
    n, mult = 0, 1
    for _ in range(4):
        c = b[pos]
        pos += 1
        n += (c & 0x7F) * mult
        mult *= 128
        if not c & 0x80:
            return n, pos
    raise TestFailure("bad varint")


def dec_props(b, pos):
    """Decodes a property block at pos: (dict name -> value or list, new pos)."""
    n, pos = dec_varint(b, pos)
    end = pos + n
    out = {}
    while pos < end:
        pid = b[pos]
        pos += 1
        name, kind = PROPS.get(pid, ("0x%02x" % pid, "?"))
        if kind == "B":
            v, pos = b[pos], pos + 1
        elif kind == "H":
            v, pos = struct.unpack(">H", b[pos:pos + 2])[0], pos + 2
        elif kind == "I":
            v, pos = struct.unpack(">I", b[pos:pos + 4])[0], pos + 4
        elif kind == "V":
            v, pos = dec_varint(b, pos)
        elif kind in "SDP":
            ln = struct.unpack(">H", b[pos:pos + 2])[0]
            v = b[pos + 2:pos + 2 + ln]
            pos += 2 + ln
            v = v.decode("utf-8", "replace") if kind != "D" else v.hex()
            if kind == "P":
                ln2 = struct.unpack(">H", b[pos:pos + 2])[0]
                v = [v, b[pos + 2:pos + 2 + ln2].decode("utf-8", "replace")]
                pos += 2 + ln2
        else:
            raise TestFailure("unknown property 0x%02x" % pid)
        if name in REPEATED:
            out.setdefault(name, []).append(v)
        else:
            out[name] = v
    return out, end


# ---------------------------------------------------------------- the client

class Closed(Exception):
    pass


class Wire:
    """One device connection on a raw socket. Packets that arrive while the scenario waits for
    something else are kept in order in self.inbox. auto_ack: incoming QoS 1/2 PUBLISHes are
    acknowledged when read (PUBACK; PUBREC, then PUBCOMP on PUBREL), as a client library would."""

    def __init__(self, port, level=5, auto_ack=True):
        self.level = level
        self.auto_ack = auto_ack
        self.s = socket.create_connection((HOST, port), timeout=5)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.inbox = []
        self.closed = False
        self.next_pid = 1

    # -- sending
    def send(self, first, body):
        try:
            self.s.sendall(bytes([first]) + varint(len(body)) + body)
        except OSError:
            self.closed = True

    def props(self, p):
        return enc_props(p) if self.level == 5 else b""

    def pid(self):
        p = self.next_pid
        self.next_pid = p % 65535 + 1
        return p

    def connect(self, client_id, clean=True, keepalive=60, props=None, will=None, timeout=5):
        """will: dict(topic, payload, qos=0, retain=False, props=None). Returns the CONNACK
        observation, or the close observation if the connection ends first."""
        name = b"MQIsdp" if self.level == 3 else b"MQTT"
        flags = 0x02 if clean else 0
        tail = b""
        if will:
            flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
            tail = self.props(will.get("props")) + s16(will["topic"]) + s16(will["payload"])
        body = s16(name) + bytes([self.level, flags]) + struct.pack(">H", keepalive) + self.props(props)
        self.send(0x10, body + s16(client_id) + tail)
        try:
            p = self.wait(lambda p: p["type"] in ("CONNACK", "AUTH"), timeout)
        except Closed:
            return self.close_obs()
        return p

    def subscribe(self, *subs, props=None, timeout=5):
        """subs: (filter, qos) or (filter, options byte). Returns the SUBACK (codes, props)."""
        pid = self.pid()
        body = struct.pack(">H", pid) + self.props(props)
        for f, opt in subs:
            body += s16(f) + bytes([opt])
        self.send(0x82, body)
        return self.wait(lambda p: p["type"] == "SUBACK" and p["pid"] == pid, timeout)

    def unsubscribe(self, *filters, timeout=5):
        pid = self.pid()
        body = struct.pack(">H", pid) + self.props(None) + b"".join(s16(f) for f in filters)
        self.send(0xA2, body)
        return self.wait(lambda p: p["type"] == "UNSUBACK" and p["pid"] == pid, timeout)

    def publish(self, topic, payload, qos=0, retain=False, props=None, wait=True, timeout=5, dup=False):
        """Publishes; for QoS 1/2 with wait, runs the flow and returns the acks' reason codes."""
        if isinstance(payload, str):
            payload = payload.encode()
        pid = self.pid() if qos else 0
        body = s16(topic) + (struct.pack(">H", pid) if qos else b"") + self.props(props) + payload
        self.send(0x30 | (qos << 1) | (1 if retain else 0) | (8 if dup else 0), body)
        if not qos or not wait:
            return pid
        if qos == 1:
            return [self.wait(lambda p: p["type"] == "PUBACK" and p["pid"] == pid, timeout)["rc"]]
        rec = self.wait(lambda p: p["type"] == "PUBREC" and p["pid"] == pid, timeout)
        if rec["rc"] >= 0x80:
            return [rec["rc"]]
        self.send(0x62, struct.pack(">H", pid))
        comp = self.wait(lambda p: p["type"] == "PUBCOMP" and p["pid"] == pid, timeout)
        return [rec["rc"], comp["rc"]]

    def ack(self, ptype, pid, rc=None):
        body = struct.pack(">H", pid) + (bytes([rc]) if rc is not None and self.level == 5 else b"")
        self.send({4: 0x40, 5: 0x50, 6: 0x62, 7: 0x70}[ptype], body)

    def disconnect(self, rc=None, props=None):
        body = b""
        if self.level == 5 and (rc is not None or props):
            body = bytes([rc or 0]) + (enc_props(props) if props else b"")
        self.send(0xE0, body)
        self.close()

    def drop(self):
        """Ends the connection without DISCONNECT (an abrupt failure)."""
        try:
            self.s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close()

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass
        self.closed = True

    # -- receiving
    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                self.closed = True
                raise Closed()
            self.buf += chunk

    def _read(self, deadline):
        """Reads one packet (decoded) or raises socket.timeout / Closed."""
        self._fill(2, deadline)
        n, mult, i = 0, 1, 1
        while True:
            self._fill(i + 1, deadline)
            b = self.buf[i]
            n += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        self._fill(i + n, deadline)
        first, body = self.buf[0], self.buf[i:i + n]
        self.buf = self.buf[i + n:]
        p = self.decode(first, body)
        if self.auto_ack and p["type"] == "PUBLISH" and p["qos"]:
            self.ack(4 if p["qos"] == 1 else 5, p["pid"])
        if self.auto_ack and p["type"] == "PUBREL":
            self.ack(7, p["pid"])
        return p

    def decode(self, first, b):
        t = TYPE_NAMES.get(first >> 4, str(first >> 4))
        p = {"type": t}
        v5 = self.level == 5
        if t == "CONNACK":
            p.update(sp=b[0] & 1, rc=b[1])
            if v5 and len(b) > 2:
                p["props"] = dec_props(b, 2)[0]
        elif t == "PUBLISH":
            qos = (first >> 1) & 3
            tl = struct.unpack(">H", b[:2])[0]
            pos = 2 + tl
            p.update(topic=b[2:pos].decode("utf-8", "replace"), qos=qos, dup=bool(first & 8),
                     retain=bool(first & 1), pid=0)
            if qos:
                p["pid"] = struct.unpack(">H", b[pos:pos + 2])[0]
                pos += 2
            if v5:
                p["props"], pos = dec_props(b, pos)
            p["payload"] = bytes(b[pos:])
        elif t in ("PUBACK", "PUBREC", "PUBREL", "PUBCOMP"):
            p.update(pid=struct.unpack(">H", b[:2])[0], rc=b[2] if len(b) > 2 else 0)
            if len(b) > 3:
                p["props"] = dec_props(b, 3)[0]
        elif t in ("SUBACK", "UNSUBACK"):
            p["pid"] = struct.unpack(">H", b[:2])[0]
            pos = 2
            if v5:
                p["props"], pos = dec_props(b, pos)
            p["codes"] = list(b[pos:])
        elif t in ("DISCONNECT", "AUTH"):
            p["rc"] = b[0] if b else 0
            if len(b) > 1:
                p["props"] = dec_props(b, 1)[0]
        return p

    def wait(self, pred, timeout=5):
        """The first packet (in the inbox or arriving) that pred accepts; raises Closed if the
        connection ends first, TestFailure on timeout."""
        for i, p in enumerate(self.inbox):
            if pred(p):
                return self.inbox.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            try:
                p = self._read(deadline)
            except socket.timeout:
                raise TestFailure("timed out waiting; inbox %s" % short(self.inbox))
            if pred(p):
                return p
            self.inbox.append(p)

    def collect(self, seconds):
        """Reads for seconds (or until the connection ends); returns nothing, fills the inbox."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.inbox.append(self._read(deadline))
        except (socket.timeout, Closed):
            pass

    def messages(self, n, timeout=5):
        """Exactly the next n PUBLISHes (observations)."""
        out = []
        for _ in range(n):
            try:
                out.append(msg_obs(self.wait(lambda p: p["type"] == "PUBLISH", timeout)))
            except (TestFailure, Closed) as e:
                out.append("missing (%s)" % type(e).__name__)
                break
        return out

    def quiet(self, seconds=0.4):
        """The PUBLISHes that arrive within seconds (a scenario expects none, or a known set)."""
        self.collect(seconds)
        got = [p for p in self.inbox if p["type"] == "PUBLISH"]
        self.inbox = [p for p in self.inbox if p["type"] != "PUBLISH"]
        return [msg_obs(p) for p in got]

    def until_payload(self, marker, timeout=5):
        """The PUBLISHes before the first one whose payload is marker (which a scenario publishes
        last on the same connection, so that everything sent before it is delivered by then)."""
        out = []
        for _ in range(1000):
            try:
                p = self.wait(lambda p: p["type"] == "PUBLISH", timeout)
            except (TestFailure, Closed) as e:
                out.append("no marker (%s)" % type(e).__name__)
                return out
            if p["payload"] == marker.encode():
                return out
            out.append(msg_obs(p))
        return out

    def raw_packets(self, seconds):
        """Every packet other than PUBLISH that arrives within seconds (taken from the inbox)."""
        self.collect(seconds)
        got = [p for p in self.inbox if p["type"] != "PUBLISH"]
        self.inbox = [p for p in self.inbox if p["type"] == "PUBLISH"]
        return got

    def raw_publishes(self, seconds):
        """The PUBLISHes (decoded, with packet ids) that arrive within seconds."""
        self.collect(seconds)
        got = [p for p in self.inbox if p["type"] == "PUBLISH"]
        self.inbox = [p for p in self.inbox if p["type"] != "PUBLISH"]
        return got

    def close_obs(self, timeout=5):
        """Reads until the connection ends: the packets received before the end (DISCONNECT with
        its reason, typically), and whether it ended within timeout."""
        self.collect(timeout)
        pk = [{k: v for k, v in p.items() if k != "pid"} for p in self.inbox]
        self.inbox = []
        return {"packets": pk, "closed": self.closed}


def msg_obs(p):
    """What a device can tell about a delivered PUBLISH (its packet id is the broker's choice,
    shown only as 'has one')."""
    o = {"topic": p["topic"], "payload": show(p["payload"]), "qos": p["qos"], "retain": p["retain"],
         "dup": p["dup"]}
    if "props" in p:
        o["props"] = p["props"]
    return o


def show(b):
    try:
        s = b.decode("utf-8")
        if all(32 <= ord(c) < 127 for c in s):
            return s
    except UnicodeDecodeError:
        pass
    return "hex:" + b.hex() if len(b) <= 64 else "len:%d sha:%x" % (len(b), hash(b) & 0xFFFFFFFF)


def short(x, n=600):
    s = repr(x)
    return s if len(s) <= n else s[:n] + "..."


# ---------------------------------------------------------------- the pairing

class Side:
    """One run of a scenario: the device-facing port (broker or node) and a tag that keeps the
    two runs' topics and client ids apart (normalised away before the comparison)."""

    def __init__(self, port, tag, level, sealed, fixture):
        self.port = port
        self.tag = tag
        self.level = level
        self.sealed = sealed
        self.fx = fixture

    def topic(self, name):
        return "cmp/%s/%s" % (self.tag, name)

    def cid(self, name):
        return "%s-%s" % (self.tag, name)

    def wire(self, level=None, auto_ack=True):
        return Wire(self.port, self.level if level is None else level, auto_ack)

    def device(self, name, level=None, auto_ack=True, **kw):
        """A connected device; fails if the CONNACK is not a success."""
        w = self.wire(level, auto_ack)
        ack = w.connect(self.cid(name), **kw)
        if ack.get("type") != "CONNACK" or ack["rc"] != 0:
            raise TestFailure("%s: connect refused: %s" % (name, short(ack)))
        w.connack = ack
        return w


def normalise(obj, tag):
    if isinstance(obj, str):
        return obj.replace(tag, "T")
    if isinstance(obj, bytes):
        return normalise(show(obj), tag)
    if isinstance(obj, dict):
        return {normalise(k, tag): normalise(v, tag) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [normalise(v, tag) for v in obj]
    return obj


_counter = [0]


def run_pair(fx, scenario, level):
    """Runs scenario on both sides; returns (direct observation, sealed observation, opened delta)."""
    _counter[0] += 1
    out = []
    opened = 0.0
    for sealed in (False, True):
        tag = "%s%d%s" % ("s" if sealed else "d", _counter[0], scenario.__name__[:12].replace("_", ""))
        side = Side(fx.node.port if sealed else fx.broker.port, tag, level, sealed, fx)
        before = fx.opened() if sealed else 0
        try:
            obs = scenario(side)
        except Closed:
            obs = {"exception": "connection closed unexpectedly", "trace": traceback.format_exc(limit=3)}
        except TestFailure as e:
            obs = {"exception": str(e)[:300]}
        if sealed:
            opened = fx.opened() - before
        out.append(normalise(obs, tag))
    return out[0], out[1], opened


def diff(a, b):
    return "direct: %s\nsealed: %s" % (json.dumps(a, sort_keys=True, default=str),
                                       json.dumps(b, sort_keys=True, default=str))


# ---------------------------------------------------------------- a minimal fake broker

class FakeBroker:
    """A broker that answers every client and enforces nothing, for what mosquitto cannot be made
    to do (raise the keep alive in CONNACK, enhanced authentication without a plugin). It accepts
    the node's key-exchange connection too: CONNACK (with connack_props for MQTT 5 clients),
    SUBACK, PUBACK/PUBREC/PUBCOMP, PINGRESP; a CONNECT with an Authentication Method gets one AUTH
    challenge (0x18) and, after the client's AUTH, a CONNACK; AUTH 0x19 (re-authenticate) gets a
    challenge, the client's answer AUTH 0x00.
    Runs on threads; stop() closes everything."""

    def __init__(self, connack_props=None):
        import threading
        self.props = connack_props or {}
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((HOST, 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.conns = []
        self.authed = []
        self.stopped = False
        self._threading = threading
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            self.conns.append(c)
            self._threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf, level = b"", 4
        try:
            while not self.stopped:
                chunk = c.recv(65536)
                if not chunk:
                    return
                buf += chunk
                while len(buf) >= 2:
                    n, pos = self._frame(buf)
                    if n is None or len(buf) < pos + n:
                        break
                    first, body, buf = buf[0], buf[pos:pos + n], buf[pos + n:]
                    level = self._answer(c, first, body, level)
        except OSError:
            return

    @staticmethod
    def _frame(buf):
        n, mult, i = 0, 1, 1
        while i < len(buf) and i <= 4:
            b = buf[i]
            n += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                return n, i
        return None, 0

    def _answer(self, c, first, body, level):
        t = first >> 4
        if t == 1:
            level = body[6]
            asked = dec_props(body, 10)[0] if level == 5 else {}
            if "AuthenticationMethod" in asked:       # enhanced authentication: one challenge
                self._auth(c, 0x18, asked["AuthenticationMethod"], b"challenge")
                return level
            props = enc_props(self.props) if level == 5 else b""
            c.sendall(b"\x20" + varint(2 + len(props)) + b"\x00\x00" + props)
        elif t == 15:
            got = dec_props(body, 1)[0] if len(body) > 1 else {}
            method = got.get("AuthenticationMethod", "")
            if body[0] == 0x19:                        # re-authentication: challenge again
                self._auth(c, 0x18, method, b"again")
            elif c not in self.authed:                 # the answer to the CONNECT's challenge
                self.authed.append(c)
                props = enc_props({"AuthenticationMethod": method, "AuthenticationData": b"welcome"})
                c.sendall(b"\x20" + varint(2 + len(props)) + b"\x00\x00" + props)
            else:                                      # the answer to a re-authentication
                self._auth(c, 0x00, method, b"fine")
        elif t == 8:
            pid = body[:2]
            pos = 2
            if level == 5:
                n, pos = dec_varint(body, 2)
                pos += n
            codes = b""
            while pos < len(body):
                ln = struct.unpack(">H", body[pos:pos + 2])[0]
                codes += bytes([body[pos + 2 + ln] & 3])
                pos += 3 + ln
            rest = pid + (b"\x00" if level == 5 else b"") + codes
            c.sendall(b"\x90" + varint(len(rest)) + rest)
        elif t == 3 and (first >> 1) & 3:
            tl = struct.unpack(">H", body[:2])[0]
            pid = body[2 + tl:4 + tl]
            c.sendall((b"\x40\x02" if (first >> 1) & 3 == 1 else b"\x50\x02") + pid)
        elif t == 6:
            c.sendall(b"\x70\x02" + body[:2])
        elif t == 12:
            c.sendall(b"\xd0\x00")
        elif t == 14:
            c.close()
        return level

    @staticmethod
    def _auth(c, rc, method, data):
        body = bytes([rc]) + enc_props({"AuthenticationMethod": method, "AuthenticationData": data})
        c.sendall(b"\xf0" + varint(len(body)) + body)

    def stop(self):
        self.stopped = True
        for s in [self.ls] + self.conns:
            try:
                s.close()
            except OSError:
                pass
