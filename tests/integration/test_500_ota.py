"""OTA profile delivery through the real httpd with `scep-ota device`:
Phase 1 -> Phase 2 -> SCEP -> Phase 3 -> the final payloads decrypted.
Then what must be refused (forged, foreign CA, unsigned, undecodable,
replayed, wrong challenge, Phase 3 by a certificate the store does not
hold or has revoked) and the Phase 1 challenge bound to the user of
mod_auth_basic.

All tests share the OTA config of otaenv.OtaServer (one httpd per MPM).
The SCEP CA is the suite's issuing CA with an RA, so GetCACert answers a
bundle (RA, issuing CA, root) whose top, the root, is the CAFingerprint.
"""

import plistlib
import re
from collections import Counter

import pytest
from cryptography import x509

import otaenv
from otaenv import (ASPEN, DEVICE_ATTRS, SCEP_NAME, UDID, USERS, assert_no_crash,
                    attributes, challenge_of, cms_sign, post_signed)


@pytest.fixture(scope="module")
def opki(tmp_path_factory, pki, own_keys):
    return otaenv.ota_pki(tmp_path_factory, pki, own_keys)


@pytest.fixture
def srv(env, pki, opki):
    return otaenv.ota_server(env, pki, opki)


def subject_text(product="iPhone17,1", udid=UDID):
    return f"/O=mod_scep_ota OTA tests/OU={product}/CN={udid}"


def final_payloads(out):
    """The decrypted payload array `scep-ota device -v` prints as XML."""
    m = re.search(r"(<\?xml.*?</plist>)", out, re.S)
    assert m, out
    return plistlib.loads(m[1].encode())


# ---------------------------------------------------------------------------
# The whole flow with the emulator


def test_500_000_the_device_chain_is_apple_like(opki, tmp_path):
    """The fixture itself: like Apple's, the device CA is RSA-1024 signed
    with SHA-1 and expired (2014), its issuer expired (2022), the device
    certificate RSA-1024/SHA-1 and expired; a normal chain check refuses
    it, one without the time check and at security level 0 accepts it."""
    dev = opki.device("flow")
    for cred, bits, until in [(opki.device_ca, 1024, "Apr 16 00:00:00 2014 GMT"),
                              (opki.iphone_ca, 2048, "Apr 12 00:00:00 2022 GMT"),
                              (dev, 1024, "Jan  1 00:00:00 2013 GMT")]:
        text = otaenv.openssl("x509", "-in", cred.cert, "-noout", "-text").out
        assert "Signature Algorithm: sha1WithRSAEncryption" in text
        assert f"Public-Key: ({bits} bit)" in text
        assert f"Not After : {until}" in text
    strict = otaenv.run(["openssl", "verify", "-CAfile", opki.device_ca_file,
                         dev.cert], check=False)
    assert strict.returncode != 0 and "expired" in strict.out + strict.err
    otaenv.openssl("verify", "-no_check_time", "-auth_level", "0", "-CAfile",
                   opki.device_ca_file, dev.cert)


