"""`scep-ota init`: a PKI that the module accepts as it is. The directives
it prints load into httpd and a client enrolls through the RA it made;
the OCSP signer it made signs OCSP answers; keys are 0600; nothing is ever
overwritten; --ca-cert/--ca-key issue from an existing CA."""

import os
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

import scepenv
from scepenv import repo_root
import storeenv
from storeenv import Store


def init(*args, check=True):
    p = subprocess.run([storeenv.scep_ota_cli(), "init", *map(str, args)],
                       capture_output=True, text=True, timeout=120)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def load(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    d = tmp_path_factory.mktemp("init") / "pki"
    p = init(d, "--ra", "--ocsp", "--ota", "--bits", "2048",
             "--subject", "/O=Example Corp/CN=Example SCEP CA")
    os.chmod(d, 0o755)  # the test server's children read the certificates
    return d, p.stdout


@pytest.fixture(scope="module")
def clients(keypool):
    return keypool.clients(2, start=80)


def test_660_001_files_and_modes(made):
    d, out = made
    for stem in ("ca", "ra", "ota-signer", "ocsp-signer"):
        assert stat.S_IMODE(os.stat(d / f"{stem}.key").st_mode) == 0o600, stem
        assert stat.S_IMODE(os.stat(d / f"{stem}.pem").st_mode) == 0o644, stem
        assert f"{d}/{stem}.pem" in out
    ca = load(d / "ca.pem")
    assert ca.subject.rfc4514_string() == "CN=Example SCEP CA,O=Example Corp"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ku = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign and ku.digital_signature and ku.key_encipherment
    assert ca.public_key().key_size == 2048
    ra = load(d / "ra.pem")
    assert ra.issuer == ca.subject
    assert ra.subject.rfc4514_string() == "CN=Example SCEP CA RA,O=Example Corp"
    ocsp = load(d / "ocsp-signer.pem")
    eku = ocsp.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    ocsp.extensions.get_extension_for_class(x509.OCSPNoCheck)
    # leaves never outlive the CA
    assert load(d / "ota-signer.pem").not_valid_after <= ca.not_valid_after


def test_660_002_the_output_loads_and_enrolls(env, made, clients, tmp_path):
    d, out = made
    st = Store("sqlite", env, name=f"t660_{env.mpm}")
    snippet = "\n".join([out, f"SCEPChallengePassword {storeenv.STATIC_CHALLENGE}",
                         st.directives, scepenv.scep_location("/scep"),
                         "<Location /ocsp>", "    SetHandler scep-ocsp", "</Location>"])
    # the OTA signer alone is no OTA service: leave its lines out here
    snippet = "\n".join(ln for ln in snippet.splitlines() if not ln.startswith("OTA"))
    env.ensure(snippet, extra_modules=st.extra_modules)
    ra = load(d / "ra.pem")
    p = storeenv.prepare(clients[:1], ra, storeenv.STATIC_CHALLENGE)[0]
    r = storeenv.decode([storeenv.send_one(env.port, p)], verify_with=ra)[0]
    assert r.success, r.rep
    assert r.rep.cert.issuer == load(d / "ca.pem").subject
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(r.rep.cert.public_bytes(
        __import__("cryptography.hazmat.primitives.serialization",
                   fromlist=["Encoding"]).Encoding.PEM))
    o = subprocess.run(["openssl", "ocsp", "-issuer", d / "ca.pem", "-cert", leaf,
                        "-CAfile", d / "ca.pem",
                        "-url", f"http://127.0.0.1:{env.port}/ocsp"],
                       capture_output=True, text=True, timeout=30)
    assert "Response verify OK" in o.stdout + o.stderr, o
    assert f"{leaf}: good" in o.stdout, o


def test_660_003_never_overwrites(made, tmp_path):
    d, _ = made
    before = {f.name: f.read_bytes() for f in d.iterdir()}
    p = init(d, "--ra", check=False)
    assert p.returncode != 0 and "exists" in p.stderr, p
    assert {f.name: f.read_bytes() for f in d.iterdir()} == before
    # a later file in the way: nothing of the set is written
    e = tmp_path / "partial"
    e.mkdir()
    (e / "ra.key").write_text("in the way\n")
    p = init(e, "--ra", "--bits", "2048", check=False)
    assert p.returncode != 0 and "ra.key exists" in p.stderr, p
    assert sorted(f.name for f in e.iterdir()) == ["ra.key"]
    # a link in the way is not followed either
    f = tmp_path / "linked"
    f.mkdir()
    (f / "ca.key").symlink_to(tmp_path / "target")
    p = init(f, "--bits", "2048", check=False)
    assert p.returncode != 0 and not (tmp_path / "target").exists()


def test_660_004_from_an_existing_ca(made, tmp_path):
    d, _ = made
    out = tmp_path / "more"
    p = init(out, "--ca-cert", d / "ca.pem", "--ca-key", d / "ca.key", "--ota",
             "--bits", "2048")
    assert sorted(f.name for f in out.iterdir()) == ["ota-signer.key", "ota-signer.pem"]
    assert f"SCEPCACertificateFile {d}/ca.pem" in p.stdout
    assert load(out / "ota-signer.pem").issuer == load(d / "ca.pem").subject
    v = subprocess.run(["openssl", "verify", "-CAfile", d / "ca.pem",
                        out / "ota-signer.pem"], capture_output=True, text=True)
    assert v.returncode == 0, v
    # not a CA, a key that does not match, nothing asked: refused
    p = init(tmp_path / "x", "--ca-cert", d / "ra.pem", "--ca-key", d / "ra.key",
             "--ota", check=False)
    assert p.returncode != 0 and "not a CA" in p.stderr
    p = init(tmp_path / "y", "--ca-cert", d / "ca.pem", "--ca-key", d / "ra.key",
             "--ota", check=False)
    assert p.returncode != 0 and "does not match" in p.stderr
    p = init(tmp_path / "z", "--ca-cert", d / "ca.pem", "--ca-key", d / "ca.key",
             check=False)
    assert p.returncode != 0 and "--ra, --ota, --ocsp" in p.stderr


def test_660_005_bad_subject(tmp_path):
    for s in ("CN=x", "/CN", "/=x", "/CN=x/"):
        p = init(tmp_path / "s", "--subject", s, "--bits", "2048", check=False)
        assert p.returncode != 0 and "--subject" in p.stderr, (s, p.stderr)
        assert not (tmp_path / "s" / "ca.pem").exists()


def test_660_010_a_warning_once_not_per_virtual_host(env, tmp_path):
    """A CA without the key usages of the CMS layer is warned about once,
    however many virtual hosts build it (each with its own distribution
    point, so none shares the main server's)."""
    import shutil
    d = tmp_path / "ca"
    d.mkdir()
    src = repo_root() / "tests" / "data" / "captured"
    for f in ("ca.pem", "ca.key"):
        shutil.copy(src / f, d / f)
        (d / f).chmod(0o644)
    d.chmod(0o755)
    ports = [scepenv.free_port(), scepenv.free_port()]
    lines = [scepenv.scep_directives(d / "ca.pem", d / "ca.key"),
             "SCEPStore sqlite3:state/own-660.db", scepenv.scep_location("/scep")]
    for i, port in enumerate(ports):
        lines += [f"Listen 127.0.0.1:{port}", f"<VirtualHost 127.0.0.1:{port}>",
                  f"    SCEPCRLDistributionPoint http://pki{i}.example.com/crl",
                  "</VirtualHost>"]
    env.ensure("\n".join(lines),
               expect_log=[r"SCEP0003: the CA certificate .* keyUsage lacks"])
    rc, out = env._run(env.root, "-t")
    assert rc == 0, out
    warned = [ln for ln in out.splitlines() if "SCEP0003" in ln]
    assert len(warned) == 1, out
