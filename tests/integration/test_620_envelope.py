"""Opening the request's envelope (CMS EnvelopedData) as the holder of the
RA's encryption certificate:

* a recipient named by subjectKeyIdentifier enrolls like one named by
  issuer and serial number (the CLI's builder, and one written here);
* single DES is refused with FAILURE badAlg by a server that does not
  allow it, also when the recipient is named by subjectKeyIdentifier (which
  PKCS#7 parsers cannot read) and although a virtual host of the same httpd
  allows legacy algorithms; that host enrolls it, micromdm's scepclient
  too, and answers in single DES;
* at most 4 RecipientInfos: 4 (ours among them) enroll, 5 or 300 get
  FAILURE badMessageCheck before any RSA work (the time a 300-recipient
  request takes is printed next to that of ordinary requests, not
  asserted);
* key agreement, KEK and password recipients are not ours: beside ours
  they are left alone, alone they get the one answer every envelope that
  cannot be opened gets;
* the key transport: RSAES-OAEP with SHA-256 enrolls; OAEP with MD5 or
  with a label, or an unknown key transport, gets FAILURE badAlg.

Nothing refused leaves a certificate in the store.

One config: the main server (no legacy algorithms, static challenge,
SQLite store) and one virtual host on a port of its own with
SCEPAllowLegacyAlgorithms on; the <Location /scep> of the main server
applies to both.
"""

import os
import shutil
import statistics
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding as apad

import badinput as bi
import scepclient_own as own
import scepenv
import scepmsg
import storeenv
from scepclient_own import check_issued
from scepenv import scep_directives, scep_location

CHALLENGE = "envelope-620-static-secret"
LIFETIME = 30
DB = "state/envelope-620.db"
PKIOP = own.PKIOP
UNDECODABLE = "the message content could not be decoded"
TOO_MANY = "too many recipients in the envelope"

_PORTS = {}


def legacy_port(env):
    return _PORTS.setdefault(id(env), scepenv.free_port())


def snippet(pki, port):
    return "\n".join([
        scep_directives(pki.ca_chain_file, pki.issuing.key_file,
                        pki.ra.cert_file, pki.ra.key_file),
        f"SCEPChallengePassword {CHALLENGE}",
        f"SCEPCertificateLifetime {LIFETIME}",
        f"SCEPStore sqlite3:{DB}",
        scep_location("/scep"),
        f"Listen 127.0.0.1:{port}",
        f"<VirtualHost 127.0.0.1:{port}>",
        "    ServerName 127.0.0.1",
        "    SCEPAllowLegacyAlgorithms on",
        "</VirtualHost>",
    ])


@pytest.fixture(autouse=True)
def _server(env, pki):
    env.ensure(snippet(pki, legacy_port(env)))


def own_client(env, pki, keys, tmp, legacy=False):
    target = scepenv.At(env, legacy_port(env)) if legacy else env
    c = own.OwnClient(target, tmp / ("legacy" if legacy else "main"),
                      recipient=pki.ra.cert_file, trust=pki.ca_chain_file,
                      signer=pki.ra.cert, ca=pki.issuing.cert, keys=keys)
    c.legacy = legacy
    return c


def certs_in_store(env):
    return storeenv.cli_list(env.root.conf, "all")


# ---------------------------------------------------------------------------
# Requests written here (badinput.Envelope), sent raw


class Requester:
    """A client key with its self-signed certificate and a CSR carrying the
    right challenge, whose envelopes the tests shape."""

    def __init__(self, pki, keys, cn):
        self.pki = pki
        self.cn = cn
        self.key = keys.get(f"t620-{cn}")
        self.client = scepmsg.make_client(self.key.obj, cn)
        self.csr = scepmsg.make_csr(self.client, CHALLENGE)
        self._n = 0

    def envelope(self, **kw):
        return bi.Envelope(self.pki.ra.cert, self.csr, **kw)

    def message(self, envelope):
        self._n += 1
        txid = f"T620-{self.cn}-{self._n}"
        nonce = os.urandom(16)
        der = bi.sign(self.client, envelope.der(), bi.scep_attrs(txid, nonce))
        return der, txid, nonce

    def send(self, envelope, port):
        der, txid, nonce = self.message(envelope)
        r = scepenv.http_request(port, "POST", PKIOP, body=der,
                                 headers={"Content-Type": bi.PKI_MESSAGE})
        return answer(r, txid, nonce, self)


