"""PKIOperation through the real httpd, driven by the suite's own client
(scepclient_own.py): every cipher x digest x transport, renewal both ways,
key reuse, idempotent retries, GetCert, GetCRL after a revoke,
GetNextCACert, failures that get a signed FAILURE and input that gets
HTTP 400 or 413.

One server config (RA + issuing CA with its chain, static challenge,
7-day lifetime, a small SCEPMaxRequestSize, a next CA) serves every test
here, so each MPM starts it once."""

import base64
import http.client
import ipaddress
import os
import re
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

import scepclient_own as own
from scepclient_own import check_issued, name_of, serial_hex
from scepenv import scep_directives, scep_location

CHALLENGE = "own-client-secret"
LIFETIME = 7
MAX_REQUEST = 16384
PKIOP = own.PKIOP


def snippet(pki):
    return "\n".join([
        scep_directives(pki.ca_chain_file, pki.issuing.key_file,
                        pki.ra.cert_file, pki.ra.key_file),
        f"SCEPChallengePassword {CHALLENGE}",
        f"SCEPCertificateLifetime {LIFETIME}",
        # renewals right away; the window has tests of its own (test_240)
        "SCEPRenewalWindow 100%",
        "SCEPAllowSubjectAltName dns *.example",
        "SCEPAllowSubjectAltName email *@example.org",
        "SCEPAllowSubjectAltName uri urn:uuid:*",
        "SCEPAllowSubjectAltName ip 192.0.2.0/24",
        f"SCEPMaxRequestSize {MAX_REQUEST}",
        f'SCEPNextCACertificateFile "{pki.other.cert_file}"',
        "SCEPStore sqlite3:state/own-200.db",
        "LimitRequestLine 65536",       # so that an oversize GET reaches the module
        scep_location("/scep"),
    ])


@pytest.fixture(autouse=True)
def _server(env, pki):
    env.ensure(snippet(pki))


@pytest.fixture
def client(env, pki, own_keys, tmp_path):
    return own.OwnClient(env, tmp_path, recipient=pki.ra.cert_file,
                         trust=pki.ca_chain_file, signer=pki.ra.cert,
                         ca=pki.issuing.cert, keys=own_keys)


def issued_ok(rep, req, pki, tmp_path, subject, key=None, sans=None):
    assert rep.status == "SUCCESS", rep
    return check_issued(rep.cert, trust=pki.ca_chain_file, issuer=pki.issuing.cert,
                        key=key or req.key, subject=subject, lifetime_days=LIFETIME,
                        tmp=tmp_path, sans=sans)


def csr_file(client, key, cn, **kw):
    return own.make_csr(client._fresh("csr").with_suffix(".pem"), key, cn, **kw)


# ---------------------------------------------------------------------------
# Enrollment: every content cipher x digest x transport


