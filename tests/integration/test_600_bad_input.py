"""The bad-input matrix (issue 6, item 3): malformed, truncated, corrupted,
oversized, slow and deeply nested input through the real httpd, each with
the class of answer expected. For every case:

* the answer is of the expected class: an HTTP status (400, 405, 408, 413,
  414), "closed" (httpd gave up on the connection) or a CertRep signed by
  the RA with pkiStatus FAILURE and a given failInfo, whose transactionID
  and recipientNonce echo the request;
* never a 5xx;
* no child crashed (no "exit signal" / AH00052 line since the case began,
  and a last sweep over everything logged since the first case, once the
  parent had time to reap a child that died late);
* the store did not change (a hash of the SQLite `.dump` before and after).

Layers: requests are built by `scep-ota request` (the CLI's own builder)
and, where a part must be chosen freely, in Python (badinput.py); the
envelope cases are re-signed after the envelope is corrupted, so the
outer signature holds and the corruption reaches the decryption. Every
request that could pass carries a CSR with the right challenge (so a
corruption the module did not notice would issue a certificate, which the
store check catches) or the wrong one (answered FAILURE badRequest, to
see that the odd part did not stop the answer).

Two configs: the SCEP one (default SCEPMaxRequestSize 256 KiB, default
LimitRequestLine 8190, `Timeout 2` so the slow-body cases are quick) and
the shared OTA one (otaenv.OtaServer) for the signed-plist cases.
"""

import base64
import datetime
import hashlib
import os
import plistlib
import time
import urllib.parse
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

import badinput as bi
import otaenv
import scepclient_own as own
import scepmsg
from scepenv import scep_directives, scep_location
from scepmsg import integer, octets, printable, tlv

CHALLENGE = "bad-input-matrix-secret"
LIMIT = 262144            # SCEPMaxRequestSize's default
LINE_LIMIT = 8190         # httpd's LimitRequestLine default
TIMEOUT = 2               # httpd's Timeout in this config
PKIOP = bi.PKIOP


def snippet(pki):
    return "\n".join([
        scep_directives(pki.ca_chain_file, pki.issuing.key_file,
                        pki.ra.cert_file, pki.ra.key_file),
        f"SCEPChallengePassword {CHALLENGE}",
        "SCEPStore sqlite3:state/bad-input-600.db",
        f"Timeout {TIMEOUT}",
        scep_location("/scep"),
    ])


# ---------------------------------------------------------------------------
# What each case sends


class Send:
    """One request: through http.client (method/target/body/headers), or
    raw bytes on a socket (head + body, then a stall), or a streamed
    chunked body (head + chunks until the server answers)."""

    def __init__(self, method="POST", target=PKIOP, body=b"", headers=None, raw=None,
                 stall=0.0, chunks=None, txid=None, nonce=None):
        self.method = method
        self.target = target
        self.body = body
        self.headers = {"Content-Type": bi.PKI_MESSAGE} if headers is None and \
            method == "POST" else (headers or {})
        self.raw = raw
        self.stall = stall
        self.chunks = chunks
        self.txid = txid          # what a FAILURE CertRep must echo
        self.nonce = nonce

    def go(self, env):
        if self.chunks is not None:
            a, _ = bi.stream_until_answer(env.port, self.raw, self.chunks)
            return a
        if self.raw is not None:
            a, _ = bi.raw_exchange(env.port, self.raw, self.body, stall=self.stall)
            return a
        r = env.request(self.method, self.target, body=self.body, headers=self.headers)
        return bi.Answer(r.status, {k.lower(): v for k, v in r.headers}, r.body)


class Kit:
    """What the cases are built from: the requester (key, self-signed
    certificate, a CSR with the right challenge and one with a wrong one)
    and the CLI-built base request, made once per module; each case's
    request is built when the case runs."""

    def __init__(self, pki, keys, directory):
        self.pki = pki
        self.dir = Path(directory)
        self.ra = pki.ra.cert
        self.key = keys.get("t600-requester")
        self.client = scepmsg.make_client(self.key.obj, "t600-requester")
        self.csr_good = scepmsg.make_csr(self.client, CHALLENGE)
        self.csr_wrong = scepmsg.make_csr(self.client, "not-the-challenge")
        self._n = 0
        self._cache = {}

    def txid(self, tag):
        self._n += 1
        return f"T600-{self._n:03d}-{tag}"[:120]

    # -- requests made by the CLI ------------------------------------------

    def cli_request(self, name, csr_der, *args):
        csr = self.dir / f"{name}.csr.der"
        csr.write_bytes(csr_der)
        out = self.dir / f"{name}.der"
        p = own.run([own.cli_path(), "request", "--type", "pkcsreq", "--recipient",
                     self.pki.ra.cert_file, "--key", self.key.path, "--csr", csr,
                     "-o", out, *args])
        f = own.kv_lines(p.out)
        return out.read_bytes(), f["transactionID"], bytes.fromhex(f["senderNonce"])

    @property
    def base(self):
        """A valid PKCSReq with the right challenge, built by the CLI."""
        if "base" not in self._cache:
            self._cache["base"] = self.cli_request("base", self.csr_good, "--txid",
                                                   self.txid("cli-base"))
        return self._cache["base"]

    @property
    def base_ber(self):
        if "ber" not in self._cache:
            self._cache["ber"] = own.to_ber(self.base[0])
        return self._cache["ber"]

    # -- requests made here -------------------------------------------------

    def msg(self, tag, content=None, csr=None, mtype="19", digest="sha256", certs=None,
            nonce=None, **attr_over):
        """A request signed by the requester's key; content: the eContent
        (default: an envelope of csr, default the wrong-challenge CSR)."""
        txid = self.txid(tag)
        nonce = os.urandom(16) if nonce is None else nonce
        if content is None:
            content = bi.Envelope(self.ra, self.csr_wrong if csr is None else csr).der()
        attrs = bi.scep_attrs(txid, nonce, mtype, **attr_over)
        return bi.sign(self.client, content, attrs, digest, certs), txid, nonce

    def send(self, tag, **kw):
        der, txid, nonce = self.msg(tag, **kw)
        return Send(body=der, txid=txid, nonce=nonce)

    def env_case(self, tag, change, csr=None, **kw):
        """The right-challenge CSR in an envelope (badinput.Envelope with
        kw) changed by `change` (Envelope -> None), re-signed."""
        e = bi.Envelope(self.ra, self.csr_good if csr is None else csr, **kw)
        change(e)
        return self.send(tag, content=e.der())

    def small_certs(self, n):
        """n distinct small certificates (Ed25519, ~200 bytes each)."""
        key = self._cache.setdefault("ed", ed25519.Ed25519PrivateKey.generate())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "c")])
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        out = []
        for i in range(n):
            c = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                 .public_key(key.public_key()).serial_number(i + 1)
                 .not_valid_before(now - datetime.timedelta(days=1))
                 .not_valid_after(now + datetime.timedelta(days=30))
                 .sign(key, None))
            out.append(c.public_bytes(serialization.Encoding.DER))
        return out


