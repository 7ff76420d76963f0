"""Hostile device input closes only that one connection, with one log line naming the peer and the
reason; the broker sees nothing from it; the process and every other connection go on."""
# ctest-labels: relay hostile
import socket
import time

from harness import (Broker, Client, Node, check, connect_packet, eventually, publish_packet, raw_connect,
                     read_closed, run, varint)

PLAIN = {"topics": {"plaintext": ["#"]}, "listen": {"max_packet_size": 4096, "connect_timeout_seconds": 2}}


def setup(workdir):
    broker = Broker(workdir).start()
    node = Node(workdir, "relay", broker.port, conf=PLAIN).start()
    # A well-behaved device that must keep working through every attack.
    good = Client("good")
    good.connect(node.port)
    good.subscribe("good/#", 1)
    return broker, node, good


def good_still_works(good, tag):
    good.publish("good/t", tag, 1)
    m = good.expect(1)[0]
    check(m.payload == tag, "the good device still works after %r" % tag)


def broker_connections(broker):
    return broker.output().count("New client connected")


def attack(node, broker, good, name, data, close_after_send=False):
    before = broker_connections(broker)
    errors_before = node.metric("mqseal_protocol_errors_total")
    s = raw_connect(node.port)
    s.sendall(data)
    if close_after_send:
        s.close()
    else:
        check(read_closed(s, 5) is not None, "%s: mqseal closed the connection" % name)
        s.close()
    if not close_after_send:
        eventually(lambda: node.metric("mqseal_protocol_errors_total") > errors_before, 5,
                   msg="%s counted as a protocol error" % name)
    time.sleep(0.2)
    check(broker_connections(broker) == before, "%s: the broker saw no connection" % name)
    good_still_works(good, name.encode())


def test_garbage(workdir):
    broker, node, good = setup(workdir)
    attack(node, broker, good, "garbage", b"\x00\xff\xfe garbage that is not MQTT at all")
    check("first packet is not CONNECT" in node.output() or "reserved" in node.output(), "reason logged")
    check("127.0.0.1:" in node.output(), "peer named in the log line")


def test_publish_before_connect(workdir):
    broker, node, good = setup(workdir)
    attack(node, broker, good, "publish-first", publish_packet("x/y", b"payload"))
    check("first packet is not CONNECT" in node.output(), "reason logged")


def test_lying_remaining_length(workdir):
    broker, node, good = setup(workdir)
    # CONNECT claiming 100 bytes of body but carrying a complete 15-byte CONNECT: the parser must
    # not accept it (the body is inconsistent); it waits, then the connect timeout closes it.
    pkt = connect_packet("liar")
    body = pkt[2:]
    lying = b"\x10" + varint(len(body) - 3) + body
    attack(node, broker, good, "lying-length", lying)


def test_five_byte_varint(workdir):
    broker, node, good = setup(workdir)
    attack(node, broker, good, "varint5", b"\x10\xff\xff\xff\xff\x01")
    check("remaining length" in node.output() or "varint" in node.output(), "reason logged")


def test_oversize_packet(workdir):
    broker, node, good = setup(workdir)
    # Over listen.max_packet_size (4096): refused from the fixed header alone.
    attack(node, broker, good, "oversize", b"\x10" + varint(100000) + b"\x00" * 10)
    check("over" in node.output() and "limit" in node.output(), "reason logged")


def test_oversize_after_connect(workdir):
    broker, node, good = setup(workdir)
    s = raw_connect(node.port)
    s.sendall(connect_packet("big-later"))
    s.recv(4)  # CONNACK
    before = node.metric("mqseal_protocol_errors_total")
    s.sendall(publish_packet("good/big", b"x" * 8000))
    check(read_closed(s, 5) is not None, "closed after an oversize PUBLISH")
    check(node.metric("mqseal_protocol_errors_total") == before + 1, "counted")
    good_still_works(good, b"after-oversize")
    check(not good.quiet(0.3), "the oversize PUBLISH never reached the broker")


