# ctest-labels: sealing compat
# ctest-timeout: 300
"""MQTT 5.0 (and 3.1/3.1.1) behaves through a sealing node exactly as against the broker (issue 14,
docs/COMPATIBILITY.md). Every scenario below runs twice against one mosquitto: once with the device
connected to the broker directly, once through one mqseal node (no peers: it seals and opens its
own messages) on sealed topics, and what the device observes must be equal (compat.py).

KNOWN_DIFFERENT lists the differences issue 14 names and other helpers are fixing: such a scenario
must still differ today (the test fails if it unexpectedly passes); once a fix is merged its entry
is removed and the scenario must pass. OPEN_DIFFERENT does the same for differences these scenarios
found that nobody fixes yet. BY_DESIGN lists the differences the protocol chooses
(PROTOCOL.md): the sealed observation must be exactly the direct one with the documented change.

Usage: test_mqtt5_compat.py [scenario[@vN] ...]   (no argument: all)
"""
import atexit
import os
import sys
import tempfile
import time
import shutil
import traceback

from harness import Broker, Client, Node, check, eventually, stop_all
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from compat import FakeBroker, Wire, diff, enc_props, run_pair, s16

# Differences issue 14 named (cases 1-3): fixed, so none is expected any more. An entry here must
# still differ (the test fails if it unexpectedly passes); a fix removes it.
KNOWN_DIFFERENT = {}

# Differences found by these scenarios that nobody fixes yet (docs/COMPATIBILITY.md says why).
OPEN_DIFFERENT = {}


def _without_live_delete(direct):
    """PROTOCOL.md §6.1/§10.2: a zero-length payload on a sealed topic cannot be authenticated and
    is not delivered; the retained delete itself works (a later subscriber gets nothing)."""
    out = dict(direct)
    out["live"] = [m for m in direct["live"] if m["payload"] != ""]
    return out


SEAL_ROOM = 66  # PROTOCOL.md §5.7: O(16) = 50 + 15 + 1, kept free below the broker's limit


def _max_packet_lowered(direct):
    """PROTOCOL.md §5.7: the broker's Maximum Packet Size reaches the device less the room the seal
    takes (at seal.padding 16), so that what it sends still fits the broker once sealed."""
    if isinstance(direct, dict):
        return {k: (v - SEAL_ROOM if k in ("MaximumPacketSize", "limit") and isinstance(v, int)
                    else _max_packet_lowered(v)) for k, v in direct.items()}
    if isinstance(direct, list):
        return [_max_packet_lowered(v) for v in direct]
    return direct


LOWERED = ("the broker's Maximum Packet Size reaches the device less the seal's room (PROTOCOL.md §5.7)",
           _max_packet_lowered)

BY_DESIGN = {
    "retained_delete_live": ("a retained delete (zero-length payload) reaches the current subscribers "
                             "directly, not through mqseal (PROTOCOL.md §10.2)", _without_live_delete),
    "server_keep_alive": LOWERED,
    "maximum_qos@v5": LOWERED,
    "broker_maximum_packet_size": LOWERED,
}

SCENARIOS = []


def scenario(*levels):
    def reg(fn):
        SCENARIOS.append((fn, levels or (5,)))
        return fn
    return reg


def v5(side, props):
    return props if side.level == 5 else None


def session_kw(side, expiry=60):
    """A persistent session: clean = 0 (3.x) or Clean Start = 0 + Session Expiry (5.0)."""
    return {"clean": False, "props": {"SessionExpiryInterval": expiry} if side.level == 5 else None}


def settle():
    """After a device left, before messages are published for its session: the broker learns of
    the end one hop later through mqseal, and a message published in between goes to the old
    connection (and comes back with DUP=1). Directly, the same race is only shorter."""
    time.sleep(0.3)


def srt(msgs):
    return sorted(msgs, key=repr)


# ---------------------------------------------------------------- QoS, retained, will, sessions

@scenario(3, 4, 5)
def qos(side):
    t = side.topic
    sub = side.device("sub")
    o = {"suback": sub.subscribe((t("q0"), 0), (t("q1"), 1), (t("q2"), 2))["codes"]}
    pub = side.device("pub")
    o["acks"] = [pub.publish(t("q%d" % sq), "m%d%d" % (pq, sq), pq) for pq in (0, 1, 2) for sq in (0, 1, 2)]
    o["acks"].append(pub.publish(t("q1"), b"", 1))                          # zero-length, not retained
    o["acks"].append(pub.publish(t("q2"), bytes(range(256)) * 400, 2))      # 100 KiB
    o["got"] = srt(sub.messages(11))
    o["extra"] = sub.quiet(0.3)
    return o


@scenario(3, 4, 5)
def retained(side):
    t = side.topic("r/x")
    pub = side.device("pub")
    pub.publish(t, "v1", 1, retain=True)
    pub.publish(t, "v2", 2, retain=True, props=v5(side, {"UserProperty": [["stored", "yes"]],
                                                          "ContentType": "text/plain"}))
    a = side.device("a")
    o = {"suback": a.subscribe((t, 1))["codes"], "first": a.messages(1)}
    pub.publish(t, "v3", 2, retain=True)
    o["live"] = a.messages(1)                    # RETAIN 0 as delivered to a current subscriber
    b = side.device("b")
    b.subscribe((side.topic("r/+"), 2))
    o["new_subscriber"] = b.messages(1)          # the latest value, RETAIN 1, QoS min(2, 2)
    a.subscribe((t, 1))
    o["resubscribe"] = a.messages(1)             # sent again on a repeated SUBSCRIBE
    pub.publish(t, "", 1, retain=True)           # delete
    c = side.device("c")
    c.subscribe((t, 1))
    o["after_delete"] = c.quiet(0.3)
    pub.publish(side.topic("r/y"), "plain", 0)   # not retained: never stored
    d = side.device("d")
    d.subscribe((side.topic("r/y"), 0))
    o["not_retained"] = d.quiet(0.3)
    return o


