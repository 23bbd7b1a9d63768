"""Revocation that reaches relying parties, through OCSP: issued
certificates name the responder of `SCEPOCSPURL` in their
authorityInfoAccess; the `scep-ocsp` handler answers RFC 6960 requests
(POST, and GET with the base64 request in the path) from the store: good,
revoked with the time and reason, unknown for a serial or an issuer it does
not know; signed by the CA or by a delegated signer; nonce echoed.
`openssl ocsp` is the client."""

import base64
import datetime
import re
import subprocess
import urllib.parse

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import scepenv
import storeenv
from storeenv import Store, cli_store

OCSP_URL = "http://ocsp.example.com/ocsp"

OCSP_LOCATION = """\
<Location /ocsp>
    SetHandler scep-ocsp
</Location>
AllowEncodedSlashes NoDecode"""

EXTRA = "\n".join([f"SCEPOCSPURL {OCSP_URL}", OCSP_LOCATION])


@pytest.fixture(scope="module")
def sqlite_store(env):
    return Store("sqlite", env, name=f"t650_{env.mpm}")


@pytest.fixture
def server(sqlite_store, env, pki):
    storeenv.start_with(env, pki, sqlite_store, EXTRA)
    return sqlite_store


@pytest.fixture(scope="module")
def clients(keypool):
    return keypool.clients(6, start=60)


@pytest.fixture(scope="module")
def delegated(pki, tmp_path_factory):
    """An OCSP signer issued by the issuing CA (OCSPSigning, no-check),
    and one without the OCSPSigning purpose."""
    d = tmp_path_factory.mktemp("ocsp-signer")
    now = datetime.datetime.now(datetime.timezone.utc)

    def issue(name, eku):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
             .issuer_name(pki.issuing.cert.subject)
             .public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
             .add_extension(x509.ExtendedKeyUsage([eku]), False)
             .add_extension(x509.OCSPNoCheck(), False))
        cert = b.sign(pki.issuing.key, hashes.SHA256())
        slug = name.replace(" ", "-")
        cf, kf = d / f"{slug}.pem", d / f"{slug}.key"
        cf.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        kf.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
        cf.chmod(0o644)
        kf.chmod(0o644)
        d.chmod(0o755)
        return cert, cf, kf

    return {"ok": issue("OCSP signer", ExtendedKeyUsageOID.OCSP_SIGNING),
            "wrong": issue("Not an OCSP signer", ExtendedKeyUsageOID.CLIENT_AUTH)}


def enroll(env, pki, client):
    return storeenv.enroll_one(env.port, pki.issuing.cert, client)


def write_pem(tmp_path, name, cert):
    f = tmp_path / name
    f.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return f