class Answer:
    def __init__(self, status, fail_info, fail_text, cert, der):
        self.status = status
        self.fail_info = fail_info
        self.fail_text = fail_text
        self.cert = cert
        self.der = der

    def __repr__(self):
        return f"<Answer {self.status} {self.fail_info or ''} {self.fail_text or ''}>"


def answer(r, txid, nonce, req):
    """Reads a CertRep signed by the RA and echoing the request; a SUCCESS
    envelope is opened with the requester's key (RSA PKCS#1 v1.5 or OAEP,
    AES, 3DES or single DES)."""
    assert r.status == 200 and r.content_type == bi.PKI_MESSAGE, r
    d = own.read_certrep_der(r.body)
    own.verify_certrep_signature(d, req.pki.ra.cert)
    rep = scepmsg.parse_certrep(r.body)
    assert rep.transaction_id == txid and rep.recipient_nonce == nonce, rep
    text = None
    if own.OID_FAIL_INFO_TEXT in d.attrs:
        text = d.attrs[own.OID_FAIL_INFO_TEXT][1].decode()
    cert = None
    if rep.status == scepmsg.SUCCESS:
        inner = own.open_envelope(d, req.key.obj)
        if inner is None:      # single DES: python3-cryptography's 3DES, K1=K2=K3
            inner = scepmsg._decrypt_envelope(d.econtent, req.key.obj)
        certs, _ = own.degenerate_contents(inner)
        cert = certs[0]
    fail = rep.fail_name if rep.status == scepmsg.FAILURE else None
    return Answer(rep.status_name, fail, text, cert, d)


def issued(a, req, pki, tmp_path):
    assert a.status == "SUCCESS", a
    return check_issued(a.cert, trust=pki.ca_chain_file, issuer=pki.issuing.cert,
                        key=req.key, subject=x509.load_der_x509_csr(req.csr).subject,
                        lifetime_days=LIFETIME, tmp=tmp_path)


def refused(a, fail_info, text=None):
    assert (a.status, a.fail_info) == ("FAILURE", fail_info), a
    if text is not None:
        assert a.fail_text == text, a


# ---------------------------------------------------------------------------
# How the recipient is named


def test_620_001_keyid_recipient_enrolls(env, pki, own_keys, tmp_path):
    """A recipient named by subjectKeyIdentifier: the CLI's builder
    (OpenSSL, `--keyid`) and the one written here both enroll on the main
    server, in AES."""
    c = own_client(env, pki, own_keys, tmp_path)
    rep, req = c.enroll("keyid-cli", challenge=CHALLENGE, keyid=True)
    assert rep.status == "SUCCESS", rep
    check_issued(rep.cert, trust=pki.ca_chain_file, issuer=pki.issuing.cert,
                 key=req.key, subject="keyid-cli", lifetime_days=LIFETIME, tmp=tmp_path)

    r = Requester(pki, own_keys, "keyid-here")
    issued(r.send(r.envelope(rid="ski"), env.port), r, pki, tmp_path)


@pytest.mark.parametrize("rid", ["ski", "ias"])
def test_620_002_des_refused_where_not_allowed(env, pki, own_keys, tmp_path, rid):
    """Single DES to the main server: FAILURE badAlg, whichever way the
    recipient is named, while the legacy host of the same httpd has
    OpenSSL's legacy provider loaded; nothing issued. The same request to
    the legacy host enrolls."""
    r = Requester(pki, own_keys, f"des-{rid}")
    before = certs_in_store(env)
    refused(r.send(r.envelope(rid=rid, cipher_oid=bi.OID_DES_CBC), env.port),
            "badAlg")
    assert certs_in_store(env) == before
    a = r.send(r.envelope(rid=rid, cipher_oid=bi.OID_DES_CBC), legacy_port(env))
    issued(a, r, pki, tmp_path)
    assert a.der.cipher_oid == bi.OID_DES_CBC       # the reply mirrors it


