"""The OTA flow again along a second, independent path, so that `scep-ota
device` (which shares the module's core library) is not the only judge:
HTTP with urllib, CMS with the openssl CLI (`cms -verify`, `cms -sign`,
`cms -decrypt`), property lists read by plistutil (cross-checked with
Python's plistlib), the SCEP request built by `scep-ota request` and the
CertRep read by `scep-ota certrep`, with the RA and CA of the GetCACert
answer found by openssl.

Phase 1 (GET) -> Phase 2 (POST signed by an expired SHA-1/RSA-1024 device
certificate) -> GetCACaps/GetCACert -> PKIOperation -> Phase 3 (POST signed
by the new identity) -> EncryptedPayloadContent decrypted and compared with
OTAProfile's PayloadContent.
"""

import re
from collections import Counter

import pytest

import otaenv
from otaenv import (ASPEN, PKCS7_SIG, RETRIES, RETRY_DELAY, SCEP_NAME, SCEP_PAYLOAD,
                    UDID, attributes, cms_decrypt, cms_print, cms_sign, cms_verify,
                    fetch, read_plist)
from scepenv import DEFAULT_CAPS

SCEP_KEYS = {"URL", "Name", "Subject", "Challenge", "Keysize", "Key Type", "Key Usage",
             "CAFingerprint", "Retries", "RetryDelay", "GetCACaps"}


@pytest.fixture(scope="module")
def opki(tmp_path_factory, pki, own_keys):
    return otaenv.ota_pki(tmp_path_factory, pki, own_keys)


@pytest.fixture
def srv(env, pki, opki):
    return otaenv.ota_server(env, pki, opki)


def certs_of_bundle(der, tmp):
    """The certificates of a certs-only PKCS#7, as (subject line, PEM), by
    `openssl pkcs7 -print_certs`."""
    src = tmp / "bundle.p7b"
    src.write_bytes(der)
    text = otaenv.openssl("pkcs7", "-inform", "DER", "-in", src, "-print_certs").out
    return re.findall(r"subject=(.*?)\n.*?(-----BEGIN CERTIFICATE-----.*?"
                      r"-----END CERTIFICATE-----\n)", text, re.S)


def pem_to_der(pem, tmp):
    src, out = tmp / "c.pem", tmp / "c.der"
    src.write_text(pem)
    otaenv.openssl("x509", "-in", src, "-outform", "DER", "-out", out)
    return out.read_bytes()


def cert_text(path):
    return otaenv.openssl("x509", "-in", path, "-noout", "-text").out


def check_scep_payload(profile, srv, pki, caps_body, caps=DEFAULT_CAPS,
                       scep_url=None, product="iPhone13,2"):
    """The Phase 2 answer: a Configuration with exactly one SCEP payload
    carrying exactly the keys Apple's SCEP payload needs, GetCACaps equal
    to the GetCACaps answer; returns its PayloadContent."""
    assert profile["PayloadType"] == "Configuration"
    assert profile["PayloadVersion"] == 1
    assert profile["PayloadIdentifier"] and profile["PayloadUUID"]
    payloads = profile["PayloadContent"]
    assert isinstance(payloads, list) and len(payloads) == 1, payloads
    assert [p["PayloadType"] for p in payloads] == [SCEP_PAYLOAD]
    c = payloads[0]["PayloadContent"]
    assert set(c) == SCEP_KEYS, set(c) ^ SCEP_KEYS
    assert c["URL"] == (scep_url or srv.url("main", "/scep"))
    assert c["Name"] == SCEP_NAME
    assert c["Subject"] == [[["O", "mod_scep_ota OTA tests"]], [["OU", product]],
                            [["CN", UDID]]]
    assert isinstance(c["Challenge"], str) and re.fullmatch(r"[A-Za-z0-9_-]{32}",
                                                            c["Challenge"])
    assert c["Keysize"] == 2048 and type(c["Keysize"]) is int
    assert c["Key Type"] == "RSA"
    assert c["Key Usage"] == 5
    assert isinstance(c["CAFingerprint"], bytes)
    assert c["CAFingerprint"] == otaenv.sha1(pki.root.der)
    assert (c["Retries"], c["RetryDelay"]) == (RETRIES, RETRY_DELAY)
    # the array is the GetCACaps answer, word for word, in order
    assert isinstance(c["GetCACaps"], list)
    assert c["GetCACaps"] == caps_body.decode().split("\n")[:-1]
    assert c["GetCACaps"] == list(caps)
    return c


