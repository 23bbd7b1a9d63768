"""The suite's own SCEP client, for the PKIOperation tests (test_2xx).

Requests are built offline by `scep-ota request` (the core's
scep_request_build), sent over HTTP by POST or GET the way real clients do,
and every answer is judged twice:

* by `scep-ota certrep` (the core's parser), which also writes what a
  SUCCESS envelope carries, and
* independently of the module's code: a small DER reader here checks the
  signed attributes (PrintableString in short form, nonces, transactionID,
  digest, the envelope's cipher and recipient), verifies the signature
  over them with python3-cryptography and opens the envelope with the
  client's key (RSA key transport and AES/3DES here; `openssl cms
  -decrypt` for single DES and ECDH); `openssl_cross_check()` has the
  openssl CLI do both once more; every issued certificate goes through
  `openssl verify -CAfile` and an inspection of its extensions with
  python3-cryptography.

The CSRs are made here with python3-cryptography (or by the CLI with
--subject), the keys too (cached between runs in pytest's cache dir).
"""

import base64
import datetime
import os
import re
import subprocess
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as apad
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import AttributeOID, ExtendedKeyUsageOID, ExtensionOID, NameOID

import scepenv

try:  # where newer python3-cryptography keeps 3DES
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # python3-cryptography before 43
    TripleDES = algorithms.TripleDES

PKIOP = "/scep?operation=PKIOperation"
CMD_TIMEOUT = 30

# signed attributes (RFC 8894 section 3.2.1)
OID_MESSAGE_TYPE = "2.16.840.1.113733.1.9.2"
OID_PKI_STATUS = "2.16.840.1.113733.1.9.3"
OID_FAIL_INFO = "2.16.840.1.113733.1.9.4"
OID_SENDER_NONCE = "2.16.840.1.113733.1.9.5"
OID_RECIPIENT_NONCE = "2.16.840.1.113733.1.9.6"
OID_TRANSACTION_ID = "2.16.840.1.113733.1.9.7"
OID_FAIL_INFO_TEXT = "1.3.6.1.5.5.7.24.1"
OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_ENVELOPED_DATA = "1.2.840.113549.1.7.3"
OID_DATA = "1.2.840.113549.1.7.1"

DIGEST_OIDS = {
    "md5": "1.2.840.113549.2.5",
    "sha1": "1.3.14.3.2.26",
    "sha224": "2.16.840.1.101.3.4.2.4",
    "sha256": "2.16.840.1.101.3.4.2.1",
    "sha384": "2.16.840.1.101.3.4.2.2",
    "sha512": "2.16.840.1.101.3.4.2.3",
}
CIPHER_OIDS = {
    "des": "1.3.14.3.2.7",
    "3des": "1.2.840.113549.3.7",
    "aes128": "2.16.840.1.101.3.4.1.2",
    "aes192": "2.16.840.1.101.3.4.1.22",
    "aes256": "2.16.840.1.101.3.4.1.42",
}
OID_RSA_OAEP = "1.2.840.113549.1.1.7"
OID_RSA = "1.2.840.113549.1.1.1"

STATUS = {"0": "SUCCESS", "2": "FAILURE", "3": "PENDING"}
FAIL = {"0": "badAlg", "1": "badMessageCheck", "2": "badRequest", "3": "badTime",
        "4": "badCertId"}
TYPES = {"pkcsreq": 19, "renewalreq": 17, "certpoll": 20, "getcert": 21, "getcrl": 22}


def cli_path():
    """The scep-ota CLI: $SCEP_OTA_CLI, else tools/scep-ota of this tree."""
    env = os.environ.get("SCEP_OTA_CLI")
    return Path(env) if env else scepenv.repo_root() / "tools" / "scep-ota"


def run(cmd, check=True, timeout=CMD_TIMEOUT, input=None):
    p = subprocess.run([str(c) for c in cmd], capture_output=True,
                       timeout=timeout, input=input,
                       stdin=None if input is not None else subprocess.DEVNULL)
    p.out = p.stdout.decode(errors="replace")
    p.err = p.stderr.decode(errors="replace")
    if check and p.returncode != 0:
        raise AssertionError(f"`{' '.join(map(str, cmd))}` exited {p.returncode}:\n"
                             f"{p.out}\n{p.err}")
    return p