@pytest.mark.parametrize("chain", ["chain", "signer-only"])
def test_500_001_flow_with_emulator(env, srv, opki, pki, tmp_path, chain):
    """iOS sends its device chain; macOS only the signer (openradar
    31423312): both chain to OTADeviceCACertificateFile's expired
    SHA-1/RSA-1024 CAs and enroll. The payload carries GetCACaps, so no
    GetCACaps request is ever sent."""
    dev = opki.device("flow")
    if chain == "signer-only":
        dev = otaenv.Cred(dev.cert, dev.key)
    log0, acc0 = env.log_size(), srv.log_pos()
    r = otaenv.run_device(srv.url(), dev, "-v", tmp=tmp_path)
    assert r.rc == 0, r
    base = f"http://127.0.0.1:{env.port}"
    assert r.requests == [
        ("GET", f"{base}/ota/profile"),
        ("POST", f"{base}/ota/profile"),
        ("GET", f"{base}/scep?operation=GetCACert&message={SCEP_NAME}"),
        ("POST", f"{base}/scep?operation=PKIOperation"),
        ("POST", f"{base}/ota/profile"),
    ], r
    assert r.count("GetCACaps") == 0
    out = r.out
    for line in [
        f"URL: {base}/ota/profile",
        "DeviceAttributes: UDID VERSION PRODUCT SERIAL IMEI MEID",
        "PayloadType: Configuration with one com.apple.security.scep payload",
        f"SCEP URL: {base}/scep   Name: {SCEP_NAME}",
        f"Subject: {subject_text()}",
        "Keysize: 2048   Key Type: RSA   Key Usage: 5",
        "GetCACaps: " + " ".join(otaenv.scepenv.DEFAULT_CAPS),
        "CAFingerprint matches /O=mod_scep_ota tests/CN=Test Root CA",
        "GetCACaps from the profile: no GetCACaps request",
        "using POST, AES-128-CBC, SHA512",
        "CertRep: SUCCESS, signed with SHA512",
        'PayloadType: Configuration  "OTA test settings"  (org.example.ota-tests.final)',
        "EncryptedPayloadContent: EnvelopedData, DES-EDE3-CBC",
        "2 payload(s), decrypted with the new identity:",
        f"== enrolled: {subject_text()}",
    ]:
        assert line in out, f"{line!r} not in the trace:\n{out}"
    fp = re.search(r"CAFingerprint: ([0-9A-F:]+)", out)[1]
    assert bytes.fromhex(fp.replace(":", "")) == otaenv.sha1(pki.root.der)
    assert final_payloads(out) == opki.profile["PayloadContent"]

    # the identity the device got
    saved = sorted(tmp_path.glob("device*.crt"))[-1]
    cert = x509.load_pem_x509_certificate(saved.read_bytes())
    assert cert.issuer == pki.issuing.cert.subject
    assert cert.subject.rfc4514_string() == (
        f"CN={UDID},OU=iPhone17\\,1,O=mod_scep_ota OTA tests")

    # what httpd saw: the same five requests, nothing else
    acc = srv.access(acc0, want=5)
    assert Counter((p, m, u, s, t) for p, m, u, s, t, _ in acc) == Counter({
        (env.port, "GET", "/ota/profile", 200, ASPEN): 1,
        (env.port, "POST", "/ota/profile", 200, ASPEN): 2,
        (env.port, "GET", f"/scep?operation=GetCACert&message={SCEP_NAME}", 200,
         "application/x-x509-ca-ra-cert"): 1,
        (env.port, "POST", "/scep?operation=PKIOperation", 200,
         "application/x-pki-message"): 1,
    }), acc
    assert not [a for a in acc if "GetCACaps" in a[2]]
    log = env.read_log(log0)
    assert re.search(rf"SCEP5019: OTA Phase 2: SCEP profile for UDID {UDID} \(iPhone17,1,"
                     r" F2LTESTDEVICE\)", log), log
    assert re.search(rf"SCEP5024: OTA Phase 3: profile org.example.ota-tests.final "
                     rf"\(2 payloads, DES-EDE3-CBC\) for UDID {UDID}", log), log
    assert_no_crash(env, log0)


def test_500_002_device_attributes_fill_the_subject(env, srv, opki, tmp_path):
    """%{PRODUCT} and %{UDID} of OTASubject come from what the device sent."""
    dev = opki.device("ipad", udid="00008101-001938611EE9002F")
    r = otaenv.run_device(srv.url(), dev, "--attr", "PRODUCT=iPad13,18",
                          "--attr", "IMEI=35 123456 789012 3", tmp=tmp_path)
    assert r.rc == 0, r
    want = subject_text("iPad13,18", "00008101-001938611EE9002F")
    assert f"Subject: {want}" in r.out
    assert f"== enrolled: {want}" in r.out


# ---------------------------------------------------------------------------
# Refusals


