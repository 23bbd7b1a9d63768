"""SCEPExpiryWarning: the CA, RA, next CA and OTA signing certificates
are checked when httpd starts (and daily after), and one that expires
within the warning's days gets a warn line naming its file and the date;
each certificate once, however many virtual hosts use it.

The daily check runs from httpd's monitor hook in the parent process; a
day is too long to wait for here, so only the check at start is tested.
"""

import datetime
import os
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from scepenv import scep_directives, scep_location

WARN = r"\[scep_ota:warn\].*SCEP6300: the {what} in {file} \(.*\) expires on {date} \d\d:\d\d:\d\d UTC, in \d+ days? \(SCEPExpiryWarning {days}\)"


class Cred:
    def __init__(self, d, name, days, issuer=None, ca=True):
        now = datetime.datetime.now(datetime.timezone.utc)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                f"Expiry test {name}")])
        usage = dict(digital_signature=True, content_commitment=False,
                     key_encipherment=True, data_encipherment=False,
                     key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                     encipher_only=False, decipher_only=False)
        self.not_after = now + datetime.timedelta(days=days, hours=1)
        self.cert = (x509.CertificateBuilder()
                     .subject_name(subject)
                     .issuer_name(issuer.cert.subject if issuer else subject)
                     .public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(min(now, self.not_after) - datetime.timedelta(days=1))
                     .not_valid_after(self.not_after)
                     .add_extension(x509.BasicConstraints(ca=ca, path_length=None),
                                    critical=True)
                     .add_extension(x509.KeyUsage(**usage), critical=True)
                     .sign(issuer.key if issuer else self.key, hashes.SHA256()))
        self.cert_file = d / f"{name}.pem"
        self.key_file = d / f"{name}.key"
        self.cert_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.key_file.write_bytes(self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        for f in (self.cert_file, self.key_file):
            os.chmod(f, 0o644)      # test keys, read by the workers

    @property
    def date(self):
        return self.not_after.strftime("%Y-%m-%d")


@pytest.fixture(scope="module")
def creds(tmp_path_factory):
    d = tmp_path_factory.mktemp("expiry")
    os.chmod(d, 0o755)
    c = {"ca10": Cred(d, "ca10", 10), "ca40": Cred(d, "ca40", 40)}
    c["ra10"] = Cred(d, "ra10", 10, issuer=c["ca40"], ca=False)
    c["ra_expired"] = Cred(d, "ra-expired", -2, issuer=c["ca40"], ca=False)
    return c


def start(env, snippet):
    """Starts httpd on snippet; the error log written by that start."""
    pos = env.log_size()
    env.ensure(snippet)
    return env.read_log(pos)


def warnings(text):
    return [ln for ln in text.splitlines() if "SCEP6300" in ln or "SCEP6301" in ln]


def test_810_001_ca_within_default_days_warned_once(env, creds):
    """Three virtual hosts: inherited, and named again in another file."""
    ca = creds["ca10"]
    env.expect_log(r"SCEP6300")
    # the same certificate again, under another name
    copy = ca.cert_file.with_name("ca10-copy.pem")
    copy.write_bytes(ca.cert_file.read_bytes())
    os.chmod(copy, 0o644)
    vhost = (f"<VirtualHost 127.0.0.1:{env.port}>\n    ServerName again.test\n"
             + scep_directives(copy, ca.key_file, indent="    ")
             + "\n</VirtualHost>\n")
    inherit = (f"<VirtualHost 127.0.0.1:{env.port}>\n    ServerName inherit.test\n"
               "</VirtualHost>\n")
    log = start(env, scep_directives(ca.cert_file, ca.key_file) + "\n"
                + scep_location("/scep") + "\n" + inherit + vhost)
    lines = warnings(log)
    pattern = WARN.format(what="CA certificate", file=re.escape(str(ca.cert_file)),
                          date=ca.date, days=30)
    assert len(lines) == 1, log
    assert re.search(pattern, lines[0]), lines[0]


def test_810_002_ca_after_default_days_not_warned(env, creds):
    ca = creds["ca40"]
    log = start(env, scep_directives(ca.cert_file, ca.key_file) + "\n"
                + scep_location("/scep"))
    assert "SCEP0010" in log or "resuming normal operations" in log, log
    assert warnings(log) == [], log


def test_810_003_longer_setting_warns(env, creds):
    ca = creds["ca40"]
    env.expect_log(r"SCEP6300")
    log = start(env, scep_directives(ca.cert_file, ca.key_file) + "\n"
                + "SCEPExpiryWarning 60\n" + scep_location("/scep"))
    lines = warnings(log)
    assert len(lines) == 1, log
    assert re.search(WARN.format(what="CA certificate",
                                 file=re.escape(str(ca.cert_file)),
                                 date=ca.date, days=60), lines[0]), lines[0]


def test_810_004_zero_disables(env, creds):
    ca = creds["ca10"]
    log = start(env, scep_directives(ca.cert_file, ca.key_file) + "\n"
                + "SCEPExpiryWarning 0\n" + scep_location("/scep"))
    assert "resuming normal operations" in log, log
    assert warnings(log) == [], log


def test_810_005_ra_warned_by_its_file(env, creds):
    ca, ra = creds["ca40"], creds["ra10"]
    env.expect_log(r"SCEP6300")
    log = start(env, scep_directives(ca.cert_file, ca.key_file, ra.cert_file,
                                     ra.key_file) + "\n" + scep_location("/scep"))
    lines = warnings(log)
    assert len(lines) == 1, log
    assert re.search(WARN.format(what="RA certificate",
                                 file=re.escape(str(ra.cert_file)),
                                 date=ra.date, days=30), lines[0]), lines[0]


def test_810_006_expired_ra_is_an_error(env, creds):
    ca, ra = creds["ca40"], creds["ra_expired"]
    env.expect_log(r"SCEP6301")
    log = start(env, scep_directives(ca.cert_file, ca.key_file, ra.cert_file,
                                     ra.key_file) + "\n" + scep_location("/scep"))
    lines = warnings(log)
    assert len(lines) == 1, log
    assert re.search(r"\[scep_ota:error\].*SCEP6301: the RA certificate in "
                     + re.escape(str(ra.cert_file)) + r" \(.*\) expired on "
                     + ra.date, lines[0]), lines[0]


def test_810_007_bad_values_refused(env):
    for bad in ("-1", "3651", "ten"):
        r = env.apache_fail(f"SCEPExpiryWarning {bad}")
        r.assert_message(r"SCEPExpiryWarning", re.escape(bad))
