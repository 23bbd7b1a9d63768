"""micromdm's scepclient enrolls (single DES + SHA-1, so with
SCEPAllowLegacyAlgorithms on); what it saves is checked with openssl and
python3-cryptography, not with the module's code."""

import shutil

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from scepclient_own import Key, check_issued
from scepenv import scep_directives, scep_location
from test_110_scepclient import run_scepclient

pytestmark = pytest.mark.skipif(not shutil.which("scepclient"),
                                reason="scepclient (Debian package scep) not installed")

CHALLENGE = "scepclient-secret"
LIFETIME = 10


def snippet(pki):
    return "\n".join([
        scep_directives(pki.ca_chain_file, pki.issuing.key_file,
                        pki.ra.cert_file, pki.ra.key_file),
        f"SCEPChallengePassword {CHALLENGE}",
        "SCEPRenewalWindow 100%",   # scepclient renews right away
        f"SCEPCertificateLifetime {LIFETIME}",
        "SCEPAllowLegacyAlgorithms on",
        "SCEPStore sqlite3:state/own-210.db",
        scep_location("/scep"),
    ])


@pytest.fixture(autouse=True)
def _server(env, pki):
    env.ensure(snippet(pki))


def subject(cn):
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "scep-client"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "MDM"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def saved(tmp_path, name="client.pem"):
    key_file = tmp_path / "key.pem"
    key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    cert = x509.load_pem_x509_certificate((tmp_path / name).read_bytes())
    return Key("scepclient", key, key_file), cert


def test_210_001_enroll(env, pki, tmp_path):
    rc, out = run_scepclient(env, tmp_path, challenge=CHALLENGE, cn="scepclient-1")
    assert rc == 0, out
    assert "pkiStatus=SUCCESS" in out, out
    key, cert = saved(tmp_path)
    check_issued(cert, trust=pki.ca_chain_file, issuer=pki.issuing.cert, key=key,
                 subject=subject("scepclient-1"), lifetime_days=LIFETIME, tmp=tmp_path)


def test_210_002_wrong_challenge(env, pki, tmp_path):
    rc, out = run_scepclient(env, tmp_path, challenge="not-the-secret", cn="scepclient-2")
    assert rc != 0, out
    assert "failInfo: badRequest" in out, out
    assert not (tmp_path / "client.pem").exists()


def test_210_003_two_clients_two_certificates(env, pki, tmp_path):
    """Two enrollments (two keys) give two distinct serials."""
    serials = []
    for i in (1, 2):
        d = tmp_path / f"c{i}"
        d.mkdir()
        rc, out = run_scepclient(env, d, challenge=CHALLENGE, cn=f"scepclient-3-{i}")
        assert rc == 0, out
        serials.append(saved(d)[1].serial_number)
    assert serials[0] != serials[1]


def test_210_004_renewal_gets_a_new_certificate(env, pki, tmp_path):
    """scepclient -certificate OLD: a RenewalReq signed by the certificate
    we issued; the answer must be a new certificate."""
    rc, out = run_scepclient(env, tmp_path, challenge=CHALLENGE, cn="scepclient-4")
    assert rc == 0, out
    (tmp_path / "client.pem").rename(tmp_path / "old.pem")
    _, old = saved(tmp_path, "old.pem")
    start = env.log_size()
    rc, out = run_scepclient(env, tmp_path, challenge="", cn="scepclient-4",
                             extra=["-certificate", str(tmp_path / "old.pem")])
    assert rc == 0, out
    log = env.read_log(start)
    assert "PKIOperation renewed: RenewalReq" in log, log