def _refused(env, srv, body, status, tags, tmp_path, content_type=otaenv.PKCS7_SIG):
    """POST `body` to the OTA location: `status`, each tag logged on a
    line that also says it was refused or why, nothing crashed, and the
    server still serves Phase 1."""
    log0 = env.log_size()
    a = post_signed(srv.url(), body, content_type=content_type)
    assert a.status == status, (a, a.body[:300])
    assert a.content_type.startswith("text/plain"), a
    log = env.read_log(log0)
    for tag in tags:
        assert re.search(rf"{tag}: ", log), f"no {tag} line in:\n{log}"
    assert re.search(rf"SCEP0203: OTA Phase \d refused \({status}\)", log), log
    assert_no_crash(env, log0)
    assert otaenv.fetch(srv.url()).status == 200
    return log


def _signed_phase2(opki, srv, tmp, dev_name="refuse", under="device", challenge=None,
                   **kw):
    dev = opki.device(dev_name, under=under)
    ch = challenge if challenge is not None else challenge_of(srv.url(), tmp, opki.trust)
    return ch, cms_sign(attributes(ch, **kw), dev, tmp, md="sha1")


UNDECODABLE = {
    "empty": (b"", "SCEP5001"),
    "garbage": (bytes(range(256)) * 4, "SCEP5001"),
    "der-integer": (b"\x02\x01\x00", "SCEP5001"),
}


@pytest.mark.parametrize("kind", ["plain-plist", "binary-plist", *UNDECODABLE])
def test_500_010_unsigned_or_undecodable_is_400(env, srv, opki, tmp_path, kind):
    if kind == "plain-plist":
        ch = challenge_of(srv.url(), tmp_path, opki.trust)
        body, tag = attributes(ch), "SCEP5001"
    elif kind == "binary-plist":
        ch = challenge_of(srv.url(), tmp_path, opki.trust)
        body = plistlib.dumps(dict(DEVICE_ATTRS, CHALLENGE=ch), fmt=plistlib.FMT_BINARY)
        tag = "SCEP5001"
    else:
        body, tag = UNDECODABLE[kind]
    _refused(env, srv, body, 400, [tag], tmp_path)