@pytest.mark.parametrize("transport", ["post", "get"])
@pytest.mark.parametrize("digest", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("cipher", ["3des", "aes128", "aes256"])
def test_200_001_enroll(env, pki, client, own_keys, tmp_path, cipher, digest, transport):
    """PKCSReq -> SUCCESS; the reply mirrors the request's cipher and
    digest and is encrypted to the request's self-signed signer."""
    cn = f"matrix-{cipher}-{digest}-{transport}"
    key = own_keys.get(cn)
    req = client.request("pkcsreq", key, csr=csr_file(client, key, cn, challenge=CHALLENGE),
                         cipher=cipher, digest=digest)
    rep = client.exchange(req, transport)
    issued_ok(rep, req, pki, tmp_path, cn)
    assert rep.fields["envelope"].endswith(" pkcs1")
    if transport == "post":
        own.openssl_cross_check(client, rep, req, tmp_path)


# (Apple's encoding is test_200_001's "get"; the RFC's percent-encoding is
# certmonger's in test_220)
@pytest.mark.parametrize("transport", ["get-sscep", "get-raw", "get-url", "post-octet",
                                       "post-query"])
def test_200_002_transports(env, pki, client, own_keys, tmp_path, transport):
    """The message arrives however real clients encode it."""
    cn = f"transport-{transport}"
    key = own_keys.get(cn)
    req = client.request("pkcsreq", key, csr=csr_file(client, key, cn, challenge=CHALLENGE))
    rep = client.exchange(req, transport)
    issued_ok(rep, req, pki, tmp_path, cn)


def test_200_003_oaep_aes192_cli_csr(env, pki, client, own_keys, tmp_path):
    """RSAES-OAEP key transport and AES-192; the CSR built by the CLI
    (--subject/--challenge). The reply uses OAEP too."""
    key = own_keys.get("oaep-aes192")
    req = client.request("pkcsreq", key, subject="/O=mod_scep_ota own client/CN=oaep",
                         challenge=CHALLENGE, cipher="aes192", digest="sha256", oaep=True)
    rep = client.exchange(req)
    issued_ok(rep, req, pki, tmp_path, "oaep")
    assert rep.fields["envelope"] == "AES-192-CBC oaep"
    own.openssl_cross_check(client, rep, req, tmp_path)


def test_200_004_template_not_csr_extensions(env, pki, client, own_keys, tmp_path):
    """Extensions asked for in the CSR are not copied: the certificate has
    the server's template. SANs of a type no certificate carries refuse the
    request; DNS, IP, email and URI names the policy allows are kept."""
    cn = "template"
    key = own_keys.get(cn)
    allowed = [x509.DNSName("device.example"),
               x509.IPAddress(ipaddress.ip_address("192.0.2.7")),
               x509.RFC822Name("dev@example.org"),
               x509.UniformResourceIdentifier("urn:uuid:1234")]
    exts = [(x509.BasicConstraints(ca=True, path_length=None), True),
            (x509.KeyUsage(True, True, True, True, True, True, True, False, False), True),
            (x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                    x509.oid.ExtendedKeyUsageOID.CODE_SIGNING]), False)]
    for odd in (x509.DirectoryName(name_of("other")),
                x509.RegisteredID(x509.ObjectIdentifier("1.2.3.4"))):
        csr = csr_file(client, key, cn, challenge=CHALLENGE, sans=allowed + [odd],
                       extensions=exts)
        rep = client.exchange(client.request("pkcsreq", key, csr=csr))
        assert (rep.status, rep.fail_info) == ("FAILURE", "badRequest"), rep
    csr = csr_file(client, key, cn, challenge=CHALLENGE, sans=allowed, extensions=exts)
    rep = client.exchange(client.request("pkcsreq", key, csr=csr))
    issued_ok(rep, None, pki, tmp_path, cn, key=key, sans=allowed)


def test_200_005_log_line(env, pki, client, own_keys):
    """Each answered PKIOperation is logged once with its outcome (info)."""
    start = env.log_size()
    rep, req = client.enroll("logged", challenge=CHALLENGE)
    assert rep.status == "SUCCESS"
    log = env.read_log(start)
    lines = [ln for ln in log.splitlines()
             if re.search(rf"PKIOperation .*txid={re.escape(req.txid)} SUCCESS "
                          rf"serial={serial_hex(rep.cert)}\b", ln)]
    assert len(lines) == 1 and "[scep_ota:info]" in lines[0], log[-2000:]
    assert CHALLENGE not in log, "the challenge password is logged"


def test_200_006_ec_key(env, pki, client, own_keys, tmp_path):
    """An EC P-256 requester: the SUCCESS envelope uses ECDH key agreement
    (it cannot use key transport) and opens with the EC key."""
    key = own_keys.get("ec-p256", bits="p256")
    req = client.request("pkcsreq", key,
                         csr=csr_file(client, key, "ec-p256", challenge=CHALLENGE))
    rep = client.exchange(req)
    issued_ok(rep, req, pki, tmp_path, "ec-p256")


