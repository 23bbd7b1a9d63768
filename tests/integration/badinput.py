"""Helpers for the bad-input matrix (test_600), the security tests
(test_610) and the envelope tests (test_620): pkiMessages built in Python
with every part under the test's control (signed attributes of any type and
count, the certificates field, the envelope's encrypted key, IV, cipher and
ciphertext, how its recipient is named, its key transport and the other
recipients beside it), raw-socket HTTP
for what http.client cannot send (a stalled body, a Content-Length the
client never honours), the answer's class, and the store's fingerprint.

The message layout follows RFC 8894 / RFC 5652 and the DER primitives of
scepmsg.py; nothing here decides what the module should answer.
"""

import atexit
import json
import os
import re
import select
import socket
import subprocess
import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as apad
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

import scepmsg
import storeenv
from scepmsg import (algid, explicit, implicit, integer, octets, oid, parse, printable,
                     seq, set_of, tlv)

PKIOP = "/scep?operation=PKIOperation"
PKI_MESSAGE = "application/x-pki-message"

OID_AES128_CBC = "2.16.840.1.101.3.4.1.2"
OID_AES128_OFB = "2.16.840.1.101.3.4.1.3"
OID_AES_UNKNOWN = "2.16.840.1.101.3.4.1.99"
OID_DES_CBC = "1.3.14.3.2.7"
OID_RSA_OAEP = "1.2.840.113549.1.1.7"
OID_MGF1 = "1.2.840.113549.1.1.8"
OID_P_SPECIFIED = "1.2.840.113549.1.1.9"
OID_MD5 = "1.2.840.113549.2.5"
OID_AES128_WRAP = "2.16.840.1.101.3.4.1.5"
OID_PBKDF2 = "1.2.840.113549.1.5.12"
OID_PWRI_KEK = "1.2.840.113549.1.9.16.3.9"
OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_P256 = "1.2.840.10045.3.1.7"
OID_ECDH_SHA256_KDF = "1.3.132.1.11.1"

# --------------------------------------------------------------------------
# Building messages


def attr(name, *values):
    """An Attribute with any number of (already encoded) values."""
    return seq(oid(name), set_of(*values))


def scep_attrs(txid, nonce, mtype="19", **over):
    """messageType, transactionID and senderNonce (PrintableString,
    PrintableString, OCTET STRING). over: name -> None (left out), an
    encoded value, or a list of encoded values (several values, one
    attribute) / a tuple (the attribute twice)."""
    base = {"messageType": printable(mtype), "transactionID": printable(txid),
            "senderNonce": octets(nonce)}
    base.update(over)
    out = []
    for name, v in base.items():
        if v is None:
            continue
        if isinstance(v, tuple):
            out += [attr(name, x) for x in v]
        elif isinstance(v, list):
            out.append(attr(name, *v))
        else:
            out.append(attr(name, v))
    return out


def sign(client, content, attrs, digest="sha256", certs=None):
    """A SignedData ContentInfo over `content` (id-data) signed by `client`
    (a scepmsg.Client) with contentType, messageDigest and `attrs`.
    certs: the DER certificates of the certificates field (default: the
    signer's only)."""
    h = scepmsg._HASHES[digest]
    md = hashes.Hash(h())
    md.update(content)
    all_attrs = [attr("contentType", oid("data")),
                 attr("messageDigest", octets(md.finalize())), *attrs]
    signed_attrs = set_of(*all_attrs)
    sig = client.key.sign(signed_attrs, apad.PKCS1v15(), h())
    si = seq(integer(1), seq(client.cert.issuer.public_bytes(),
                             integer(client.cert.serial_number)),
             algid(digest), implicit(0, parse(signed_attrs).value),
             algid("rsaEncryption"), octets(sig))
    certs_der = client.cert_der if certs is None else b"".join(certs)
    sd = seq(integer(1), set_of(algid(digest)),
             seq(oid("data"), explicit(0, octets(content))),
             implicit(0, certs_der), set_of(si))
    return seq(oid("signedData"), explicit(0, sd))