def test_half_packet_then_close(workdir):
    broker, node, good = setup(workdir)
    pkt = connect_packet("half")
    attack(node, broker, good, "half-sent", pkt[: len(pkt) // 2], close_after_send=True)


def test_slowloris_connect_timeout(workdir):
    broker, node, good = setup(workdir)
    s = raw_connect(node.port)
    pkt = connect_packet("slow")
    t0 = time.monotonic()
    for b in pkt[:5]:  # trickle a few bytes, never finish
        s.sendall(bytes([b]))
        time.sleep(0.2)
    check(read_closed(s, 6) is not None, "slow CONNECT closed")
    check(time.monotonic() - t0 < 6, "closed by the connect timeout")
    check("CONNECT" in node.output(), "reason logged")
    good_still_works(good, b"after-slowloris")


def test_second_connect(workdir):
    broker, node, good = setup(workdir)
    s = raw_connect(node.port)
    s.sendall(connect_packet("twice"))
    check(s.recv(4)[:1] == b"\x20", "CONNACK")
    s.sendall(connect_packet("twice"))
    check(read_closed(s, 5) is not None, "second CONNECT closes the connection")
    good_still_works(good, b"after-second-connect")


def test_bad_protocol_level(workdir):
    broker, node, good = setup(workdir)
    s = raw_connect(node.port)
    pkt = bytearray(connect_packet("lvl"))
    pkt[8] = 9  # protocol level 9
    s.sendall(bytes(pkt))
    data = read_closed(s, 5)
    check(data is not None and data[:4] == b"\x20\x02\x00\x01", "CONNACK 0x01 then close: %r" % data)


def test_max_connections(workdir):
    broker = Broker(workdir).start()
    node = Node(workdir, "relay", broker.port,
                conf={"topics": {"plaintext": ["#"]}, "listen": {"max_connections": 3}}).start()
    clients = []
    for i in range(3):
        c = Client("mc-%d" % i)
        c.connect(node.port)
        clients.append(c)
    s = raw_connect(node.port)
    check(read_closed(s, 5) == b"", "fourth connection refused at once")
    check(node.metric("mqseal_device_connections_rejected_total") == 1, "counted")
    clients[0].subscribe("mc/#", 1)
    clients[1].publish("mc/x", b"still-fine", 1)
    check(clients[0].expect(1)[0].payload == b"still-fine", "existing connections unaffected")


def test_tls_and_http_clients_named(workdir):
    """A TLS ClientHello or an HTTP request on the device port is logged as such (issue 16 item 6), not
    as "fixed header flags invalid"; each closes only its connection."""
    import ssl
    broker, node, good = setup(workdir)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = raw_connect(node.port)
    try:
        ctx.wrap_socket(s, server_hostname="localhost")
        check(False, "no TLS handshake can succeed")
    except (ssl.SSLError, OSError):
        pass
    finally:
        s.close()
    node.wait_log("a TLS client connected to the plain MQTT port")
    for req in (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", b"POST / HTTP/1.1\r\n\r\n", b"HEAD / HTTP/1.0\r\n\r\n"):
        s = raw_connect(node.port)
        s.sendall(req)
        check(read_closed(s, 5) is not None, "%r: closed" % req[:4])
    eventually(lambda: node.output().count("closing connection: an HTTP client connected to the MQTT port") == 3, 5,
               msg="each HTTP request named")
    # Sent in pieces, a method is still recognised ("PO" could start nothing else).
    s = raw_connect(node.port)
    s.sendall(b"PO")
    time.sleep(0.2)
    s.sendall(b"ST / HTTP/1.1\r\n\r\n")
    check(read_closed(s, 5) is not None, "split POST closed")
    eventually(lambda: node.output().count("closing connection: an HTTP client connected to the MQTT port") == 4, 5, msg="split POST named")
    check("fixed header flags invalid" not in node.output(), "not the MQTT parser's words")
    good_still_works(good, b"after-tls-and-http")


if __name__ == "__main__":
    run([test_garbage, test_publish_before_connect, test_lying_remaining_length, test_five_byte_varint,
         test_oversize_packet, test_oversize_after_connect, test_half_packet_then_close,
         test_slowloris_connect_timeout, test_second_connect, test_bad_protocol_level, test_max_connections,
         test_tls_and_http_clients_named])