def test_200_007_ber_request(env, pki, client, own_keys, tmp_path):
    """A request in BER (indefinite lengths, the content as a constructed
    OCTET STRING in pieces), as jscep and Apple devices send it."""
    key = own_keys.get("ber")
    req = client.request("pkcsreq", key, csr=csr_file(client, key, "ber", challenge=CHALLENGE))
    ber = own.to_ber(req.der)
    assert ber != req.der and ber[1] == 0x80
    rep = client.read(own.send(env, ber), req)
    issued_ok(rep, req, pki, tmp_path, "ber")


@pytest.mark.parametrize("digest", ["sha224", "sha384"])
def test_200_008_other_digests(env, pki, client, own_keys, tmp_path, digest):
    cn = f"digest-{digest}"
    key = own_keys.get(cn)
    req = client.request("pkcsreq", key, csr=csr_file(client, key, cn, challenge=CHALLENGE),
                         digest=digest, cipher="aes256")
    issued_ok(client.exchange(req, "get"), req, pki, tmp_path, cn)


def test_200_009_subject_or_san_needed(env, pki, client, own_keys, tmp_path):
    """An empty subject with a DNS SAN is certified; with neither, badRequest."""
    key = own_keys.get("san-only")
    sans = [x509.DNSName("san-only.example")]
    req = client.request("pkcsreq", key, csr=csr_file(client, key, x509.Name([]),
                                                      challenge=CHALLENGE, sans=sans))
    issued_ok(client.exchange(req), req, pki, tmp_path, x509.Name([]), sans=sans)
    key2 = own_keys.get("nothing")
    rep = client.exchange(client.request(
        "pkcsreq", key2, csr=csr_file(client, key2, x509.Name([]), challenge=CHALLENGE)))
    assert (rep.status, rep.fail_info) == ("FAILURE", "badRequest")


# ---------------------------------------------------------------------------
# Renewal


def test_200_010_renewalreq(env, pki, client, own_keys, tmp_path):
    """RenewalReq signed by the certificate issued before, for a new key,
    without a challenge -> SUCCESS; the reply is encrypted to the old
    certificate (opened with the old key)."""
    old_key, new_key = own_keys.get("renew-a-old"), own_keys.get("renew-a-new")
    rep, req = client.enroll("renew-a", key=old_key, challenge=CHALLENGE)
    old = issued_ok(rep, req, pki, tmp_path, "renew-a")
    old_file = tmp_path / "old.pem"
    old_file.write_bytes(old.public_bytes(Encoding.PEM))

    req2 = client.request("renewalreq", old_key, cert=old_file,
                          csr=csr_file(client, new_key, "renew-a"))
    rep2 = client.exchange(req2)
    new = issued_ok(rep2, req2, pki, tmp_path, "renew-a", key=new_key)
    assert new.serial_number != old.serial_number
    assert rep2.der.recipient_serial == old.serial_number


def test_200_011_pkcsreq_signed_by_issued_cert(env, pki, client, own_keys, tmp_path):
    """PKCSReq signed by a valid certificate of ours, no challenge: a renewal."""
    old_key, new_key = own_keys.get("renew-b-old"), own_keys.get("renew-b-new")
    rep, req = client.enroll("renew-b", key=old_key, challenge=CHALLENGE)
    old = issued_ok(rep, req, pki, tmp_path, "renew-b")
    old_file = tmp_path / "old.pem"
    old_file.write_bytes(old.public_bytes(Encoding.PEM))
    start = env.log_size()
    req2 = client.request("pkcsreq", old_key, cert=old_file,
                          csr=csr_file(client, new_key, "renew-b"), digest="sha512",
                          cipher="aes256")
    rep2 = client.exchange(req2, "get")
    issued_ok(rep2, req2, pki, tmp_path, "renew-b", key=new_key)
    assert "PKIOperation renewed:" in env.read_log(start)