@scenario(4, 5)
def retained_delete_live(side):
    t = side.topic("rd")
    a = side.device("a")
    a.subscribe((t, 1))
    pub = side.device("pub")
    pub.publish(t, "value", 1, retain=True)
    pub.publish(t, "", 1, retain=True)
    pub.publish(t, "after", 1)
    return {"live": a.until_payload("after")}


@scenario(3, 4, 5)
def will(side):
    t = side.topic
    watch = side.device("watch")
    watch.subscribe((t("will/#"), 1))
    wp = v5(side, {"ContentType": "text/x-will", "UserProperty": [["k", "v"], ["k", "w"]],
                   "PayloadFormatIndicator": 1, "MessageExpiryInterval": 3600})
    dev = side.device("dev", will={"topic": t("will/dev"), "payload": "gone", "qos": 1, "props": wp})
    dev2 = side.device("dev2", will={"topic": t("will/dev2"), "payload": "gone2", "qos": 2, "retain": True})
    dev3 = side.device("dev3", will={"topic": t("will/dev3"), "payload": "never", "qos": 1})
    dev3.disconnect()                            # a normal DISCONNECT discards the will
    dev.drop()
    o = {"abrupt": fix_expiry(watch.messages(1), 3600)}
    dev2.drop()
    o["retained_will"] = watch.messages(1)
    late = side.device("late")
    late.subscribe((t("will/#"), 1))
    o["late_subscriber"] = late.messages(1)
    o["extra"] = watch.quiet(0.3)
    return o


@scenario(5)
def will_delay(side):
    t = side.topic
    watch = side.device("watch")
    watch.subscribe((t("wd/#"), 1))
    keep = {"SessionExpiryInterval": 30}
    delayed = {"WillDelayInterval": 1}
    dev = side.device("dev", props=keep, will={"topic": t("wd/a"), "payload": "cancelled", "qos": 1,
                                               "props": delayed})
    dev.drop()
    dev = side.device("dev", clean=False, props=keep)   # back within the delay: no will
    o = {"reconnect_session_present": dev.connack["sp"], "cancelled": watch.quiet(1.6)}
    dev.disconnect()
    late = side.device("late", props=keep, will={"topic": t("wd/c"), "payload": "after delay", "qos": 1,
                                                 "props": delayed})
    late.drop()
    o["after_delay"] = watch.messages(1)
    asked = side.device("asked", will={"topic": t("wd/d"), "payload": "asked for", "qos": 1})
    asked.disconnect(rc=0x04)                     # Disconnect with Will Message
    o["disconnect_with_will"] = watch.messages(1)
    o["extra"] = watch.quiet(0.2)
    return o


@scenario(3, 4, 5)
def persistent_session(side):
    t = side.topic
    dev = side.device("dev", **session_kw(side))
    o = {"first_session_present": dev.connack["sp"], "suback": dev.subscribe((t("p/#"), 2))["codes"]}
    dev.disconnect()
    settle()
    pub = side.device("pub")
    for q in (0, 1, 2):
        pub.publish(t("p/%d" % q), "offline q%d" % q, q)
    dev = side.device("dev", **session_kw(side))
    o["session_present"] = dev.connack["sp"]
    o["queued"] = srt(dev.messages(2))            # QoS 1 and 2 (mosquitto queues no QoS 0)
    o["extra"] = dev.quiet(0.3)
    pub.publish(t("p/live"), "live", 1)
    o["live"] = dev.messages(1)
    dev.disconnect()
    dev = side.device("dev", clean=True, props=v5(side, {"SessionExpiryInterval": 60}))
    o["clean_start_session_present"] = dev.connack["sp"]
    dev.disconnect()
    return o


@scenario(4, 5)
def redelivery(side):
    t = side.topic("rd/x")
    dev = side.device("dev", auto_ack=False, **session_kw(side))
    dev.subscribe((t, 2))
    pub = side.device("pub")
    pub.publish(t, "one", 1)
    pub.publish(t, "two", 2)
    o = {"first": dev.messages(2)}
    dev.drop()                                    # neither acknowledged
    dev = side.device("dev", auto_ack=True, **session_kw(side))
    o["session_present"] = dev.connack["sp"]
    o["redelivered"] = dev.messages(2)           # DUP, same packet ids (not compared), opened again
    o["extra"] = dev.quiet(0.3)
    dev.disconnect()
    return o


