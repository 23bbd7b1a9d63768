"""CAFingerprint of the Phase 2 SCEP payload against what GetCACert really
answers, for the two configurations the shared OTA server does not have:
no RA, with a CA file that carries a chain (issuing CA + root), and no RA
with a single self-signed CA.

Apple: CAFingerprint is the SHA-1 (or MD5) of the DER of "the top CA
cert of the GetCACert bundle" (ota-protocol.md 2.4, [A4][S1]). Without an
RA the module answers GetCACert with the issuing CA alone
(application/x-x509-ca-cert, test_100_020), so that certificate is the
only one the device can compare the fingerprint with.

One config (restart) per MPM: the main server has the chain, a virtual
host the self-signed CA."""

import pytest

import otaenv
from otaenv import OTA_LOCATION, STARTUP_LOG, ota_directives
from scepenv import free_port, scep_directives, scep_location


@pytest.fixture(scope="module")
def opki(tmp_path_factory, pki, own_keys):
    return otaenv.ota_pki(tmp_path_factory, pki, own_keys)


_PORTS = {}


@pytest.fixture
def solo_port(env, pki, opki):
    """Starts the config; returns the port of the self-signed-CA vhost."""
    port = _PORTS.setdefault(env.mpm, free_port())
    main_scep = f"http://127.0.0.1:{env.port}/scep"
    env.ensure("\n".join([
        scep_directives(pki.ca_chain_file, pki.issuing.key_file),
        f"SCEPStore sqlite3:state/ota530_{env.mpm}.db",
        ota_directives(opki, main_scep),
        scep_location("/scep"),
        OTA_LOCATION,
        f"Listen 127.0.0.1:{port}",
        f"<VirtualHost 127.0.0.1:{port}>",
        "    ServerName 127.0.0.1",
        "    " + scep_directives(pki.solo.cert_file, pki.solo.key_file),
        f"    OTASCEPURL http://127.0.0.1:{port}/scep",
        "</VirtualHost>",
    ]), expect_log=STARTUP_LOG)
    return port


def _fingerprint_and_getcacert(url, opki, tmp):
    ch = otaenv.challenge_of(url + "/ota/profile", tmp, opki.trust)
    a = otaenv.fetch(url + "/ota/profile", body=otaenv.cms_sign(
        otaenv.attributes(ch), opki.device("fp"), tmp, md="sha1"),
        content_type=otaenv.PKCS7_SIG)
    assert a.status == 200, a
    content, _ = otaenv.cms_verify(a.body, opki.trust, tmp)
    scep = otaenv.read_plist(content, tmp)["PayloadContent"][0]["PayloadContent"]
    ca = otaenv.fetch(scep["URL"] + "?operation=GetCACert")
    assert ca.status == 200 and ca.content_type == "application/x-x509-ca-cert", ca
    return scep["CAFingerprint"], ca.body


def test_530_001_self_signed_ca(env, solo_port, opki, pki, tmp_path):
    fp, der = _fingerprint_and_getcacert(f"http://127.0.0.1:{solo_port}", opki, tmp_path)
    assert der == pki.solo.der
    assert fp == otaenv.sha1(der)
    r = otaenv.run_device(f"http://127.0.0.1:{solo_port}/ota/profile", opki.device("fp"))
    assert r.rc == 0, r
    assert "CAFingerprint matches /O=mod_scep_ota tests/CN=Test Solo CA" in r.out


def test_530_002_ca_with_chain_and_no_ra(env, solo_port, opki, pki, tmp_path):
    fp, der = _fingerprint_and_getcacert(f"http://127.0.0.1:{env.port}", opki, tmp_path)
    assert der == pki.issuing.der
    r = otaenv.run_device(f"http://127.0.0.1:{env.port}/ota/profile", opki.device("fp"))
    assert fp == otaenv.sha1(der), (
        f"CAFingerprint {fp.hex()} is SHA-1 of the root "
        f"({otaenv.sha1(pki.root.der) == fp}), GetCACert sent the issuing CA; "
        f"scep-ota device: {r.err.strip()}")
    assert r.rc == 0, r