def test_200_012_renewal_needs_our_certificate(env, pki, client, own_keys):
    """A RenewalReq signed by a self-signed certificate, or by a
    certificate of another CA, is refused; so is a PKCSReq without
    challenge signed by a foreign certificate."""
    key = own_keys.get("renew-c")
    csr = csr_file(client, key, "renew-c")
    rep = client.exchange(client.request("renewalreq", key, csr=csr))
    assert (rep.status, rep.fail_info) == ("FAILURE", "badRequest")
    # pki.leaf: issued by the issuing CA, but not by this server (not in the store)
    key2 = own.Key("leaf", pki.leaf.key, pki.leaf.key_file)
    rep = client.exchange(client.request("renewalreq", key2, cert=pki.leaf.cert_file,
                                         csr=csr_file(client, key2, "renew-c")))
    assert (rep.status, rep.fail_info) == ("FAILURE", "badRequest")
    rep = client.exchange(client.request("pkcsreq", key2, cert=pki.leaf.cert_file,
                                         csr=csr_file(client, key, "renew-c")))
    assert rep.status == "FAILURE", rep


def test_200_013_renewal_other_subject_refused(env, pki, client, own_keys, tmp_path):
    """A renewal must keep the subject: signed by our certificate for
    another name, it is not a renewal and needs a challenge."""
    old_key, new_key = own_keys.get("renew-d-old"), own_keys.get("renew-d-new")
    rep, req = client.enroll("renew-d", key=old_key, challenge=CHALLENGE)
    old = issued_ok(rep, req, pki, tmp_path, "renew-d")
    old_file = tmp_path / "old.pem"
    old_file.write_bytes(old.public_bytes(Encoding.PEM))
    rep2 = client.exchange(client.request("renewalreq", old_key, cert=old_file,
                                          csr=csr_file(client, new_key, "renew-d-other")))
    assert (rep2.status, rep2.fail_info) == ("FAILURE", "badRequest")


# ---------------------------------------------------------------------------
# Policy


def test_200_020_key_certified_to_another_subject(env, pki, client, own_keys, tmp_path):
    """The same key for another subject (a new transaction) is refused, by
    PKCSReq and by a renewal that asks for it."""
    key = own_keys.get("reuse")
    rep, req = client.enroll("reuse-1", key=key, challenge=CHALLENGE)
    issued_ok(rep, req, pki, tmp_path, "reuse-1")
    req2 = client.request("pkcsreq", key,
                          csr=csr_file(client, key, "reuse-2", challenge=CHALLENGE),
                          txid="REUSE-SECOND-SUBJECT")
    rep2 = client.exchange(req2)
    assert (rep2.status, rep2.fail_info) == ("FAILURE", "badRequest")
    assert "another subject" in (rep2.fail_text or ""), rep2

    # reuse-3 renews (in a transaction of its own), asking for the key of reuse-1
    k3 = own_keys.get("reuse-3")
    rep3, req3 = client.enroll("reuse-3", key=k3, challenge=CHALLENGE)
    c3 = tmp_path / "reuse-3.pem"
    c3.write_bytes(issued_ok(rep3, req3, pki, tmp_path, "reuse-3").public_bytes(
        Encoding.PEM))
    rep4 = client.exchange(client.request("renewalreq", k3, cert=c3,
                                          csr=csr_file(client, key, "reuse-3"),
                                          txid="REUSE-RENEWAL"))
    assert (rep4.status, rep4.fail_info) == ("FAILURE", "badRequest")
    assert "another subject" in (rep4.fail_text or ""), rep4


def test_200_021_retry_must_be_the_same_request(env, pki, client, own_keys, tmp_path):
    """A renewal of reuse-b asks for the key already certified to reuse-a,
    with the transactionID iOS would use (SHA-1 of that key), which is the
    one of reuse-a's enrollment: it must not get reuse-a's certificate."""
    key = own_keys.get("retry-other-a")
    rep, req = client.enroll("retry-other-a", key=key, challenge=CHALLENGE)
    issued_ok(rep, req, pki, tmp_path, "retry-other-a")
    kb = own_keys.get("retry-other-b")
    repb, reqb = client.enroll("retry-other-b", key=kb, challenge=CHALLENGE)
    cb = tmp_path / "b.pem"
    cb.write_bytes(issued_ok(repb, reqb, pki, tmp_path, "retry-other-b").public_bytes(
        Encoding.PEM))
    req2 = client.request("renewalreq", kb, cert=cb,
                          csr=csr_file(client, key, "retry-other-b"))
    assert req2.txid == req.txid
    rep2 = client.exchange(req2)
    assert rep2.status == "FAILURE" or rep2.cert.subject == name_of("retry-other-b"), (
        f"asked for CN=retry-other-b, got {rep2.status} with "
        f"{rep2.cert.subject.rfc4514_string()}")