@scenario(5)
def session_expiry(side):
    t = side.topic
    dev = side.device("dev", props={"SessionExpiryInterval": 1})
    dev.subscribe((t("se"), 1))
    dev.disconnect()
    time.sleep(2.2)
    dev = side.device("dev", clean=False, props={"SessionExpiryInterval": 60})
    o = {"after_expiry": dev.connack["sp"]}
    dev.subscribe((t("se"), 1))
    dev.disconnect(rc=0, props={"SessionExpiryInterval": 0})     # shortened on DISCONNECT
    dev = side.device("dev", clean=False, props={"SessionExpiryInterval": 60})
    o["after_disconnect_zero"] = dev.connack["sp"]
    dev.disconnect()
    dev = side.device("dev", clean=False, props={"SessionExpiryInterval": 60})
    o["kept"] = dev.connack["sp"]
    dev.disconnect(rc=0, props={"SessionExpiryInterval": 0})
    zero = side.device("zero", props={"SessionExpiryInterval": 0})
    zero.disconnect(rc=0, props={"SessionExpiryInterval": 60})    # 0 -> non-zero: protocol error
    zero = side.device("zero", clean=False)
    o["zero_then_raised"] = zero.connack["sp"]
    return o


@scenario(4, 5)
def session_takeover(side):
    first = side.device("dev")
    second = side.device("dev")
    o = {"first": first.close_obs(3), "second_ok": second.connack["rc"]}
    second.publish(side.topic("tk"), "still here", 1)
    return o


@scenario(4, 5)
def keepalive(side):
    silent = side.device("silent", keepalive=1)
    off = side.device("off", keepalive=0)        # keep alive off: never closed for silence
    dev = side.device("dev", keepalive=1)
    pongs = 0
    for _ in range(4):                           # 2 s of pings every 0.5 s: stays connected
        dev.send(0xC0, b"")
        pongs += dev.wait(lambda p: p["type"] == "PINGRESP", 3)["type"] == "PINGRESP"
        time.sleep(0.5)
    o = {"pongs": pongs}
    # Silent for 1.5 x keepalive: closed, without DISCONNECT. mosquitto 2.0.11 checks keepalives
    # only every few seconds (closes after about 6 s); mqseal's own timer cuts at 1.5 s.
    o["silent_closed"] = silent.close_obs(9)
    off.send(0xC0, b"")
    o["off_still_open"] = off.wait(lambda p: p["type"] == "PINGRESP", 3)["type"]
    return o


# ---------------------------------------------------------------- MQTT 5 features

@scenario(5)
def connack_properties(side):
    o = {"plain": side.device("plain").connack}
    o["asks"] = side.device("asks", props={"RequestResponseInformation": 1, "RequestProblemInformation": 0,
                                           "ReceiveMaximum": 5, "TopicAliasMaximum": 3,
                                           "UserProperty": [["a", "b"]]}).connack
    return o


@scenario(5)
def message_expiry(side):
    t = side.topic
    sub = side.device("sub", props={"SessionExpiryInterval": 60})
    sub.subscribe((t("e/#"), 1))
    sub.disconnect()
    settle()
    pub = side.device("pub")
    pub.publish(t("e/short"), "short", 1, props={"MessageExpiryInterval": 1})
    pub.publish(t("e/long"), "long", 1, props={"MessageExpiryInterval": 100})
    pub.publish(t("r/short"), "retained short", 1, retain=True, props={"MessageExpiryInterval": 1})
    pub.publish(t("r/long"), "retained long", 1, retain=True, props={"MessageExpiryInterval": 100})
    time.sleep(2.2)
    sub = side.device("sub", clean=False, props={"SessionExpiryInterval": 60})
    o = {"queued": fix_expiry(sub.messages(1), 100), "extra": sub.quiet(0.3)}
    late = side.device("late")
    late.subscribe((t("r/+"), 1))
    o["retained"] = fix_expiry(late.messages(1), 100)
    o["retained_extra"] = late.quiet(0.3)
    pub.publish(t("e/live"), "live", 1, props={"MessageExpiryInterval": 100})
    o["live"] = fix_expiry(sub.messages(1), 100)
    return o


def fix_expiry(msgs, sent):
    """The broker sends the time left; it may have ticked by a second or two."""
    for m in msgs:
        p = m.get("props", {}) if isinstance(m, dict) else {}
        v = p.get("MessageExpiryInterval")
        if v is not None:
            p["MessageExpiryInterval"] = "sent-3..sent" if sent - 3 <= v <= sent else v
    return msgs


@scenario(5)
def request_response(side):
    t = side.topic
    responder = side.device("resp")
    responder.subscribe((t("req"), 1))
    requester = side.device("reqr")
    requester.subscribe((t("reply/reqr"), 1))
    requester.publish(t("req"), "ping?", 1, props={"ResponseTopic": t("reply/reqr"),
                                                   "CorrelationData": b"\x00\x01corr\xff"})
    req = responder.messages(1)
    o = {"request": req}
    if req and isinstance(req[0], dict) and "ResponseTopic" in req[0].get("props", {}):
        responder.publish(req[0]["props"]["ResponseTopic"], "pong", 1,
                          props={"CorrelationData": bytes.fromhex(req[0]["props"]["CorrelationData"])})
        o["response"] = requester.messages(1)
    return o


@scenario(5)
def receive_maximum(side):
    t = side.topic("rm")
    sub = side.device("sub", auto_ack=False, props={"ReceiveMaximum": 2})
    sub.subscribe((t, 1))
    pub = side.device("pub")
    for i in range(5):
        pub.publish(t, "m%d" % i, 1)
    first = sub.raw_publishes(0.6)
    o = {"first": [p["payload"] for p in first]}
    if first:
        sub.ack(4, first[0]["pid"])
    second = sub.raw_publishes(0.4)
    o["after_one_ack"] = [p["payload"] for p in second]
    for p in first[1:] + second:
        sub.ack(4, p["pid"])
    rest = sub.raw_publishes(0.4)
    for p in rest:
        sub.ack(4, p["pid"])
    o["rest"] = [p["payload"] for p in rest]
    return o


