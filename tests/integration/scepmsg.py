"""SCEP pkiMessages in Python, for the store and load tests and the
benchmark: builds PKCSReq messages (RFC 8894: a SignedData with the SCEP
signed attributes around an EnvelopedData holding the CSR) and reads
CertReps (status, failInfo, and the issued certificate from the envelope).

Written from RFC 8894 / RFC 5652 with python3-cryptography for the
primitives and a small DER encoder/decoder of its own. Requests are built
in advance (build_pkcsreq) so a load test's timed part only sends bytes.

Only what the tests need: RSA keys, key transport RSA PKCS#1 v1.5,
AES-128/256-CBC, 3DES-CBC or single DES-CBC content encryption,
SHA-256/1/512 digests.
"""

import datetime
import hashlib
import os
import secrets
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as apad
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import AttributeOID, NameOID

try:  # where newer python3-cryptography keeps 3DES
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older python3-cryptography
    TripleDES = algorithms.TripleDES

# --------------------------------------------------------------------------
# DER

_OIDS = {
    "data": "1.2.840.113549.1.7.1",
    "signedData": "1.2.840.113549.1.7.2",
    "envelopedData": "1.2.840.113549.1.7.3",
    "rsaEncryption": "1.2.840.113549.1.1.1",
    "contentType": "1.2.840.113549.1.9.3",
    "messageDigest": "1.2.840.113549.1.9.4",
    "sha1": "1.3.14.3.2.26",
    "sha256": "2.16.840.1.101.3.4.2.1",
    "sha512": "2.16.840.1.101.3.4.2.3",
    "aes128": "2.16.840.1.101.3.4.1.2",
    "aes256": "2.16.840.1.101.3.4.1.42",
    "des3": "1.2.840.113549.3.7",
    "des": "1.3.14.3.2.7",
    "messageType": "2.16.840.1.113733.1.9.2",
    "pkiStatus": "2.16.840.1.113733.1.9.3",
    "failInfo": "2.16.840.1.113733.1.9.4",
    "senderNonce": "2.16.840.1.113733.1.9.5",
    "recipientNonce": "2.16.840.1.113733.1.9.6",
    "transactionID": "2.16.840.1.113733.1.9.7",
}
_NAMES = {v: k for k, v in _OIDS.items()}

_HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha512": hashes.SHA512}
_CIPHERS = {"aes128": (algorithms.AES, 16), "aes256": (algorithms.AES, 32),
            "des3": (TripleDES, 24), "des": (TripleDES, 8)}


def _cipher(algo, key):
    """Single DES is 3DES with three equal keys."""
    return algo(key * 3 if algo is TripleDES and len(key) == 8 else key)

PKCSREQ = 19
CERTREP = 3
SUCCESS, FAILURE, PENDING = 0, 2, 3
FAIL_NAMES = {0: "badAlg", 1: "badMessageCheck", 2: "badRequest", 3: "badTime",
              4: "badCertId"}
STATUS_NAMES = {SUCCESS: "SUCCESS", FAILURE: "FAILURE", PENDING: "PENDING"}


def _len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, content):
    return bytes([tag]) + _len(len(content)) + content


def seq(*items):
    return tlv(0x30, b"".join(items))


def set_of(*items):
    # DER: the elements of a SET OF in ascending order of their encodings
    return tlv(0x31, b"".join(sorted(items)))


def integer(v):
    n = max(1, (v.bit_length() + 8) // 8)
    return tlv(0x02, v.to_bytes(n, "big", signed=True))


def octets(b):
    return tlv(0x04, b)


def printable(s):
    return tlv(0x13, s.encode())


def null():
    return b"\x05\x00"


def oid(name_or_dotted):
    dotted = _OIDS.get(name_or_dotted, name_or_dotted)
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray()
    for a in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [a & 0x7F]
        a >>= 7
        while a:
            chunk.append(0x80 | (a & 0x7F))
            a >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))


