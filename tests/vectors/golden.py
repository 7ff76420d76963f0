#!/usr/bin/python3
"""golden.py - the golden vectors of docs/PROTOCOL.md §12, computed from the spec alone.

An independent implementation of the bytes of PROTOCOL.md §4 (key derivation), §5 (sealed
payload), §7 (announcement, protocol version 2) and §8 (confirmation) on Python's `cryptography` (Debian
python3-cryptography), sharing no code with crypto/. It prints every input and every output in
the format of tests/vectors/golden.txt ("name = value", value: hex bytes, a decimal integer or a
"quoted string"); the C unit tests (test_envelope, test_announce) read that file and check that
crypto/ produces exactly these bytes.

Usage:  golden.py                  print the vectors
        golden.py --check FILE     exit 1 if FILE differs from what this script computes
"""
import hashlib
import hmac
import struct
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

RAW = serialization.Encoding.Raw
RAW_PUB = serialization.PublicFormat.Raw

# ---- fixed inputs -------------------------------------------------------------------------
INPUTS = [
    ("id_a", "node-a"),
    ("id_b", "node-b"),
    ("id_c", "gw.site-2_C"),
    ("id_seed_a", bytes.fromhex("9b1e6f3a0c4d2e8f7a6b5c4d3e2f1a0b99887766554433221100ffeeddccbbaa")),
    ("id_seed_b", bytes.fromhex("0123456789abcdeffedcba98765432100f1e2d3c4b5a69788796a5b4c3d2e1f0")),
    ("eph_priv_a", bytes.fromhex("a8abababababababababababababababababababababababababababababab6b")),
    ("eph_priv_b", bytes.fromhex("c8cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd4d")),
    ("eph_priv_c", bytes.fromhex("202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f")),
    ("sender_secret_a", bytes.fromhex("5ec7e75ec7e7000102030405060708090a0b0c0d0e0f10111213141516171819")),
    ("epoch_a", 1764085542),
    ("rev_a", 3),
    ("issued_at_a", 1764085542123),
    ("interval_a", 3600),
    ("acked_epoch_b", 1764080000),  # entry for B: the newest epoch of B that A holds
    ("acked_epoch_c", 0),  # entry for C: none
    ("counter_floor_b", 42),  # entry for B: A's counter when B's current epoch began (§6.3)
    ("counter_floor_c", 1337),  # entry for C: the same for C's epoch
    ("rev_ac", 0),  # rev counts per (epoch, recipient): A's first message of epoch_a to C
    ("flags_ac", 1),  # REVOKE: epoch_a began because a peer was removed
    ("group_g", "commands"),  # a named group (§11.1) that B reads
    ("sender_secret_g", bytes.fromhex("9a7c0e11d2b3a4958677e6d5c4b3a291807f6e5d4c3b2a190807f6e5d4c3b2a1")),
    ("topic_ann", "mqseal/kx/node-b/node-a"),  # v2: <prefix>/kx/<recipient>/<sender>
    ("topic_ann_c", "mqseal/kx/gw.site-2_C/node-a"),
    ("topic_ack", "mqseal/ack/node-a/node-b"),  # B confirms A's epoch_a
    ("issued_at_ack", 1764085543500),
    ("topic_data", "home/kitchen/temp"),
    ("data_counter", 7),
    ("data_sealed_at", 1764085542250),
    ("data_flags", 1),  # retain_intent
    ("data_padding", 16),
    # MQTT 5 PUBLISH properties (§5.3, protected): Content Type (0x03) "application/json",
    # User Property (0x26) "unit" = "C".
    ("data_props", bytes.fromhex("030010") + b"application/json" + bytes.fromhex("260004") + b"unit"
     + bytes.fromhex("0001") + b"C"),
    ("data_payload", b'{"t":21.5}'),
]


def u8(v):
    return struct.pack(">B", v)


def u16(v):
    return struct.pack(">H", v)


def u32(v):
    return struct.pack(">I", v)


def u64(v):
    return struct.pack(">Q", v)


def str8(s):
    b = s.encode()
    assert 1 <= len(b) <= 64
    return u8(len(b)) + b


def str8_group(g):
    """str8 group of §7.2: empty for the default group, else 1..32 bytes."""
    b = g.encode()
    assert len(b) <= 32
    return u8(len(b)) + b


# ---- §4: HKDF-SHA256 (RFC 5869) and the labelled expand -----------------------------------
def hkdf_extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_expand(prk, info, length):
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]


def lexpand(prk, label, ctx, length):
    full = b"mqseal v1 " + label.encode()
    info = u16(length) + u8(len(full)) + full + u16(len(ctx)) + ctx
    return hkdf_expand(prk, info, length)


def epoch_keys(secret, sender_id, epoch, suite=1, group=""):
    prk = hkdf_extract(b"mqseal v1 epoch", secret)
    ctx = str8(sender_id) + u64(epoch) + u8(suite)
    if group:  # §4.2: a named group's key is bound to its name
        ctx += str8(group)
    return (lexpand(prk, "data key", ctx, 32), lexpand(prk, "data iv", ctx, 12),
            lexpand(prk, "key id", ctx, 8))


