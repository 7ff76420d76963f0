#!/usr/bin/env python3
"""grow_corpus.py - grows the fuzz seed corpora from real packets: runs a short integration scenario
(a private mosquitto, two sealed mqseal nodes rotating every 2 s, paho devices on MQTT 3.1, 3.1.1
and 5 with QoS 0/1/2, retained messages, wills, properties, (un)subscriptions, pings) with a
recording TCP relay in front of the broker and in front of one node, then writes new seeds:

  fuzz_mqtt_codec  byte 0 = level (0: learnt from the CONNECT; 1..3: MQTT 3.1, 3.1.1, 5), byte 1 =
                   16 (size limit 16 << 16 = 1 MiB), then packets: the first packets of each
                   recorded stream (at most 16 packets / 4 KiB), and the smallest instance of each
                   (level, packet type, flags) seen
  fuzz_envelope    sealed payloads seen by the broker (one per flags / size class)
  fuzz_announce    key announcements and confirmations seen by the broker

Seeds are named by the SHA-1 of their content (as libFuzzer names its finds); existing ones are kept.
  MQSEAL_BIN=build/proxy/mqseal python3 tests/fuzz/grow_corpus.py [--dry-run]
"""
import hashlib
import os
import socket
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

import harness  # noqa: E402
from harness import HOST, Broker, Client, Node, eventually  # noqa: E402

CORPUS = os.path.join(HERE, "corpus")
SIZE_BYTE = 16          # fuzz_mqtt_codec: packet size limit 16 << 16 = 1 MiB
STREAM_PACKETS = 16
STREAM_BYTES = 4096


