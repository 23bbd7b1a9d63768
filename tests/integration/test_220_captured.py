"""Real PKCSReqs captured from three independent clients (micromdm's
scepclient, sscep, certmonger; tests/data/captured/README.md), replayed
against a server configured with the fixture CA and challenge: each gets
SUCCESS, the reply opens with that client's key, and the certificate is
checked like any other. certmonger's goes by GET, as certmonger sends it."""

import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import scepclient_own as own
from scepclient_own import check_issued
from scepenv import open_path_for_workers, repo_root, scep_directives, scep_location

DATA = repo_root() / "tests" / "data" / "captured"
CHALLENGE = "peers-secret"
LIFETIME = 30
CIPHERS = {"DES-CBC": "des", "DES-EDE3-CBC": "3des", "AES-128-CBC": "aes128",
           "AES-192-CBC": "aes192", "AES-256-CBC": "aes256"}
CAPTURED = {"scepclient": "post", "sscep": "post", "certmonger": "get-quoted"}


@pytest.fixture(scope="session")
def fixture_ca(tmp_path_factory):
    """The fixture CA, copied where the httpd workers can read it."""
    d = tmp_path_factory.mktemp("captured-ca")
    for f in ("ca.pem", "ca.key"):
        shutil.copy(DATA / f, d / f)
        (d / f).chmod(0o644)
    open_path_for_workers(d)
    return d


@pytest.fixture(autouse=True)
def _server(env, fixture_ca):
    # the fixture CA has keyUsage keyCertSign+cRLSign only: a warning
    env.ensure("\n".join([
        scep_directives(fixture_ca / "ca.pem", fixture_ca / "ca.key"),
        f"SCEPChallengePassword {CHALLENGE}",
        f"SCEPCertificateLifetime {LIFETIME}",
        "SCEPAllowLegacyAlgorithms on",
        "SCEPStore sqlite3:state/own-220.db",
        scep_location("/scep"),
    ]), expect_log=[r"SCEP0003: the CA certificate .* keyUsage lacks"])


def captured_request(name, tmp_path, fixture_ca):
    """A Request describing the captured message (read with the CLI and
    openssl), and its CSR (decrypted with the fixture CA key)."""
    der_file = DATA / f"{name}-pkcsreq.der"
    csr_file = tmp_path / f"{name}-csr.der"
    p = own.run([own.cli_path(), "certrep", "--key", fixture_ca / "ca.key",
                 "--out-content", csr_file, der_file])
    f = own.kv_lines(p.out)
    assert f["messageTypeName"] == "PKCSReq" and f["signature"] == "ok", f
    signer = tmp_path / f"{name}-signer.pem"
    own.run(["openssl", "cms", "-verify", "-noverify", "-inform", "DER", "-in", der_file,
             "-signer", signer, "-out", "/dev/null"])
    cipher = CIPHERS[f["envelope"].split()[0]]
    key_file = DATA / f"{name}-pkcsreq.key"
    key = own.Key(name, serialization.load_pem_private_key(key_file.read_bytes(), None),
                  key_file)
    req = own.Request("pkcsreq", der_file.read_bytes(), f["transactionID"],
                      f["senderNonce"], key, signer, cipher=cipher,
                      digest=f["digest"].lower())
    return req, x509.load_der_x509_csr(csr_file.read_bytes())


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_220_001_captured_pkcsreq(env, fixture_ca, own_keys, tmp_path, name):
    ca = x509.load_pem_x509_certificate((fixture_ca / "ca.pem").read_bytes())
    client = own.OwnClient(env, tmp_path, recipient=fixture_ca / "ca.pem",
                           trust=fixture_ca / "ca.pem", signer=ca, ca=ca, keys=own_keys)
    client.legacy = True
    req, csr = captured_request(name, tmp_path, fixture_ca)
    rep = client.exchange(req, CAPTURED[name])
    assert rep.status == "SUCCESS", rep
    check_issued(rep.cert, trust=fixture_ca / "ca.pem", issuer=ca, key=req.key,
                 subject=csr.subject, lifetime_days=LIFETIME, tmp=tmp_path)
    # the very same bytes again: the same certificate, not a second one
    again = client.exchange(req, CAPTURED[name])
    assert again.status == "SUCCESS" and again.cert == rep.cert


def test_220_002_cli_reads_a_peer_certrep(tmp_path):
    """`scep-ota certrep` reads micromdm's CertRep (to another sscep run,
    whose key the fixtures do not have): SUCCESS, DES, SHA-1, signed by
    the CA; a key that is not the recipient's cannot open it (exit 3)."""
    f = DATA / "micromdm-certrep-for-sscep.der"
    p = own.run([own.cli_path(), "certrep", f])
    rep = own.kv_lines(p.out)
    assert (rep["messageTypeName"], rep["pkiStatus"], rep["digest"],
            rep["signature"], rep["envelope"]) == (
        "CertRep", "SUCCESS", "SHA1", "ok", "DES-CBC pkcs1"), rep
    assert rep["recipientNonce"] == rep["senderNonce"], "micromdm echoes the nonce"
    p = own.run([own.cli_path(), "certrep", "--key", DATA / "sscep-pkcsreq.key",
                 "--out-cert", tmp_path / "c.pem", f], check=False)
    assert p.returncode == 3 and "decrypted=no" in p.out, p.out + p.err
    assert not Path(tmp_path / "c.pem").exists()