@pytest.mark.parametrize("challenge", ["wrong-secret", None, CHALLENGE + "x"])
def test_200_022_challenge_refused(env, pki, client, own_keys, challenge):
    cn = f"challenge-{challenge}"
    key = own_keys.get(cn)
    req = client.request("pkcsreq", key, csr=csr_file(client, key, cn, challenge=challenge))
    rep = client.exchange(req)
    assert (rep.status, rep.fail_info) == ("FAILURE", "badRequest")


def test_200_023_small_key_refused(env, pki, client, own_keys):
    """SCEPMinKeySize (default 2048)."""
    key = own_keys.get("small", bits=1024)
    rep = client.exchange(client.request(
        "pkcsreq", key, csr=csr_file(client, key, "small", challenge=CHALLENGE)))
    assert (rep.status, rep.fail_info) == ("FAILURE", "badRequest")


@pytest.mark.parametrize("cipher,digest", [("des", "sha256"), ("aes128", "md5")])
def test_200_024_legacy_algorithms_refused(env, pki, client, own_keys, tmp_path, cipher,
                                           digest):
    """Single DES and MD5 without SCEPAllowLegacyAlgorithms -> badAlg."""
    cn = f"legacy-{cipher}-{digest}"
    key = own_keys.get(cn)
    req = client.request("pkcsreq", key, csr=csr_file(client, key, cn, challenge=CHALLENGE),
                         cipher=cipher, digest=digest)
    rep = client.exchange(req)
    assert (rep.status, rep.fail_info) == ("FAILURE", "badAlg")
    own.openssl_cross_check(client, rep, req, tmp_path)
    assert rep.der.digest_oid == own.DIGEST_OIDS["sha256" if digest == "md5" else digest]


def test_200_029_bad_signature(env, pki, client, own_keys):
    """A request whose signature does not verify -> badMessageCheck."""
    key = own_keys.get("badsig")
    req = client.request("pkcsreq", key,
                         csr=csr_file(client, key, "badsig", challenge=CHALLENGE))
    der = bytearray(req.der)
    der[-1] ^= 0x01          # the last byte of the SignerInfo's signature
    rep = client.read(own.send(env, bytes(der)), req)
    assert (rep.status, rep.fail_info) == ("FAILURE", "badMessageCheck")


def test_200_025_undecodable_content_looks_alike(env, pki, client, own_keys, tmp_path):
    """Encrypted to a certificate the server has no key for, or carrying a
    CSR whose self-signature is broken: the same FAILURE badMessageCheck
    with the same text (no decryption oracle)."""
    c = own.OwnClient(env, tmp_path / "leaf", recipient=pki.leaf.cert_file,
                      trust=pki.ca_chain_file, signer=pki.ra.cert,
                      ca=pki.issuing.cert, keys=own_keys)
    key = own_keys.get("wrongrecip")
    rep1 = c.exchange(c.request("pkcsreq", key,
                                csr=csr_file(c, key, "wrongrecip", challenge=CHALLENGE)))
    assert (rep1.status, rep1.fail_info) == ("FAILURE", "badMessageCheck")

    key2 = own_keys.get("badcsr")
    good = x509.load_pem_x509_csr(
        csr_file(client, key2, "badcsr", challenge=CHALLENGE).read_bytes())
    broken = bytearray(good.public_bytes(Encoding.DER))
    broken[-1] ^= 0x01
    bad_csr = tmp_path / "broken-csr.der"
    bad_csr.write_bytes(bytes(broken))
    rep2 = client.exchange(client.request("pkcsreq", key2, csr=bad_csr))
    assert (rep2.status, rep2.fail_info) == ("FAILURE", "badMessageCheck")
    assert rep1.fail_text == rep2.fail_text, (rep1.fail_text, rep2.fail_text)