def wrap_key(priv, peer_pub, s_id, r_id, s_pub, r_pub):
    shared = X25519PrivateKey.from_private_bytes(priv).exchange(X25519PublicKey.from_public_bytes(peer_pub))
    assert shared != bytes(32)
    prk = hkdf_extract(b"mqseal v1 pair", shared)
    return lexpand(prk, "wrap key", str8(s_id) + str8(r_id) + s_pub + r_pub, 32)


def x_pub(priv):
    return X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes(RAW, RAW_PUB)


def ed_key(seed):
    return Ed25519PrivateKey.from_private_bytes(seed)


def signed(label, topic, body):
    t = topic.encode()
    return b"mqseal v1 " + label.encode() + u16(len(t)) + t + body


# ---- §7: announcement (version 2: one recipient; one entry per group it reads) -------------
def entry(v, o, r, i, rev, group, secret):
    """Entry i of A's message of epoch_a to r: str8 recipient_id, str8 group, the rest, the wrap with
    nonce u32(i) || u64(rev) and AAD "mqseal v1 wrap" || u64(epoch) [|| str8(group)]."""
    a_pub, r_pub = o["eph_pub_a"], o["eph_pub_" + r]
    nonce = u32(i) + u64(rev)
    aad = b"mqseal v1 wrap" + u64(v["epoch_a"]) + (str8(group) if group else b"")
    wk = wrap_key(v["eph_priv_a"], r_pub, v["id_a"], v["id_" + r], a_pub, r_pub)
    o["wrap_key_a" + r] = wk
    wrapped = AESGCM(wk).encrypt(nonce, secret, aad)
    body = str8(v["id_" + r]) + str8_group(group) + r_pub + u64(v["acked_epoch_" + r]) + u64(v["counter_floor_" + r])
    return body + wrapped, wrapped


def announce_to(v, o, r, rev, flags, topic, groups=("",)):
    """A's announcement of epoch_a to recipient r (one entry per group of groups), on topic."""
    body = b"MQSL" + u8(2) + u8(1) + u8(1) + u8(flags) + str8(v["id_a"])
    body += u64(v["epoch_a"]) + u32(rev) + u64(v["issued_at_a"]) + u32(v["interval_a"])
    body += o["eph_pub_a"] + u16(len(groups))
    for i, g in enumerate(groups):
        e, wrapped = entry(v, o, r, i, rev, g, v["sender_secret_g"] if g else v["sender_secret_a"])
        o["wrapped_a" + r + ("g" if g else "")] = wrapped
        body += e
    return body + ed_key(v["id_seed_a"]).sign(signed("announce", topic, body))


def announcement(v, o):
    a_pub = o["eph_pub_a"]
    o["announce"] = announce_to(v, o, "b", v["rev_a"], 0, v["topic_ann"])
    o["announce_c"] = announce_to(v, o, "c", v["rev_ac"], v["flags_ac"], v["topic_ann_c"])
    # B reads group_g: its message carries the default entry (index 0) and group_g's (index 1).
    o["announce_g"] = announce_to(v, o, "b", v["rev_a"], 0, v["topic_ann"], ("", v["group_g"]))
    # The recipient's side of §4.3 gives the same key (X25519(b, A_pub)).
    assert wrap_key(v["eph_priv_b"], a_pub, v["id_a"], v["id_b"], a_pub, o["eph_pub_b"]) == o["wrap_key_ab"]


# ---- §8: confirmation ---------------------------------------------------------------------
def confirmation(v, o):
    body = b"MQSL" + u8(2) + u8(2) + u8(1) + u8(0) + str8(v["id_b"]) + str8(v["id_a"])
    body += u64(v["epoch_a"]) + u64(v["issued_at_ack"])
    o["ack"] = body + ed_key(v["id_seed_b"]).sign(signed("ack", v["topic_ack"], body))


# ---- §5: sealed payload -------------------------------------------------------------------
def sealed(v, o):
    props, payload, pad = v["data_props"], v["data_payload"], v["data_padding"]
    inner = u32(len(props)) + props + u32(len(payload)) + payload
    inner += bytes(-len(inner) % pad)
    o["data_inner"] = inner
    hdr = u8(2) + u8(v["data_flags"]) + o["key_id"] + u64(v["data_counter"]) + u64(v["data_sealed_at"])
    topic = v["topic_data"].encode()
    aad = b"mqseal v1 data" + hdr + u16(len(topic)) + topic
    ctr = u64(v["data_counter"])
    nonce = o["data_iv"][:4] + bytes(a ^ b for a, b in zip(o["data_iv"][4:], ctr))
    o["data_sealed"] = hdr + AESGCM(o["data_key"]).encrypt(nonce, inner, aad)