def pkcs1_v15_block(n_bytes, payload):
    """EM = 00 02 PS 00 payload (RFC 8017 7.2.1), PS non-zero random."""
    ps = bytearray()
    while len(ps) < n_bytes - 3 - len(payload):
        ps += bytes(b for b in os.urandom(64) if b)
    return b"\x00\x02" + bytes(ps[:n_bytes - 3 - len(payload)]) + b"\x00" + payload


def raw_rsa(pub, em):
    """em^e mod n, as many bytes as the modulus: RSA without padding, so
    the test chooses what the server finds after decrypting."""
    nums = pub.public_numbers()
    k = (nums.n.bit_length() + 7) // 8
    return pow(int.from_bytes(em, "big"), nums.e, nums.n).to_bytes(k, "big")


def bad_padding_key(pub):
    """An encrypted key whose plaintext is not PKCS#1 v1.5 (type 3 block)."""
    k = (pub.public_numbers().n.bit_length() + 7) // 8
    return raw_rsa(pub, b"\x00\x03" + os.urandom(k - 2))


def good_padding_key(pub, cek_len=16):
    """Correct PKCS#1 v1.5 around a key that is not the content's key."""
    k = (pub.public_numbers().n.bit_length() + 7) // 8
    return raw_rsa(pub, pkcs1_v15_block(k, os.urandom(cek_len)))


def oaep_params(hash_oid=None, mgf_hash_oid=None, label=None):
    """RSAES-OAEP-params (RFC 4055): the parts given, the defaults (SHA-1,
    MGF1 with SHA-1, no label) left out."""
    parts = []
    if hash_oid:
        parts.append(explicit(0, seq(oid(hash_oid))))
    if mgf_hash_oid:
        parts.append(explicit(1, seq(oid(OID_MGF1), seq(oid(mgf_hash_oid)))))
    if label is not None:
        parts.append(explicit(2, seq(oid(OID_P_SPECIFIED), octets(label))))
    return seq(*parts)


def ski_of(cert):
    from cryptography import x509
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def ktri(cert, ek, rid="ias", kt=None):
    """A KeyTransRecipientInfo for `cert`: named by issuerAndSerialNumber
    (version 0) or subjectKeyIdentifier ([0], version 2); kt: the DER
    keyEncryptionAlgorithm (default rsaEncryption)."""
    if rid == "ski":
        version, rid_der = 2, implicit(0, ski_of(cert), constructed=False)
    else:
        version, rid_der = 0, seq(cert.issuer.public_bytes(), integer(cert.serial_number))
    return seq(integer(version), rid_der, kt or algid("rsaEncryption"), octets(ek))


def kekri():
    """[2] KEKRecipientInfo: an AES key-wrapped key under a KEK nobody here
    has."""
    return implicit(2, integer(4) + seq(octets(b"kek-id")) + seq(oid(OID_AES128_WRAP))
                    + octets(os.urandom(24)))


def pwri():
    """[3] PasswordRecipientInfo: PBKDF2 and the PWRI-KEK around AES."""
    kdf = oid(OID_PBKDF2) + seq(octets(os.urandom(8)), integer(2048))
    kek = seq(oid(OID_PWRI_KEK), seq(oid(OID_AES128_CBC), octets(os.urandom(16))))
    return implicit(3, integer(0) + implicit(0, kdf) + kek + octets(os.urandom(32)))


def kari(cert):
    """[1] KeyAgreeRecipientInfo (ECDH P-256, an ephemeral originator key)
    for `cert`."""
    point = b"\x04" + os.urandom(64)
    originator = implicit(1, seq(oid(OID_EC_PUBLIC_KEY), oid(OID_P256))
                          + tlv(0x03, b"\x00" + point))
    rek = seq(seq(cert.issuer.public_bytes(), integer(cert.serial_number)),
              octets(os.urandom(24)))
    return implicit(1, integer(3) + explicit(0, originator)
                    + seq(oid(OID_ECDH_SHA256_KDF), seq(oid(OID_AES128_WRAP)))
                    + seq(rek))