@scenario(5)
def receive_maximum_broker(side):
    """The broker's Receive Maximum (CONNACK) and what it does when a device exceeds it."""
    dev = side.device("dev")
    o = {"receive_maximum": dev.connack.get("props", {}).get("ReceiveMaximum")}
    for i in range(25):                           # QoS 2 without PUBREL: the broker's quota runs out
        dev.publish(side.topic("rx"), "q2-%d" % i, 2, wait=False)
    o["result"] = dev.close_obs(1)
    o["result"]["packets"] = summarise_acks(o["result"]["packets"])
    return o


def summarise_acks(packets):
    out, n = [], 0
    for p in packets:
        if p["type"] == "PUBREC" and p.get("rc", 0) == 0 and "props" not in p:
            n += 1
        else:
            out.append(p)
    return [{"PUBREC ok": n}] + out


@scenario(5)
def no_local(side):
    t = side.topic
    dev = side.device("dev")
    o = {"suback": dev.subscribe((t("nl/a"), 1 | 0x04), (t("nl/b"), 1))["codes"]}
    dev.publish(t("nl/a"), "own a", 1)
    dev.publish(t("nl/b"), "own b", 1)
    other = side.device("other")
    other.publish(t("nl/a"), "other a", 1)
    o["got"] = dev.messages(2)
    o["extra"] = dev.quiet(0.3)
    return o


@scenario(5)
def retain_as_published(side):
    t = side.topic("rap")
    pub = side.device("pub")
    pub.publish(t, "stored", 1, retain=True)
    a = side.device("a")
    a.subscribe((t, 1 | 0x08))
    b = side.device("b")
    b.subscribe((t, 1))
    o = {"a_retained": a.messages(1), "b_retained": b.messages(1)}
    pub.publish(t, "live retained", 1, retain=True)
    pub.publish(t, "live", 1)
    o["a_live"] = a.messages(2)
    o["b_live"] = b.messages(2)
    return o


@scenario(4, 5)
def retained_across_key_rotation(side):
    """The node re-seals its devices' retained values after each key activation (PROTOCOL.md
    §10.1); the devices must not see that."""
    port, wait_activation = side.fx.rotating(side.sealed)
    t = side.topic("rot")
    a = Wire(port, side.level)
    a.connect(side.cid("a"))
    a.subscribe((t, 1 | (0x08 if side.level == 5 else 0)))    # Retain As Published (5.0)
    b = Wire(port, side.level)
    b.connect(side.cid("b"))
    b.subscribe((t, 1))
    pub = Wire(port, side.level)
    pub.connect(side.cid("pub"))
    pub.publish(t, "value", 1, retain=True)
    wait_activation()
    pub.publish(t, "marker", 1)
    o = {"a": a.until_payload("marker"), "b": b.until_payload("marker")}
    c = Wire(port, side.level)
    c.connect(side.cid("c"))
    c.subscribe((t, 1))
    o["new_subscriber"] = c.messages(1)
    o["extra"] = a.quiet(0.2) + b.quiet(0.0) + c.quiet(0.0)
    return o


@scenario(5)
def retain_handling(side):
    t = side.topic
    pub = side.device("pub")
    pub.publish(t("rh/x"), "stored", 1, retain=True)
    d = side.device("d")
    o = {"rh0": [d.subscribe((t("rh/#"), 1))["codes"], d.messages(1)]}
    o["rh0_again"] = [d.subscribe((t("rh/#"), 1))["codes"], d.messages(1)]
    o["rh1_new"] = [d.subscribe((t("rh/+"), 1 | 0x10))["codes"], d.messages(1)]
    o["rh1_existing"] = [d.subscribe((t("rh/+"), 1 | 0x10))["codes"], d.quiet(0.3)]
    o["rh2"] = [d.subscribe((t("rh/x"), 1 | 0x20))["codes"], d.quiet(0.3)]
    return o


@scenario(5)
def shared_subscription(side):
    t = side.topic("sh")
    g = [side.device("g%d" % i) for i in (1, 2)]
    o = {"subacks": [x.subscribe(("$share/grp/" + t, 1))["codes"] for x in g]}
    plain = side.device("plain")
    plain.subscribe((t, 1))
    pub = side.device("pub")
    for i in range(6):
        pub.publish(t, "s%d" % i, 1)
    o["plain"] = plain.messages(6)
    got = g[0].quiet(0.5) + g[1].quiet(0.1)
    o["group"] = sorted(m["payload"] for m in got)
    o["group_props"] = sorted(set(repr(m.get("props")) for m in got))
    return o


@scenario(5)
def server_keep_alive(side):
    """On a broker with max_keepalive 10: the CONNACK tells the device the keepalive to use."""
    port = side.fx.limited_port(side.sealed)
    o = {}
    for ka in (60, 0, 3):
        w = Wire(port, 5)
        o["asked %d" % ka] = w.connect(side.cid("ka%d" % ka), keepalive=ka)
        w.disconnect()
    return o