def compute():
    v = dict(INPUTS)
    o = {}
    for n in ("a", "b"):
        o["id_pub_" + n] = ed_key(v["id_seed_" + n]).public_key().public_bytes(RAW, RAW_PUB)
    for n in ("a", "b", "c"):
        o["eph_pub_" + n] = x_pub(v["eph_priv_" + n])
    o["data_key"], o["data_iv"], o["key_id"] = epoch_keys(v["sender_secret_a"], v["id_a"], v["epoch_a"])
    o["data_key_g"], o["data_iv_g"], o["key_id_g"] = epoch_keys(v["sender_secret_g"], v["id_a"], v["epoch_a"],
                                                                group=v["group_g"])
    announcement(v, o)
    confirmation(v, o)
    sealed(v, o)
    sealed_signed(v, o)
    order = ["id_pub_a", "id_pub_b", "eph_pub_a", "eph_pub_b", "eph_pub_c", "data_key", "data_iv",
             "key_id", "data_key_g", "data_iv_g", "key_id_g", "wrap_key_ab", "wrap_key_ac", "wrapped_ab",
             "wrapped_ac", "wrapped_abg", "announce", "announce_c", "announce_g", "ack",
             "data_inner", "data_sealed", "data_sealed_signed"]
    assert sorted(order) == sorted(o)
    return INPUTS + [(k, o[k]) for k in order]


def fmt(value):
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, int):
        return str(value)
    return '"' + value + '"'


def render(pairs):
    lines = ["# golden vectors of docs/PROTOCOL.md §12, generated by tests/vectors/golden.py",
             "# name = value (hex bytes, decimal integer or \"string\"); inputs first, then outputs"]
    lines += ["%s = %s" % (k, fmt(val)) for k, val in pairs]
    return "\n".join(lines) + "\n"


def read_file(path):
    got = {}
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, value = line.partition(" = ")
            if not sep or name in got:
                raise SystemExit("%s: bad or repeated line: %s" % (path, line))
            got[name] = value
    return got


def check(path):
    want = {k: fmt(val) for k, val in compute_all()}
    got = read_file(path)
    bad = 0
    for k in sorted(set(want) | set(got)):
        if want.get(k) != got.get(k):
            print("mismatch: %s\n  file:     %s\n  computed: %s" % (k, got.get(k), want.get(k)))
            bad += 1
    print("%d vectors, %d mismatches" % (len(want), bad))
    return 1 if bad else 0


def main(argv):
    if len(argv) == 3 and argv[1] == "--check":
        return check(argv[2])
    if len(argv) == 1:
        sys.stdout.write(render(compute_all()))
        return 0
    sys.stderr.write("usage: golden.py [--check FILE]\n")
    return 2


# ---- §5.8: source authentication (signed envelope) ---------------------------------------
def sealed_signed(v, o):
    """§12.5's message with flag bit 2 (`signed`) set, so a different header, AAD and tag, followed
    by Ed25519(id_seed_a, "mqseal v1 source" || u16(len(topic)) || topic || envelope)."""
    props, payload, pad = v["data_props"], v["data_payload"], v["data_padding"]
    inner = u32(len(props)) + props + u32(len(payload)) + payload
    inner += bytes(-len(inner) % pad)
    flags = v["data_flags"] | 0x04
    hdr = u8(2) + u8(flags) + o["key_id"] + u64(v["data_counter"]) + u64(v["data_sealed_at"])
    topic = v["topic_data"].encode()
    aad = b"mqseal v1 data" + hdr + u16(len(topic)) + topic
    ctr = u64(v["data_counter"])
    nonce = o["data_iv"][:4] + bytes(a ^ b for a, b in zip(o["data_iv"][4:], ctr))
    env = hdr + AESGCM(o["data_key"]).encrypt(nonce, inner, aad)
    sig = ed_key(v["id_seed_a"]).sign(b"mqseal v1 source" + u16(len(topic)) + topic + env)
    ed_key(v["id_seed_a"]).public_key().verify(sig, b"mqseal v1 source" + u16(len(topic)) + topic + env)
    o["data_sealed_signed"] = env + sig


# ---- presence (key-exchange protocol version 2, type 0x03) --------------------------------
# Kept apart from compute() so the announcement vectors can change beside it: node-a (id_seed_a)
# says on its presence topic that the control connection opened at pres_session is online, and
# signs its will (offline, issued_at = session).
PRESENCE_INPUTS = [
    ("topic_presence", "mqseal/presence/node-a"),
    ("pres_session", 1764085541000),
    ("pres_issued_at", 1764085541250),
]


def presence_msg(v, online, issued_at):
    body = b"MQSL" + u8(2) + u8(3) + u8(1) + u8(0) + str8(v["id_a"])
    body += u8(1 if online else 0) + u64(v["pres_session"]) + u64(issued_at)
    return body + ed_key(v["id_seed_a"]).sign(signed("presence", v["topic_presence"], body))


def presence_vectors():
    v = dict(INPUTS + PRESENCE_INPUTS)
    online = presence_msg(v, True, v["pres_issued_at"])
    will = presence_msg(v, False, v["pres_session"])
    assert len(online) == 90 + len(v["id_a"])
    return PRESENCE_INPUTS + [("presence_online", online), ("presence_will", will)]


def compute_all():
    return compute() + presence_vectors()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
