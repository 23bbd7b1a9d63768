"""The background of the GetCACaps array (issue 5): iOS 3.1 asked a SCEP
server for GetCACaps twice, got no answer, fell back to GET/3DES/SHA-1 and
enrolled; iOS 4.0.1 asked three times and failed with "A network error has
occurred. The network connection was lost". With the capabilities in the
Phase 2 SCEP payload the device never asks.

How "no answer" is made here. Two ways, both in the shared config:

* `drop` (the faithful one): the SCEP URL of that virtual host points at
  otaenv.DropProxy, which reads the GetCACaps request and closes the
  connection without a byte of answer. That is what the 2010 report
  describes ("no answer") and what iOS turns into NSURLErrorNetwork-
  ConnectionLost, "The network connection was lost". httpd never sees
  those requests, so its access log must show none, and the proxy counts
  them. httpd itself has no directive that drops a request unanswered
  (mod_rewrite [F] and `Require all denied` answer 403).
* `deny`: httpd answers GetCACaps 403 (`<If>` + `Require all denied`): an
  answer, but not a usable one; the emulator treats it like no answer, as
  iOS treats any GetCACaps failure. Each request is in the access log.

Then: changing SCEPCACaps changes the GetCACaps answer and the Phase 2
array together, after a restart. This file runs last among the OTA files
because of those restarts.
"""

from collections import Counter

import pytest

import otaenv
from otaenv import SCEP_NAME, attributes, challenge_of, cms_sign, cms_verify, read_plist
from scepenv import DEFAULT_CAPS

LOST = "A network error has occurred. The network connection was lost."


@pytest.fixture(scope="module")
def opki(tmp_path_factory, pki, own_keys):
    return otaenv.ota_pki(tmp_path_factory, pki, own_keys)


@pytest.fixture
def srv(env, pki, opki):
    return otaenv.ota_server(env, pki, opki)


def _scep_port(srv, where):
    return srv.proxy.port if where == "drop" else srv.ports[where]


def _httpd_caps_lines(srv, acc0, want):
    """The GetCACaps requests httpd logged, and all lines, once `want`
    lines are in (access lines are written after the answer went out)."""
    acc = srv.access(acc0, want=want)
    return [a for a in acc if "operation=GetCACaps" in a[2]], acc


@pytest.mark.parametrize("ios", ["3", "4", "current"])
@pytest.mark.parametrize("where", ["drop", "deny"])
def test_520_001_with_the_array_the_device_never_asks(env, srv, opki, tmp_path, where,
                                                      ios):
    """GetCACaps would go unanswered, but the payload carries the array:
    every iOS generation enrolls and installs without asking."""
    srv.proxy.reset()
    acc0, log0 = srv.log_pos(), env.log_size()
    r = otaenv.run_device(srv.url(where), opki.device("bg"), "--ios", ios)
    assert r.rc == 0, r
    assert r.count("GetCACaps") == 0, r
    assert "GetCACaps from the profile: no GetCACaps request" in r.out
    assert "using POST, AES-128-CBC, SHA512" in r.out
    assert "final profile installed" in r.out
    caps, acc = _httpd_caps_lines(srv, acc0, 5)
    assert len(acc) == 5, acc
    assert caps == [] and srv.proxy.dropped == [], (acc, srv.proxy.dropped)
    otaenv.assert_no_crash(env, log0)


EXPECT = {
    # ios: (asks, rc, last words)
    "4": (3, 1, LOST),
    "3": (2, 0, "final profile installed"),
    "current": (1, 1, "GetCACaps failed; iOS aborts the enrollment"),
}


