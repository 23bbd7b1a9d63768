"""Revocation that reaches relying parties, through CRLs: issued
certificates name the CRL distribution points of `SCEPCRLDistributionPoint`;
the `scep-crl` handler serves the CA's published CRL (DER, signed by the
CA), the same one (same cRLNumber) from every child and after a graceful
restart, a new one (number + 1) as soon as a certificate is revoked, with
Last-Modified/ETag and 304 answers to conditional GETs; on each store
(SQLite, `pgsql:`, `dbd`)."""

import re
import subprocess
import threading
from email.utils import parsedate_to_datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import scepenv
import storeenv
from storeenv import Store, cli_store

CDP1 = "http://pki.example.com/crl/issuing.crl"
CDP2 = "ldap://ldap.example.com/cn=Test%20Issuing%20CA,o=Example?certificateRevocationList"

CRL_LOCATION = """\
<Location /crl>
    SetHandler scep-crl
</Location>"""

# which child served a request: the access log with the process id
PID_LOG = """\
LogFormat "%P %U %>s" crlpid
CustomLog "logs/crl_pid.log" crlpid"""

EXTRA = "\n".join([f"SCEPCRLDistributionPoint {CDP1}",
                   f'SCEPCRLDistributionPoint "{CDP2}"',
                   CRL_LOCATION, PID_LOG])


@pytest.fixture(scope="module", params=storeenv.KINDS)
def kind(request):
    return request.param


@pytest.fixture(scope="module")
def module_store(kind, env, request):
    pg = request.getfixturevalue("pg") if kind != "sqlite" else None
    return Store(kind, env, pg, name=f"t640_{kind}_{env.mpm}")


@pytest.fixture
def store(module_store, env, pki):
    storeenv.start_with(env, pki, module_store, EXTRA)
    return module_store


@pytest.fixture(scope="module")
def sqlite_store(env):
    return Store("sqlite", env, name=f"t640_one_{env.mpm}")


@pytest.fixture
def server(sqlite_store, env, pki):
    """The tests that do not depend on the store run on SQLite only."""
    storeenv.start_with(env, pki, sqlite_store, EXTRA)
    return sqlite_store


@pytest.fixture(scope="module")
def clients(keypool):
    return keypool.clients(8, start=40)


def enroll(env, pki, client):
    return storeenv.enroll_one(env.port, pki.issuing.cert, client)


def get_crl(env, headers=None, target="/crl"):
    return scepenv.http_request(env.port, "GET", target, headers=headers)


def crl_of(r):
    assert r.status == 200, (r.status, r.body[:200])
    assert r.header("Content-Type") == "application/pkix-crl"
    return x509.load_der_x509_crl(r.body)


def number_of(crl):
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def openssl_verify(pki, der, tmp_path):
    f = tmp_path / "crl.der"
    f.write_bytes(der)
    p = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", str(f),
                        "-CAfile", str(pki.ca_chain_file), "-noout"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "verify OK" in p.stdout + p.stderr, (p.stdout, p.stderr)


# --------------------------------------------------------------------------
# the distribution points in issued certificates


def test_640_001_cdp_in_issued_certificates(env, pki, server, clients):
    cert = enroll(env, pki, clients[0]).cert
    ext = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    assert not ext.critical
    dps = list(ext.value)
    # one distribution point: both URLs are places of the same CRL
    assert len(dps) == 1, dps
    names = [n.value for n in dps[0].full_name]
    assert names == [CDP1, CDP2]
    assert all(isinstance(n, x509.UniformResourceIdentifier)
               for n in dps[0].full_name)
    assert dps[0].reasons is None and dps[0].crl_issuer is None


def test_640_002_no_cdp_without_the_directive(env, pki, clients):
    st = Store("sqlite", env, name=f"t640_nocdp_{env.mpm}")
    storeenv.start_with(env, pki, st, CRL_LOCATION)
    cert = enroll(env, pki, clients[1]).cert
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)


_VHOST_PORTS = {}


