"""Requests to LMS-supplied addresses (core/outbound.py) never reach loopback, private,
link-local or special-purpose addresses, however the URL is written and whatever its name
resolves to while connecting; redirects are returned, not followed; answers are read only so
far and so long.

All traffic stays on 127.0.0.0/8: names resolve through `FakeResolver` (no DNS), and
`LoopbackOnlySocket` records, and stops, any connection that would leave the machine.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl

import pytest
import urllib3

from core import outbound
from core.outbound import AddressPolicy, DestinationRefused, OutboundClient, Refusal
from tests.support.egress import CannedServer, free_port_on
from tests.support.egress import attempts, resolve  # noqa: F401 (fixtures)

NOTHING_ALLOWED = AddressPolicy()
LOOPBACK_ALLOWED = AddressPolicy(outbound.parse_networks(["127.0.0.0/8"]))


# --- which addresses ---------------------------------------------------------------------


@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", Refusal.LOOPBACK), ("127.255.255.254", Refusal.LOOPBACK), ("::1", Refusal.LOOPBACK),
    ("10.0.0.5", Refusal.PRIVATE), ("172.16.3.4", Refusal.PRIVATE), ("192.168.1.1", Refusal.PRIVATE),
    ("100.64.0.1", Refusal.PRIVATE), ("fd12:3456::1", Refusal.PRIVATE), ("fc00::1", Refusal.PRIVATE),
    ("169.254.169.254", Refusal.LINK_LOCAL), ("fe80::1", Refusal.LINK_LOCAL),
    ("0.0.0.0", Refusal.UNSPECIFIED), ("::", Refusal.UNSPECIFIED),
    ("224.0.0.1", Refusal.MULTICAST), ("239.255.255.250", Refusal.MULTICAST), ("ff02::1", Refusal.MULTICAST),
    ("240.0.0.1", Refusal.RESERVED), ("255.255.255.255", Refusal.RESERVED), ("0.1.2.3", Refusal.RESERVED),
    ("192.0.0.9", Refusal.RESERVED), ("198.18.0.1", Refusal.RESERVED), ("192.0.2.1", Refusal.RESERVED),
    ("2001:db8::1", Refusal.RESERVED),
    # IPv4 written inside IPv6: mapped, compatible, 6to4, NAT64
    ("::ffff:127.0.0.1", Refusal.LOOPBACK), ("::ffff:10.1.2.3", Refusal.PRIVATE),
    ("::ffff:169.254.169.254", Refusal.LINK_LOCAL), ("::127.0.0.1", Refusal.LOOPBACK),
    ("2002:7f00:1::1", Refusal.LOOPBACK), ("2002:a9fe:a9fe::1", Refusal.LINK_LOCAL),
    ("64:ff9b::a9fe:a9fe", Refusal.LINK_LOCAL), ("64:ff9b::a00:1", Refusal.PRIVATE),
    # public addresses (only classified here, never connected to)
    ("93.184.215.14", None), ("2606:4700:4700::1111", None), ("::ffff:93.184.215.14", None),
    ("2002:5db8:d70e::1", None),
])
def test_addresses_are_classified(address, kind):
    assert outbound.address_kind(ipaddress.ip_address(address)) == kind
    assert NOTHING_ALLOWED.refusal(ipaddress.ip_address(address)) == kind


def test_an_allowed_network_lets_in_that_network_only():
    policy = AddressPolicy(outbound.parse_networks(["10.20.0.0/16", "127.0.0.0/8"]))
    assert policy.refusal(ipaddress.ip_address("10.20.3.4")) is None
    assert policy.refusal(ipaddress.ip_address("10.21.0.1")) == Refusal.PRIVATE
    assert policy.refusal(ipaddress.ip_address("::ffff:127.0.0.1")) is None  # the same address, dual-stack
    assert policy.refusal(ipaddress.ip_address("::1")) == Refusal.LOOPBACK  # another network
    assert policy.refusal(ipaddress.ip_address("169.254.169.254")) == Refusal.LINK_LOCAL


@pytest.mark.parametrize("value", ["10.0.0.1/8", "not-a-network", "10.0.0.0/33"])
def test_a_network_that_is_not_a_cidr_is_refused(value):
    with pytest.raises(ValueError, match=value.split("/")[0]):
        outbound.parse_networks([value])


# --- which URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize("url, reason", [
    ("file:///etc/passwd", Refusal.SCHEME), ("ftp://lms.test/outcomes", Refusal.SCHEME),
    ("gopher://127.0.0.1:70/_GET", Refusal.SCHEME), ("javascript:alert(1)", Refusal.SCHEME),
    ("dict://127.0.0.1:6379/info", Refusal.SCHEME), ("//lms.test/outcomes", Refusal.INVALID),
    ("http://user@lms.test/outcomes", Refusal.USERINFO), ("http://user:pw@lms.test/", Refusal.USERINFO),
    ("http://lms.example@127.0.0.1/", Refusal.USERINFO), ("http://lms.test\\@127.0.0.1/", Refusal.USERINFO),
    ("http:///outcomes", Refusal.INVALID), ("http://[::1/", Refusal.INVALID),
    ("http://127.0.0.1:9/outcomes", Refusal.LOOPBACK), ("http://[::1]:9/", Refusal.LOOPBACK),
    ("http://[::ffff:127.0.0.1]/", Refusal.LOOPBACK), ("https://10.0.0.5/", Refusal.PRIVATE),
    ("http://169.254.169.254/latest/meta-data/", Refusal.LINK_LOCAL),
])
def test_urls_that_may_not_be_requested(url, reason, attempts, resolve):
    with pytest.raises(DestinationRefused) as refused:
        OutboundClient(NOTHING_ALLOWED).request("POST", url, body=b"x")
    assert refused.value.reason == reason
    assert attempts == []


# --- at connection time ----------------------------------------------------------------------


@pytest.fixture
def server():
    with CannedServer(status=200, body=b"<ok/>", headers={"Content-Type": "application/xml"}) as running:
        yield running


@pytest.mark.parametrize("name, addresses, reason", [
    ("localhost", ["127.0.0.1", "::1"], Refusal.LOOPBACK),
    ("lms.test", ["127.0.0.1"], Refusal.LOOPBACK),
    ("intranet.test", ["10.0.0.5"], Refusal.PRIVATE),
    ("metadata.test", ["169.254.169.254"], Refusal.LINK_LOCAL),
    ("mapped.test", ["::ffff:127.0.0.1"], Refusal.LOOPBACK),
    ("2130706433", ["127.0.0.1"], Refusal.LOOPBACK),  # what the system makes of a decimal IPv4
])
def test_a_name_resolving_to_a_refused_address_is_not_connected_to(server, attempts, resolve, name, addresses,
                                                                   reason):
    resolver = resolve({name: [addresses]})
    with pytest.raises(DestinationRefused) as refused:
        OutboundClient(NOTHING_ALLOWED).request("POST", server.url(host=name), body=b"x")
    assert (refused.value.reason, refused.value.host) == (reason, name)
    assert server.requests == [] and attempts == []
    assert resolver.lookups == {name: 1}


def test_one_refused_address_among_several_refuses_the_name(server, attempts, resolve):
    decoy = "127.0.0.2"  # stands for a public address: the only one allowed here
    resolve({"lms.test": [[decoy, "127.0.0.1"]]})
    policy = AddressPolicy(outbound.parse_networks([f"{decoy}/32"]))
    with pytest.raises(DestinationRefused) as refused:
        OutboundClient(policy).request("POST", server.url(host="lms.test"), body=b"x")
    assert refused.value.address == "127.0.0.1"
    assert server.requests == []


def test_dns_rebinding_cannot_turn_an_allowed_name_into_loopback(attempts, resolve):
    """The name answers with an allowed address (127.0.0.2 stands for a public one), then with
    127.0.0.1. Every connection resolves once and connects to the address it checked, so the
    first request reaches the allowed server and the second is refused: nothing ever reaches
    the loopback service, neither by a second look-up nor by reusing the first answer."""
    port = free_port_on("127.0.0.1", "127.0.0.2")
    with CannedServer(host="127.0.0.2", port=port, body=b"public") as public, \
            CannedServer(host="127.0.0.1", port=port, body=b"internal") as internal:
        resolver = resolve({"lms.test": [["127.0.0.2"], ["127.0.0.1"]]})
        client = OutboundClient(AddressPolicy(outbound.parse_networks(["127.0.0.2/32"])))
        url = f"http://lms.test:{port}/outcomes"
        assert client.request("POST", url, body=b"1").body == b"public"
        with pytest.raises(DestinationRefused) as refused:
            client.request("POST", url, body=b"2")  # the first connection was closed by the server
        assert refused.value.address == "127.0.0.1"
        assert len(public.requests) == 1 and internal.requests == []
        assert resolver.lookups == {"lms.test": 2}  # one look-up per connection, none in between
    assert attempts == []


def test_an_allowed_network_is_reached(server, resolve):
    resolve({"lms.test": [["127.0.0.1"]]})
    answer = OutboundClient(LOOPBACK_ALLOWED).request("POST", server.url(host="lms.test"), body=b"x")
    assert (answer.status, answer.body, answer.truncated) == (200, b"<ok/>", False)
    assert server.requests[0]["headers"]["Host"] == f"lms.test:{server.port}"


def test_a_redirect_is_returned_not_followed(server):
    """Even to an allowed address: where a grade goes is the URL the LMS gave, not a Location."""
    with CannedServer(host="127.0.0.2", status=302, headers={"Location": server.url()}) as redirecting:
        answer = OutboundClient(LOOPBACK_ALLOWED).request("POST", redirecting.url(), body=b"x")
    assert answer.status == 302 and answer.headers["Location"] == server.url()
    assert len(redirecting.requests) == 1 and server.requests == []


def test_a_long_answer_is_read_only_so_far():
    with CannedServer(body=b"A" * (3 * outbound.MAX_ANSWER_BYTES)) as long:
        answer = OutboundClient(LOOPBACK_ALLOWED).request("POST", long.url(), body=b"x")
    assert answer.truncated and len(answer.body) == outbound.MAX_ANSWER_BYTES


def test_an_answer_dripped_slowly_is_cut_off_at_the_deadline():
    """Each byte arrives well within the read timeout; the whole answer would take ~10 s."""
    with CannedServer(body=b"B" * 200, drip_seconds=0.05) as slow:
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            OutboundClient(LOOPBACK_ALLOWED).request("POST", slow.url(), body=b"x", timeout=0.5)


# --- HTTPS: the checked address, the host name's certificate --------------------------------


def _certificates(tmp_path, name):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def build(subject, issuer, key, issuer_key, *, ca, san=None):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = build(ca_name, ca_name, ca_key, ca_key, ca=True)
    leaf = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), ca_name, key, ca_key, ca=False,
                 san=name)
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(pem) + key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "leaf.pem")
    return str(tmp_path / "ca.pem"), server_context


def test_https_keeps_the_host_name_for_sni_and_certificate_checks(tmp_path, resolve):
    ca, context = _certificates(tmp_path, "lms.test")
    server_names = []
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    resolve({"lms.test": [["127.0.0.1"]], "other.test": [["127.0.0.1"]]})
    with CannedServer(body=b"<ok/>", tls=context) as tls:
        client = OutboundClient(LOOPBACK_ALLOWED, ca_certs=ca)
        assert client.request("POST", tls.url(host="lms.test"), body=b"x").body == b"<ok/>"
        assert server_names == ["lms.test"]
        with pytest.raises(urllib3.exceptions.SSLError):  # a certificate for another name
            client.request("POST", tls.url(host="other.test"), body=b"x")
        with pytest.raises(DestinationRefused):
            OutboundClient(NOTHING_ALLOWED, ca_certs=ca).request("POST", tls.url(host="lms.test"), body=b"x")
    assert len(tls.requests) == 1


def test_the_process_client_follows_the_setting(settings, server):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    with pytest.raises(DestinationRefused):
        outbound.request("POST", server.url(), body=b"x")
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    assert outbound.request("POST", server.url(), body=b"x").status == 200
    assert outbound.client() is outbound.client() and outbound.client().policy == LOOPBACK_ALLOWED
    settings.OUTBOUND_ALLOWED_NETWORKS = []  # pooled connections of the other policy are not reused
    with pytest.raises(DestinationRefused):
        outbound.request("POST", server.url(), body=b"x")
    assert len(server.requests) == 1