# ---------------------------------------------------------------------------
# The cases: name -> (builder(kit) -> Send, accepted answer classes)

BAD = "400"
MSGCHECK = {"FAILURE badMessageCheck"}
BADREQ = {"FAILURE badRequest"}
BADALG = {"FAILURE badAlg"}
CASES = {}


def case(name, expect, build):
    assert name not in CASES, name
    CASES[name] = (build, {expect} if isinstance(expect, str) else set(expect))


def _sig_pos(der):
    """Offset of the SignerInfo's signature value (the last 256 bytes)."""
    return len(der) - 256


# -- HTTP-level garbage
case("empty-body", BAD, lambda k: Send(body=b""))
case("text-garbage", BAD, lambda k: Send(body=b"operation=PKIOperation&message=hello\n"))
case("random-4k", BAD, lambda k: Send(body=bytes(range(256)) * 16))
case("der-null", BAD, lambda k: Send(body=b"\x05\x00"))
case("contentinfo-data", BAD, lambda k: Send(
    body=scepmsg.seq(scepmsg.oid("data"), scepmsg.explicit(0, octets(b"x" * 64)))))
case("signeddata-empty", BAD, lambda k: Send(
    body=scepmsg.seq(scepmsg.oid("signedData"), scepmsg.explicit(0, scepmsg.seq()))))
case("envelope-as-message", BAD, lambda k: Send(
    body=bi.Envelope(k.ra, k.csr_good).der()))

# -- truncated at 10 offsets (DER) and 3 (BER)
_TRUNC = {"1": lambda n: 1, "2": lambda n: 2, "16": lambda n: 16, "100": lambda n: 100,
          "25pct": lambda n: n // 4, "50pct": lambda n: n // 2,
          "75pct": lambda n: 3 * n // 4, "in-signature": lambda n: n - 100,
          "minus-2": lambda n: n - 2, "minus-1": lambda n: n - 1}
for _t, _f in _TRUNC.items():
    case(f"truncated-{_t}", BAD, lambda k, f=_f: Send(body=k.base[0][:f(len(k.base[0]))]))
for _t, _f in {"50pct": lambda n: n // 2, "minus-2": lambda n: n - 2,
               "minus-4": lambda n: n - 4}.items():
    case(f"truncated-ber-{_t}", BAD,
         lambda k, f=_f: Send(body=k.base_ber[:f(len(k.base_ber))]))


# -- the outer layer (the CLI's request, one byte changed)
def _econtent(der):
    """The eContent octets (the envelope) of a pkiMessage."""
    sd = scepmsg.parse(der).children()[1].children()[0]
    return sd.children()[2].children()[1].children()[0].octets()


def _outer(k, where, mask=0x01):
    der, txid, nonce = k.base
    if where == "sig-first":
        pos = _sig_pos(der)
    elif where == "sig-last":
        pos = len(der) - 1
    elif where == "message-digest":
        env = _econtent(der)
        pos = bi.find_once(der, hashlib.sha256(env).digest()) + 5
    elif where == "sender-nonce":
        pos = bi.find_once(der, nonce) + 3
        return Send(body=bi.flip(der, pos), txid=txid, nonce=bi.flip(nonce, 3))
    elif where == "transaction-id":
        # its last character, whose low bit flipped stays printable
        pos = bi.find_once(der, txid.encode()) + len(txid) - 1
        return Send(body=bi.flip(der, pos), txid=txid[:-1] + chr(ord(txid[-1]) ^ 1),
                    nonce=nonce)
    elif where == "econtent":
        env = _econtent(der)
        pos = bi.find_once(der, env) + len(env) // 2
    elif where == "signer-modulus":
        # the signer certificate's modulus (the CSR is inside the envelope)
        mod = k.key.obj.public_key().public_numbers().n.to_bytes(256, "big")
        pos = bi.find_once(der, mod[100:140]) + 10
    elif where == "digest-alg-unknown":
        # the SignerInfo's digestAlgorithm: sha256 (...4.2.1) -> ...4.2.99
        sha256 = bytes.fromhex("0609608648016503040201")
        pos = der.rfind(sha256) + len(sha256) - 1
        return Send(body=bi.flip(der, pos, 0x01 ^ 0x63), txid=txid, nonce=nonce)
    elif where == "contentinfo-tag":
        pos = 0
    elif where == "signeddata-oid":
        pos = der.find(bytes.fromhex("06092a864886f70d010702")) + 10
    else:
        raise ValueError(where)
    return Send(body=bi.flip(der, pos, mask), txid=txid, nonce=nonce)


