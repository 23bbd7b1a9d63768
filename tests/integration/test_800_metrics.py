"""The server's counters: every child counts into one block of shared
memory, so `scep-metrics` (Prometheus text) and mod_status's section and
`?auto` lines show the whole server's numbers, also after a graceful
restart. Enrollments that succeed, are refused (a wrong challenge) and
pend (a virtual host with SCEPApproval manual), sent in parallel so that
prefork spreads them over several children."""

import re
import threading

import pytest

import scepenv
import storeenv
from storeenv import Store

METRICS = """\
<Location /scep-metrics>
    SetHandler scep-metrics
</Location>
<Location /server-status>
    SetHandler server-status
</Location>
ExtendedStatus On"""


@pytest.fixture(scope="module")
def clients(keypool):
    return keypool.clients(12, start=100)


def parse(text):
    """{(name, labels): value} of a Prometheus text exposition."""
    out = {}
    for ln in text.splitlines():
        if not ln or ln.startswith("#"):
            continue
        m = re.fullmatch(r"(scep_ota_[a-z_]+)(\{[^}]*\})? (\S+)", ln)
        assert m, f"not a sample line: {ln!r}"
        out[(m[1], m[2] or "")] = float(m[3])
    return out


def scrape(env, port=None):
    r = scepenv.http_request(port or env.port, "GET", "/scep-metrics")
    assert r.status == 200, r.status
    assert r.header("Content-Type") == "text/plain; version=0.0.4"
    return parse(r.body.decode())


def send_all(port, prepared):
    results = [None] * len(prepared)
    barrier = threading.Barrier(len(prepared))

    def one(i):
        barrier.wait(timeout=30)
        results[i] = storeenv.send_one(port, prepared[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prepared))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_800_001_true_totals_across_children(env, pki, clients):
    manual = scepenv.free_port()
    st = Store("sqlite", env, name=f"t800_{env.mpm}")
    extra = "\n".join([METRICS, f"Listen 127.0.0.1:{manual}",
                       f"<VirtualHost 127.0.0.1:{manual}>",
                       "    SCEPApproval manual", "</VirtualHost>"])
    env.apache_restart(storeenv.server_snippet(pki, st, extra),
                       extra_modules=[*st.extra_modules, "status"])
    before = scrape(env)
    assert before[("scep_ota_certificates_issued_total", "")] == 0
    ok = storeenv.prepare(clients[0:6], pki.issuing.cert, storeenv.STATIC_CHALLENGE)
    bad = storeenv.prepare(clients[6:9], pki.issuing.cert, "not-the-challenge")
    pend = storeenv.prepare(clients[9:12], pki.issuing.cert, storeenv.STATIC_CHALLENGE)
    res = storeenv.decode(send_all(env.port, ok + bad), verify_with=pki.issuing.cert)
    res += storeenv.decode(send_all(manual, pend), verify_with=pki.issuing.cert)
    # pkiStatus: 0 SUCCESS, 2 FAILURE, 3 PENDING
    assert [r.rep.status for r in res] == [0] * 6 + [2] * 3 + [3] * 3, \
        [r.rep.status for r in res]
    for _ in range(4):
        scepenv.http_request(env.port, "GET", "/scep?operation=GetCACaps")
    pids = storeenv.child_pids(env)

    def check(m):
        assert m[("scep_ota_certificates_issued_total", "")] == 6
        assert m[("scep_ota_certificates_refused_total", "")] == 3
        assert m[("scep_ota_pkimessages_total",
                  '{type="PKCSReq",outcome="SUCCESS"}')] == 6
        assert m[("scep_ota_pkimessages_total",
                  '{type="PKCSReq",outcome="badRequest"}')] == 3
        assert m[("scep_ota_pkimessages_total",
                  '{type="PKCSReq",outcome="PENDING"}')] == 3
        assert m[("scep_ota_requests_total", '{operation="PKIOperation"}')] == 12
        assert m[("scep_ota_requests_total", '{operation="GetCACaps"}')] == 4
        assert m[("scep_ota_pkioperation_duration_seconds_count", "")] == 12
        assert m[("scep_ota_pkioperation_duration_seconds_bucket", '{le="+Inf"}')] == 12

    m = scrape(env)
    check(m)
    # both hosts have the same CA, so the same pending requests
    assert [v for (n, _), v in m.items() if n == "scep_ota_pending_requests"] == [3]
    mm = scrape(env, manual)
    assert [v for (n, _), v in mm.items() if n == "scep_ota_pending_requests"] == [3]
    assert mm[("scep_ota_certificates_issued_total", "")] == 6  # one server
    ca = [v for (n, lab), v in m.items()
          if n == "scep_ota_certificate_not_after_seconds" and 'cert="ca"' in lab]
    assert ca and all(v == pytest.approx(
        pki.issuing.cert.not_valid_after.timestamp(), abs=1) for v in ca), ca
    # the same from mod_status, as "Key: value" lines
    auto = scepenv.http_request(env.port, "GET", "/server-status?auto").body.decode()
    assert "SCEPCertificatesIssued: 6" in auto, auto
    assert "SCEPCertificatesRefused: 3" in auto, auto
    html = scepenv.http_request(env.port, "GET", "/server-status").body.decode()
    assert "<h2>mod_scep_ota</h2>" in html
    # a graceful restart keeps the counts
    env.apache_reload(graceful=True)
    check(scrape(env))
    if env.mpm == "prefork":
        assert len(pids) > 1, pids


def test_800_002_methods(env, pki):
    st = Store("sqlite", env, name=f"t800_m_{env.mpm}")
    env.ensure(storeenv.server_snippet(pki, st, METRICS),
               extra_modules=[*st.extra_modules, "status"])
    for m in ("POST", "PUT", "DELETE"):
        r = scepenv.http_request(env.port, m, "/scep-metrics", body=b"x")
        assert r.status == 405 and r.header("Allow") == "GET, HEAD", (m, r.status)
    h = scepenv.http_request(env.port, "HEAD", "/scep-metrics")
    assert h.status == 200 and h.body == b""