def test_505_001_flow_with_openssl_and_plistutil(env, srv, opki, pki, own_keys, tmp_path):
    acc0, log0 = srv.log_pos(), env.log_size()
    url = srv.url()
    dev = opki.device("independent")

    # --- Phase 1: signed Profile Service ----------------------------------
    p1 = fetch(url)
    assert p1.status == 200
    assert p1.content_type == ASPEN
    assert p1.headers["Content-Disposition"] == (
        'attachment; filename="org.example.ota-tests.mobileconfig"')
    content, signer = cms_verify(p1.body, opki.trust, tmp_path)
    assert signer == opki.signer.cert.read_bytes()
    printed = cms_print(p1.body, tmp_path)
    assert "Test Root CA" in printed     # the signer's chain travels along
    ps = read_plist(content, tmp_path)
    assert ps["PayloadType"] == "Profile Service"
    assert ps["PayloadVersion"] == 1
    assert ps["PayloadIdentifier"] == "org.example.ota-tests.profile-service"
    assert ps["PayloadOrganization"] == "mod_scep_ota tests"
    assert re.fullmatch(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}",
                        ps["PayloadUUID"]), ps["PayloadUUID"]
    pc = ps["PayloadContent"]
    assert pc["URL"] == url
    assert pc["DeviceAttributes"] == ["UDID", "VERSION", "PRODUCT", "SERIAL", "IMEI",
                                      "MEID"]
    challenge = pc["Challenge"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", challenge)
    assert challenge not in env.read_log(log0)

    # --- Phase 2: the device-signed attributes --------------------------------
    p2_body = cms_sign(attributes(challenge), dev, tmp_path, md="sha1")
    assert "sha1" in cms_print(p2_body, tmp_path)
    p2 = fetch(pc["URL"], body=p2_body, content_type=PKCS7_SIG)
    assert p2.status == 200, (p2, p2.body[:300])
    assert p2.content_type == ASPEN
    content, signer = cms_verify(p2.body, opki.trust, tmp_path)
    assert signer == opki.signer.cert.read_bytes()
    caps = fetch(srv.url("main", "/scep?operation=GetCACaps"))
    assert caps.status == 200
    scep = check_scep_payload(read_plist(content, tmp_path), srv, pki, caps.body)

    # --- SCEP: GetCACert, then PKCSReq with the payload's Challenge -------------
    ca = fetch(scep["URL"] + f"?operation=GetCACert&message={SCEP_NAME}")
    assert ca.status == 200 and ca.content_type == "application/x-x509-ca-ra-cert"
    bundle = certs_of_bundle(ca.body, tmp_path)
    subjects = [s for s, _ in bundle]
    assert [re.search(r"CN ?= ?(.*)$", s)[1] for s in subjects] == [
        "Test RA", "Test Issuing CA", "Test Root CA"], subjects
    top = pem_to_der(bundle[-1][1], tmp_path)
    assert otaenv.sha1(top) == scep["CAFingerprint"]   # the top of the bundle
    ra = tmp_path / "ra.pem"
    ra.write_text(bundle[0][1])
    key = tmp_path / "new.key"
    key.write_bytes(own_keys.get("ota-new-identity", scep["Keysize"]).path.read_bytes())
    req = tmp_path / "pkcsreq.der"
    cipher = "aes128" if "AES" in scep["GetCACaps"] else "3des"
    digest = "sha512" if "SHA-512" in scep["GetCACaps"] else "sha256"
    made = otaenv.run([otaenv.cli_path(), "request", "--type", "pkcsreq", "--recipient",
                       ra, "--key", key, "--subject", otaenv.subject_arg(scep["Subject"]),
                       "--challenge", scep["Challenge"], "--cipher", cipher, "--digest",
                       digest, "-o", req])
    txid = re.search(r"transactionID=(\S+)", made.out)[1]
    assert "POSTPKIOperation" in scep["GetCACaps"]
    rep = fetch(scep["URL"] + "?operation=PKIOperation", body=req.read_bytes(),
                content_type="application/x-pki-message")
    assert rep.status == 200 and rep.content_type == "application/x-pki-message", rep
    rep_file, new_cert = tmp_path / "certrep.der", tmp_path / "new.crt"
    rep_file.write_bytes(rep.body)
    read = otaenv.run([otaenv.cli_path(), "certrep", "--key", key, "--out-cert",
                       new_cert, rep_file]).out
    kv = dict(ln.split("=", 1) for ln in read.splitlines() if "=" in ln)
    assert kv["pkiStatus"] in ("0", "SUCCESS"), read
    assert kv["transactionID"] == txid, read
    chain = tmp_path / "issuing.pem"
    chain.write_bytes(pki.issuing.cert_pem)
    otaenv.openssl("verify", "-CAfile", opki.trust, "-untrusted", chain, new_cert)
    subject = otaenv.openssl("x509", "-in", new_cert, "-noout", "-subject", "-nameopt",
                             "RFC2253").out.strip()
    assert subject == f"subject=CN={UDID},OU=iPhone13\\,2,O=mod_scep_ota OTA tests"
    assert "Digital Signature, Key Encipherment" in cert_text(new_cert)
    # the SCEP challenge is one-time: the same request again is a retry of
    # the same transaction (same certificate), a new one is refused
    again = tmp_path / "pkcsreq2.der"
    otaenv.run([otaenv.cli_path(), "request", "--type", "pkcsreq", "--recipient", ra,
                "--key", key, "--subject", otaenv.subject_arg(scep["Subject"]),
                "--challenge", scep["Challenge"], "--txid", "another-transaction",
                "-o", again])
    rep2 = fetch(scep["URL"] + "?operation=PKIOperation", body=again.read_bytes(),
                 content_type="application/x-pki-message")
    (tmp_path / "certrep2.der").write_bytes(rep2.body)
    kv2 = dict(ln.split("=", 1) for ln in otaenv.run(
        [otaenv.cli_path(), "certrep", tmp_path / "certrep2.der"]).out.splitlines()
        if "=" in ln)
    assert kv2["pkiStatus"] in ("2", "FAILURE"), kv2
    assert kv2["failInfo"] in ("2", "badRequest"), kv2
    assert re.search(r"SCEP2000: PKCSReq txid=another-transaction: FAILURE badRequest: "
                     r"the challenge password was not accepted", env.read_log(log0))

    # --- Phase 3: signed by the new identity ------------------------------------
    ident = otaenv.Cred(new_cert, key)
    p3_body = cms_sign(attributes(), ident, tmp_path, md="sha256")
    p3 = fetch(pc["URL"], body=p3_body, content_type=PKCS7_SIG)
    assert p3.status == 200, (p3, p3.body[:300])
    assert p3.content_type == ASPEN
    content, signer = cms_verify(p3.body, opki.trust, tmp_path)
    assert signer == opki.signer.cert.read_bytes()
    final = read_plist(content, tmp_path)
    want = {k: v for k, v in opki.profile.items() if k != "PayloadContent"}
    got = {k: v for k, v in final.items() if k != "EncryptedPayloadContent"}
    assert got == want, (got, want)        # the profile's own keys, unchanged
    assert "PayloadContent" not in final
    enc = final["EncryptedPayloadContent"]
    assert isinstance(enc, bytes)
    env_print = cms_print(enc, tmp_path)
    assert "pkcs7-envelopedData" in env_print or "envelopedData" in env_print
    assert "des-ede3-cbc" in env_print, env_print
    payloads = read_plist(cms_decrypt(enc, new_cert, key, tmp_path), tmp_path)
    assert payloads == opki.profile["PayloadContent"]
    # the Phase 1 key cannot open it: it is for the new identity only
    other = otaenv.run(["openssl", "cms", "-decrypt", "-inform", "DER", "-in",
                        _write(tmp_path, enc),
                        "-recip", opki.signer.cert, "-inkey", opki.signer.key],
                       check=False)
    assert other.returncode != 0

    # --- the store recorded the device (read with sqlite3) -------------------
    serial = otaenv.openssl("x509", "-in", new_cert, "-noout", "-serial").out.strip()
    rows = otaenv.run(["sqlite3", env.root.path / srv.store,
                       f"SELECT serial_number, product, cert_serial FROM devices "
                       f"WHERE udid = '{UDID}'"]).out.split()
    assert rows and rows[-1].split("|")[0:2] == ["F4KTESTSERIAL", "iPhone13,2"], rows
    assert rows[-1].split("|")[2].upper().lstrip("0") == serial.split("=")[1].lstrip("0")

    # --- what httpd saw ------------------------------------------------------
    acc = srv.access(acc0, want=7)
    assert Counter((m, u.split("&")[0], s) for _p, m, u, s, _t, _u in acc) == Counter({
        ("GET", "/ota/profile", 200): 1,
        ("POST", "/ota/profile", 200): 2,
        ("GET", "/scep?operation=GetCACaps", 200): 1,
        ("GET", "/scep?operation=GetCACert", 200): 1,
        ("POST", "/scep?operation=PKIOperation", 200): 2,
    }), acc
    otaenv.assert_no_crash(env, log0)


def _write(tmp, data):
    p = tmp / "blob.der"
    p.write_bytes(data)
    return p


def test_505_002_cli_cross_check_of_the_emulator(env, srv, opki, tmp_path):
    """What the emulator saved (its identity and the final profile as
    received) is also right for the openssl CLI: the identity chains to
    the test root, the profile's EncryptedPayloadContent opens with it."""
    r = otaenv.run_device(srv.url(), opki.device("cross"), tmp=tmp_path)
    assert r.rc == 0, r
    prefix = sorted(tmp_path.glob("device*.crt"))[-1].with_suffix("")
    profile = read_plist(prefix.with_suffix(".mobileconfig").read_bytes(), tmp_path)
    enc = profile["EncryptedPayloadContent"]
    got = read_plist(cms_decrypt(enc, f"{prefix}.crt", f"{prefix}.key", tmp_path),
                     tmp_path)
    assert got == opki.profile["PayloadContent"]


def _scep_payload(srv, opki, tmp, dev_name, udid=UDID):
    ch = otaenv.challenge_of(srv.url(), tmp, opki.trust)
    a = fetch(srv.url(), body=cms_sign(attributes(ch, UDID=udid),
                                       opki.device(dev_name, udid=udid), tmp, md="sha1"),
              content_type=PKCS7_SIG)
    assert a.status == 200, a
    content, _ = cms_verify(a.body, opki.trust, tmp)
    return read_plist(content, tmp)["PayloadContent"][0]["PayloadContent"]


def _pkcsreq(srv, pki, key, subject, challenge, tmp, name):
    req, rep = tmp / f"{name}.der", tmp / f"{name}-rep.der"
    otaenv.run([otaenv.cli_path(), "request", "--type", "pkcsreq", "--recipient",
                pki.ra.cert_file, "--key", key, "--subject", subject, "--challenge",
                challenge, "-o", req])
    a = fetch(srv.url("main", "/scep?operation=PKIOperation"), body=req.read_bytes(),
              content_type="application/x-pki-message")
    assert a.status == 200, a
    rep.write_bytes(a.body)
    out = otaenv.run([otaenv.cli_path(), "certrep", rep]).out
    return dict(ln.split("=", 1) for ln in out.splitlines() if "=" in ln)


def test_505_003_scep_challenge_bound_to_the_udid(env, srv, opki, pki, own_keys,
                                                  tmp_path):
    """The SCEP payload's Challenge is "a fresh one-time SCEP challenge
    bound to the UDID" (issue 5). Device A's challenge used for a request
    whose subject is another device's (or anyone's) must be refused."""
    scep = _scep_payload(srv, opki, tmp_path, "bind-a", udid="00008101-00000000000000AA")
    other = "/O=mod_scep_ota OTA tests/OU=iPhone13,2/CN=00008101-00000000000000BB"
    key = tmp_path / "bind.key"
    key.write_bytes(own_keys.get("ota-bind", 2048).path.read_bytes())
    kv = _pkcsreq(srv, pki, key, other, scep["Challenge"], tmp_path, "bind")
    assert kv["pkiStatus"] in ("2", "FAILURE"), (
        f"device A's SCEP challenge enrolled {other}: {kv}")