def openssl_ocsp(env, pki, tmp_path, *args):
    """Runs `openssl ocsp` against the server; returns its output."""
    cmd = ["openssl", "ocsp", "-issuer", str(pki.issuing.cert_file),
           "-CAfile", str(pki.ca_chain_file),
           "-url", f"http://127.0.0.1:{env.port}/ocsp", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


def request_der(cert, issuer, nonce=None):
    b = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
    if nonce:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    return b.build().public_bytes(serialization.Encoding.DER)


def post(env, body, ctype="application/ocsp-request"):
    return scepenv.http_request(env.port, "POST", "/ocsp", body=body,
                                headers={"Content-Type": ctype})


def response_of(r):
    assert r.status == 200, (r.status, r.body[:200])
    assert r.header("Content-Type") == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(r.body)


# --------------------------------------------------------------------------
# the responder in issued certificates


def test_650_001_aia_in_issued_certificates(env, pki, server, clients):
    cert = enroll(env, pki, clients[0]).cert
    ext = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    assert not ext.critical
    descs = list(ext.value)
    assert [(d.access_method, d.access_location.value) for d in descs] == \
        [(x509.oid.AuthorityInformationAccessOID.OCSP, OCSP_URL)]


@pytest.mark.parametrize("url, why", [
    ("ldap://ocsp.example.com/", "not an http URL"),
    ("ocsp.example.com", "not an http"),
    ("http://ocsp.example.com/a b", "space"),
])
def test_650_002_bad_url_refused(env, pki, url, why):
    snippet = "\n".join([scepenv.scep_directives(pki.ca_chain_file, pki.issuing.key_file),
                         f'SCEPOCSPURL "{url}"'])
    env.apache_fail(snippet).assert_message("SCEPOCSPURL", re.escape(why))


def test_650_003_handler_without_a_ca_refused(env):
    env.apache_fail(OCSP_LOCATION).assert_message("SCEP6010", "scep-ocsp handler")


# --------------------------------------------------------------------------
# answers, checked by openssl ocsp


def test_650_010_good_then_revoked(env, pki, server, clients, tmp_path):
    rep = enroll(env, pki, clients[1])
    cf = write_pem(tmp_path, "leaf.pem", rep.cert)
    rc, out = openssl_ocsp(env, pki, tmp_path, "-cert", str(cf))
    assert rc == 0, out
    assert "Response verify OK" in out, out
    assert f"{cf}: good" in out, out
    assert "nonce" not in out.lower(), out  # no "WARNING: no nonce in response"

    cli_store(env.root.conf, "revoke", rep.serial, "keyCompromise")
    rc, out = openssl_ocsp(env, pki, tmp_path, "-cert", str(cf))
    assert rc == 0, out
    assert f"{cf}: revoked" in out, out
    assert "Reason: keyCompromise" in out, out
    assert "Revocation Time:" in out, out


def test_650_011_unknown_serial_and_issuer(env, pki, server, tmp_path):
    rc, out = openssl_ocsp(env, pki, tmp_path, "-serial", "0x1234567890ABCDEF")
    assert rc == 0, out
    assert "0x1234567890ABCDEF: unknown" in out, out
    # a certificate of another CA, asked about with that CA as issuer
    r = post(env, request_der(pki.solo.cert, pki.solo.cert))
    resp = response_of(r)
    assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert resp.certificate_status == ocsp.OCSPCertStatus.UNKNOWN


def test_650_012_nonce_echoed_and_get(env, pki, server, clients):
    rep = enroll(env, pki, clients[2])
    nonce = b"0123456789abcdef"
    der = request_der(rep.cert, pki.issuing.cert, nonce)
    resp = response_of(post(env, der))
    assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert resp.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    assert resp.serial_number == rep.cert.serial_number
    # signed by the CA, which needs no certificate in the response
    pki.issuing.cert.public_key().verify(
        resp.signature, resp.tbs_response_bytes,
        __import__("cryptography.hazmat.primitives.asymmetric.padding",
                   fromlist=["PKCS1v15"]).PKCS1v15(), resp.signature_hash_algorithm)
    assert resp.next_update > resp.this_update
    # RFC 6960 A.1 GET: the percent-encoded base64 of the request
    enc = urllib.parse.quote(base64.b64encode(der).decode(), safe="")
    g = response_of(scepenv.http_request(env.port, "GET", f"/ocsp/{enc}"))
    assert g.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert g.serial_number == rep.cert.serial_number
    # and with the slashes of base64 as they are, unless two meet: httpd
    # merges "//" in a path (MergeSlashes), so such a request cannot be
    # read back and only the encoded form above works
    raw = base64.b64encode(der).decode()
    if "//" not in raw:
        g2 = response_of(scepenv.http_request(env.port, "GET",
                                              "/ocsp/" + raw.replace("+", "%2B")))
        assert g2.certificate_status == ocsp.OCSPCertStatus.GOOD


def test_650_013_delegated_signer(env, pki, sqlite_store, delegated, clients, tmp_path):
    cert, cf, kf = delegated["ok"]
    storeenv.start_with(env, pki, sqlite_store, "\n".join([
        EXTRA, f"SCEPOCSPSigningCertificateFile {cf}", f"SCEPOCSPSigningKeyFile {kf}"]))
    rep = enroll(env, pki, clients[3])
    lf = write_pem(tmp_path, "leaf.pem", rep.cert)
    rc, out = openssl_ocsp(env, pki, tmp_path, "-cert", str(lf))
    assert rc == 0 and "Response verify OK" in out and f"{lf}: good" in out, out
    resp = response_of(post(env, request_der(rep.cert, pki.issuing.cert)))
    assert resp.responder_name == cert.subject
    assert [c.subject for c in resp.certificates] == [cert.subject]
    cli_store(env.root.conf, "revoke", rep.serial, "superseded")
    rc, out = openssl_ocsp(env, pki, tmp_path, "-cert", str(lf))
    assert rc == 0 and f"{lf}: revoked" in out and "Reason: superseded" in out, out


def test_650_014_wrong_signer_refused(env, pki, delegated):
    _, cf, kf = delegated["wrong"]
    snippet = "\n".join([scepenv.scep_directives(pki.ca_chain_file, pki.issuing.key_file),
                         f"SCEPOCSPSigningCertificateFile {cf}",
                         f"SCEPOCSPSigningKeyFile {kf}"])
    env.apache_fail(snippet).assert_message("SCEP6054", "OCSPSigning")
    # the key of another certificate
    _, cf_ok, _ = delegated["ok"]
    snippet = "\n".join([scepenv.scep_directives(pki.ca_chain_file, pki.issuing.key_file),
                         f"SCEPOCSPSigningCertificateFile {cf_ok}",
                         f"SCEPOCSPSigningKeyFile {kf}"])
    env.apache_fail(snippet).assert_message("SCEP6054", "does not match")
    # a certificate alone
    snippet = "\n".join([scepenv.scep_directives(pki.ca_chain_file, pki.issuing.key_file),
                         f"SCEPOCSPSigningCertificateFile {cf_ok}"])
    env.apache_fail(snippet).assert_message("SCEP6054", "go together")


# --------------------------------------------------------------------------
# bad input: malformedRequest, 413, 405; never a 5xx


def test_650_020_malformed(env, pki, server, clients):
    rep = enroll(env, pki, clients[4])
    good = request_der(rep.cert, pki.issuing.cert)
    for body in (b"", b"\x30", b"garbage" * 10, good[:-1], good + b"\x00",
                 b"\x30\x03\x30\x01\x00", good[:20] + b"\xff" * 30):
        r = post(env, body)
        assert r.status == 200, (body[:20], r.status)
        assert response_of(r).response_status == \
            ocsp.OCSPResponseStatus.MALFORMED_REQUEST, body[:20]
    env.expect_log(r"AH10244: invalid URI path \(/ocsp/%%%\)")
    for target in ("/ocsp", "/ocsp/", "/ocsp/%%%", "/ocsp/!!!!", "/ocsp/" + "A" * 4000,
                   "/ocsp/MAA=", "/ocsp?x=1"):
        r = scepenv.http_request(env.port, "GET", target)
        assert r.status < 500, (target, r.status)
        if r.status == 200:
            assert response_of(r).response_status == \
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST, target


def test_650_021_too_many_ids(env, pki, server, clients):
    rep = enroll(env, pki, clients[5])
    one = request_der(rep.cert, pki.issuing.cert)
    # 33 requests of the same certificate in one OCSPRequest, built from the
    # DER of one: TBSRequest { requestList SEQUENCE OF Request }
    from cryptography.hazmat.primitives.serialization import Encoding  # noqa: F401
    req = ocsp.load_der_ocsp_request(one)
    assert req.serial_number == rep.cert.serial_number
    single = _first_request(one)
    body = _der_seq(_der_seq(_der_seq(single * 33)))
    r = post(env, body)
    assert response_of(r).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    body = _der_seq(_der_seq(_der_seq(single * 2)))
    resp = ocsp.load_der_ocsp_response(post(env, body).body)
    assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL


def test_650_022_oversized_and_methods(env, server):
    r = post(env, b"\x30" + b"\x00" * 20000)
    assert r.status == 413, r.status
    for m in ("PUT", "DELETE", "OPTIONS"):
        r = scepenv.http_request(env.port, m, "/ocsp", body=b"x")
        assert r.status == 405, (m, r.status)
        assert r.header("Allow") == "GET, HEAD, POST"


def _der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def _der_seq(content):
    return b"\x30" + _der_len(len(content)) + content


def _read_tlv(buf, off):
    tag = buf[off]
    ln = buf[off + 1]
    hdr = 2
    if ln & 0x80:
        k = ln & 0x7f
        ln = int.from_bytes(buf[off + 2:off + 2 + k], "big")
        hdr += k
    return tag, off + hdr, off + hdr + ln


def _first_request(der):
    """The DER of the first Request in an OCSPRequest of one."""
    _, s, _ = _read_tlv(der, 0)          # OCSPRequest
    _, s, _ = _read_tlv(der, s)          # TBSRequest
    _, s, e = _read_tlv(der, s)          # requestList
    _, rs, re_ = _read_tlv(der, s)       # first Request
    return der[s:re_]