@dataclass
class Envelope:
    """The parts of an EnvelopedData (RSA key transport, AES-128-CBC or
    single DES); any of them can be replaced before der() assembles it.
    rid: how the recipient is named ("ias" or "ski"); kt: the DER
    keyEncryptionAlgorithm; others: more RecipientInfos (DER) beside ours;
    ours: False to leave our recipient out."""
    recipient: object                 # x509.Certificate
    content: bytes
    cek: bytes = None
    iv: bytes = None
    cipher_oid: str = OID_AES128_CBC
    ek: bytes = None
    ciphertext: bytes = None
    recipients: bool = True
    rid: str = "ias"
    kt: bytes = None
    others: tuple = ()
    ours: bool = True

    def __post_init__(self):
        des = self.cipher_oid == OID_DES_CBC
        if self.cek is None:
            self.cek = os.urandom(8 if des else 16)
        if self.iv is None:
            self.iv = os.urandom(8 if des else 16)
        if self.ek is None:
            self.ek = self.recipient.public_key().encrypt(self.cek, apad.PKCS1v15())
        if self.ciphertext is None:
            # single DES is 3DES with three equal keys
            alg = scepmsg.TripleDES(self.cek * 3) if des else algorithms.AES(self.cek)
            p = padding.PKCS7(alg.block_size).padder()
            plain = p.update(self.content) + p.finalize()
            enc = Cipher(alg, modes.CBC(self.iv)).encryptor()
            self.ciphertext = enc.update(plain) + enc.finalize()

    def der(self):
        ours = [ktri(self.recipient, self.ek, self.rid, self.kt)] if self.ours else []
        eci = seq(oid("data"), seq(oid(self.cipher_oid), octets(self.iv)),
                  implicit(0, self.ciphertext, constructed=False))
        ris = set_of(*self.others, *ours) if self.recipients else tlv(0x31, b"")
        # version 2 once a recipient is not version 0 (RFC 5652 6.1)
        version = 0 if self.rid == "ias" and not self.others else 2
        env = seq(integer(version), ris, eci)
        return seq(oid("envelopedData"), explicit(0, env))


def other_recipients(cert, n):
    """n KeyTransRecipientInfos for `cert` (not ours), each with its own
    random encrypted key."""
    k = (cert.public_key().key_size + 7) // 8
    return tuple(ktri(cert, os.urandom(k)) for _ in range(n))


def flip(data, pos, mask=0x01):
    b = bytearray(data)
    b[pos] ^= mask
    return bytes(b)


def find_once(data, needle):
    """Offset of `needle` in `data`; it must occur exactly once."""
    i = data.find(needle)
    assert i >= 0 and data.find(needle, i + 1) < 0, "needle not unique"
    return i


def deep_ber(levels=10000, tag=0x30):
    """`levels` nested indefinite-length constructed values."""
    return bytes([tag, 0x80]) * levels + b"\x00\x00" * levels


def deep_der(levels=10000):
    """`levels` nested definite-length SEQUENCEs around a NULL."""
    x = b"\x05\x00"
    for _ in range(levels):
        x = tlv(0x30, x)
    return x


# --------------------------------------------------------------------------
# HTTP


@dataclass
class Answer:
    status: int = None                # None: closed without an answer
    headers: dict = field(default_factory=dict)
    body: bytes = b""
    error: str = None

    @property
    def content_type(self):
        return self.headers.get("content-type")

    def __repr__(self):
        return (f"<Answer {self.status} {self.content_type} {len(self.body)} bytes"
                f"{' ' + self.error if self.error else ''}>")


def parse_http(raw):
    """The first HTTP response in `raw` (enough for these tests: a
    Content-Length body, or everything up to the close)."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return Answer(error=f"incomplete response: {raw[:200]!r}") if raw else Answer()
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/\d\.\d (\d{3})", lines[0])
    if not m:
        return Answer(error=f"not HTTP: {lines[0]!r}")
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = hdrs.get("content-length")
    body = rest[:int(n)] if n is not None else rest
    return Answer(int(m[1]), hdrs, body)


def _read_all(s, timeout):
    s.settimeout(timeout)
    data = b""
    while True:
        try:
            b = s.recv(65536)
        except socket.timeout:
            return data, "timeout"
        except ConnectionResetError:
            return data, "reset"
        if not b:
            return data, None
        data += b
        a = parse_http(data)
        n = a.headers.get("content-length")
        if a.status is not None and n is not None and len(a.body) >= int(n):
            return data, None


def raw_exchange(port, head, body=b"", stall=0.0, timeout=15.0):
    """Sends `head` (request line and headers, CRLF CRLF included) and
    `body`, optionally waits `stall` seconds without sending more, and
    reads the answer (or the close). Returns (Answer, seconds)."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(head + body)
        except (BrokenPipeError, ConnectionResetError) as e:
            return Answer(error=f"send: {e}"), time.monotonic() - t0
        if stall:
            time.sleep(stall)
        data, err = _read_all(s, timeout)
    a = parse_http(data)
    if err and a.status is None:
        a.error = err
    return a, time.monotonic() - t0