def test_640_006_virtual_host_replaces_the_points(env, pki, clients):
    """A virtual host that names its own distribution point replaces the
    inherited ones; one that names none inherits them. Both serve the same
    CA's one CRL."""
    ports = _VHOST_PORTS.setdefault(id(env), (scepenv.free_port(), scepenv.free_port()))
    vhost_url = "https://vhost.example.com/ca.crl"
    st = Store("sqlite", env, name=f"t640_vhost_{env.mpm}")
    extra = "\n".join([
        EXTRA,
        f"Listen 127.0.0.1:{ports[0]}",
        f"<VirtualHost 127.0.0.1:{ports[0]}>",
        f"    SCEPCRLDistributionPoint {vhost_url}",
        "</VirtualHost>",
        f"Listen 127.0.0.1:{ports[1]}",
        f"<VirtualHost 127.0.0.1:{ports[1]}>",
        "</VirtualHost>",
    ])
    storeenv.start_with(env, pki, st, extra)

    def points(port, client):
        p = storeenv.prepare([client], pki.issuing.cert, storeenv.STATIC_CHALLENGE)[0]
        r = storeenv.decode([storeenv.send_one(port, p)], verify_with=pki.issuing.cert)[0]
        assert r.success, r.rep
        ext = r.rep.cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)
        return [n.value for dp in ext.value for n in dp.full_name]

    assert points(env.port, clients[6]) == [CDP1, CDP2]
    assert points(ports[0], clients[7]) == [vhost_url]
    assert points(ports[1], clients[0]) == [CDP1, CDP2]
    crls = [scepenv.http_request(p, "GET", "/crl") for p in (env.port, *ports)]
    assert len({r.body for r in crls}) == 1
    assert len({r.header("ETag") for r in crls}) == 1


@pytest.mark.parametrize("url, why", [
    ("ftp://pki.example.com/ca.crl", "not an http, https or ldap URL"),
    ("pki.example.com/ca.crl", "not an http, https or ldap URL"),
    ("http:///ca.crl", "names no host"),
    ("http://pki.example.com/a b.crl", "space"),
])
def test_640_003_bad_cdp_refused(env, pki, url, why):
    snippet = "\n".join([scepenv.scep_directives(pki.ca_chain_file, pki.issuing.key_file),
                         f'SCEPCRLDistributionPoint "{url}"'])
    env.apache_fail(snippet).assert_message("SCEPCRLDistributionPoint", re.escape(why))


@pytest.mark.parametrize("value", ["0", "367", "seven", "-1"])
def test_640_004_bad_validity_refused(env, pki, value):
    snippet = "\n".join([scepenv.scep_directives(pki.ca_chain_file, pki.issuing.key_file),
                         f"SCEPCRLValidity {value}"])
    env.apache_fail(snippet).assert_message("SCEPCRLValidity", "whole number from 1 to 366")


def test_640_005_handler_without_a_ca_refused(env):
    env.apache_fail(CRL_LOCATION).assert_message("SCEP6010", "scep-crl handler")


# --------------------------------------------------------------------------
# the CRL served


def test_640_010_crl_verifies(env, pki, server, tmp_path):
    r = get_crl(env)
    crl = crl_of(r)
    openssl_verify(pki, r.body, tmp_path)
    assert crl.issuer == pki.issuing.cert.subject
    # thisUpdate is Last-Modified; nextUpdate SCEPCRLValidity (7) days on
    lm = parsedate_to_datetime(r.header("Last-Modified")).replace(tzinfo=None)
    assert lm == crl.last_update
    assert (crl.next_update - crl.last_update).days == 7
    assert re.fullmatch(r'"[0-9A-F]{16}-\d+"', r.header("ETag")), r.header("ETag")
    assert r.header("ETag").endswith(f'-{number_of(crl)}"')
    assert r.header("Cache-Control") == "no-cache"