def test_200_026_signer_key_differs_from_csr(env, pki, client, own_keys):
    """A PKCSReq signed by a self-signed cert whose key is not the CSR's."""
    k1, k2 = own_keys.get("mismatch-1"), own_keys.get("mismatch-2")
    rep = client.exchange(client.request(
        "pkcsreq", k1, csr=csr_file(client, k2, "mismatch", challenge=CHALLENGE)))
    assert (rep.status, rep.fail_info) == ("FAILURE", "badMessageCheck")


@pytest.mark.parametrize("msg_type", ["18", "99", "3"])
def test_200_027_unsupported_message_type(env, pki, client, own_keys, msg_type):
    """UpdateReq (18), an unassigned number, and a CertRep sent as a
    request: a signed FAILURE badRequest."""
    key = own_keys.get(f"type-{msg_type}")
    req = client.request(msg_type, key, subject=f"/CN=type-{msg_type}",
                         challenge=CHALLENGE)
    rep = client.exchange(req)
    assert (rep.status, rep.fail_info) == ("FAILURE", "badRequest")


def test_200_028_transaction_id_and_nonce_limits(env, pki, client, own_keys, tmp_path):
    """A 127-character transactionID (the longest in short form) and an
    8-byte senderNonce are answered and echoed; a 128-character ID or a
    65-byte nonce make the message undecodable (400)."""
    key = own_keys.get("limits")
    csr = csr_file(client, key, "limits", challenge=CHALLENGE)
    txid = ("T" * 100 + "+/=:?()-.,' " + "9" * 15)[:127]
    rep = client.exchange(client.request("pkcsreq", key, csr=csr, txid=txid,
                                         nonce="0102030405060708"))
    issued_ok(rep, None, pki, tmp_path, "limits", key=key)
    too_long = client.request("pkcsreq", key, csr=csr, txid="L" * 128)
    assert own.send(env, too_long.der).status == 400
    big_nonce = client.request("pkcsreq", key, csr=csr, txid="BIG-NONCE",
                               nonce="AB" * 65)
    assert own.send(env, big_nonce.der).status == 400


# ---------------------------------------------------------------------------
# Retries


def test_200_030_idempotent_retry(env, pki, client, own_keys, tmp_path):
    """The same request again, and a new message with the same
    transactionID and key, both get the certificate already issued."""
    key = own_keys.get("retry")
    req = client.request("pkcsreq", key,
                         csr=csr_file(client, key, "retry", challenge=CHALLENGE))
    first = client.exchange(req)
    cert = issued_ok(first, req, pki, tmp_path, "retry")
    again = client.exchange(req, "get")
    assert again.status == "SUCCESS" and again.cert == cert
    req2 = client.request("pkcsreq", key,
                          csr=csr_file(client, key, "retry", challenge=CHALLENGE),
                          txid=req.txid, cipher="aes256", digest="sha512")
    third = client.exchange(req2)
    assert third.status == "SUCCESS" and third.cert == cert
    listed = client.store(env.root.conf, "list").out
    assert len(re.findall(r"CN=retry(,|$)", listed, re.M)) == 1, listed


def test_200_031_certpoll_after_issuance(env, pki, client, own_keys, tmp_path):
    """A client that polls although it got SUCCESS finds its certificate;
    a poll for an unknown transaction is refused."""
    key = own_keys.get("poll-issued")
    csr = csr_file(client, key, "poll-issued", challenge=CHALLENGE)
    req = client.request("pkcsreq", key, csr=csr)
    cert = issued_ok(client.exchange(req), req, pki, tmp_path, "poll-issued")
    poll = client.request("certpoll", key, csr=csr, txid=req.txid,
                          issuer=pki.issuing.cert_file)
    rep = client.exchange(poll)
    assert rep.status == "SUCCESS" and rep.cert == cert
    rep = client.exchange(client.request("certpoll", key, csr=csr, txid="NO-SUCH-TXID"))
    assert (rep.status, rep.fail_info) == ("FAILURE", "badRequest")