def test_620_003_des_keyid_with_the_cli(env, pki, own_keys, tmp_path):
    """The CLI's single DES request with `--keyid`: badAlg on the main
    server, enrolled on the legacy host (the own client checks the reply's
    single DES)."""
    main = own_client(env, pki, own_keys, tmp_path)
    key = own_keys.get("t620-des-cli")
    csr = own.make_csr(tmp_path / "des-cli.csr.pem", key, "des-cli", challenge=CHALLENGE)
    rep = main.exchange(main.request("pkcsreq", key, csr=csr, cipher="des", keyid=True))
    assert (rep.status, rep.fail_info) == ("FAILURE", "badAlg"), rep
    legacy = own_client(env, pki, own_keys, tmp_path, legacy=True)
    req = legacy.request("pkcsreq", key, csr=csr, cipher="des", keyid=True)
    rep = legacy.exchange(req)
    assert rep.status == "SUCCESS", rep
    assert rep.der.cipher_oid == own.CIPHER_OIDS["des"]


def test_620_004_recipient_not_ours(env, pki, own_keys, tmp_path):
    """A subjectKeyIdentifier or issuer and serial that is not the RA's,
    and our subjectKeyIdentifier around an encrypted key with a broken
    padding: the one answer to an envelope that cannot be opened."""
    r = Requester(pki, own_keys, "not-ours")
    before = certs_in_store(env)
    other = pki.other.cert
    k = other.public_key().key_size // 8
    for e in (r.envelope(ours=False, others=(bi.ktri(other, os.urandom(k), "ski"),)),
              r.envelope(ours=False, others=bi.other_recipients(other, 1)),
              r.envelope(rid="ski", ek=bi.bad_padding_key(pki.ra.cert.public_key()))):
        refused(r.send(e, env.port), "badMessageCheck", UNDECODABLE)
    assert certs_in_store(env) == before


# ---------------------------------------------------------------------------
# How many recipients


def test_620_010_four_recipients_enroll_five_do_not(env, pki, own_keys, tmp_path):
    r = Requester(pki, own_keys, "four")
    issued(r.send(r.envelope(others=bi.other_recipients(pki.other.cert, 3)), env.port),
           r, pki, tmp_path)
    r = Requester(pki, own_keys, "five")
    before = certs_in_store(env)
    for rid in ("ias", "ski"):
        e = r.envelope(rid=rid, others=bi.other_recipients(pki.other.cert, 4))
        refused(r.send(e, env.port), "badMessageCheck", TOO_MANY)
        # refused whatever else is wrong with it
        e = r.envelope(rid=rid, cipher_oid=bi.OID_DES_CBC,
                       others=bi.other_recipients(pki.other.cert, 4))
        refused(r.send(e, legacy_port(env)), "badMessageCheck", TOO_MANY)
    assert certs_in_store(env) == before


def _seconds(fn, n):
    times = []
    for _ in range(n):
        t0 = time.monotonic()
        fn()
        times.append(time.monotonic() - t0)
    return statistics.median(times)


def test_620_011_three_hundred_recipients(env, pki, own_keys, tmp_path):
    """300 recipients (ours last would be tried after 299 others): FAILURE
    badMessageCheck, answered. The time it takes, next to an ordinary
    request's (one RSA decryption, one signature), is printed: a report,
    not an assertion."""
    r = Requester(pki, own_keys, "three-hundred")
    e = r.envelope(others=bi.other_recipients(pki.other.cert, 299))
    der, txid, nonce = r.message(e)
    assert len(der) < 256 * 1024, len(der)
    before = certs_in_store(env)

    def big():
        resp = scepenv.http_request(env.port, "POST", PKIOP, body=der,
                                    headers={"Content-Type": bi.PKI_MESSAGE})
        refused(answer(resp, txid, nonce, r), "badMessageCheck", TOO_MANY)

    wrong = Requester(pki, own_keys, "ordinary")
    wrong.csr = scepmsg.make_csr(wrong.client, "not-the-challenge")
    small = wrong.message(wrong.envelope())

    def ordinary():
        resp = scepenv.http_request(env.port, "POST", PKIOP, body=small[0],
                                    headers={"Content-Type": bi.PKI_MESSAGE})
        refused(answer(resp, small[1], small[2], wrong), "badRequest")

    t_small = _seconds(ordinary, 5)
    t_big = _seconds(big, 5)
    print(f"\n620-011: {len(der)} bytes, 300 recipients: {t_big * 1000:.1f} ms; "
          f"an ordinary request ({len(small[0])} bytes): {t_small * 1000:.1f} ms; "
          f"ratio {t_big / t_small:.2f}")
    assert certs_in_store(env) == before


# ---------------------------------------------------------------------------
# Other kinds of recipient