def test_500_011_cms_that_is_not_one_signed_content_is_400(env, srv, opki, tmp_path):
    """Valid CMS, but not an attached, singly signed content: a certs-only
    bundle (no signer), a detached signature, an EnvelopedData, a truncated
    SignedData; and signed content that is no plist dictionary."""
    dev = opki.device("refuse")
    ch = challenge_of(srv.url(), tmp_path, opki.trust)
    attrs = tmp_path / "attrs.plist"
    attrs.write_bytes(attributes(ch))
    certs_only = tmp_path / "certs-only.der"
    otaenv.openssl("crl2pkcs7", "-nocrl", "-certfile", dev.chain, "-outform", "DER",
                   "-out", certs_only)
    detached = tmp_path / "detached.der"
    otaenv.openssl("cms", "-sign", "-binary", "-outform", "DER", "-in", attrs,
                   "-out", detached, "-signer", dev.cert, "-inkey", dev.key,
                   "-md", "sha1")
    enveloped = tmp_path / "enveloped.der"
    otaenv.openssl("cms", "-encrypt", "-binary", "-outform", "DER", "-in", attrs,
                   "-out", enveloped, "-des3", opki.signer.cert)
    good = cms_sign(attributes(ch), dev, tmp_path, md="sha1")
    cases = [
        (certs_only.read_bytes(), 400, ["SCEP5002|SCEP5003"]),
        (detached.read_bytes(), 400, ["SCEP5002"]),
        (enveloped.read_bytes(), 400, ["SCEP5002"]),
        (good[:len(good) // 2], 400, ["SCEP5001"]),
        (cms_sign(b"hello, not a plist", dev, tmp_path, md="sha1"), 400, ["SCEP5008"]),
        (cms_sign(otaenv.plist_xml([UDID, ch]), dev, tmp_path, md="sha1"), 400,
         ["SCEP5008"]),
    ]
    for body, status, tags in cases:
        _refused(env, srv, body, status, [f"(?:{t})" for t in tags], tmp_path)
    # none of this used up the challenge
    a = post_signed(srv.url(), good)
    assert a.status == 200, a


@pytest.mark.parametrize("with_attrs", [True, False], ids=["signed-attrs", "no-attrs"])
def test_500_012_forged_content_is_403(env, srv, opki, tmp_path, with_attrs):
    """The device's signed attributes with one byte of the content changed
    after signing (SERIAL F4KTESTSERIAL -> F4KTESTSERIAM): 403, and the
    challenge is still good for the genuine request."""
    dev = opki.device("forge")
    ch = challenge_of(srv.url(), tmp_path, opki.trust)
    src = tmp_path / "attrs.plist"
    src.write_bytes(attributes(ch))
    out = tmp_path / "signed.der"
    args = ["cms", "-sign", "-nodetach", "-binary", "-outform", "DER", "-in", src,
            "-out", out, "-signer", dev.cert, "-inkey", dev.key, "-certfile", dev.cas,
            "-md", "sha1"]
    otaenv.openssl(*args, *([] if with_attrs else ["-noattr"]))
    good = out.read_bytes()
    assert good.count(b"F4KTESTSERIAL") == 1
    forged = good.replace(b"F4KTESTSERIAL", b"F4KTESTSERIAM")
    env.expect_log(r"SCEP5005")
    _refused(env, srv, forged, 403, ["SCEP5005"], tmp_path)
    # a forged CHALLENGE (same length) is refused by the signature too
    forged_ch = good.replace(ch.encode(), ch[::-1].encode())
    _refused(env, srv, forged_ch, 403, ["SCEP5005"], tmp_path)
    a = post_signed(srv.url(), good)
    assert a.status == 200, a


@pytest.mark.parametrize("under", ["foreign", "impostor"])
def test_500_013_foreign_device_ca_is_403(env, srv, opki, tmp_path, under):
    """A device certificate under a CA that is not in
    OTADeviceCACertificateFile (foreign: another name; impostor: the
    device CA's very name with another key), correctly signed, with a good
    challenge: 403, and the challenge stays unused."""
    ch, body = _signed_phase2(opki, srv, tmp_path, under=under)
    env.expect_log(r"SCEP5007")
    log = _refused(env, srv, body, 403, ["SCEP5007"], tmp_path)
    assert "OTADeviceCACertificateFile" in log
    _, good = _signed_phase2(opki, srv, tmp_path, challenge=ch)
    assert post_signed(srv.url(), good).status == 200


def test_500_014_self_signed_signer_is_403(env, srv, opki, pki, tmp_path):
    ch = challenge_of(srv.url(), tmp_path, opki.trust)
    selfsigned = otaenv.Cred(pki.solo.cert_file, pki.solo.key_file)
    env.expect_log(r"SCEP5007")
    _refused(env, srv, cms_sign(attributes(ch), selfsigned, tmp_path), 403,
             ["SCEP5007"], tmp_path)


def test_500_015_replayed_phase2_is_403(env, srv, opki, tmp_path):
    """The same Phase 2 POST twice: the first gets the SCEP profile, the
    second 403 (the one-time challenge is used up)."""
    _, body = _signed_phase2(opki, srv, tmp_path, dev_name="replay")
    first = post_signed(srv.url(), body)
    assert first.status == 200 and first.content_type == ASPEN, first
    env.expect_log(r"SCEP5014")
    log = _refused(env, srv, body, 403, ["SCEP5014"], tmp_path)
    assert re.search(rf"SCEP5014: OTA Phase 2 refused for UDID {UDID}: the CHALLENGE is "
                     r"wrong, expired or already used", log), log
    # the challenge text never shows up in the log
    ch = re.search(rb"<key>CHALLENGE</key>\s*<string>([^<]+)</string>", body)[1].decode()
    assert ch not in env.read_log(0)


@pytest.mark.parametrize("challenge", ["made-up", "missing", "empty"])
def test_500_016_wrong_or_missing_challenge_is_403(env, srv, opki, tmp_path, challenge):
    """A device-CA signer (so Phase 2) with a CHALLENGE never issued, an
    empty one, or none at all."""
    ch = {"made-up": "A" * 32, "missing": None, "empty": ""}[challenge]
    body = cms_sign(attributes(ch), opki.device("refuse"), tmp_path, md="sha1")
    env.expect_log(r"SCEP5014")
    log = _refused(env, srv, body, 403, ["SCEP5014"], tmp_path)
    assert ("missing" if challenge == "missing" else "wrong, expired") in log


def test_500_017_phase3_signer_not_in_the_store_is_403(env, srv, pki, tmp_path):
    """Signed by a certificate our CA issued but the store never recorded
    (the suite's leaf certificate): 403."""
    leaf = otaenv.Cred(pki.leaf.cert_file, pki.leaf.key_file)
    env.expect_log(r"SCEP5101")
    log = _refused(env, srv, cms_sign(attributes(), leaf, tmp_path), 403, ["SCEP5101"],
                   tmp_path)
    assert "not in the store" in log


def test_500_020_phase3_needs_a_phase2_enrollment(env, srv, pki, own_keys, tmp_path):
    """A certificate of ours whose subject fits OTASubject, obtained with a
    one-time challenge that was not OTA's (as network gear would get one),
    gets no final profile: Phase 3 serves only what Phase 2 enrolled for
    that UDID."""
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID
    import scepclient_own as own
    otp = otaenv.run([otaenv.cli_path(), "store", "-f", env.root.conf,
                      "challenge"]).out.strip()
    c = own.OwnClient(env, tmp_path / "own", recipient=pki.ra.cert_file,
                      trust=pki.ca_chain_file, signer=pki.ra.cert, ca=pki.issuing.cert,
                      keys=own_keys)
    key = own_keys.get("not-a-device")
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mod_scep_ota OTA tests"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, DEVICE_ATTRS["PRODUCT"]),
        x509.NameAttribute(NameOID.COMMON_NAME, UDID)])
    csr = own.make_csr(tmp_path / "csr.pem", key, name, challenge=otp)
    rep = c.exchange(c.request("pkcsreq", key, csr=csr))
    assert rep.status == "SUCCESS", rep
    cert = tmp_path / "gear.pem"
    cert.write_bytes(rep.cert.public_bytes(Encoding.PEM))
    env.expect_log(r"SCEP5026")
    log = _refused(env, srv, cms_sign(attributes(), otaenv.Cred(str(cert), key.path),
                                      tmp_path), 403, ["SCEP5026"], tmp_path)
    assert "was not issued through OTA Phase 2" in log