def test_640_011_conditional_get(env, server):
    r = get_crl(env)
    crl_of(r)
    etag, lm = r.header("ETag"), r.header("Last-Modified")
    r304 = get_crl(env, {"If-None-Match": etag})
    assert r304.status == 304 and r304.body == b""
    assert r304.header("ETag") == etag
    assert get_crl(env, {"If-Modified-Since": lm}).status == 304
    assert get_crl(env, {"If-None-Match": f'"x", {etag}'}).status == 304
    # another ETag, or an older date: the CRL
    assert get_crl(env, {"If-None-Match": '"0-0"'}).status == 200
    assert get_crl(env, {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status == 200


def test_640_012_methods(env, server):
    for m in ("POST", "PUT", "DELETE", "OPTIONS"):
        r = scepenv.http_request(env.port, m, "/crl", body=b"x" * 10)
        assert r.status == 405, (m, r.status)
        assert r.header("Allow") == "GET, HEAD", (m, r.headers)
    h = scepenv.http_request(env.port, "HEAD", "/crl")
    assert h.status == 200 and h.body == b""
    assert int(h.header("Content-Length")) == len(get_crl(env).body)


def test_640_013_odd_requests_never_5xx(env, server):
    good = get_crl(env).body
    for target in ("/crl?", "/crl?x=1", "/crl?operation=PKIOperation&message=%%%",
                   "/crl?" + "a" * 4000, "/crl/../crl", "/crl?%00"):
        r = get_crl(env, target=target)
        assert r.status < 500, (target, r.status)
        if r.status == 200:
            assert r.body == good, target
    for headers in ({"If-None-Match": "garbage"}, {"If-None-Match": "*"},
                    {"If-Modified-Since": "yesterday"},
                    {"If-Modified-Since": "Mon, 01 Jan 9999 00:00:00 GMT"},
                    {"If-Match": '"nope"'}, {"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"},
                    {"Range": "bytes=0-10"}, {"Range": "bytes=garbage"},
                    {"Accept": "text/html"}, {"X-Long": "v" * 6000}):
        r = get_crl(env, headers)
        assert r.status < 500, (headers, r.status)


# --------------------------------------------------------------------------
# one CRL for every child, node and restart; a new one per revocation


def pids_served(env, start):
    log = env.root.logs / "crl_pid.log"
    lines = log.read_text().splitlines()[start:] if log.exists() else []
    return {ln.split()[0] for ln in lines if " /crl " in ln}


def log_lines(env):
    log = env.root.logs / "crl_pid.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def parallel_numbers(env, n=24):
    out = [None] * n
    barrier = threading.Barrier(n)

    def one(i):
        barrier.wait(timeout=30)
        r = get_crl(env)
        out[i] = (r.status, number_of(crl_of(r)) if r.status == 200 else None,
                  r.header("ETag"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return out


def test_640_020_revocation_reaches_the_crl(env, pki, store, clients, tmp_path):
    before = crl_of(get_crl(env))
    n = number_of(before)
    # nothing changed: the same CRL again
    assert number_of(crl_of(get_crl(env))) == n
    rep = enroll(env, pki, clients[2])
    cli_store(env.root.conf, "revoke", rep.serial, "keyCompromise")
    r = get_crl(env)
    after = crl_of(r)
    openssl_verify(pki, r.body, tmp_path)
    assert number_of(after) == n + 1
    entry = after.get_revoked_certificate_by_serial_number(int(rep.serial, 16))
    assert entry is not None, rep.serial
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.key_compromise
    # the ETag of the old CRL no longer matches
    assert get_crl(env, {"If-None-Match": f'"{"x" * 16}-{n}"'}).status == 200
    # the CLI prints the published CRL, the same number
    pem = cli_store(env.root.conf, "crl").stdout.encode()
    assert number_of(x509.load_pem_x509_crl(pem)) == n + 1
    # a second revocation: one more
    rep2 = enroll(env, pki, clients[3])
    cli_store(env.root.conf, "revoke", rep2.serial)
    last = crl_of(get_crl(env))
    assert number_of(last) == n + 2
    assert last.get_revoked_certificate_by_serial_number(int(rep2.serial, 16))
    assert last.get_revoked_certificate_by_serial_number(int(rep.serial, 16))


def test_640_021_same_crl_in_every_child_and_after_restarts(env, pki, store, clients):
    # a revocation first, so that the children race to publish the next CRL
    rep = enroll(env, pki, clients[4])
    first = number_of(crl_of(get_crl(env)))
    cli_store(env.root.conf, "revoke", rep.serial)
    start = log_lines(env)
    got = parallel_numbers(env)
    assert all(s == 200 for s, _, _ in got), got
    numbers = {num for _, num, _ in got}
    etags = {e for _, _, e in got}
    assert numbers == {first + 1}, got
    assert len(etags) == 1, etags
    if env.mpm == "prefork":
        assert len(pids_served(env, start)) >= 2, "all requests reached one child"
    # graceful restart: new children, the same CRL
    env.apache_reload(graceful=True)
    assert {num for _, num, _ in parallel_numbers(env, 8)} == {first + 1}
    # a full restart too
    env.apache_reload(graceful=False)
    r = get_crl(env)
    assert number_of(crl_of(r)) == first + 1
    assert r.header("ETag") in etags
    # one row per CA in the store, the published CRL and the one before
    rows = store.query("SELECT number FROM crls ORDER BY number")
    assert [int(x) for x in rows][-1] == first + 1
    assert len(rows) <= 2, rows


def test_640_022_getcrl_gives_the_published_crl(env, pki, server, clients, own_keys,
                                                 tmp_path):
    """GetCRL (PKIOperation) answers with the CRL the distribution point
    serves: the same cRLNumber and bytes."""
    import scepclient_own as own
    client = own.OwnClient(env, tmp_path, recipient=pki.issuing.cert_file,
                           trust=pki.ca_chain_file, signer=pki.issuing.cert,
                           ca=pki.issuing.cert, keys=own_keys)
    rep = enroll(env, pki, clients[5])
    cli_store(env.root.conf, "revoke", rep.serial)
    served = crl_of(get_crl(env))
    req = client.request("getcrl", own_keys.get("t640-getcrl"), serial=rep.serial,
                         issuer=pki.issuing.cert_file)
    got = client.exchange(req)
    assert got.status == "SUCCESS" and len(got.crls) == 1, got
    assert number_of(got.crls[0]) == number_of(served)
    assert got.crls[0].public_bytes(Encoding.DER) == served.public_bytes(Encoding.DER)


def test_640_023_two_nodes_on_one_postgresql(env, pki, pg, clients, tmp_path_factory,
                                             pytestconfig):
    """Two front-ends sharing PostgreSQL through mod_dbd serve one CRL: the
    same cRLNumber and bytes from both, before and after a revocation, and
    parallel requests on both nodes publish one next CRL."""
    st = Store("dbd", env, pg, name=f"t640_nodes_{env.mpm}")
    storeenv.start_with(env, pki, st, EXTRA)
    b = storeenv.second_env(env.mpm, tmp_path_factory.mktemp(f"t640-b-{env.mpm}"),
                            pytestconfig)
    try:
        b.ensure(storeenv.server_snippet(pki, st, EXTRA), extra_modules=st.extra_modules)
        b.begin_test()
        ra, rb = get_crl(env), get_crl(b)
        assert ra.body == rb.body and ra.header("ETag") == rb.header("ETag")
        n = number_of(crl_of(ra))
        rep = enroll(b, pki, clients[1])
        cli_store(b.root.conf, "revoke", rep.serial)
        out = [None] * 16
        barrier = threading.Barrier(16)

        def one(i):
            barrier.wait(timeout=30)
            out[i] = get_crl((env, b)[i % 2])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert {number_of(crl_of(r)) for r in out} == {n + 1}
        assert len({r.body for r in out}) == 1
        crl = crl_of(out[0])
        assert crl.get_revoked_certificate_by_serial_number(int(rep.serial, 16))
        assert [int(x) for x in st.query("SELECT number FROM crls ORDER BY number")] == [n, n + 1]
        bad = b.end_test()
        assert not bad, "unexpected error log lines on node B:\n" + "\n".join(bad)
    finally:
        b.apache_stop()
        if not pytestconfig.getoption("--keep-servers"):
            b.remove()


def test_640_024_cli_publishes_with_the_configured_validity(env, pki, clients):
    """`scep-ota store crl` reads SCEPCRLValidity from httpd.conf and
    publishes the CRL the handler then serves."""
    st = Store("sqlite", env, name=f"t640_validity_{env.mpm}")
    storeenv.start_with(env, pki, st, EXTRA + "\nSCEPCRLValidity 3")
    rep = enroll(env, pki, clients[2])
    cli_store(env.root.conf, "revoke", rep.serial)
    cli = x509.load_pem_x509_crl(cli_store(env.root.conf, "crl").stdout.encode())
    assert (cli.next_update - cli.last_update).days == 3
    assert cli.get_revoked_certificate_by_serial_number(int(rep.serial, 16))
    served = crl_of(get_crl(env))
    assert served.public_bytes(Encoding.DER) == cli.public_bytes(Encoding.DER)