class Recorder:
    """A TCP relay on a free loopback port to (HOST, target); keeps every connection's bytes per
    direction: streams = [(client_to_server bytes, server_to_client bytes)]."""

    def __init__(self, target):
        self.target = target
        self.ls = socket.socket()
        self.ls.bind((HOST, 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.streams = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            try:
                s = socket.create_connection((HOST, self.target))
            except OSError:
                c.close()
                continue
            rec = [bytearray(), bytearray()]
            self.streams.append(rec)
            threading.Thread(target=self._pump, args=(c, s, rec[0]), daemon=True).start()
            threading.Thread(target=self._pump, args=(s, c, rec[1]), daemon=True).start()

    @staticmethod
    def _pump(src, dst, buf):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                buf += data
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.ls.close()


def split_packets(data):
    """Complete MQTT packets of a byte stream (raw bytes each)."""
    out, pos = [], 0
    while pos + 2 <= len(data):
        n, mult, i = 0, 1, pos + 1
        while i < len(data) and i < pos + 5:
            b = data[i]
            n += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        else:
            break
        if i + n > len(data):
            break
        out.append(bytes(data[pos:i + n]))
        pos = i + n
    return out


def connect_level(pkt):
    """The fuzz target's level byte (1..3) for the protocol level of a CONNECT packet."""
    i = 1
    while pkt[i] & 0x80:
        i += 1
    body = pkt[i + 1:]
    nlen = struct.unpack(">H", body[:2])[0]
    return {3: 1, 4: 2, 5: 3}.get(body[2 + nlen], 0)


def publish_parts(pkt, level):
    """(topic, payload) of a PUBLISH packet at fuzz level byte `level`."""
    i = 1
    while pkt[i] & 0x80:
        i += 1
    body, qos = pkt[i + 1:], (pkt[0] >> 1) & 3
    tlen = struct.unpack(">H", body[:2])[0]
    topic, pos = body[2:2 + tlen].decode("utf-8", "replace"), 2 + tlen + (2 if qos else 0)
    if level == 3:
        plen, mult = 0, 1
        while True:
            b = body[pos]
            pos += 1
            plen += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                break
        pos += plen
    return topic, body[pos:]


def drive(workdir):
    """The scenario; returns the recorders (broker side, device side of node a)."""
    broker = Broker(workdir).start()
    rec_broker = Recorder(broker.port)
    fast = {"keyex": {"interval_seconds": 2, "activation_seconds": 1}, "log": {"level": "warn"},
            "topics": {"plaintext": ["plain/#"]}}
    a, b = Node(workdir, "a", rec_broker.port, conf=fast), Node(workdir, "b", rec_broker.port, conf=fast)
    a.trust(b)
    b.trust(a)
    a.start()
    b.start()
    for n in (a, b):
        eventually(lambda: n.metric("mqseal_peers_keyed") == 1, 15, msg="keyed")
    rec_dev = Recorder(a.port)
    for version in (3, 4, 5):
        sub = Client("g-sub-%d" % version, version)
        sub.connect(b.port, keepalive=1)
        g = "g%d" % version  # a prefix per round: no stale retained will of an earlier round
        sub.subscribe(g + "/#", 2)
        sub.subscribe("plain/#", 1)
        pub = Client("g-pub-%d" % version, version)
        kw = {}
        if version == 5:
            props = Properties(PacketTypes.PUBLISH)
            props.ContentType = "text/plain"
            props.UserProperty = [("k", "v")]
            props.MessageExpiryInterval = 60
            kw["properties"] = props
        pub.c.will_set(g + "/will", b"gone", 1, True)
        pub.connect(rec_dev.port, keepalive=1)
        for qos in (0, 1, 2):
            for size in (0, 5, 300):
                pub.publish("%s/q%d/s%d" % (g, qos, size), os.urandom(size), qos, **kw)
            pub.publish("%s/ret/%d" % (g, qos), b"retained-%d" % qos, qos, retain=True)
            pub.publish("plain/q%d" % qos, b"plain-%d" % qos, qos)
        pub.c.unsubscribe("nothing/#")
        time.sleep(2.5)  # pings (keepalive 1) and a rotation with re-sealed retained values
        pub.publish(g + "/ret/0", b"", 0, retain=True)  # a retained delete
        pub.drop()  # the will goes out
        sub.disconnect()
    time.sleep(1)
    harness.stop_all()
    rec_broker.close()
    rec_dev.close()
    return rec_broker, rec_dev


def seeds(recorders):
    """{target: [seed bytes]} from what the recorders saw."""
    codec, singles, envelopes, announce = [], {}, {}, []
    for rec in recorders:
        for up, down in rec.streams:
            up_pk, down_pk = split_packets(up), split_packets(down)
            if not up_pk or up_pk[0][0] != 0x10:
                continue
            level = connect_level(up_pk[0])
            for lv, pkts in ((0, up_pk), (level, down_pk)):
                chosen, size = [], 0
                for p in pkts[:STREAM_PACKETS]:
                    if size + len(p) > STREAM_BYTES:
                        break
                    chosen.append(p)
                    size += len(p)
                if chosen:
                    codec.append(bytes([lv, SIZE_BYTE]) + b"".join(chosen))
                for p in pkts:
                    key = (level, p[0])
                    if key not in singles or len(p) < len(singles[key]):
                        singles[key] = p
            for p in up_pk + down_pk:
                if p[0] >> 4 != 3:
                    continue
                topic, payload = publish_parts(p, level)
                if topic.startswith("mqseal/"):
                    announce.append(payload)
                elif topic.startswith("g") and len(payload) >= 50:
                    envelopes.setdefault((payload[1], len(payload) // 64), payload)
    codec += [bytes([lv, SIZE_BYTE]) + p for (lv, _), p in singles.items()]
    # Announcements: one per size (entries differ), confirmations: a couple.
    by_kind = {}
    for p in announce:
        by_kind.setdefault((p[5:6], len(p)), p)
    return {"fuzz_mqtt_codec": codec, "fuzz_envelope": list(envelopes.values()),
            "fuzz_announce": list(by_kind.values())[:8]}


def main():
    dry = "--dry-run" in sys.argv
    import tempfile
    workdir = tempfile.mkdtemp(prefix="mqseal-grow-")
    try:
        recs = drive(workdir)
    finally:
        harness.stop_all()
    for target, items in seeds(recs).items():
        d = os.path.join(CORPUS, target)
        new = 0
        for data in items:
            path = os.path.join(d, hashlib.sha1(data).hexdigest())
            if os.path.exists(path):
                continue
            new += 1
            if not dry:
                with open(path, "wb") as f:
                    f.write(data)
        print("%s: %d seeds from the capture, %d new%s" % (target, len(items), new, " (dry run)" if dry else ""))
    import shutil
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