@scenario(5)
def server_keep_alive_raised(side):
    """A broker may also raise the keep alive (MQTT-3.1.2-21: the client uses the server's value);
    mosquitto never does, so this runs against a fake broker that sends Server Keep Alive 5 and
    closes nobody. The device asked for 1 s, is silent for 2.5 s, then pings."""
    port = side.fx.fake_port(side.sealed)
    w = Wire(port, 5)
    o = {"connack": w.connect(side.cid("dev"), keepalive=1)}
    w.collect(2.5)
    w.send(0xC0, b"")
    try:
        o["ping_after_silence"] = w.wait(lambda p: p["type"] == "PINGRESP", 3)["type"]
    except Exception as e:  # noqa: BLE001 - the observation is what happened
        o["ping_after_silence"] = type(e).__name__
    o["closed"] = w.closed
    w.disconnect()
    return o


@scenario(5)
def enhanced_auth(side):
    """A successful challenge/response exchange, at CONNECT and again later (re-authentication),
    against the fake broker (mosquitto needs an auth plugin for it)."""
    port = side.fx.fake_port(side.sealed)
    w = Wire(port, 5)
    o = {"first": w.connect(side.cid("dev"), props={"AuthenticationMethod": "X-CHALLENGE",
                                                     "AuthenticationData": b"hello"})}
    if o["first"].get("type") == "AUTH":
        w.send(0xF0, bytes([0x18]) + enc_props({"AuthenticationMethod": "X-CHALLENGE",
                                                "AuthenticationData": b"response"}))
        o["connack"] = w.wait(lambda p: p["type"] in ("CONNACK", "DISCONNECT"), 3)
    w.send(0xF0, bytes([0x19]) + enc_props({"AuthenticationMethod": "X-CHALLENGE"}))
    o["reauth_challenge"] = w.wait(lambda p: p["type"] in ("AUTH", "DISCONNECT"), 3)
    w.send(0xF0, bytes([0x18]) + enc_props({"AuthenticationMethod": "X-CHALLENGE",
                                            "AuthenticationData": b"response2"}))
    o["reauth_done"] = w.wait(lambda p: p["type"] in ("AUTH", "DISCONNECT"), 3)
    w.send(0xC0, b"")
    o["then"] = w.wait(lambda p: p["type"] == "PINGRESP", 3)["type"]
    w.disconnect()
    return o


@scenario(4, 5)
def maximum_qos(side):
    """On a broker with max_qos 1: CONNACK Maximum QoS, SUBACK downgrades, a QoS 2 PUBLISH refused."""
    port = side.fx.limited_port(side.sealed)
    t = side.topic("mq")
    sub = Wire(port, side.level)
    o = {"connack": sub.connect(side.cid("sub"))}
    o["suback"] = sub.subscribe((t, 2))["codes"]
    pub = Wire(port, side.level)
    pub.connect(side.cid("pub"))
    pub.publish(t, "q1", 1)
    o["got"] = sub.messages(1)
    pub.publish(t, "q2", 2, wait=False)
    o["qos2_publish"] = pub.close_obs(2)
    o["extra"] = sub.quiet(0.2)
    return o


@scenario(4, 5)
def assigned_client_id(side):
    t = side.topic("aid")
    o = {}
    devs = []
    for i in range(2):
        w = side.wire()
        ack = w.connect("", clean=True)
        o["connack%d" % i] = anon(ack)
        w.subscribe((t, 1))
        devs.append(w)
    pub = side.device("pub")
    pub.publish(t, "to both", 1)
    o["got"] = [d.messages(1) for d in devs]     # two devices without a client id: each gets it
    w = side.wire()
    o["empty_id_persistent"] = anon(w.connect("", clean=False))
    if o["empty_id_persistent"].get("type") == "CONNACK":
        o["empty_id_persistent_then"] = w.close_obs(1)
    return o


def anon(ack):
    """The broker's assigned client id is random: kept as its form (mosquitto: auto-<UUID>)."""
    cid = ack.get("props", {}).get("AssignedClientIdentifier")
    if cid:
        ack["props"]["AssignedClientIdentifier"] = "auto-<%d>" % len(cid) if cid.startswith("auto-") else cid
    return ack


@scenario(5)
def assigned_client_id_resume(side):
    """A device without a client id, with a persistent session, comes back under the id the broker
    assigned: the unacknowledged message is redelivered, queued ones arrive."""
    t = side.topic("aidr")
    w = side.wire(auto_ack=False)
    ack = w.connect("", clean=True, props={"SessionExpiryInterval": 60})
    cid = ack.get("props", {}).get("AssignedClientIdentifier", "")
    w.subscribe((t, 1))
    pub = side.device("pub")
    pub.publish(t, "unacked", 1)
    o = {"first": w.messages(1)}
    w.drop()
    settle()
    pub.publish(t, "queued", 1)
    w = side.wire()
    o["back"] = anon(w.connect(cid, clean=False, props={"SessionExpiryInterval": 0}))
    o["got"] = w.messages(2)
    o["extra"] = w.quiet(0.3)
    return o


@scenario(5)
def auth_method(side):
    w = side.wire()
    o = {"connack": w.connect(side.cid("scram"), props={"AuthenticationMethod": "SCRAM-SHA-1",
                                                        "AuthenticationData": b"n,,n=user,r=abc"})}
    o["then"] = w.close_obs(2)
    dev = side.device("reauth")
    dev.send(0xF0, bytes([0x19]) + enc_props({"AuthenticationMethod": "SCRAM-SHA-1"}))
    o["reauth"] = dev.close_obs(2)
    return o