def stream_until_answer(port, head, chunks, timeout=15.0):
    """Sends `head`, then each of `chunks` (bytes) while the server has not
    answered yet; returns (Answer, bytes sent) once it answers."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head)
        for c in chunks:
            r, _, _ = select.select([s], [], [], 0)
            if r:
                break
            try:
                s.sendall(c)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(c)
        data, err = _read_all(s, timeout)
    a = parse_http(data)
    if err and a.status is None:
        a.error = err
    return a, sent


def request_head(method, target, headers=(), version="HTTP/1.1"):
    lines = [f"{method} {target} {version}", "Host: 127.0.0.1", *headers, "", ""]
    return "\r\n".join(lines).encode("latin-1")


# --------------------------------------------------------------------------
# What came back


def answer_class(status, content_type, body, verify_with=None):
    """'5xx', 'closed', the status as text, or for a CertRep
    'SUCCESS' / 'PENDING' / 'FAILURE <failInfo>' (with '(unsigned)' appended
    when its signature does not verify with `verify_with`)."""
    if status is None:
        return "closed"
    if status >= 500:
        return "5xx"
    if status == 200 and (content_type or "").startswith(PKI_MESSAGE):
        rep = scepmsg.parse_certrep(body, verify_with=verify_with)
        c = rep.status_name + (f" {rep.fail_name}" if rep.status == scepmsg.FAILURE
                               else "")
        if verify_with is not None and not rep.signature_ok:
            c += " (unsigned)"
        return c
    return str(status)


# --------------------------------------------------------------------------
# The store and the children


_READER = r"""
import hashlib, json, sqlite3, sys
for line in sys.stdin:
    try:
        c = sqlite3.connect(line.rstrip("\n"), timeout=10)
        h, counts = hashlib.sha256(), {}
        for stmt in c.iterdump():
            h.update(stmt.encode() + b"\n")
            if stmt.startswith("INSERT INTO "):
                t = stmt.split()[2].strip('"')
                counts[t] = counts.get(t, 0) + 1
        c.close()
        print(json.dumps([h.hexdigest(), counts]), flush=True)
    except Exception as e:
        print(json.dumps(["error", repr(e)]), flush=True)
"""
_readers = {}


@atexit.register
def _close_readers():
    for r in _readers.values():
        try:
            r.stdin.close()
            r.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            r.kill()


def sqlite_fingerprint(db):
    """A hash of the whole SQLite store (every statement of its dump) and
    its row counts per table. Read by one long-lived python3 process
    running as the file's owner (as root: the worker user), so that no
    -wal/-shm of another owner ever appears and each look costs a
    millisecond, not a process start."""
    db = str(db)
    assert os.path.exists(db), f"{db} does not exist (yet)"
    prefix = tuple(storeenv._as_owner(db))
    r = _readers.get(prefix)
    if r is None or r.poll() is not None:
        r = _readers[prefix] = subprocess.Popen(
            [*prefix, "/usr/bin/python3", "-c", _READER], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, cwd="/")
    r.stdin.write(db + "\n")
    r.stdin.flush()
    digest, counts = json.loads(r.stdout.readline())
    assert digest != "error", f"reading {db}: {counts}"
    return digest, counts


CRASH = re.compile(r"exit signal|AH00052|AH00060|AH02960|Segmentation|Aborted|"
                   r"AddressSanitizer|core dumped")


def crash_lines(text):
    return [ln for ln in text.splitlines() if CRASH.search(ln)]