@pytest.mark.parametrize("ios", ["4", "3", "current"])
@pytest.mark.parametrize("where", ["drop", "deny"])
def test_520_002_without_the_array_and_no_answer(env, srv, opki, tmp_path, where, ios):
    """--no-caps-array: the device ignores the array and asks GetCACaps,
    which goes unanswered. iOS 4 fails after three requests with "The
    network connection was lost"; iOS 3 gives up after two and enrolls
    with GET, 3DES, SHA-1; current iOS asks once and aborts."""
    asks, rc, words = EXPECT[ios]
    srv.proxy.reset()
    acc0, log0 = srv.log_pos(), env.log_size()
    if where == "deny":
        env.expect_log(r"AH01630: client denied by server configuration: .*/scep")
    r = otaenv.run_device(srv.url(where), opki.device("bg"), "--no-caps-array",
                          "--ios", ios)
    assert r.rc == rc, r
    assert words in (r.err if rc else r.out), r
    scep = f"http://127.0.0.1:{_scep_port(srv, where)}/scep"
    caps_url = f"{scep}?operation=GetCACaps&message={SCEP_NAME}"
    assert [u for m, u in r.requests if "GetCACaps" in u] == [caps_url] * asks, r
    for i in range(1, asks + 1):
        assert f"GetCACaps attempt {i} of {asks}: no usable answer" in r.out, r
    if where == "drop":
        unanswered = [a for a in r.answers
                      if a == "no answer: connection closed without an answer"]
    else:
        unanswered = [a for a in r.answers if a.startswith("403 ")]
    assert len(unanswered) == asks, r
    if ios == "3":
        assert "iOS 3: no answer, falling back to GET, 3DES, SHA-1" in r.out
        assert "using GET, DES-EDE3-CBC, SHA1" in r.out
        assert [m for m, u in r.requests if "PKIOperation" in u] == ["GET"]
        assert "CertRep: SUCCESS, signed with SHA1" in r.out
    else:
        assert r.count("PKIOperation") == 0
        assert "== Phase 3" not in r.out

    # Phase 1, Phase 2, GetCACert (+ PKIOperation, Phase 3 for iOS 3), and
    # the GetCACaps requests if httpd answered them
    want = 3 + (2 if ios == "3" else 0) + (asks if where == "deny" else 0)
    caps, acc = _httpd_caps_lines(srv, acc0, want)
    assert len(acc) == want, acc
    if where == "drop":
        assert caps == [], acc                      # httpd never saw them
        assert srv.proxy.dropped == [f"GET /scep?operation=GetCACaps&message="
                                     f"{SCEP_NAME} HTTP/1.1"] * asks
    else:
        assert [(p, s) for p, _m, _u, s, _t, _x in caps] == [(srv.ports["deny"], 403)] \
            * asks, acc
    ops = Counter(op for op in ("GetCACert", "PKIOperation")
                  for a in acc if f"operation={op}" in a[2])
    assert ops == +Counter({"GetCACert": 1, "PKIOperation": 1 if ios == "3" else 0}), acc
    otaenv.assert_no_crash(env, log0)


@pytest.mark.parametrize("ios", ["4", "current"])
def test_520_003_without_the_array_but_answered(env, srv, opki, ios):
    """The control: without the array but with GetCACaps answered, iOS 4
    and current iOS ask once and enroll; it is the missing answer that
    failed, not the iOS version."""
    acc0 = srv.log_pos()
    r = otaenv.run_device(srv.url(), opki.device("bg"), "--no-caps-array", "--ios", ios)
    assert r.rc == 0, r
    assert r.count("GetCACaps") == 1
    assert "GetCACaps: " + " ".join(DEFAULT_CAPS) in r.out
    caps = [a for a in srv.access(acc0, want=6) if "GetCACaps" in a[2]]
    assert [(s, t) for _p, _m, _u, s, t, _x in caps] == [(200, "text/plain")]


# ---------------------------------------------------------------------------
# SCEPCACaps: one list, two places


def _phase2_caps(srv, opki, tmp, which="main"):
    url = srv.url(which)
    ch = challenge_of(url, tmp, opki.trust)
    a = otaenv.fetch(url, body=cms_sign(attributes(ch), opki.device("caps"), tmp,
                                        md="sha1"),
                     content_type=otaenv.PKCS7_SIG)
    assert a.status == 200, a
    content, _ = cms_verify(a.body, opki.trust, tmp)
    return read_plist(content, tmp)["PayloadContent"][0]["PayloadContent"]["GetCACaps"]


def _getcacaps(srv, which="main"):
    a = otaenv.fetch(srv.url(which, "/scep?operation=GetCACaps"))
    assert a.status == 200 and a.content_type == "text/plain", a
    return a.body.decode().split("\n")[:-1]


CHANGES = [
    ["SHA-256", "POSTPKIOperation", "DES3"],
    ["SHA-1", "DES3", "Renewal", "SCEPStandard"],
]


def test_520_010_scepcacaps_changes_both_places(env, srv, opki, tmp_path):
    """Before: the default list in both places. After each change of
    SCEPCACaps and a restart: the new list, in the new order, in the
    GetCACaps answer and the Phase 2 array, on the main server and on a
    virtual host that inherits it; the emulator follows the array without
    asking GetCACaps. (The next test's fixture restores the shared config.)"""
    assert _getcacaps(srv) == _phase2_caps(srv, opki, tmp_path) == DEFAULT_CAPS
    for caps in CHANGES:
        srv.ensure(caps=caps)
        for which in ("main", "drop"):
            assert _getcacaps(srv, which) == caps
            assert _phase2_caps(srv, opki, tmp_path, which) == caps
        r = otaenv.run_device(srv.url(), opki.device("caps"))
        assert r.rc == 0, r
        assert "GetCACaps: " + " ".join(caps) in r.out
        assert r.count("GetCACaps") == 0
        sha = "SHA256" if "SHA-256" in caps else "SHA1"
        post = "POST" if "POSTPKIOperation" in caps else "GET"
        assert f"using {post}, DES-EDE3-CBC, {sha}" in r.out, r