@scenario(5)
def topic_alias(side):
    t = side.topic
    sub = side.device("sub")
    sub.subscribe((t("ta/#"), 2))
    pub = side.device("pub")
    o = {"alias_max": pub.connack.get("props", {}).get("TopicAliasMaximum")}
    o["acks"] = [pub.publish(t("ta/one"), "1", 1, props={"TopicAlias": 1}),
                 pub.publish("", "2", 1, props={"TopicAlias": 1}),
                 pub.publish(t("ta/two"), "3", 2, props={"TopicAlias": 1}),   # re-mapped
                 pub.publish("", "4", 0, props={"TopicAlias": 1}),
                 pub.publish(t("ta/max"), "5", 1, props={"TopicAlias": o["alias_max"] or 10}),
                 pub.publish("", "6", 1, props={"TopicAlias": o["alias_max"] or 10})]
    o["got"] = sub.messages(6)
    return o


@scenario(5)
def err_topic_alias_zero(side):
    dev = side.device("dev")
    dev.publish(side.topic("ta0"), "x", 1, props={"TopicAlias": 0}, wait=False)
    return dev.close_obs(3)


@scenario(5)
def err_topic_alias_above_max(side):
    dev = side.device("dev")
    dev.publish(side.topic("tam"), "x", 1, props={"TopicAlias": 11}, wait=False)
    return dev.close_obs(3)


@scenario(4, 5)
def err_unknown_alias_or_empty_topic(side):
    dev = side.device("dev")
    dev.publish("", "x", 1, props=v5(side, {"TopicAlias": 2}), wait=False)
    return dev.close_obs(3)


@scenario(4, 5)
def err_wildcard_topic(side):
    dev = side.device("dev")
    dev.publish(side.topic("a/+"), "x", 1, wait=False)
    return dev.close_obs(3)


@scenario(4, 5)
def err_second_connect(side):
    dev = side.device("dev")
    dev.connect(side.cid("dev"))
    return dev.close_obs(3)


@scenario(4, 5)
def err_subscribe_invalid_filter(side):
    dev = side.device("dev")
    dev.send(0x82, b"\x00\x01" + (b"\x00" if side.level == 5 else b"") + s16(side.topic("a/#/b")) + b"\x01")
    return dev.close_obs(3)


@scenario(5)
def user_properties_and_payload_format(side):
    t = side.topic("pr")
    sub = side.device("sub")
    sub.subscribe((t, 2))
    pub = side.device("pub")
    props = [("PayloadFormatIndicator", 1), ("ContentType", "text/plain; charset=utf-8"),
             ("UserProperty", [["a", "1"], ["b", "2"], ["a", "3"], ["", ""]]),
             ("CorrelationData", b"\x00\xff"), ("ResponseTopic", side.topic("reply"))]
    o = {"acks": [pub.publish(t, "h\u00e9llo", 1, props=props),
                  pub.publish(t, b"\xff\xfe binary", 1, props={"PayloadFormatIndicator": 0}),
                  pub.publish(t, b"", 2, props={"UserProperty": [["empty payload", "yes"]]}),
                  pub.publish(t, "big property", 1, props={"UserProperty": [["k" * 100, "v" * 3000]]}),
                  pub.publish(t, "none", 0)]}
    o["got"] = sub.messages(5)
    return o


@scenario(5)
def payload_format_invalid(side):
    t = side.topic("pfi")
    sub = side.device("sub")
    sub.subscribe((t, 1))
    pub = side.device("pub")
    o = {"ack": pub.publish(t, b"\xff\xfe not utf-8", 1, props={"PayloadFormatIndicator": 1})}
    pub.publish(t, "marker", 1)
    o["got"] = sub.until_payload("marker")
    return o


@scenario(5)
def subscription_identifiers(side):
    t = side.topic
    d = side.device("d")
    o = {"subacks": [d.subscribe((t("si/a/+"), 1), props={"SubscriptionIdentifier": 7})["codes"],
                     d.subscribe((t("si/b/#"), 1), props={"SubscriptionIdentifier": 268435455})["codes"],
                     d.subscribe((t("si/c"), 1))["codes"]]}
    pub = side.device("pub")
    for x in ("si/a/x", "si/b/y/z", "si/c"):
        pub.publish(t(x), x, 1)
    o["got"] = d.messages(3)
    d.subscribe((t("si/a/+"), 1), props={"SubscriptionIdentifier": 8})   # replaces the subscription
    pub.publish(t("si/a/x"), "again", 1)
    o["replaced"] = d.messages(1)
    pub.publish(t("si/r"), "stored", 1, retain=True)
    d.subscribe((t("si/r"), 1), props={"SubscriptionIdentifier": 11})
    o["retained"] = d.messages(1)
    return o


@scenario(4, 5)
def device_resend(side):
    """A device sends the same QoS 1/2 PUBLISH again (DUP=1, same packet id) before the ack: QoS 1
    may arrive twice, QoS 2 exactly once (through mqseal each copy is sealed afresh)."""
    t = side.topic("dup")
    sub = side.device("sub")
    sub.subscribe((t, 2))
    pub = side.device("pub")
    for q in (1, 2):
        pid = pub.publish(t, "q%d" % q, q, wait=False)
        pub.next_pid = pid
        pub.publish(t, "q%d" % q, q, wait=False, dup=True)
    o = {"acks": sorted([p["type"], p["rc"]] for p in (pub.raw_packets(0.5)))}
    pub.ack(6, pid)                              # PUBREL: the QoS 2 message is released once
    o["pubcomp"] = pub.wait(lambda p: p["type"] == "PUBCOMP", 3)["rc"]
    pub.publish(t, "marker", 0)
    o["got"] = srt(sub.until_payload("marker"))
    return o