def load_pem_certs(data):
    """Every certificate of a PEM file (python3-cryptography 38 has no
    load_pem_x509_certificates)."""
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----",
                        data, re.S)
    return [x509.load_pem_x509_certificate(b) for b in blocks]


def kv_lines(text):
    out = {}
    for ln in text.splitlines():
        k, sep, v = ln.partition("=")
        if sep:
            out[k] = v
    return out


# --------------------------------------------------------------------------
# A minimal DER reader (for the independent look at a CertRep)


def _tlv(data, pos):
    """(tag, content, next position, short_form) of the TLV at pos."""
    tag = data[pos]
    ln = data[pos + 1]
    hdr = 2
    short = ln < 0x80
    if ln == 0x80:
        raise ValueError("indefinite length in a CertRep (it must be DER)")
    if not short:
        n = ln & 0x7F
        ln = int.from_bytes(data[pos + 2:pos + 2 + n], "big")
        hdr += n
    end = pos + hdr + ln
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, data[pos + hdr:end], end, short


def der_children(content):
    out, pos = [], 0
    while pos < len(content):
        tag, val, pos, short = _tlv(content, pos)
        out.append((tag, val, short))
    return out


def der_oid(content):
    arcs, cur = [], 0
    for b in content:
        cur = (cur << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(cur)
            cur = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der_int(content):
    return int.from_bytes(content, "big", signed=True)


@dataclass
class CertRepDer:
    """What the DER of a CertRep says, read without the module's code."""
    attrs: dict                       # OID -> (tag, value bytes, short form)
    digest_oid: str
    econtent: bytes                   # the EnvelopedData, or None
    cipher_oid: str = None
    key_transport_oid: str = None
    recipient_serial: int = None      # of the envelope's first recipient
    n_certs: int = 0
    # for the signature check
    sid_serial: int = None
    sid_issuer: bytes = None          # DER Name
    signed_attrs: bytes = None        # the SET OF attributes, DER, as signed
    signature_alg: str = None
    signature: bytes = None
    # for the decryption (key transport)
    encrypted_key: bytes = None
    oaep_params: bytes = None         # content of the OAEP parameters SEQUENCE
    iv: bytes = None
    encrypted_content: bytes = None


def read_certrep_der(body):
    (tag, ci, _), = der_children(body)
    assert tag == 0x30
    parts = der_children(ci)
    assert der_oid(parts[0][1]) == OID_SIGNED_DATA, "not a SignedData"
    (_, sd_seq, _), = der_children(parts[1][1])
    sd = der_children(sd_seq)
    encap = der_children(sd[2][1])
    assert der_oid(encap[0][1]) == OID_DATA, "eContentType is not id-data"
    econtent = None
    if len(encap) > 1:
        (otag, octets, _), = der_children(encap[1][1])
        assert otag == 0x04, "eContent is not a primitive OCTET STRING"
        econtent = octets
    n_certs = 0
    for tag, val, _ in sd[3:-1]:
        if tag == 0xA0:
            n_certs = len(der_children(val))
    signer_infos = der_children(sd[-1][1])
    assert len(signer_infos) == 1, "a CertRep has exactly one SignerInfo"
    si = der_children(signer_infos[0][1])
    digest_oid = der_oid(der_children(si[2][1])[0][1])
    attrs = {}
    signed = None
    for tag, val, _ in si:
        if tag != 0xA0:
            continue
        signed = b"\x31" + der_len(len(val)) + val
        for _, a, _ in der_children(val):
            a_oid, a_set = der_children(a)
            values = der_children(a_set[1])
            assert len(values) == 1, f"attribute {der_oid(a_oid[1])}: {len(values)} values"
            attrs[der_oid(a_oid[1])] = values[0]
    rep = CertRepDer(attrs, digest_oid, econtent, n_certs=n_certs)
    rep.signed_attrs = signed
    if si[1][0] == 0x30:                                 # IssuerAndSerialNumber
        name, serial = der_children(si[1][1])[:2]
        rep.sid_issuer = b"\x30" + der_len(len(name[1])) + name[1]
        rep.sid_serial = der_int(serial[1])
    rest = [x for x in si[3:] if x[0] != 0xA0]
    rep.signature_alg = der_oid(der_children(rest[0][1])[0][1])
    rep.signature = rest[1][1]
    if econtent:
        (_, ci2, _), = der_children(econtent)
        p2 = der_children(ci2)
        assert der_oid(p2[0][1]) == OID_ENVELOPED_DATA, "eContent is not EnvelopedData"
        (_, ed_seq, _), = der_children(p2[1][1])
        ed = der_children(ed_seq)
        rest = [x for x in ed[1:] if x[0] != 0xA0]     # skip originatorInfo
        recips = der_children(rest[0][1])
        rid = None
        if recips[0][0] == 0x30:                         # KeyTransRecipientInfo
            ktri = der_children(recips[0][1])
            rid = ktri[1]
            kea = der_children(ktri[2][1])
            rep.key_transport_oid = der_oid(kea[0][1])
            if len(kea) > 1 and kea[1][0] == 0x30:
                rep.oaep_params = kea[1][1]
            rep.encrypted_key = ktri[3][1]
        elif recips[0][0] == 0xA1:                       # KeyAgreeRecipientInfo
            kari = [x for x in der_children(recips[0][1]) if x[0] not in (0xA0, 0xA1)]
            rep.key_transport_oid = "kari:" + der_oid(der_children(kari[1][1])[0][1])
            rid = der_children(der_children(kari[2][1])[0][1])[0]
        if rid is not None and rid[0] == 0x30:           # IssuerAndSerialNumber
            serial = der_children(rid[1])[1][1]
            rep.recipient_serial = int.from_bytes(serial, "big", signed=True)
        eci = der_children(rest[1][1])
        alg = der_children(eci[1][1])
        rep.cipher_oid = der_oid(alg[0][1])
        if len(alg) > 1 and alg[1][0] == 0x04:
            rep.iv = alg[1][1]
        if len(eci) > 2:
            tag, val, _ = eci[2]
            rep.encrypted_content = val if tag == 0x80 else \
                b"".join(v for _, v, _ in der_children(val))
    return rep


_HASHES = {DIGEST_OIDS["sha1"]: hashes.SHA1, DIGEST_OIDS["sha224"]: hashes.SHA224,
           DIGEST_OIDS["sha256"]: hashes.SHA256, DIGEST_OIDS["sha384"]: hashes.SHA384,
           DIGEST_OIDS["sha512"]: hashes.SHA512, DIGEST_OIDS["md5"]: hashes.MD5}
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"


def verify_certrep_signature(d, signer):
    """The SignerInfo names `signer` and its RSA signature over the signed
    attributes verifies; messageDigest is the digest of the eContent (of
    nothing when it is absent); contentType is id-data."""
    assert d.sid_serial == signer.serial_number and \
        d.sid_issuer == signer.issuer.public_bytes(), (
        f"the SignerInfo does not name {signer.subject.rfc4514_string()}")
    h = _HASHES[d.digest_oid]
    md = hashes.Hash(h())
    md.update(d.econtent or b"")
    tag, val, _ = d.attrs[OID_MESSAGE_DIGEST]
    assert tag == 0x04 and val == md.finalize(), "messageDigest does not match"
    tag, val, _ = d.attrs[OID_CONTENT_TYPE]
    assert tag == 0x06 and der_oid(val) == OID_DATA, "contentType is not id-data"
    # rsaEncryption, or sha*WithRSAEncryption: PKCS#1 v1.5 either way
    assert d.signature_alg.startswith("1.2.840.113549.1.1."), d.signature_alg
    signer.public_key().verify(d.signature, d.signed_attrs, apad.PKCS1v15(), h())


def open_envelope(d, key):
    """The content of an RSA key-transport envelope with AES or 3DES, or
    None when this reader does not do it (single DES, key agreement, OAEP
    with other than the default parameters)."""
    if not isinstance(key, rsa.RSAPrivateKey) or d.encrypted_key is None \
            or d.iv is None or d.encrypted_content is None:
        return None
    if d.key_transport_oid == OID_RSA:
        pad = apad.PKCS1v15()
    elif d.key_transport_oid == OID_RSA_OAEP and not d.oaep_params:
        pad = apad.OAEP(mgf=apad.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    else:
        return None
    cek = key.decrypt(d.encrypted_key, pad)
    if d.cipher_oid == CIPHER_OIDS["3des"]:
        alg, block = TripleDES(cek), 64
    elif d.cipher_oid in (CIPHER_OIDS["aes128"], CIPHER_OIDS["aes192"],
                          CIPHER_OIDS["aes256"]):
        alg, block = algorithms.AES(cek), 128
    else:
        return None
    dec = Cipher(alg, modes.CBC(d.iv)).decryptor()
    padded = dec.update(d.encrypted_content) + dec.finalize()
    unpad = sym_padding.PKCS7(block).unpadder()
    return unpad.update(padded) + unpad.finalize()


def degenerate_contents(inner):
    """(certificates, CRLs) of a degenerate certs-only SignedData."""
    (_, ci, _), = der_children(inner)
    parts = der_children(ci)
    assert der_oid(parts[0][1]) == OID_SIGNED_DATA
    (_, sd_seq, _), = der_children(parts[1][1])
    sd = der_children(sd_seq)
    assert not der_children(sd[-1][1]), "a certs-only SignedData has no signers"
    certs, crls = [], []
    for tag, val, _ in sd[3:-1]:
        for t, v, _ in der_children(val):
            raw = bytes([t]) + der_len(len(v)) + v
            if tag == 0xA0:
                certs.append(x509.load_der_x509_certificate(raw))
            elif tag == 0xA1:
                crls.append(x509.load_der_x509_crl(raw))
    return certs, crls


def _indef(tag, children):
    return bytes([tag, 0x80]) + b"".join(children) + b"\x00\x00"


def _raw(tag, content):
    return bytes([tag]) + der_len(len(content)) + content


def to_ber(der, chunk=500):
    """A DER pkiMessage re-encoded the way jscep and Apple send theirs:
    indefinite lengths down to the encapsulated content, which becomes a
    constructed OCTET STRING in chunks. The signature (over the signed
    attributes) and the messageDigest (over the content octets) still hold."""
    (_, ci, _), = der_children(der)
    ci_oid, ci_body = der_children(ci)
    (_, sd_seq, _), = der_children(ci_body[1])
    sd = der_children(sd_seq)
    encap = der_children(sd[2][1])
    parts = [_raw(t, v) for t, v, _ in sd]
    if len(encap) > 1:
        (_, octets, _), = der_children(encap[1][1])
        pieces = [_raw(0x04, octets[i:i + chunk]) for i in range(0, len(octets), chunk)]
        parts[2] = _indef(0x30, [_raw(*encap[0][:2]),
                                 _indef(0xA0, [_indef(0x24, pieces)])])
    return _indef(0x30, [_raw(*ci_oid[:2]), _indef(0xA0, [_indef(0x30, parts)])])


# --------------------------------------------------------------------------
# Keys


@dataclass
class Key:
    name: str
    obj: object
    path: Path

    @property
    def public_der(self):
        return self.obj.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class KeyBox:
    """Named RSA keys: the same name gives the same key (for both MPMs, whose
    stores are separate). Cached across runs in `cache_dir` when given."""

    def __init__(self, directory, cache_dir=None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._keys = {}
        self._lock = threading.Lock()

    def get(self, name, bits=2048):
        """bits: an RSA size, or "p256" for an EC P-256 key."""
        with self._lock:
            k = self._keys.get((name, bits))
            if k:
                return k
            fname = f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}-{bits}.key"
            pem = None
            if self.cache_dir and (self.cache_dir / fname).exists():
                pem = (self.cache_dir / fname).read_bytes()
            if pem:
                obj = serialization.load_pem_private_key(pem, None)
            else:
                obj = ec.generate_private_key(ec.SECP256R1()) if bits == "p256" else \
                    rsa.generate_private_key(public_exponent=65537, key_size=bits)
                pem = obj.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
                if self.cache_dir:
                    self.cache_dir.mkdir(parents=True, exist_ok=True)
                    (self.cache_dir / fname).write_bytes(pem)
            path = self.dir / fname
            path.write_bytes(pem)
            k = Key(name, obj, path)
            self._keys[(name, bits)] = k
            return k


def name_of(cn, org="mod_scep_ota own client"):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_csr(path, key, subject, challenge=None, sans=(), extensions=()):
    """A PKCS#10 made with python3-cryptography, written as PEM to path.
    subject: an x509.Name or a CN; sans: x509.GeneralName objects;
    extensions: (extension, critical) pairs, asked for in the CSR."""
    if isinstance(subject, str):
        subject = name_of(subject)
    b = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if challenge is not None:
        b = b.add_attribute(AttributeOID.CHALLENGE_PASSWORD, challenge.encode())
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    for ext, critical in extensions:
        b = b.add_extension(ext, critical=critical)
    csr = b.sign(key.obj, hashes.SHA256())
    Path(path).write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    return Path(path)


# --------------------------------------------------------------------------
# Transport


def b64(der):
    return base64.b64encode(der).decode()


def get_target(der, style="apple"):
    """The GET URL of a PKIOperation, encoded as a real client does:
    apple:  standard base64, only the '=' padding escaped (macOS/iOS);
    sscep:  base64 wrapped every 64 characters, all of it percent-encoded
            (so the line breaks arrive as %0A);
    quoted: standard base64, percent-encoded (RFC 8894 4.1);
    raw:    standard base64 as is ('+' and '/' unescaped);
    url:    base64url ('-' and '_'), padding escaped."""
    s = b64(der)
    if style == "apple":
        msg = s.replace("=", "%3D")
    elif style == "sscep":
        wrapped = "\n".join(s[i:i + 64] for i in range(0, len(s), 64)) + "\n"
        msg = urllib.parse.quote(wrapped, safe="")
    elif style == "quoted":
        msg = urllib.parse.quote(s, safe="")
    elif style == "raw":
        msg = s
    elif style == "url":
        msg = base64.urlsafe_b64encode(der).decode().replace("=", "%3D")
    else:
        raise ValueError(style)
    return f"{PKIOP}&message={msg}"


def send(env, der, transport="post"):
    """Sends a PKIOperation: "post" (binary body), "post-octet" (body with
    micromdm's content type), "post-query" (empty body, message= in the
    URL), or "get" / "get-STYLE" (see get_target)."""
    if transport == "post":
        return env.post(PKIOP, body=der)
    if transport == "post-octet":
        return env.post(PKIOP, body=der,
                        headers={"Content-Type": "application/octet-stream"})
    if transport == "post-query":
        return env.post(get_target(der, "quoted"), body=b"")
    if transport == "get":
        return env.get(get_target(der, "apple"))
    if transport.startswith("get-"):
        return env.get(get_target(der, transport[4:]))
    raise ValueError(transport)


# --------------------------------------------------------------------------
# Requests and replies


@dataclass
class Request:
    type: str
    der: bytes
    txid: str
    nonce: str                 # hex, upper case
    key: Key                   # the signing key (it opens the reply)
    signer_file: Path
    csr_file: Path = None
    cipher: str = "aes128"
    digest: str = "sha256"
    oaep: bool = False

    @property
    def signer(self):
        return x509.load_pem_x509_certificate(self.signer_file.read_bytes())


@dataclass
class Reply:
    http: object
    fields: dict = field(default_factory=dict)
    der: CertRepDer = None
    status: str = None
    fail_info: str = None
    fail_text: str = None
    certs: list = field(default_factory=list)
    crls: list = field(default_factory=list)

    @property
    def cert(self):
        return self.certs[0] if self.certs else None

    def __repr__(self):
        return (f"<Reply HTTP {self.http.status} {self.status} {self.fail_info or ''} "
                f"{self.fail_text or ''} certs={len(self.certs)} crls={len(self.crls)}>")


class OwnClient:
    """Talks to one server configuration.

    recipient: the certificate file requests are encrypted to (the RA's, or
      the CA's without an RA);
    trust: the CA file that anchors issued certificates and, in
      openssl_cross_check(), the reply signer (openssl -CAfile);
    signer: the certificate (x509) every CertRep must be signed by;
    ca: the issuing CA certificate (x509), for issuer/AKI checks."""

    def __init__(self, env, workdir, recipient, trust, signer, ca, keys):
        self.env = env
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.recipient = Path(recipient)
        self.trust = Path(trust)
        self.signer = signer
        self.signer_file = self.dir / "expected-signer.pem"
        self.signer_file.write_bytes(signer.public_bytes(serialization.Encoding.PEM))
        self.ca = ca
        self.ca_file = self.dir / "issuing-ca.pem"
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self.keys = keys
        self._n = 0
        self._lock = threading.Lock()

    def _fresh(self, stem):
        with self._lock:
            self._n += 1
            return self.dir / f"{self._n:03d}-{stem}"

    # -- building ----------------------------------------------------------

    def request(self, type, key, *, cert=None, csr=None, subject=None, new_key=None,
                challenge=None, cipher="aes128", digest="sha256", oaep=False,
                txid=None, serial=None, issuer=None, nonce=None, keyid=False,
                signing_time=None):
        """Builds a request with `scep-ota request`. key: a Key (signs, and
        is the CSR's key unless new_key); cert: the signer certificate file
        (default: a fresh self-signed one); csr: a CSR file, or subject
        (a "/CN=x" string) to have the CLI build one; keyid: name the
        recipient by its subjectKeyIdentifier."""
        base = self._fresh(type)
        out, signer_out = Path(f"{base}.der"), Path(f"{base}-signer.pem")
        csr_out = Path(f"{base}-csr.pem")
        cmd = [cli_path(), "request", "--type", type, "--recipient", self.recipient,
               "--key", key.path, "--cipher", cipher, "--digest", digest,
               "-o", out, "--out-signer", signer_out]
        if type in ("pkcsreq", "renewalreq", "certpoll"):
            cmd += ["--out-csr", csr_out]
        for opt, val in (("--cert", cert), ("--csr", csr), ("--subject", subject),
                         ("--challenge", challenge), ("--txid", txid),
                         ("--serial", serial), ("--issuer", issuer),
                         ("--nonce", nonce), ("--signing-time", signing_time)):
            if val is not None:
                cmd += [opt, val]
        if new_key is not None:
            cmd += ["--new-key", new_key.path]
        if oaep:
            cmd.append("--oaep")
        if keyid:
            cmd.append("--keyid")
        p = run(cmd)
        f = kv_lines(p.out)
        assert f.get("messageType") == str(TYPES.get(type, type)), p.out
        return Request(type, out.read_bytes(), f["transactionID"], f["senderNonce"],
                       key, signer_out, csr_out if csr_out.exists() else None,
                       cipher, digest, oaep)

    # -- reading -----------------------------------------------------------

    def read(self, resp, req):
        """Reads and checks the CertRep answering req (HTTP 200 expected).
        Checks what every CertRep must satisfy; returns a Reply."""
        assert resp.status == 200, f"HTTP {resp.status}: {resp.body[:200]!r}"
        assert resp.content_type == "application/x-pki-message", resp.content_type
        base = self._fresh("rep")
        rep_file = Path(f"{base}.der")
        rep_file.write_bytes(resp.body)
        cert_out, certs_out = Path(f"{base}-cert.pem"), Path(f"{base}-certs.pem")
        crl_out = Path(f"{base}-crl.pem")
        p = run([cli_path(), "certrep", "--key", req.key.path, "--out-cert", cert_out,
                 "--out-certs", certs_out, "--out-crl", crl_out, rep_file], check=False)
        f = kv_lines(p.out)
        assert p.returncode == 0, f"scep-ota certrep exited {p.returncode}:\n{p.out}{p.err}"
        r = Reply(resp, f)
        r.status = f.get("pkiStatus")
        r.fail_info = f.get("failInfo")
        r.fail_text = f.get("failInfoText")

        # the core's reading
        assert f.get("messageType") == "3", f
        assert f.get("signature") == "ok", f
        assert f.get("transactionID") == req.txid, f
        assert f.get("recipientNonce") == req.nonce, f
        assert len(f.get("senderNonce", "")) == 32, f
        assert f["senderNonce"] != req.nonce, "the CertRep echoes our nonce as its own"
        assert r.status in ("SUCCESS", "FAILURE", "PENDING"), f
        assert (r.fail_info is not None) == (r.status == "FAILURE"), f

        # the independent reading of the DER
        d = r.der = read_certrep_der(resp.body)
        a = d.attrs

        def printable(oid_):
            assert oid_ in a, f"signed attribute {oid_} missing"
            tag, val, short = a[oid_]
            assert tag == 0x13, f"attribute {oid_} is tag {tag:#x}, not PrintableString"
            assert short, f"attribute {oid_} is not in short form"
            return val.decode()

        assert printable(OID_MESSAGE_TYPE) == "3"
        assert printable(OID_TRANSACTION_ID) == req.txid
        assert STATUS[printable(OID_PKI_STATUS)] == r.status
        if r.status == "FAILURE":
            assert FAIL[printable(OID_FAIL_INFO)] == r.fail_info
            assert OID_FAIL_INFO_TEXT in a, "FAILURE without failInfoText"
            tag, val, _ = a[OID_FAIL_INFO_TEXT]
            assert tag == 0x0C and val.decode() == r.fail_text, (tag, val)
        else:
            assert OID_FAIL_INFO not in a and OID_FAIL_INFO_TEXT not in a, a.keys()
        for oid_, want in ((OID_SENDER_NONCE, None), (OID_RECIPIENT_NONCE, req.nonce)):
            tag, val, _ = a[oid_]
            assert tag == 0x04, f"nonce {oid_} is not an OCTET STRING"
            assert len(val) == 16 if want is None else val.hex().upper() == want
        assert (d.econtent is not None) == (r.status == "SUCCESS"), (
            f"{r.status} with{'out' if d.econtent is None else ''} an envelope")

        # signature and signer
        verify_certrep_signature(d, self.signer)

        if r.status != "SUCCESS":
            return r

        # the envelope: to the request's signer, with the request's algorithms
        assert f.get("decrypted") == "yes", f
        assert d.recipient_serial == req.signer.serial_number, (
            "the envelope is not encrypted to the certificate that signed the request")
        want_cipher = CIPHER_OIDS[req.cipher] if req.cipher != "des" or self.legacy \
            else CIPHER_OIDS["aes128"]
        assert d.cipher_oid == want_cipher, (d.cipher_oid, req.cipher)
        if isinstance(req.key.obj, rsa.RSAPrivateKey):
            assert d.key_transport_oid == (OID_RSA_OAEP if req.oaep else OID_RSA), \
                d.key_transport_oid
        else:       # an EC requester: ECDH key agreement
            assert d.key_transport_oid.startswith("kari:"), d.key_transport_oid
        want_digest = DIGEST_OIDS[req.digest] if req.digest != "md5" or self.legacy \
            else DIGEST_OIDS["sha256"]
        assert d.digest_oid == want_digest, (d.digest_oid, req.digest)

        # opened here with the client's key (openssl where this reader does
        # not go: single DES, ECDH); the same content as the CLI saw
        inner = open_envelope(d, req.key.obj)
        if inner is None:
            env_der, inner_file = Path(f"{base}-envelope.der"), Path(f"{base}-inner.der")
            env_der.write_bytes(d.econtent)
            cmd = ["openssl", "cms", "-decrypt", "-inform", "DER", "-in", env_der,
                   "-inkey", req.key.path, "-binary", "-out", inner_file]
            if req.cipher == "des":
                cmd += ["-provider", "legacy", "-provider", "default"]
            run(cmd)
            inner = inner_file.read_bytes()
        r.certs, r.crls = degenerate_contents(inner)
        assert int(f.get("content.certificates", -1)) == len(r.certs), f
        assert int(f.get("content.crls", -1)) == len(r.crls), f
        if r.certs:
            cli_cert = x509.load_pem_x509_certificate(cert_out.read_bytes())
            assert cli_cert == r.certs[0]
        return r

    legacy = False      # set by tests whose server allows DES and MD5

    # -- together ----------------------------------------------------------

    def exchange(self, req, transport="post"):
        return self.read(send(self.env, req.der, transport), req)

    def enroll(self, cn, *, key=None, challenge=None, transport="post", csr_args=None,
               **kw):
        """PKCSReq for CN with a fresh (or given) key and a CSR of our own;
        returns (Reply, Request)."""
        key = key or self.keys.get(f"{cn}-{self._n}")
        csr = make_csr(Path(f"{self._fresh('csr')}.pem"), key, cn, challenge=challenge,
                       **(csr_args or {}))
        req = self.request("pkcsreq", key, csr=csr, **kw)
        return self.exchange(req, transport), req

    # -- stores ------------------------------------------------------------

    def store(self, conf, *args, check=True):
        return run([cli_path(), "store", "-f", conf, *args], check=check)


def openssl_cross_check(client, rep, req, tmp):
    """The openssl CLI's view of a CertRep: the signature verifies and the
    signer chains to the client's trust anchors; on SUCCESS the envelope
    opens with the requester's key and holds the same certificates."""
    tmp = Path(tmp)
    f, env_der, signer = tmp / "x-rep.der", tmp / "x-env.der", tmp / "x-signer.pem"
    f.write_bytes(rep.http.body)
    cmd = ["openssl", "cms", "-verify", "-inform", "DER", "-in", f,
           "-CAfile", client.trust, "-certfile", client.signer_file,
           "-purpose", "any", "-binary", "-signer", signer, "-out", env_der]
    if rep.status != "SUCCESS":
        cmd += ["-content", "/dev/null"]
    run(cmd)
    assert load_pem_certs(signer.read_bytes()) == [client.signer]
    if rep.status == "SUCCESS":
        inner = tmp / "x-inner.der"
        cmd = ["openssl", "cms", "-decrypt", "-inform", "DER", "-in", env_der,
               "-inkey", req.key.path, "-binary", "-out", inner]
        if req.cipher == "des":
            cmd += ["-provider", "legacy", "-provider", "default"]
        run(cmd)
        assert degenerate_contents(inner.read_bytes()) == (rep.certs, rep.crls)


# --------------------------------------------------------------------------
# Issued certificates


def check_issued(cert, *, trust, issuer, key, subject, lifetime_days, tmp,
                 sans=None):
    """An issued certificate: chains (openssl verify), carries the
    server's template and nothing else, for the key and subject asked for,
    valid for lifetime_days (or up to the CA's own end)."""
    f = Path(tmp) / f"issued-{cert.serial_number:x}.pem"
    f.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    p = run(["openssl", "verify", "-CAfile", trust, "-purpose", "sslclient", f],
            check=False)
    assert p.returncode == 0 and p.out.strip().endswith("OK"), p.out + p.err

    assert cert.subject == (name_of(subject) if isinstance(subject, str) else subject)
    assert cert.issuer == issuer.subject
    assert cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
        == key.public_der
    assert cert.serial_number > 0 and cert.serial_number.bit_length() >= 64, \
        hex(cert.serial_number)

    ext = cert.extensions
    ku = ext.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment
    assert not (ku.key_cert_sign or ku.crl_sign or ku.content_commitment
                or ku.data_encipherment or ku.key_agreement)
    eku = ext.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    bc = ext.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca is False
    ski = ext.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski.digest
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert aki.key_identifier == issuer_ski.value.digest
    allowed = {ExtensionOID.KEY_USAGE, ExtensionOID.EXTENDED_KEY_USAGE,
               ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.SUBJECT_KEY_IDENTIFIER,
               ExtensionOID.AUTHORITY_KEY_IDENTIFIER}
    if sans is not None:
        allowed.add(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        got = ext.get_extension_for_class(x509.SubjectAlternativeName).value
        assert list(got) == list(sans), list(got)
    extra = [e.oid.dotted_string for e in ext if e.oid not in allowed]
    assert not extra, f"extensions not in the template: {extra}"

    nb, na = _validity(cert)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert now - datetime.timedelta(hours=1) <= nb <= now + datetime.timedelta(minutes=1)
    want_end = min(now + datetime.timedelta(days=lifetime_days), _validity(issuer)[1])
    assert abs((na - want_end).total_seconds()) < 600, (nb, na, want_end)
    return cert


def _validity(cert):
    try:
        return cert.not_valid_before_utc, cert.not_valid_after_utc
    except AttributeError:          # python3-cryptography before 42
        utc = datetime.timezone.utc
        return (cert.not_valid_before.replace(tzinfo=utc),
                cert.not_valid_after.replace(tzinfo=utc))


def serial_hex(cert):
    """The serial as the store and the CLI print it (upper-case hex)."""
    return f"{cert.serial_number:X}"
