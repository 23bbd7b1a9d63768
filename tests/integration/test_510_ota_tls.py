"""OTA over HTTPS through mod_ssl, the way it is deployed (Safari downloads
Phase 1 over TLS): a listener with `SSLEngine on` and a server
certificate for 127.0.0.1 from the test PKI. No client certificate is ever
requested, on the SCEP location or elsewhere: `openssl s_client` (TLS 1.3
with post-handshake auth offered, and TLS 1.2 where the server could
renegotiate) sees no CertificateRequest, and clients without a
certificate get their answers.
"""

import re
from collections import Counter

import pytest

import otaenv
from otaenv import ASPEN, PKCS7_SIG, SCEP_NAME, attributes, cms_sign, cms_verify

@pytest.fixture(scope="module")
def opki(tmp_path_factory, pki, own_keys):
    return otaenv.ota_pki(tmp_path_factory, pki, own_keys)


@pytest.fixture
def srv(env, pki, opki):
    return otaenv.ota_server(env, pki, opki)


def test_510_001_flow_over_https(env, srv, opki, tmp_path):
    acc0, log0 = srv.log_pos(), env.log_size()
    base = f"https://127.0.0.1:{srv.ports['tls']}"
    r = otaenv.run_device(srv.url("tls"), opki.device("tls"), "-v", tmp=tmp_path,
                          cacert=opki.trust)
    assert r.rc == 0, r
    assert r.requests == [
        ("GET", f"{base}/ota/profile"),
        ("POST", f"{base}/ota/profile"),
        ("GET", f"{base}/scep?operation=GetCACert&message={SCEP_NAME}"),
        ("POST", f"{base}/scep?operation=PKIOperation"),
        ("POST", f"{base}/ota/profile"),
    ], r
    assert f"URL: {base}/ota/profile" in r.out        # Phase 1 names itself https
    assert f"SCEP URL: {base}/scep" in r.out          # OTASCEPURL of this vhost
    assert "GetCACaps from the profile: no GetCACaps request" in r.out
    assert "2 payload(s), decrypted with the new identity:" in r.out
    acc = srv.access(acc0, want=5)
    assert {p for p, *_ in acc} == {srv.ports["tls"]}, acc
    assert Counter(s for _p, _m, _u, s, _t, _x in acc) == Counter({200: 5}), acc
    assert not [a for a in acc if "GetCACaps" in a[2]]
    otaenv.assert_no_crash(env, log0)


def test_510_002_the_emulator_checks_the_server_certificate(env, srv, opki, tmp_path):
    """Without --cacert the test root is unknown: no TLS, no Phase 1 (so
    the run above really verified the server)."""
    r = otaenv.run_device(srv.url("tls"), opki.device("tls"))
    assert r.rc != 0, r
    assert re.search(r"<< no answer: .*(certificate|verif|TLS|SSL)", r.out, re.I), r
    assert r.requests == [("GET", srv.url("tls"))]
    # the server logs the client's alert, below warn level


@pytest.mark.parametrize("target", [
    f"/scep?operation=GetCACert&message={SCEP_NAME}",
    "/scep?operation=GetCACaps",
    "/ota/profile",
])
@pytest.mark.parametrize("proto", ["-tls1_3", "-tls1_2"])
def test_510_003_no_client_certificate_request(env, srv, opki, tmp_path, proto, target):
    """openssl s_client, no client certificate, TLS 1.3 offering
    post-handshake authentication (so a CertificateRequest could come
    after the request) or TLS 1.2 (renegotiation): the handshake and the
    HTTP request complete, and -msg shows no CertificateRequest."""
    req = (f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{srv.ports['tls']}\r\n"
           "Connection: close\r\n\r\n").encode()
    p = otaenv.run(["openssl", "s_client", "-connect", f"127.0.0.1:{srv.ports['tls']}",
                    "-CAfile", opki.trust, "-verify_return_error", "-msg", "-ign_eof",
                    proto, *(["-enable_pha"] if proto == "-tls1_3" else [])],
                   input=req, check=False)
    text = p.out + p.err
    assert "Verify return code: 0 (ok)" in text, text
    assert re.search(r"^HTTP/1\.1 200 OK", text, re.M), text
    assert "ClientHello" in text and "Finished" in text     # -msg did trace
    assert "CertificateRequest" not in text, text
    assert "HelloRequest" not in text, text
    assert "Acceptable client certificate CA names" not in text, text
    assert "No client certificate CA names sent" in text, text


def test_510_004_phase1_and_phase2_with_urllib_over_tls(env, srv, opki, pki, tmp_path):
    """The independent path over TLS: Python's ssl verifies the server,
    openssl verifies the profiles, no client certificate anywhere."""
    ctx = otaenv.tls_context(opki.trust)
    url = srv.url("tls")
    a, ps = otaenv.phase1(url, tmp_path, opki.trust, context=ctx)
    assert a.content_type == ASPEN
    assert ps["PayloadContent"]["URL"] == url
    body = cms_sign(attributes(ps["PayloadContent"]["Challenge"]), opki.device("tls"),
                    tmp_path, md="sha1")
    b = otaenv.fetch(url, body=body, content_type=PKCS7_SIG, context=ctx)
    assert b.status == 200 and b.content_type == ASPEN, b
    content, _ = cms_verify(b.body, opki.trust, tmp_path)
    scep = otaenv.read_plist(content, tmp_path)["PayloadContent"][0]["PayloadContent"]
    assert scep["URL"] == srv.url("tls", "/scep")
    caps = otaenv.fetch(srv.url("tls", "/scep?operation=GetCACaps"), context=ctx)
    assert scep["GetCACaps"] == caps.body.decode().split("\n")[:-1]