@scenario(5)
def overlapping_subscriptions(side):
    t = side.topic
    d = side.device("d")
    d.subscribe((t("ov/+"), 2), props={"SubscriptionIdentifier": 1})
    d.subscribe((t("ov/#"), 1), props={"SubscriptionIdentifier": 2})
    pub = side.device("pub")
    pub.publish(t("ov/x"), "twice", 2)
    pub.publish(t("ov/x"), "marker", 0)
    return {"got": srt(d.until_payload("marker"))}


@scenario(5)
def maximum_packet_size(side):
    t = side.topic("mps")
    d = side.device("d", props={"MaximumPacketSize": 64})
    d.subscribe((t, 1))
    pub = side.device("pub")
    pub.publish(t, "p" * 32, 1)
    pub.publish(t, "m", 0)
    return {"got": d.until_payload("m", timeout=1.5)}


@scenario(5)
def broker_maximum_packet_size(side):
    """On a broker with max_packet_size 1000: a PUBLISH 10 bytes below the limit the device was told
    (MQTT 5 §3.2.2.3.6) is accepted and flows."""
    port = side.fx.limited_port(side.sealed)
    t = side.topic("bmps")
    sub = Wire(port, 5)
    sub.connect(side.cid("sub"))
    sub.subscribe((t, 1))
    pub = Wire(port, 5)
    o = {"limit": pub.connect(side.cid("pub")).get("props", {}).get("MaximumPacketSize")}
    size = o["limit"] - 10
    o["ack"] = pub.publish(t, "x" * (size - 2 - len(t) - 2 - 1 - 3), 1)   # a PUBLISH of size bytes
    pub.publish(t, "m", 0)
    o["got"] = [dict(m, payload="<the limit less 10>") if isinstance(m, dict) and str(m.get("payload", "")).startswith("xx")
                else m for m in sub.until_payload("m", timeout=1.5)]
    return o


@scenario(4, 5)
def unsubscribe(side):
    t = side.topic
    d = side.device("d")
    d.subscribe((t("u/a"), 1), (t("u/b"), 1))
    o = {"unsuback": d.unsubscribe(t("u/a"), t("u/none"))}
    o["unsuback"].pop("pid", None)
    pub = side.device("pub")
    pub.publish(t("u/a"), "gone", 1)
    pub.publish(t("u/b"), "kept", 1)
    o["got"] = d.messages(1)
    o["extra"] = d.quiet(0.3)
    return o


@scenario(5)
def puback_reason_codes(side):
    pub = side.device("pub")
    return {"no_subscribers": [pub.publish(side.topic("nobody"), "x", q) for q in (1, 2)]}


@scenario(4, 5)
def paho_client(side):
    """The same with an unmodified client library (paho-mqtt) instead of raw packets."""
    t = side.topic
    sub = Client(side.cid("paho-sub"), side.level)
    sub.connect(side.port)
    sub.subscribe(t("paho/#"), 2)
    pub = Client(side.cid("paho-pub"), side.level)
    pub.connect(side.port)
    props = None
    if side.level == 5:
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = [("sensor", "kitchen-7")]
        props.ContentType = "application/json"
        props.MessageExpiryInterval = 3600
    for q in (0, 1, 2):
        pub.publish(t("paho/%d" % q), b'{"q": %d}' % q, q, properties=props) if props else \
            pub.publish(t("paho/%d" % q), b'{"q": %d}' % q, q)
    got = sub.expect(3, timeout=5)
    out = []
    for m in got:
        p = m.props.json() if m.props is not None else {}
        if "MessageExpiryInterval" in p:
            p["MessageExpiryInterval"] = p["MessageExpiryInterval"] > 3590
        out.append([m.topic, m.payload.decode(), m.qos, m.retain, p])
    sub.disconnect()
    pub.disconnect()
    return {"got": srt(out)}


# ---------------------------------------------------------------- fixture and runner