# ---------------------------------------------------------------------------
# GetCert, GetCRL


def _enrolled(client, pki, own_keys, tmp_path, cn):
    key = own_keys.get(cn)
    rep, req = client.enroll(cn, key=key, challenge=CHALLENGE)
    cert = issued_ok(rep, req, pki, tmp_path, cn)
    f = tmp_path / f"{cn}.pem"
    f.write_bytes(cert.public_bytes(Encoding.PEM))
    return key, cert, f


def test_200_040_getcert(env, pki, client, own_keys, tmp_path):
    key, cert, cert_file = _enrolled(client, pki, own_keys, tmp_path, "getcert")
    req = client.request("getcert", key, cert=cert_file, serial=serial_hex(cert),
                         issuer=pki.issuing.cert_file)
    rep = client.exchange(req)
    assert rep.status == "SUCCESS" and rep.cert == cert
    # a fresh requester may fetch it too (the reply is encrypted to it)
    other = own_keys.get("getcert-other")
    rep = client.exchange(client.request("getcert", other, serial=serial_hex(cert),
                                         issuer=pki.issuing.cert_file), "get")
    assert rep.status == "SUCCESS" and rep.cert == cert


@pytest.mark.parametrize("case", ["unknown-serial", "other-issuer"])
def test_200_041_getcert_bad_cert_id(env, pki, client, own_keys, case):
    key = own_keys.get("getcert-bad")
    if case == "unknown-serial":
        req = client.request("getcert", key, serial="0123456789ABCDEF0123",
                             issuer=pki.issuing.cert_file)
    else:
        req = client.request("getcert", key, serial="01", issuer=pki.solo.cert_file)
    rep = client.exchange(req)
    assert (rep.status, rep.fail_info) == ("FAILURE", "badCertId")


def test_200_042_getcrl_after_revoke(env, pki, client, own_keys, tmp_path):
    """`scep-ota store revoke`, then GetCRL: the CA-signed CRL lists the
    serial; the revoked certificate no longer renews, nor is it handed
    out again on a retry."""
    key, cert, cert_file = _enrolled(client, pki, own_keys, tmp_path, "revoked")
    client.store(env.root.conf, "revoke", serial_hex(cert), "keyCompromise")
    req = client.request("getcrl", key, cert=cert_file, serial=serial_hex(cert),
                         issuer=pki.issuing.cert_file)
    rep = client.exchange(req)
    assert rep.status == "SUCCESS" and not rep.certs and len(rep.crls) == 1, rep
    crl = rep.crls[0]
    assert crl.issuer == pki.issuing.cert.subject
    assert crl.is_signature_valid(pki.issuing.cert.public_key())
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    assert entry is not None, [r.serial_number for r in crl]
    crl_file = tmp_path / "crl.pem"
    crl_file.write_bytes(crl.public_bytes(Encoding.PEM))
    p = own.run(["openssl", "crl", "-in", crl_file, "-CAfile", pki.ca_chain_file,
                 "-noout"])
    assert "verify OK" in p.out + p.err
    # openssl verify with the CRL: the certificate is revoked
    p = own.run(["openssl", "verify", "-crl_check", "-CAfile", pki.ca_chain_file,
                 "-CRLfile", crl_file, cert_file], check=False)
    assert p.returncode != 0 and "revoked" in (p.out + p.err), p.out + p.err

    new_key = own_keys.get("revoked-new")
    rep = client.exchange(client.request("renewalreq", key, cert=cert_file,
                                         csr=csr_file(client, new_key, "revoked")))
    assert (rep.status, rep.fail_info) == ("FAILURE", "badRequest")