def test_500_018_phase3_with_a_revoked_certificate_is_403(env, srv, opki, tmp_path):
    """Enroll with the emulator, revoke the certificate with `scep-ota
    store revoke`, then Phase 3 signed by it: 403; before: 200."""
    # the Phase 3 below speaks for the device the certificate was made for
    attrs = [a for k, v in otaenv.DEVICE_ATTRS.items() if k != "UDID"
             for a in ("--attr", f"{k}={v}")]
    r = otaenv.run_device(srv.url(), opki.device("revoke"), *attrs, tmp=tmp_path)
    assert r.rc == 0, r
    prefix = sorted(tmp_path.glob("device*.crt"))[-1].with_suffix("")
    ident = otaenv.Cred(f"{prefix}.crt", f"{prefix}.key")
    body = cms_sign(attributes(), ident, tmp_path)
    assert post_signed(srv.url(), body).status == 200
    # the same identity speaking for another device: refused
    other = cms_sign(attributes(UDID="00008101-0000000000000BEE"), ident, tmp_path)
    env.expect_log(r"SCEP5026")
    log = _refused(env, srv, other, 403, ["SCEP5026"], tmp_path)
    assert "was not issued through OTA Phase 2 to UDID" in log
    serial = format(ident.x509().serial_number, "X")
    otaenv.run([otaenv.cli_path(), "store", "-f", env.root.conf, "revoke", serial,
                "keyCompromise"])
    env.expect_log(r"SCEP5101")
    log = _refused(env, srv, body, 403, ["SCEP5101"], tmp_path)
    assert "revoked" in log