for _w, _e in [("sig-first", MSGCHECK), ("sig-last", MSGCHECK),
               ("message-digest", MSGCHECK), ("sender-nonce", MSGCHECK),
               ("transaction-id", MSGCHECK), ("econtent", MSGCHECK),
               ("signer-modulus", MSGCHECK), ("digest-alg-unknown", BADALG),
               ("contentinfo-tag", BAD), ("signeddata-oid", BAD)]:
    case(f"flip-outer-{_w}", _e, lambda k, w=_w: _outer(k, w))


# -- the envelope (changed, then re-signed)
def _set(attr_name, fn):
    def change(e):
        setattr(e, attr_name, fn(e))
    return change


for _n, _c in [
        ("ek-first-byte", _set("ek", lambda e: bi.flip(e.ek, 0, 0x80))),
        ("ek-last-byte", _set("ek", lambda e: bi.flip(e.ek, len(e.ek) - 1))),
        ("ek-zero", _set("ek", lambda e: bytes(len(e.ek)))),
        ("ek-short", _set("ek", lambda e: e.ek[:128])),
        ("ek-bad-padding", _set("ek", lambda e: bi.bad_padding_key(
            e.recipient.public_key()))),
        ("ek-wrong-key-length", _set("ek", lambda e: bi.good_padding_key(
            e.recipient.public_key(), 7))),
        ("iv", _set("iv", lambda e: bi.flip(e.iv, 0))),
        ("ciphertext-first-block", _set("ciphertext",
                                        lambda e: bi.flip(e.ciphertext, 3))),
        ("ciphertext-middle", _set("ciphertext", lambda e: bi.flip(
            e.ciphertext, len(e.ciphertext) // 2))),
        ("ciphertext-last-block", _set("ciphertext", lambda e: bi.flip(
            e.ciphertext, len(e.ciphertext) - 1))),
        ("ciphertext-not-blocks", _set("ciphertext", lambda e: e.ciphertext[:-5])),
        ("ciphertext-empty", _set("ciphertext", lambda e: b"")),
        ("cipher-unknown-oid", _set("cipher_oid", lambda e: bi.OID_AES_UNKNOWN)),
        ("no-recipients", _set("recipients", lambda e: False)),
]:
    case(f"flip-envelope-{_n}", MSGCHECK, lambda k, c=_c, n=_n: k.env_case(n, c))
case("envelope-cipher-aes-ofb", BADALG, lambda k: k.env_case(
    "ofb", _set("cipher_oid", lambda e: bi.OID_AES128_OFB)))
# -- how the recipient is named, how many there are and of which kind, the
#    key transport, single DES (test_620 has those that enroll)
_SHA256 = "2.16.840.1.101.3.4.2.1"
for _n, _kw in [
        ("des", lambda k: dict(cipher_oid=bi.OID_DES_CBC)),
        ("des-keyid", lambda k: dict(cipher_oid=bi.OID_DES_CBC, rid="ski")),
        ("oaep-md5", lambda k: dict(rid="ski", kt=bi.algid(
            bi.OID_RSA_OAEP, bi.oaep_params(bi.OID_MD5, bi.OID_MD5)))),
        ("oaep-mgf1-md5", lambda k: dict(kt=bi.algid(
            bi.OID_RSA_OAEP, bi.oaep_params(_SHA256, bi.OID_MD5)))),
        ("oaep-label", lambda k: dict(kt=bi.algid(
            bi.OID_RSA_OAEP, bi.oaep_params(label=b"label")))),
        ("oaep-no-parameters", lambda k: dict(kt=scepmsg.seq(scepmsg.oid(
            bi.OID_RSA_OAEP)))),
        ("key-transport-unknown-oid", lambda k: dict(kt=bi.algid(
            "1.2.840.113549.1.1.99"))),
]:
    case(f"envelope-{_n}", BADALG,
         lambda k, n=_n, kw=_kw: k.env_case(n, lambda e: None, **kw(k)))
for _n, _kw in [
        ("recipients-5", lambda k: dict(
            others=bi.other_recipients(k.pki.other.cert, 4))),
        ("recipients-5-keyid", lambda k: dict(
            rid="ski", others=bi.other_recipients(k.pki.other.cert, 4))),
        ("recipients-300", lambda k: dict(
            others=bi.other_recipients(k.pki.other.cert, 299))),
        ("recipients-600-des", lambda k: dict(
            cipher_oid=bi.OID_DES_CBC,
            others=bi.other_recipients(k.pki.other.cert, 599))),
        ("keyid-not-ours", lambda k: dict(ours=False, others=(bi.ktri(
            k.pki.other.cert, os.urandom(256), "ski"),))),
        ("only-kari-kekri-pwri", lambda k: dict(ours=False, others=(
            bi.kari(k.pki.other.cert), bi.kekri(), bi.pwri()))),
        ("keyid-ek-bad-padding", lambda k: dict(
            rid="ski", ek=bi.bad_padding_key(k.ra.public_key()))),
]:
    case(f"envelope-{_n}", MSGCHECK,
         lambda k, n=_n, kw=_kw: k.env_case(n, lambda e: None, **kw(k)))
case("envelope-is-the-csr", MSGCHECK, lambda k: k.send("csr-clear", content=k.csr_good))
case("envelope-deep-ber", MSGCHECK, lambda k: k.send("env-deep", content=bi.deep_ber()))
case("envelope-random", MSGCHECK, lambda k: k.send("env-rand", content=os.urandom(700)))


# -- the CSR inside (corrupted before enveloping: the CLI where it still
#    reads the CSR, else an envelope made here)
def _csr_cli(k, tag, change):
    der, txid, nonce = k.cli_request(f"csr-{tag}", change(k.csr_good), "--txid",
                                     k.txid(f"csr-{tag}"))
    return Send(body=der, txid=txid, nonce=nonce)


def _csr_subject_flip(csr):
    return bi.flip(csr, bi.find_once(csr, b"t600-requester") + 2)


def _csr_modulus_flip(csr):
    return bi.flip(csr, len(csr) // 3)


for _n, _c in [("signature", lambda c: bi.flip(c, len(c) - 1)),
               ("subject", _csr_subject_flip),
               ("public-key", _csr_modulus_flip)]:
    case(f"flip-csr-{_n}", MSGCHECK, lambda k, n=_n, c=_c: _csr_cli(k, n, c))
for _n, _c in [("truncated", lambda c: c[:len(c) // 2]),
               ("empty", lambda c: b""),
               ("garbage", lambda c: os.urandom(len(c))),
               ("deep-ber", lambda c: bi.deep_ber(2000)),
               ("tag", lambda c: bi.flip(c, 0, 0x02))]:
    case(f"bad-csr-{_n}", MSGCHECK, lambda k, n=_n, c=_c: k.env_case(
        f"csr-{n}", lambda e: None, csr=c(k.csr_good)))

# -- wrong content types: the body is the message all the same (README:
#    "the message as the POST body (any content type)")
def _typed(k, content_type):
    s = k.send("ct")
    s.headers = {"Content-Type": content_type} if content_type else {}
    return s


for _ct in ["text/plain", "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x", "application/json", None]:
    _id = _ct.split(";")[0].replace("/", "-") if _ct else "none"
    case(f"content-type-{_id}", BADREQ, lambda k, ct=_ct: _typed(k, ct))

# -- signed attributes: unknown messageType / pkiStatus, nonce lengths,
#    oversized or odd transactionIDs
for _n, _v in [("abc", "abc"), ("99", "99"), ("four-digits", "0019"), ("empty", ""),
               ("negative", "-1")]:
    case(f"message-type-{_n}", BADREQ, lambda k, v=_v, n=_n: k.send(f"type-{n}", mtype=v))
case("message-type-integer", BADREQ,
     lambda k: k.send("type-int", messageType=integer(19)))
case("message-type-missing", BADREQ, lambda k: k.send("type-none", messageType=None))
case("message-type-twice", BADREQ,
     lambda k: k.send("type-twice", messageType=(printable("19"), printable("19"))))
case("message-type-two-values", BADREQ,
     lambda k: k.send("type-2v", messageType=[printable("19"), printable("20")]))
for _n, _v in [("abc", "abc"), ("7", "7"), ("success-word", "SUCCESS")]:
    case(f"pki-status-{_n}", BADREQ,
         lambda k, v=_v, n=_n: k.send(f"status-{n}", pkiStatus=printable(v)))
case("certrep-as-request-status-abc", BADREQ,
     lambda k: k.send("certrep", mtype="3", pkiStatus=printable("abc"),
                      failInfo=printable("zz")))
for _len in (1, 15, 17, 64):
    case(f"nonce-{_len}-bytes", BADREQ,
         lambda k, n=_len: k.send(f"nonce{n}", nonce=os.urandom(n)))
for _len in (0, 65, 4096):
    case(f"nonce-{_len}-bytes", BAD,
         lambda k, n=_len: k.send(f"nonce{n}", nonce=os.urandom(n)))
case("nonce-printablestring", BAD,
     lambda k: k.send("nonce-ps", senderNonce=printable("0123456789ABCDEF")))
case("nonce-twice", BAD,
     lambda k: k.send("nonce-2", senderNonce=(octets(os.urandom(16)),
                                              octets(os.urandom(16)))))
case("nonce-missing", BAD, lambda k: k.send("nonce-none", senderNonce=None))


def _txid_cli(k, txid):
    der, _, _ = k.cli_request("txid-long", k.csr_wrong, "--txid", txid)
    return Send(body=der)


case("transaction-id-200-chars", BAD, lambda k: _txid_cli(k, "X" * 200))
case("transaction-id-128-chars", BAD,
     lambda k: k.send("t", transactionID=printable("Y" * 128)))
case("transaction-id-4000-chars", BAD,
     lambda k: k.send("t", transactionID=printable("Z" * 4000)))
case("transaction-id-control-char", BAD,
     lambda k: k.send("t", transactionID=tlv(0x13, b"ABC\x01DEF")))
case("transaction-id-utf8-non-ascii", BAD,
     lambda k: k.send("t", transactionID=tlv(0x0C, "caf\u00e9-\u2603".encode())))
case("transaction-id-empty", BAD, lambda k: k.send("t", transactionID=tlv(0x13, b"")))
case("transaction-id-missing", BAD, lambda k: k.send("t", transactionID=None))
case("transaction-id-bmpstring", BAD,
     lambda k: k.send("t", transactionID=tlv(0x1E, "ABCD".encode("utf-16-be"))))

# -- the certificates field
case("certificates-1000", BAD, lambda k: k.send(
    "c1000", certs=[k.client.cert_der, *k.small_certs(999)]))
case("certificates-17", BAD, lambda k: k.send(
    "c17", certs=[k.client.cert_der, *k.small_certs(16)]))
case("certificates-16", BADREQ, lambda k: k.send(
    "c16", certs=[k.client.cert_der, *k.small_certs(15)]))
case("certificates-garbage", BAD, lambda k: k.send(
    "cgarb", certs=[k.client.cert_der, b"\x30\x03\x02\x01"]))
case("certificates-none", MSGCHECK, lambda k: k.send("c0", certs=[]))

# -- deeply nested BER / DER
case("deep-ber-10000-body", BAD, lambda k: Send(body=bi.deep_ber(10000)))
case("deep-der-10000-body", BAD, lambda k: Send(body=bi.deep_der(10000)))
case("deep-ber-in-signeddata", BAD, lambda k: Send(body=scepmsg.seq(
    scepmsg.oid("signedData"), bytes([0xA0, 0x80]) + bi.deep_ber(10000) + b"\x00\x00")))
case("deep-ber-in-certificates", BAD, lambda k: k.send(
    "cdeep", certs=[k.client.cert_der, bi.deep_ber(5000)]))

# -- oversized and slow bodies (raw sockets: the client must not need the
#    server to read what it refuses)
case("over-limit-content-length", "413", lambda k: Send(raw=bi.request_head(
    "POST", PKIOP, [f"Content-Type: {bi.PKI_MESSAGE}", f"Content-Length: {LIMIT + 1}"])))
case("over-limit-content-length-huge", "413", lambda k: Send(raw=bi.request_head(
    "POST", PKIOP, [f"Content-Type: {bi.PKI_MESSAGE}",
                    "Content-Length: 4611686018427387904"])))
case("content-length-invalid", BAD, lambda k: Send(raw=bi.request_head(
    "POST", PKIOP, [f"Content-Type: {bi.PKI_MESSAGE}", "Content-Length: -5"])))
case("over-limit-chunked", "413", lambda k: Send(
    raw=bi.request_head("POST", PKIOP, [f"Content-Type: {bi.PKI_MESSAGE}",
                                        "Transfer-Encoding: chunked"]),
    chunks=[b"4000\r\n" + b"\x30" * 0x4000 + b"\r\n"] * (LIMIT // 0x4000 + 8)))
case("chunked-malformed", BAD, lambda k: Send(
    raw=bi.request_head("POST", PKIOP, ["Transfer-Encoding: chunked"]),
    body=b"zz\r\nhello\r\n0\r\n\r\n"))
case("chunked-size-overflow", {"400", "413"}, lambda k: Send(
    raw=bi.request_head("POST", PKIOP, ["Transfer-Encoding: chunked"]),
    body=b"FFFFFFFFFFFFFFFFFFFF\r\n" + b"\x30" * 64))
case("chunked-one-byte-chunks", BAD, lambda k: Send(
    raw=bi.request_head("POST", PKIOP, ["Transfer-Encoding: chunked"]),
    body=b"".join(b"1\r\n" + bytes([b]) + b"\r\n" for b in os.urandom(2000))
    + b"0\r\n\r\n"))
_SLOW = {"408", "400", "closed"}
case("slow-body-content-length", _SLOW, lambda k: Send(
    raw=bi.request_head("POST", PKIOP, [f"Content-Type: {bi.PKI_MESSAGE}",
                                        f"Content-Length: {len(k.base[0])}"]),
    body=k.base[0][:len(k.base[0]) // 2], stall=0))
case("slow-body-chunked", _SLOW, lambda k: Send(
    raw=bi.request_head("POST", PKIOP, ["Transfer-Encoding: chunked"]),
    body=b"400\r\n" + k.base[0][:0x400] + b"\r\n", stall=0))
case("slow-headers", _SLOW, lambda k: Send(
    raw=b"POST " + PKIOP.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n",
    stall=0))

# -- huge query strings and headers (httpd's limits)
case("query-over-line-limit", "414", lambda k: Send(
    "GET", PKIOP + "&message=" + "A" * LINE_LIMIT))
case("query-100k", "414", lambda k: Send("GET", PKIOP + "&message=" + "A" * 100000))
case("header-over-field-limit", BAD, lambda k: Send(
    "GET", "/scep?operation=GetCACaps", headers={"X-Big": "b" * 9000}))
case("headers-over-count-limit", BAD, lambda k: Send(
    "GET", "/scep?operation=GetCACaps", headers={f"X-H{i}": "v" for i in range(150)}))

# -- GET message= that is not base64 of a message
for _n, _m in [("bang", "!!!!"), ("nul", "%00%00%00%00"), ("high-bytes", "%FF%FE%FD%FC"),
               ("whitespace", "%20%0A%0D%09"), ("padding-only", "===="),
               ("base64-of-garbage", base64.b64encode(b"not a message at all").decode()),
               ("base64-truncated", None), ("missing", ""), ("bad-escape", "MII%ZZ%4"),
               ("base64url-and-plus-mixed", "MIIB-+_/"), ("data-after-padding", "AA==AA")]:
    def _get(k, m=_m):
        if m is None:
            m = urllib.parse.quote(base64.b64encode(k.base[0]).decode()[:1001], safe="")
        return Send("GET", PKIOP + (f"&message={m}" if m else ""))
    case(f"get-message-{_n}", BAD, _get)
case("get-message-valid-wrong-challenge", BADREQ, lambda k: (lambda d: Send(
    "GET", own.get_target(d[0], "quoted"), txid=d[1], nonce=d[2]))(k.msg("get")))

# -- methods and operations
for _m in ("PUT", "DELETE", "OPTIONS", "PATCH", "PROPFIND"):
    case(f"method-{_m.lower()}", "405", lambda k, m=_m: Send(m, PKIOP, body=b"x",
                                                             headers={}))
case("method-head-pkioperation", "405", lambda k: Send("HEAD", PKIOP))
for _n, _t in [("unknown", "/scep?operation=GetFoo"), ("missing", "/scep"),
               ("empty", "/scep?operation="), ("huge", "/scep?operation=" + "O" * 7000),
               ("nul", "/scep?operation=GetCACaps%00"),
               ("lowercase-pkioperation", "/scep?operation=pkioperation")]:
    case(f"operation-{_n}", BAD, lambda k, t=_t: Send("POST", t, body=b"\x30\x00"))


# ---------------------------------------------------------------------------
# Signed plists and other bodies on the OTA location (the shared OTA config
# of otaenv.OtaServer; signed by a device of the test device CA)


def _nested_xml(depth, inner="<string>x</string>"):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">'
            + "<array>" * depth + inner + "</array>" * depth + "</plist>").encode()


def _binary_plist(objs, ref_size):
    """A binary plist of the encoded objects (object 0 is the top)."""
    body, offsets = b"", []
    for o in objs:
        offsets.append(8 + len(body))
        body += o
    table_off = 8 + len(body)
    off_size = 1 if table_off < 256 else 2
    table = b"".join(x.to_bytes(off_size, "big") for x in offsets)
    trailer = (b"\x00" * 6 + bytes([off_size, ref_size]) + len(objs).to_bytes(8, "big")
               + (0).to_bytes(8, "big") + table_off.to_bytes(8, "big"))
    return b"bplist00" + body + table + trailer


def _deep_binary_plist(depth):
    """`depth` one-element arrays, each holding the next (under the 4 KiB
    the module lets binary plists have)."""
    objs = [b"\xa1" + (i + 1).to_bytes(2, "big") for i in range(depth)]
    return _binary_plist(objs + [b"\x51x"], 2)


def _circular_binary_plist():
    """A dictionary whose one value is the dictionary itself."""
    return _binary_plist([b"\xd1\x01\x00", b"\x54UDID"], 1)


def _attrs_with(**over):
    """The device attributes with a CHALLENGE never issued: a plist that
    parses gets 403 (SCEP5014), so 400 tells that the parser refused it."""
    d = dict(otaenv.DEVICE_ATTRS, CHALLENGE="A" * 32)
    d.update(over)
    return otaenv.plist_xml(d)


def _billion_laughs():
    return (b'<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
            b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
            b'<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
            b'<plist version="1.0"><dict><key>UDID</key><string>&d;&d;&d;</string>'
            b'</dict></plist>')


def _certs_pem(kit, n):
    return b"".join(x509.load_der_x509_certificate(d).public_bytes(
        serialization.Encoding.PEM) for d in kit.small_certs(n))


class Ota:
    """What an OTA case has at hand to build its body."""

    def __init__(self, kit, opki, tmp):
        self.kit = kit
        self.opki = opki
        self.tmp = tmp
        self.dev = opki.device("t600")

    def signed(self, content, certs=None):
        certfile = None
        if certs:
            certfile = self.tmp / f"certs-{certs}.pem"
            certfile.write_bytes(_certs_pem(self.kit, certs))
        return otaenv.cms_sign(content, self.dev, self.tmp, md="sha1",
                               certfile=certfile)


OTA_CASES = {}


def ota_case(name, expect, build, log=None):
    """log: the tag of the warning the refusal writes, if any."""
    OTA_CASES[name] = (build, {expect} if isinstance(expect, str) else set(expect), log)


ota_case("plist-xml-depth-33", BAD, lambda o: o.signed(_nested_xml(33)))
ota_case("plist-xml-depth-1000", BAD, lambda o: o.signed(_nested_xml(1000)))
ota_case("plist-xml-depth-33-in-dict", BAD, lambda o: o.signed(_attrs_with().replace(
    b"<dict>", b"<dict><key>Deep</key>" + b"<array>" * 33 + b"</array>" * 33, 1)))
ota_case("plist-binary-depth-800", BAD, lambda o: o.signed(_deep_binary_plist(800)))
ota_case("plist-binary-circular", BAD, lambda o: o.signed(_circular_binary_plist()))
ota_case("plist-binary-truncated", BAD, lambda o: o.signed(plistlib.dumps(
    otaenv.DEVICE_ATTRS, fmt=plistlib.FMT_BINARY)[:-10]))
ota_case("plist-huge-string-15k", BAD,
         lambda o: o.signed(_attrs_with(UDID="F" * 15000)))
ota_case("plist-huge-string-20k", BAD, lambda o: o.signed(_attrs_with(UDID="F" * 20000)))
ota_case("plist-huge-key", "403", lambda o: o.signed(_attrs_with(**{"K" * 10000: "v"})),
         log=r"SCEP5014")
ota_case("plist-100-keys", BAD, lambda o: o.signed(
    _attrs_with(**{f"KEY{i}": "v" for i in range(100)})))
ota_case("plist-entity-expansion", BAD, lambda o: o.signed(_billion_laughs()))
# attributes that make no subject are refused before the challenge is used
ota_case("plist-not-utf8", "400", lambda o: o.signed(
    _attrs_with(PRODUCT="x").replace(b"<string>x<", b"<string>\xff\xfe<")))
ota_case("ota-certificates-9", BAD, lambda o: o.signed(_attrs_with(), certs=9))
ota_case("ota-certificates-300", BAD, lambda o: o.signed(_attrs_with(), certs=300))
ota_case("ota-body-over-64k", "413", lambda o: o.signed(_attrs_with() + b" " * 70000))
ota_case("ota-deep-ber", BAD, lambda o: bi.deep_ber(10000))
ota_case("ota-deep-der", BAD, lambda o: bi.deep_der(5000))
ota_case("ota-random", BAD, lambda o: os.urandom(5000))


# ---------------------------------------------------------------------------
# The matrix: one test over every case, in this order (SCEP config, then
# the OTA config, then the sweep), so each MPM starts each config once


MATRIX = [*(("scep", n) for n in CASES), *(("ota", n) for n in OTA_CASES),
          ("sweep", "no-child-died")]


def test_600_000_enough_cases():
    assert len(CASES) + len(OTA_CASES) >= 50


@pytest.fixture(scope="module")
def kit(pki, own_keys, tmp_path_factory):
    return Kit(pki, own_keys, tmp_path_factory.mktemp("t600"))


@pytest.fixture(scope="module")
def opki(tmp_path_factory, pki, own_keys):
    return otaenv.ota_pki(tmp_path_factory, pki, own_keys)


def _scep_store(env, pki, kit):
    env.ensure(snippet(pki))
    db = env.root.path / "state" / "bad-input-600.db"
    if not db.exists():        # the store is opened at the first PKIOperation
        der, _, _ = kit.msg("warm-up")
        env.post(PKIOP, body=der)
    return db


def _check(env, send, got, expect, verify_with, log0, db, before):
    cls = bi.answer_class(got.status, got.content_type, got.body, verify_with)
    assert cls != "5xx", f"{got!r}: {got.body[:300]!r}"
    assert cls in expect, (f"expected {sorted(expect)}, got {cls} ({got!r} "
                           f"{got.body[:200]!r} {got.error or ''})")
    if cls.startswith("FAILURE") and send is not None and send.txid is not None:
        rep = scepmsg.parse_certrep(got.body)
        assert rep.transaction_id == send.txid, (rep.transaction_id, send.txid)
        assert rep.recipient_nonce == send.nonce
    if got.status == 405:
        assert "POST" in got.headers.get("allow", ""), got.headers
    crashed = bi.crash_lines(env.read_log(log0))
    assert not crashed, "\n".join(crashed)
    after = bi.sqlite_fingerprint(db)
    assert after == before, f"the store changed: {before[1]} -> {after[1]}"
    if os.environ.get("SCEP_T600_REPORT"):     # a table of what each case got
        test = os.environ.get("PYTEST_CURRENT_TEST", "")
        case_id = test.split("[")[-1].split("]")[0]
        with open(os.environ["SCEP_T600_REPORT"], "a") as f:
            f.write(f"{case_id} {cls}\n")
    return cls


_LOG_START = {}     # env -> error log offset before this module's first case


@pytest.mark.parametrize("kind,name", MATRIX, ids=[n for _, n in MATRIX])
def test_600_matrix(env, pki, kit, request, tmp_path, kind, name):
    _LOG_START.setdefault(id(env), env.log_size())
    if kind == "sweep":
        # after every case, and a pause for the parent to reap a child that
        # died late: no crash in what this server logged since the first
        # case (other files kill children on purpose: not before)
        time.sleep(1.5)
        crashed = bi.crash_lines(env.read_log(_LOG_START[id(env)]))
        assert not crashed, "\n".join(crashed)
        return
    if kind == "scep":
        build, expect = CASES[name]
        db = _scep_store(env, pki, kit)
        send = build(kit)
        before = bi.sqlite_fingerprint(db)
        log0 = env.log_size()
        got = send.go(env)
        _check(env, send, got, expect, pki.ra.cert, log0, db, before)
        assert env.get("/scep?operation=GetCACaps").status == 200
        return
    build, expect, log = OTA_CASES[name]
    opki = request.getfixturevalue("opki")
    srv = otaenv.ota_server(env, pki, opki)
    otaenv.fetch(srv.url())              # Phase 1 once: the store exists
    body = build(Ota(kit, opki, tmp_path))
    db = env.root.path / srv.store
    before = bi.sqlite_fingerprint(db)
    log0 = env.log_size()
    if log:
        env.expect_log(log)
    a = otaenv.fetch(srv.url(), body=body, content_type=otaenv.PKCS7_SIG)
    got = bi.Answer(a.status, {k.lower(): v for k, v in a.headers.items()}, a.body)
    _check(env, None, got, expect, None, log0, db, before)
    assert otaenv.fetch(srv.url()).status == 200


# ---------------------------------------------------------------------------
# The challenge page (scep-challenge behind AuthType Basic): odd query
# strings, huge parameters, other methods, HEAD. Each: the expected status,
# no 5xx, no crashed child, no challenge stored (the store unchanged).

PAGE = "/certsrv/mscep_admin/"
PAGE_USER, PAGE_PW = "t600", "t600-page-secret"
PAGE_AUTH = {"Authorization": "Basic "
             + base64.b64encode(f"{PAGE_USER}:{PAGE_PW}".encode()).decode()}
PAGE_MODULES = ("auth_basic", "authn_core", "authn_file", "authz_user")


def page_snippet(pki, users):
    return "\n".join([
        scep_directives(pki.ca_chain_file, pki.issuing.key_file),
        "SCEPStore sqlite3:state/bad-input-600-page.db",
        f"<Location {PAGE}>",
        "    SetHandler scep-challenge",
        "    AuthType Basic",
        '    AuthName "t600"',
        f'    AuthUserFile "{users}"',
        "    Require valid-user",
        "</Location>",
    ])


PAGE_CASES = {
    "query-format-empty": ("GET", "?format=", "400"),
    "query-format-unknown": ("GET", "?format=pdf", "400"),
    "query-format-twice": ("GET", "?format=json&format=json", "400"),
    "query-name-bad-escape": ("GET", "?%ZZ=1", "400"),
    "query-value-bad-escape": ("GET", "?subject=%ZZ", "400"),
    "query-value-nul": ("GET", "?subject=%2FCN%3Da%00b", "400"),
    "query-value-newline": ("GET", "?subject=%2FCN%3Da%0Ab", "400"),
    "query-value-high-bytes": ("GET", "?subject=%2FCN%3D%FF%FE", "400"),
    "query-only-equals": ("GET", "?=", "400"),
    "query-unknown-parameter": ("GET", "?operation=GetCACaps", "400"),
    "query-san-without-subject": ("GET", "?san=dns:a.example.com", "400"),
    "query-san-unknown-type": ("GET", "?subject=/CN=a&san=x400:a", "400"),
    "query-san-wildcard": ("GET", "?subject=/CN=a&san=dns:*.example.com", "400"),
    "query-subject-twice": ("GET", "?subject=/CN=a&subject=/CN=b", "400"),
    "query-subject-not-a-dn": ("GET", "?subject=" + "x" * 100, "400"),
    "query-subject-1100-bytes": ("GET", "?subject=/CN=" + "A" * 1100, "400"),
    "query-subject-escaped-3000": ("GET", "?subject=" + "%41" * 1000, "400"),
    "query-33-sans": ("GET", "?subject=/CN=a" + "&san=dns:a.example.com" * 33,
                      "400"),
    "query-over-line-limit": ("GET", "?subject=/CN=" + "A" * LINE_LIMIT, "414"),
    "method-post": ("POST", "", "405"),
    "method-put": ("PUT", "", "405"),
    "method-delete": ("DELETE", "", "405"),
    "method-options": ("OPTIONS", "", "405"),
    "method-patch": ("PATCH", "", "405"),
    "head-issues-nothing": ("HEAD", "?format=json", "200"),
    "no-credentials": ("GET", "", "401"),
}


@pytest.fixture(scope="module")
def page_users(tmp_path_factory):
    import subprocess
    d = tmp_path_factory.mktemp("t600-page")
    d.chmod(0o755)
    users = d / "users"
    subprocess.run(["htpasswd", "-b", "-c", "-B", "-C", "4", str(users), PAGE_USER,
                    PAGE_PW], check=True, capture_output=True)
    users.chmod(0o644)
    return users


@pytest.mark.parametrize("name", list(PAGE_CASES))
def test_600_challenge_page(env, pki, page_users, name):
    method, query, expect = PAGE_CASES[name]
    env.ensure(page_snippet(pki, page_users), extra_modules=PAGE_MODULES)
    db = env.root.path / "state" / "bad-input-600-page.db"
    if not db.exists():        # the store is opened at the first challenge
        assert env.get(PAGE + "?format=text", headers=PAGE_AUTH).status == 200
    before = bi.sqlite_fingerprint(db)
    log0 = env.log_size()
    headers = {} if name == "no-credentials" else dict(PAGE_AUTH)
    got = env.request(method, PAGE + query, body=b"x" if method != "GET" and
                      method != "HEAD" else None, headers=headers)
    assert got.status < 500, (got.status, got.body[:200])
    assert str(got.status) == expect, (name, got.status, got.body[:200])
    if got.status == 405:
        assert got.header("Allow") == "GET, HEAD", got.headers
    if method == "HEAD":
        assert got.body == b"" and got.content_type == "application/json"
    crashed = bi.crash_lines(env.read_log(log0))
    assert not crashed, "\n".join(crashed)
    assert bi.sqlite_fingerprint(db) == before, "a challenge was stored"