# ---------------------------------------------------------------------------
# GetNextCACert


def test_200_050_getnextcacert(env, pki, tmp_path):
    caps = env.get("/scep?operation=GetCACaps")
    assert caps.status == 200 and "GetNextCACert" in caps.body.decode().split()
    r = env.get("/scep?operation=GetNextCACert")
    assert r.status == 200
    assert r.content_type == "application/x-x509-next-ca-cert"
    f, inner, signer = tmp_path / "next.der", tmp_path / "inner.der", tmp_path / "s.pem"
    f.write_bytes(r.body)
    own.run(["openssl", "cms", "-verify", "-inform", "DER", "-in", f,
             "-CAfile", pki.ca_chain_file, "-certfile", pki.ra.cert_file,
             "-purpose", "any", "-binary", "-signer", signer, "-out", inner])
    assert own.load_pem_certs(signer.read_bytes()) == [pki.ra.cert]
    certs = pkcs7.load_der_pkcs7_certificates(inner.read_bytes())
    assert certs == [pki.other.cert]


# ---------------------------------------------------------------------------
# HTTP-level answers: 413 and 400, never 500


def test_200_060_oversize_post(env):
    r = env.post(PKIOP, body=b"\x30" + os.urandom(MAX_REQUEST))
    assert r.status == 413


def test_200_061_oversize_chunked(env):
    """Without a Content-Length, the limit holds while reading."""
    conn = http.client.HTTPConnection("127.0.0.1", env.port, timeout=10)
    try:
        chunks = (os.urandom(4096) for _ in range(MAX_REQUEST // 4096 + 2))
        conn.request("POST", PKIOP, body=chunks, encode_chunked=True,
                     headers={"Content-Type": "application/x-pki-message",
                              "Transfer-Encoding": "chunked"})
        r = conn.getresponse()
        r.read()
        assert r.status == 413
    finally:
        conn.close()


def test_200_062_oversize_get(env):
    msg = base64.b64encode(os.urandom(MAX_REQUEST + 16)).decode()
    r = env.get(f"{PKIOP}&message={msg.replace('+', '%2B').replace('/', '%2F')}")
    assert r.status == 413, r


def test_200_063_at_the_limit_is_read(env, pki, client, own_keys):
    """A body of exactly SCEPMaxRequestSize is read (and, garbage, gets 400)."""
    r = env.post(PKIOP, body=b"\x30\x82" + os.urandom(MAX_REQUEST - 2))
    assert r.status == 400


@pytest.mark.parametrize("body", [
    b"",
    b"garbage that is not DER",
    b"\x30\x03\x02\x01\x00",
    b"\x30\x80" + b"\x00" * 8,
    b"\x30\x82\xff\xff\x06\x09",
    os.urandom(3000),
], ids=["empty", "text", "integer", "indefinite", "truncated", "random"])
def test_200_064_garbage_post(env, body):
    r = env.post(PKIOP, body=body)
    assert r.status == 400


@pytest.mark.parametrize("message", ["", "!!!not-base64!!!", "AAAA", "MAMCAQA%3D",
                                     "%00%01", "a" * 13])
def test_200_065_garbage_get(env, message):
    r = env.get(f"{PKIOP}&message={message}")
    assert r.status == 400


def test_200_066_not_a_scep_message(env, pki):
    """Well-formed CMS that is not a pkiMessage: a certs-only bundle (no
    signer) and a SignedData without SCEP attributes."""
    r = env.get("/scep?operation=GetCACert")
    assert r.status == 200
    assert env.post(PKIOP, body=r.body).status == 400
    # a plain S/MIME-style signature by a key of the test PKI
    f = subprocess.run(["openssl", "cms", "-sign", "-binary", "-nodetach", "-outform",
                        "DER", "-signer", str(pki.leaf.cert_file), "-inkey",
                        str(pki.leaf.key_file)], input=b"hello", capture_output=True,
                       check=True).stdout
    assert env.post(PKIOP, body=f).status == 400