def explicit(n, content):
    return tlv(0xA0 | n, content)


def implicit(n, content, constructed=True):
    return tlv((0xA0 if constructed else 0x80) | n, content)


def algid(name, params=None):
    return seq(oid(name), null() if params is None else params)


@dataclass
class Node:
    tag: int
    value: bytes          # content octets
    raw: bytes            # the whole TLV

    @property
    def constructed(self):
        return bool(self.tag & 0x20)

    def children(self):
        return list(parse_all(self.value))

    def oid(self):
        v = self.value
        arcs, cur = [], 0
        for b in v:
            cur = (cur << 7) | (b & 0x7F)
            if not b & 0x80:
                arcs.append(cur)
                cur = 0
        first = min(arcs[0] // 40, 2)
        return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])

    def octets(self):
        """An OCTET STRING's bytes, also when BER-constructed."""
        if self.constructed:
            return b"".join(c.octets() for c in self.children())
        return self.value


def parse_one(data, pos=0):
    tag = data[pos]
    ln = data[pos + 1]
    hdr = 2
    if ln == 0x80:  # BER indefinite length: walk to the end-of-contents
        p = pos + 2
        while data[p:p + 2] != b"\x00\x00":
            _, p = parse_one(data, p)
        return Node(tag, data[pos + 2:p], data[pos:p + 2]), p + 2
    if ln & 0x80:
        nb = ln & 0x7F
        ln = int.from_bytes(data[pos + 2:pos + 2 + nb], "big")
        hdr += nb
    end = pos + hdr + ln
    if end > len(data):
        raise ValueError("truncated DER")
    return Node(tag, data[pos + hdr:end], data[pos:end]), end


def parse_all(data):
    pos = 0
    while pos < len(data):
        node, pos = parse_one(data, pos)
        yield node


def parse(data):
    node, end = parse_one(data, 0)
    return node


# --------------------------------------------------------------------------
# Clients


@dataclass
class Client:
    """A requester: its key and the self-signed certificate that signs its
    requests (and receives the CertRep envelope)."""
    key: object
    cert: x509.Certificate
    cn: str

    @property
    def cert_der(self):
        return self.cert.public_bytes(serialization.Encoding.DER)


def new_key(bits=2048):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def make_client(key, cn, org="mod_scep_ota tests"):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .sign(key, hashes.SHA256()))
    return Client(key, cert, cn)