class Fixture:
    def __init__(self, workdir):
        self.workdir = workdir
        self.broker = Broker(workdir).start()
        self.node = Node(workdir, "compat", self.broker.port, conf={"log": {"level": "info"}}).start()
        self._ka = None
        self._rot = None
        self._fake = None
        warm(self.node.port)

    def rotating(self, sealed):
        """A node on the same broker that rotates its key every 2 s: (port, wait for the next
        activation)."""
        if not self._rot:
            self._rot = Node(self.workdir, "compat-rot", self.broker.port,
                             conf={"log": {"level": "info"},
                                   "keyex": {"interval_seconds": 2, "activation_seconds": 0}}).start()
            warm(self._rot.port)
        n = self._rot

        def wait_activation():
            before = n.metric("mqseal_activations_total")
            eventually(lambda: n.metric("mqseal_activations_total") > before, 10, msg="no activation")
            time.sleep(0.3)                       # the re-publication is on its way
        return (n.port if sealed else self.broker.port), wait_activation

    def fake_port(self, sealed):
        """A fake broker (compat.FakeBroker: Server Keep Alive 5) and a node in front of it."""
        if not self._fake:
            fb = FakeBroker({"ServerKeepAlive": 5})
            atexit.register(fb.stop)
            n = Node(self.workdir, "compat-fake", fb.port, conf={"log": {"level": "info"}}).start()
            self._fake = (fb, n)
        return self._fake[1].port if sealed else self._fake[0].port

    def nodes(self):
        return [self.node] + [x[1] for x in (self._ka, self._fake) if x] + ([self._rot] if self._rot else [])

    def opened(self):
        """Messages the nodes opened so far (a scenario that delivers must raise it)."""
        return sum(n.metric("mqseal_opened_total") for n in self.nodes())

    def limited_port(self, sealed):
        """A second broker with limits the first one does not have (and a node in front of it)."""
        if not self._ka:
            b = Broker(self.workdir, name="broker-limited", extra="max_keepalive 10\nmax_qos 1\nmax_packet_size 1000").start()
            n = Node(self.workdir, "compat-limited", b.port, conf={"log": {"level": "info"},
                                                               "keyex": {"keepalive_seconds": 10}}).start()
            warm(n.port)
            self._ka = (b, n)
        return self._ka[1].port if sealed else self._ka[0].port


def warm(port):
    """Waits until the node seals and opens its own messages (its key is ready)."""
    w = Wire(port, 5)
    w.connect("warm-%d" % port)
    w.subscribe(("cmp/warm", 1))

    def round_trip():
        w.publish("cmp/warm", "w", 1)
        return any(p["type"] == "PUBLISH" for p in (w.collect(0.3) or w.inbox))
    eventually(round_trip, 15, msg="the node never opened its own message")
    w.disconnect()


def delivered(obs):
    """True if the observation holds a delivered message on a scenario topic."""
    if isinstance(obs, dict):
        if str(obs.get("topic", "")).startswith("cmp/"):
            return True
        return any(delivered(v) for v in obs.values())
    if isinstance(obs, list):
        return any(delivered(v) for v in obs)
    return False


def judge(key, name, direct, sealed, opened):
    """Returns (status, detail): PASS, XFAIL (known or by-design difference confirmed), FAIL."""
    if isinstance(direct, dict) and "exception" in direct:
        return "FAIL", "the scenario failed against the broker itself: %s" % direct["exception"]
    same = direct == sealed
    known = (KNOWN_DIFFERENT.get(key) or KNOWN_DIFFERENT.get(name) or OPEN_DIFFERENT.get(key) or
             OPEN_DIFFERENT.get(name))
    design = BY_DESIGN.get(key) or BY_DESIGN.get(name)
    if delivered(direct) and opened <= 0 and not known:
        return "FAIL", "nothing was opened by the node: the scenario's topics were not sealed"
    if known:
        if same:
            return "FAIL", "expected to differ (%s) but the same now: remove it from KNOWN_DIFFERENT / OPEN_DIFFERENT" % known
        return "XFAIL", "known difference (%s)\n%s" % (known, diff(direct, sealed))
    if design:
        want = design[1](direct)
        if sealed != want or same:
            return "FAIL", "by-design difference (%s) not as documented\n%s" % (design[0], diff(want, sealed))
        return "XFAIL", "by design: %s" % design[0]
    if same:
        return "PASS", ""
    return "FAIL", diff(direct, sealed)


def main(argv):
    wanted = argv[1:]
    workdir = tempfile.mkdtemp(prefix="mqseal-compat-")
    results = []
    try:
        fx = Fixture(workdir)
        for fn, levels in SCENARIOS:
            for level in levels:
                key = "%s@v%d" % (fn.__name__, level)
                if wanted and fn.__name__ not in wanted and key not in wanted:
                    continue
                start = time.monotonic()
                try:
                    direct, sealed, opened = run_pair(fx, fn, level)
                    status, detail = judge(key, fn.__name__, direct, sealed, opened)
                    if os.environ.get("MQSEAL_COMPAT_VERBOSE") and status == "PASS":
                        detail = diff(direct, sealed)
                except Exception:  # noqa: BLE001 - report every failure
                    status, detail = "FAIL", traceback.format_exc()
                results.append((key, status))
                print("%s %s (%.1fs)%s" % (status, key, time.monotonic() - start,
                                           ("\n    " + detail.replace("\n", "\n    ")) if detail else ""),
                      flush=True)
        for n in fx.nodes():
            check(n.alive(), "%s is still running" % n.name)
            out = n.output()
            check("Sanitizer" not in out and "runtime error:" not in out, "sanitizer report: " + out[-3000:])
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        results.append(("fixture", "FAIL"))
        for name in sorted(os.listdir(workdir)):
            if name.endswith(".log"):
                with open(os.path.join(workdir, name), "rb") as f:
                    print("---- %s (tail)\n%s" % (name, f.read()[-3000:].decode("utf-8", "replace")))
    finally:
        stop_all()
        if not os.environ.get("MQSEAL_KEEP_TMP"):
            shutil.rmtree(workdir, ignore_errors=True)
    failed = [k for k, s in results if s == "FAIL"]
    print("%d same, %d known or by-design differences, %d failed%s" % (
        sum(s == "PASS" for _, s in results), sum(s == "XFAIL" for _, s in results), len(failed),
        (": " + ", ".join(failed)) if failed else ""))
    sys.exit(1 if failed or not results else 0)


if __name__ == "__main__":
    main(sys.argv)