def test_500_019_other_methods_are_405(env, srv):
    a = otaenv.fetch(srv.url())
    assert a.status == 200
    r = env.request("PUT", "/ota/profile", body=b"x")
    assert r.status == 405
    assert set(x.strip() for x in r.header("Allow").split(",")) >= {"GET", "POST"}


# ---------------------------------------------------------------------------
# The Phase 1 challenge bound to the user (mod_auth_basic + mod_authn_file)


def test_500_030_challenge_bound_to_the_user(env, srv, opki, tmp_path):
    """/ota/auth is the same service behind Basic auth. Phase 1 as alice;
    Phase 2 with alice's challenge authenticated as bob: 403 (SCEP5015).
    The refused attempt uses the challenge up, so alice needs a new one;
    with it, authenticated as alice: 200."""
    url = srv.url("main", "/ota/auth")
    alice, bob = [(u, USERS[u]) for u in ("alice", "bob")]
    log0, acc0 = env.log_size(), srv.log_pos()
    a, payload = otaenv.phase1(url, tmp_path, opki.trust, auth=alice)
    assert payload["PayloadContent"]["URL"] == url
    ch = payload["PayloadContent"]["Challenge"]
    assert re.search(r"SCEP0202: OTA Phase 1: Profile Service payload served to alice",
                     env.read_log(log0))
    dev = opki.device("auth")
    body = cms_sign(attributes(ch), dev, tmp_path, md="sha1")

    env.expect_log(r"SCEP5015")
    b = post_signed(url, body, auth=bob)
    assert b.status == 403, b
    log = env.read_log(log0)
    assert re.search(rf"SCEP5015: OTA Phase 2 refused for UDID {UDID}: the challenge "
                     r"was issued to 'alice', not 'bob'", log), log
    # bob's refused try did not use it up: alice enrolls, once; the SCEP
    # challenge she gets is bound to the subject, the device and to her
    assert post_signed(url, body, auth=alice).status == 200
    import sqlite3
    with sqlite3.connect(env.root.path / srv.store) as db:
        bound = [r[0] for r in db.execute(
            "SELECT bound_to FROM challenges WHERE purpose = 1 AND bound_to LIKE ?",
            (f"%udid={UDID}%",))]
    assert any("user=alice" in b for b in bound), bound
    env.expect_log(r"SCEP5014")
    assert post_signed(url, body, auth=alice).status == 403

    ch2 = challenge_of(url, tmp_path, opki.trust, auth=alice)
    ok = post_signed(url, cms_sign(attributes(ch2), dev, tmp_path, md="sha1"), auth=alice)
    assert ok.status == 200 and ok.content_type == ASPEN, ok
    acc = srv.access(acc0, want=6)
    # (access lines of quick successive requests may be written out of order)
    assert Counter((m, s, u) for _p, m, _u, s, _t, u in acc) == Counter({
        ("GET", 200, "alice"): 2, ("POST", 403, "bob"): 1, ("POST", 403, "alice"): 1,
        ("POST", 200, "alice"): 2}), acc
    assert_no_crash(env, log0)


def test_500_031_auth_location_refuses_anonymous_and_bad_password(env, srv):
    url = srv.url("main", "/ota/auth")
    assert otaenv.fetch(url).status == 401
    env.expect_log(r"AH01617")   # mod_auth_basic: user bob: authentication failure
    assert otaenv.fetch(url, auth=("bob", "wrong")).status == 401
    assert otaenv.fetch(url, body=b"x", content_type=otaenv.PKCS7_SIG).status == 401


def test_500_032_challenge_of_an_anonymous_phase1_is_bound_to_nobody(env, srv, opki,
                                                                    tmp_path):
    """A challenge from the open location works on the protected one (for
    any user) and the other way round: binding applies to challenges that
    were issued to a user and redeemed by another authenticated user."""
    ch = challenge_of(srv.url(), tmp_path, opki.trust)
    dev = opki.device("auth")
    a = post_signed(srv.url("main", "/ota/auth"),
                    cms_sign(attributes(ch), dev, tmp_path, md="sha1"),
                    auth=("bob", USERS["bob"]))
    assert a.status == 200, a