def make_csr(client, challenge=None, org="mod_scep_ota tests"):
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, client.cn)])
    b = x509.CertificateSigningRequestBuilder().subject_name(name)
    if challenge is not None:
        b = b.add_attribute(AttributeOID.CHALLENGE_PASSWORD, challenge.encode())
    return b.sign(client.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def key_txid(key):
    """A transactionID in the usual style: hex SHA-256 of the public key."""
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest().upper()


def _issuer_and_serial(cert):
    return seq(cert.issuer.public_bytes(), integer(cert.serial_number))


def envelope(content, recipient, cipher="aes128"):
    """An EnvelopedData ContentInfo of `content` for `recipient` (a
    certificate), RSA PKCS#1 v1.5 key transport."""
    algo, klen = _CIPHERS[cipher]
    cek = os.urandom(klen)
    iv = os.urandom(algo.block_size // 8)
    padder = padding.PKCS7(algo.block_size).padder()
    plain = padder.update(content) + padder.finalize()
    enc = Cipher(_cipher(algo, cek), modes.CBC(iv)).encryptor()
    ciphertext = enc.update(plain) + enc.finalize()
    ek = recipient.public_key().encrypt(cek, apad.PKCS1v15())
    ktri = seq(integer(0), _issuer_and_serial(recipient), algid("rsaEncryption"),
               octets(ek))
    eci = seq(oid("data"), seq(oid(cipher), octets(iv)),
              implicit(0, ciphertext, constructed=False))
    env = seq(integer(0), set_of(ktri), eci)
    return seq(oid("envelopedData"), explicit(0, env))


def _attr(name, value):
    return seq(oid(name), set_of(value))


def signed(client, content, attrs, digest="sha256"):
    """A SignedData ContentInfo over `content` (id-data) with the signed
    attributes `attrs` (DER Attribute encodings) plus contentType and
    messageDigest, signed by `client`."""
    h = _HASHES[digest]
    md = hashes.Hash(h())
    md.update(content)
    all_attrs = [_attr("contentType", oid("data")),
                 _attr("messageDigest", octets(md.finalize())), *attrs]
    signed_attrs = set_of(*all_attrs)
    sig = client.key.sign(signed_attrs, apad.PKCS1v15(), h())
    si = seq(integer(1), _issuer_and_serial(client.cert), algid(digest),
             implicit(0, parse(signed_attrs).value),   # [0] IMPLICIT SET
             algid("rsaEncryption"), octets(sig))
    sd = seq(integer(1), set_of(algid(digest)),
             seq(oid("data"), explicit(0, octets(content))),
             implicit(0, client.cert_der), set_of(si))
    return seq(oid("signedData"), explicit(0, sd))


def build_pkcsreq(client, ca_cert, csr_der, txid=None, cipher="aes128",
                  digest="sha256", nonce=None):
    """The DER PKCSReq for `csr_der`, encrypted to `ca_cert` (the CA or the
    RA's encryption certificate). Returns (message, txid, sender_nonce)."""
    txid = txid or secrets.token_hex(16).upper()
    nonce = nonce or os.urandom(16)
    env = envelope(csr_der, ca_cert, cipher)
    attrs = [_attr("messageType", printable(str(PKCSREQ))),
             _attr("transactionID", printable(txid)),
             _attr("senderNonce", octets(nonce))]
    return signed(client, env, attrs, digest), txid, nonce


# --------------------------------------------------------------------------
# CertRep


@dataclass
class CertRep:
    message_type: int = -1
    status: int = -1
    fail_info: int = -1
    transaction_id: str = None
    recipient_nonce: bytes = None
    signature_ok: bool = False
    cert: x509.Certificate = None            # the issued certificate
    certs: list = field(default_factory=list)  # everything in the envelope
    error: str = None                        # why the envelope did not open

    @property
    def status_name(self):
        return STATUS_NAMES.get(self.status, str(self.status))

    @property
    def fail_name(self):
        return FAIL_NAMES.get(self.fail_info, str(self.fail_info))

    @property
    def serial(self):
        """The issued certificate's serial as the store writes it."""
        return None if self.cert is None else format(self.cert.serial_number, "X")

    def __repr__(self):
        s = f"<CertRep {self.status_name}"
        if self.status == FAILURE:
            s += f" {self.fail_name}"
        if self.cert is not None:
            s += f" serial={self.serial}"
        return s + f" txid={self.transaction_id}>"


def _decrypt_envelope(ci_der, key):
    ci = parse(ci_der).children()
    if ci[0].oid() != _OIDS["envelopedData"]:
        raise ValueError("not an EnvelopedData")
    env = ci[1].children()[0].children()
    i = 1
    if env[i].tag == 0xA0:       # originatorInfo
        i += 1
    ktri = env[i].children()[0].children()
    cek = key.decrypt(ktri[3].octets(), apad.PKCS1v15())
    eci = env[i + 1].children()
    alg = eci[1].children()
    name = _NAMES.get(alg[0].oid())
    if name not in _CIPHERS:
        raise ValueError(f"content cipher {alg[0].oid()}")
    algo, _ = _CIPHERS[name]
    iv = alg[1].octets()
    data = eci[2]
    ciphertext = data.octets() if data.constructed else data.value
    dec = Cipher(_cipher(algo, cek), modes.CBC(iv)).decryptor()
    plain = dec.update(ciphertext) + dec.finalize()
    unpad = padding.PKCS7(algo.block_size).unpadder()
    return unpad.update(plain) + unpad.finalize()


def parse_certrep(body, key=None, verify_with=None):
    """Reads a CertRep. With `key` (the requester's), opens the envelope of a
    SUCCESS and sets .cert; with `verify_with` (a public key or a
    certificate), checks the signature over the signed attributes."""
    rep = CertRep()
    ci = parse(body).children()
    if ci[0].oid() != _OIDS["signedData"]:
        raise ValueError("not a SignedData")
    sd = ci[1].children()[0].children()
    encap = sd[2].children()
    econtent = encap[1].children()[0].octets() if len(encap) > 1 else None
    si = sd[-1].children()[0].children()
    attrs_node = next(c for c in si if c.tag == 0xA0)
    digest_name = _NAMES.get(si[2].children()[0].oid())
    for a in attrs_node.children():
        parts = a.children()
        name = _NAMES.get(parts[0].oid())
        val = parts[1].children()[0]
        if name == "messageType":
            rep.message_type = int(val.value)
        elif name == "pkiStatus":
            rep.status = int(val.value)
        elif name == "failInfo":
            rep.fail_info = int(val.value)
        elif name == "transactionID":
            rep.transaction_id = val.value.decode()
        elif name == "recipientNonce":
            rep.recipient_nonce = val.octets()
    if verify_with is not None:
        pub = verify_with.public_key() if hasattr(verify_with, "public_key") \
            else verify_with
        to_sign = b"\x31" + attrs_node.raw[1:]
        sig = si[-1].octets()
        try:
            pub.verify(sig, to_sign, apad.PKCS1v15(), _HASHES[digest_name]())
            rep.signature_ok = True
        except Exception:  # noqa: BLE001 - any failure means "does not verify"
            rep.signature_ok = False
    if rep.status == SUCCESS and key is not None and econtent:
        try:
            inner = _decrypt_envelope(econtent, key)
            rep.certs = pkcs7.load_der_pkcs7_certificates(inner)
            pub = key.public_key().public_numbers()
            for c in rep.certs:
                if c.public_key().public_numbers() == pub:
                    rep.cert = c
        except Exception as e:  # noqa: BLE001
            rep.error = f"{type(e).__name__}: {e}"
    return rep


# --------------------------------------------------------------------------
# Keys, cached


def load_or_make_keys(n, cache_dir=None, threads=None):
    """n RSA-2048 keys. With `cache_dir`, keys made before are reused
    (making one takes ~0.1-0.2 s; the load tests need over a hundred).
    OpenSSL does the work with the GIL released, so threads use all cores.
    Test keys only."""
    from concurrent.futures import ThreadPoolExecutor
    threads = threads or os.cpu_count() or 2
    ders = []
    path = None
    if cache_dir is not None:
        path = os.path.join(cache_dir, "rsa2048-keys.der")
        if os.path.exists(path):
            with open(path, "rb") as f:
                data = f.read()
            try:
                ders = [node.raw for node in parse_all(data)][:n]
            except (ValueError, IndexError):
                ders = []
    missing = n - len(ders)
    with ThreadPoolExecutor(threads) as ex:
        if missing > 0:
            ders += list(ex.map(_new_key_der, range(missing)))
            if path is not None:
                tmp = path + f".{os.getpid()}"
                with open(tmp, "wb") as f:
                    f.write(b"".join(ders))
                os.replace(tmp, path)
        # loading checks each key (slow before python3-cryptography 39)
        return list(ex.map(_load_key_der, ders))


def _load_key_der(der):
    try:  # python3-cryptography >= 39: skip the slow RSA consistency check
        return serialization.load_der_private_key(
            der, None, unsafe_skip_rsa_key_validation=True)
    except TypeError:
        return serialization.load_der_private_key(der, None)


def _new_key_der(_):
    return new_key().private_bytes(serialization.Encoding.DER,
                                   serialization.PrivateFormat.TraditionalOpenSSL,
                                   serialization.NoEncryption())
