"""Throw-away PKI for the integration tests, built with python3-cryptography.

Everything is written as PEM into one directory (made readable by the httpd
worker user) and described by a `TestPKI` object whose attributes are the
file paths and the loaded certificate objects the tests compare against.
"""

import datetime
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

_ONE_DAY = datetime.timedelta(days=1)


class Credential:
    """A certificate with its key, as objects and as PEM files."""

    def __init__(self, name, cert, key, cert_file, key_file):
        self.name = name
        self.cert = cert
        self.key = key
        self.cert_file = cert_file
        self.key_file = key_file

    @property
    def der(self):
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def cert_pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self):
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def _key_usage(*names):
    flags = dict(digital_signature=False, content_commitment=False,
                 key_encipherment=False, data_encipherment=False,
                 key_agreement=False, key_cert_sign=False, crl_sign=False,
                 encipher_only=False, decipher_only=False)
    for n in names:
        assert n in flags, n
        flags[n] = True
    return x509.KeyUsage(**flags)


CA_USAGE = ("key_cert_sign", "crl_sign", "digital_signature", "key_encipherment")


class TestPKI:
    """Creates the whole set of credentials in `directory`."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._now = datetime.datetime.now(datetime.timezone.utc)
        self._build()
        self._make_readable()

    # -- building blocks ------------------------------------------------

    def _new_key(self):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def _issue(self, name, cn, issuer=None, ca=False, usage=(), path_len=None,
               key=None):
        key = key or self._new_key()
        subject = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mod_scep_ota tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ])
        issuer_name = issuer.cert.subject if issuer else subject
        signing_key = issuer.key if issuer else key
        builder = (x509.CertificateBuilder()
                   .subject_name(subject)
                   .issuer_name(issuer_name)
                   .public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(self._now - _ONE_DAY)
                   .not_valid_after(self._now + 30 * _ONE_DAY)
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=path_len),
                                  critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                       key.public_key()), critical=False))
        if usage:
            builder = builder.add_extension(_key_usage(*usage), critical=True)
        if issuer:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    issuer.key.public_key()), critical=False)
        cert = builder.sign(signing_key, hashes.SHA256())
        cred = Credential(name, cert, key, self.dir / f"{name}.pem",
                          self.dir / f"{name}.key")
        cred.cert_file.write_bytes(cred.cert_pem)
        cred.key_file.write_bytes(cred.key_pem)
        return cred

    def _write(self, name, *chunks):
        path = self.dir / name
        path.write_bytes(b"".join(chunks))
        return path

    def _build(self):
        # Root and issuing CA: the CA the module is configured with is the
        # issuing CA; its file carries the root behind it as the chain.
        self.root = self._issue("root", "Test Root CA", ca=True, usage=CA_USAGE)
        self.issuing = self._issue("issuing", "Test Issuing CA", issuer=self.root,
                                   ca=True, usage=CA_USAGE, path_len=0)
        self.ca_chain_file = self._write("ca-chain.pem", self.issuing.cert_pem,
                                         self.root.cert_pem)
        self.chain_reversed_file = self._write("ca-chain-reversed.pem",
                                               self.root.cert_pem, self.issuing.cert_pem)

        # A second, independent self-signed CA (single cert), for the
        # "CA only" GetCACert answer and for a virtual host of its own.
        self.solo = self._issue("solo", "Test Solo CA", ca=True, usage=CA_USAGE)
        self.other = self._issue("other", "Test Other Vhost CA", ca=True,
                                 usage=CA_USAGE)

        # RA certificates, issued by the issuing CA.
        self.ra = self._issue("ra", "Test RA", issuer=self.issuing,
                              usage=("digital_signature", "key_encipherment"))
        self.ra_sign = self._issue("ra-sign", "Test RA signing", issuer=self.issuing,
                                   usage=("digital_signature",))
        self.ra_encrypt = self._issue("ra-encrypt", "Test RA encryption",
                                      issuer=self.issuing,
                                      usage=("key_encipherment",))
        # The pair in one file each way round; keys always in the other order
        # than their certificates, so the module must match by public key.
        self.ra_pair_sign_first = self._write(
            "ra-pair-sign-first.pem", self.ra_sign.cert_pem, self.ra_encrypt.cert_pem)
        self.ra_pair_encrypt_first = self._write(
            "ra-pair-encrypt-first.pem", self.ra_encrypt.cert_pem, self.ra_sign.cert_pem)
        self.ra_pair_keys = self._write(
            "ra-pair-keys.key", self.ra_encrypt.key_pem, self.ra_sign.key_pem)
        self.ra_pair_keys_sign_first = self._write(
            "ra-pair-keys-sign-first.key", self.ra_sign.key_pem,
            self.ra_encrypt.key_pem)

        # Bad material.
        self.leaf = self._issue("leaf", "Test Leaf (not a CA)", issuer=self.issuing,
                                usage=("digital_signature", "key_encipherment"))
        self.ra_nonrep = self._issue("ra-nonrep", "Test RA nonRepudiation only",
                                     issuer=self.issuing,
                                     usage=("content_commitment",))
        self.stray_key = self._write(
            "stray.key", Credential("stray", None, self._new_key(), None, None).key_pem)
        self.garbage = self._write(
            "garbage.pem", b"this is not a certificate\n" + os.urandom(64).hex().encode()
            + b"\n")
        self.missing = self.dir / "does-not-exist.pem"

    def _make_readable(self):
        # The httpd children run as www-data: everything here must be
        # readable by them (test keys only, never anything real).
        os.chmod(self.dir, 0o755)
        for p in self.dir.iterdir():
            os.chmod(p, 0o644)