def test_620_020_other_kinds_of_recipient(env, pki, own_keys, tmp_path):
    """Key agreement, KEK and password recipients beside ours: enrolled;
    without ours: the one answer to an envelope that cannot be opened."""
    others = (bi.kari(pki.other.cert), bi.kekri(), bi.pwri())
    r = Requester(pki, own_keys, "other-kinds")
    issued(r.send(r.envelope(others=others), env.port), r, pki, tmp_path)
    r = Requester(pki, own_keys, "other-kinds-alone")
    before = certs_in_store(env)
    refused(r.send(r.envelope(ours=False, others=others), env.port),
            "badMessageCheck", UNDECODABLE)
    assert certs_in_store(env) == before


# ---------------------------------------------------------------------------
# Key transport


def test_620_030_oaep_sha256_enrolls(env, pki, own_keys, tmp_path):
    """RSAES-OAEP with SHA-256 (hash and MGF1), named by
    subjectKeyIdentifier: enrolled, and the reply is in OAEP too."""
    r = Requester(pki, own_keys, "oaep-sha256")
    e = r.envelope(rid="ski", kt=bi.algid(bi.OID_RSA_OAEP, bi.oaep_params(
        "2.16.840.1.101.3.4.2.1", "2.16.840.1.101.3.4.2.1")))
    e.ek = pki.ra.cert.public_key().encrypt(e.cek, apad.OAEP(
        mgf=apad.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    a = r.send(e, env.port)
    issued(a, r, pki, tmp_path)
    assert a.der.key_transport_oid == bi.OID_RSA_OAEP


@pytest.mark.parametrize("kt", ["oaep-md5", "oaep-label", "unknown"])
def test_620_031_key_transport_refused(env, pki, own_keys, tmp_path, kt):
    """OAEP with MD5, OAEP with a label, an unknown key transport: FAILURE
    badAlg before anything is decrypted."""
    alg = {"oaep-md5": bi.algid(bi.OID_RSA_OAEP, bi.oaep_params(bi.OID_MD5, bi.OID_MD5)),
           "oaep-label": bi.algid(bi.OID_RSA_OAEP, bi.oaep_params(label=b"x")),
           "unknown": bi.algid("1.2.840.113549.1.1.99")}[kt]
    r = Requester(pki, own_keys, f"kt-{kt}")
    before = certs_in_store(env)
    for rid in ("ias", "ski"):
        refused(r.send(r.envelope(rid=rid, kt=alg), env.port), "badAlg")
    assert certs_in_store(env) == before


# ---------------------------------------------------------------------------
# micromdm's scepclient, single DES, on both hosts of one httpd


@pytest.mark.skipif(not shutil.which("scepclient"),
                    reason="scepclient (Debian package scep) not installed")
def test_620_040_scepclient_on_both_hosts(env, pki, tmp_path):
    """scepclient (single DES, SHA-1): FAILURE badAlg from the main server,
    enrolled by the legacy host of the same httpd."""
    from test_110_scepclient import run_scepclient

    class Port:
        port = legacy_port(env)

    (tmp_path / "main").mkdir()
    rc, out = run_scepclient(env, tmp_path / "main", challenge=CHALLENGE, cn="sc-main")
    assert rc != 0 and "failInfo: badAlg" in out, out
    (tmp_path / "legacy").mkdir()
    rc, out = run_scepclient(Port, tmp_path / "legacy", challenge=CHALLENGE,
                             cn="sc-legacy")
    assert rc == 0 and "pkiStatus=SUCCESS" in out, out
    assert (tmp_path / "legacy" / "client.pem").exists()


@pytest.mark.parametrize("graceful", [True, False], ids=["graceful", "restart"])
def test_620_041_after_a_restart(env, pki, own_keys, tmp_path, graceful):
    """After httpd reloads the module (the legacy library context is kept
    by the process, not made again): single DES still enrolls on the
    legacy host and still gets badAlg from the main server."""
    env.apache_reload(graceful=graceful)
    r = Requester(pki, own_keys, f"after-{'graceful' if graceful else 'restart'}")
    refused(r.send(r.envelope(rid="ski", cipher_oid=bi.OID_DES_CBC), env.port),
            "badAlg")
    issued(r.send(r.envelope(rid="ski", cipher_oid=bi.OID_DES_CBC), legacy_port(env)),
           r, pki, tmp_path)
