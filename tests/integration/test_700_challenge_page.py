"""The challenge page (`SetHandler scep-challenge`): NDES's
/certsrv/mscep_admin/ behind `AuthType Basic` with an htpasswd file, as an
MDM uses it. 401 without or with wrong credentials; the HTML page in
UTF-16LE with NDES's phrasing; its password enrolls once (the suite's
client and micromdm's scepclient), then fails, also when expired or
revoked; the per-user cache (HTML says full, JSON 429 + Retry-After); JSON
and text; subject=/san= binding enforced; the user recorded as "enrolled
by"; TLS-or-loopback; refused challenges counted per address and user in
the log; `scep-ota store challenge --list/--revoke`; a startup error
without a CA; and two front-ends on one PostgreSQL: a challenge from node
A's page enrolls on node B."""

import base64
import calendar
import hashlib
import http.client
import ipaddress
import json
import re
import shutil
import socket
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

import scepclient_own as own
import scepenv
import scepmsg
import storeenv
from scepenv import scep_directives, scep_location

ADMIN = "/certsrv/mscep_admin/"
NOAUTH = "/open/mscep_admin/"
MSCEP = "/certsrv/mscep/mscep.dll"
CACHE = 3
LIFETIME = 5400            # not the default: the CLI must read it too
USERS = {f"u{i}": f"pw-{i}-secret" for i in range(1, 13)}
AUTH_MODULES = ("auth_basic", "authn_core", "authn_file", "authz_user")
PASSWORD = re.compile(r"The enrollment challenge password is: <B> ([0-9A-F]{16}) </B>")
THUMB = re.compile(r"The thumbprint \(hash value\) for the CA certificate is: "
                   r"<B> ([0-9A-F]{40}) </B>")


def htpasswd(path):
    for i, (user, pw) in enumerate(USERS.items()):
        subprocess.run(["htpasswd", "-b" + ("c" if i == 0 else ""), "-B", "-C", "4",
                        str(path), user, pw], check=True, capture_output=True)
    path.chmod(0o644)
    return path


def locations(users_file):
    return "\n".join([
        scep_location("/scep"),
        scep_location(MSCEP),
        f"<Location {ADMIN}>",
        "    SetHandler scep-challenge",
        "    AuthType Basic",
        '    AuthName "SCEP challenges"',
        "    AuthBasicProvider file",
        f'    AuthUserFile "{users_file}"',
        "    Require valid-user",
        "</Location>",
        f"<Location {NOAUTH}>",
        "    SetHandler scep-challenge",
        "</Location>",
    ])


def snippet(pki, users_file, extra=""):
    return "\n".join([
        scep_directives(pki.ca_chain_file, pki.issuing.key_file),
        "SCEPStore sqlite3:state/t700.db",
        "SCEPAllowLegacyAlgorithms on",
        f"SCEPChallengeCacheSize {CACHE}",
        f"SCEPChallengeLifetime {LIFETIME}",
        locations(users_file),
        extra,
    ])


def basic(user, pw=None):
    pw = USERS[user] if pw is None else pw
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


@pytest.fixture(scope="module")
def users_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("t700-users")
    d.chmod(0o755)
    scepenv.open_path_for_workers(d)
    return htpasswd(d / "users")


@pytest.fixture
def srv(env, pki, users_file):
    env.ensure(snippet(pki, users_file), extra_modules=AUTH_MODULES)
    return env


@pytest.fixture
def client(env, pki, own_keys, tmp_path):
    return own.OwnClient(env, tmp_path / "own", recipient=pki.issuing.cert_file,
                         trust=pki.ca_chain_file, signer=pki.issuing.cert,
                         ca=pki.issuing.cert, keys=own_keys)


def page(env, user, query="", headers=None, port=None):
    hdrs = {"Authorization": basic(user), **(headers or {})}
    return scepenv.http_request(port or env.port, "GET", ADMIN + query, headers=hdrs)


def html_password(r):
    assert r.status == 200, (r.status, r.body[:200])
    assert r.content_type.startswith("text/html"), r.content_type
    assert r.body[:2] == b"\xff\xfe", r.body[:8]
    text = r.body.decode("utf-16")
    m = PASSWORD.search(text)
    assert m, text
    return m.group(1), text


def fresh(env, user, port=None, query="?format=text"):
    r = page(env, user, query, port=port)
    assert r.status == 200, (r.status, r.body[:300])
    pw = r.body.decode()
    assert re.fullmatch(r"[0-9A-F]{16}\n", pw), pw
    return pw.strip()


def enroll(pki, port, client, challenge):
    p = storeenv.prepare([client], pki.issuing.cert, challenge)[0]
    r = storeenv.send_one(port, p)
    assert r.http_status == 200, (r.http_status, r.error)
    storeenv.decode([r], verify_with=pki.issuing.cert)
    assert r.rep.signature_ok
    return r.rep


def db(env):
    return env.root.path / "state" / "t700.db"


def outstanding(env, user):
    return int(storeenv.sqlite_query(
        db(env), f"SELECT COUNT(*) FROM challenges WHERE created_by = '{user}' "
        f"AND consumed = 0 AND revoked = 0 AND expires > {int(time.time() * 1e6)}")[0])


def sha1_hex(cert):
    return cert.fingerprint(hashes.SHA1()).hex().upper()


# ---------------------------------------------------------------------------
# who may have one


def test_700_001_no_credentials_401(srv):
    r = srv.get(ADMIN)
    assert r.status == 401, r.status
    assert "basic" in r.header("WWW-Authenticate").lower()


@pytest.mark.parametrize("user,pw", [("u1", "wrong"), ("nobody", "x")])
def test_700_002_wrong_credentials_401(srv, user, pw):
    srv.expect_log(r"AH01617|AH01618")
    before = outstanding(srv, user) if (db(srv)).exists() else 0
    r = scepenv.http_request(srv.port, "GET", ADMIN,
                             headers={"Authorization": basic(user, pw)})
    assert r.status == 401, r.status
    if db(srv).exists():
        assert outstanding(srv, user) == before


def test_700_003_unprotected_location_403(srv):
    """Mapped without an auth module: 403 and a line that says why."""
    srv.expect_log(r"SCEP0401")
    start = srv.log_size()
    r = srv.get(NOAUTH)
    assert r.status == 403, r.status
    assert re.search(r"SCEP0401.*needs authentication", srv.read_log(start))


def test_700_004_plain_http_from_another_address_refused(env, pki, users_file):
    """Over plain HTTP the page answers loopback clients only, unless
    SCEPChallengeRequireTLS off; over TLS it answers anyone."""
    addr = _non_loopback_address()
    if not addr:
        pytest.skip("no non-loopback address to connect from")
    cert, key = _tls_server(users_file.parent, addr)
    strict, lax, tls = scepenv.free_port(), scepenv.free_port(), scepenv.free_port()
    vhosts = "\n".join([
        f"Listen {addr}:{strict}", f"Listen {addr}:{lax}", f"Listen {addr}:{tls}",
        f"SSLSessionCache shmcb:{env.root.run}/ssl_scache(64000)",
        f"<VirtualHost {addr}:{strict}>", f"ServerName {addr}", locations(users_file),
        "</VirtualHost>",
        f"<VirtualHost {addr}:{lax}>", f"ServerName {addr}", "SCEPChallengeRequireTLS off",
        locations(users_file), "</VirtualHost>",
        f"<VirtualHost {addr}:{tls}>", f"ServerName {addr}", "SSLEngine on",
        f'SSLCertificateFile "{cert}"', f'SSLCertificateKeyFile "{key}"',
        locations(users_file), "</VirtualHost>"])
    env.ensure(snippet(pki, users_file, vhosts),
               extra_modules=(*AUTH_MODULES, "ssl", "socache_shmcb"),
               expect_log=[r"\[ssl:warn\].*AH01882"])
    env.expect_log(r"SCEP0400")
    hdrs = {"Authorization": basic("u2")}
    r = _get_from(addr, strict, ADMIN + "?format=text", hdrs)
    assert r[0] == 403, r
    assert re.search(rf"SCEP0400.*{re.escape(addr)}", env.read_log(0))
    r = _get_from(addr, lax, ADMIN + "?format=text", hdrs)
    assert r[0] == 200 and re.fullmatch(rb"[0-9A-F]{16}\n", r[1]), r
    r = _get_from(addr, tls, ADMIN + "?format=text", hdrs, tls=True)
    assert r[0] == 200 and re.fullmatch(rb"[0-9A-F]{16}\n", r[1]), r
    # loopback over plain HTTP is fine
    assert fresh(env, "u2")
    storeenv.cli_store(env.root.conf, "challenge", "--revoke", "user=u2")


def _tls_server(directory, addr):
    """A self-signed server certificate for addr (the client does not
    verify it: the rule is about the transport, not about trust)."""
    import datetime
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, addr)])
    now = datetime.datetime.now(datetime.timezone.utc)
    c = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(x509.SubjectAlternativeName(
             [x509.IPAddress(ipaddress.ip_address(addr))]), critical=False)
         .sign(key, hashes.SHA256()))
    cert, kfile = directory / "tls.pem", directory / "tls.key"
    cert.write_bytes(c.public_bytes(Encoding.PEM))
    kfile.write_bytes(key.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
    cert.chmod(0o644)
    kfile.chmod(0o644)
    return cert, kfile


def _non_loopback_address():
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True,
                             timeout=5).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    for a in out:
        ip = ipaddress.ip_address(a)
        if ip.version == 4 and not ip.is_loopback and not ip.is_link_local:
            try:
                with socket.socket() as s:
                    s.bind((a, 0))
                return a
            except OSError:
                continue
    return None


def _get_from(addr, port, target, headers, tls=False):
    if tls:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = http.client.HTTPSConnection(addr, port, timeout=10, context=ctx)
    else:
        c = http.client.HTTPConnection(addr, port, timeout=10)
    try:
        c.request("GET", target, headers=headers)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


# ---------------------------------------------------------------------------
# the NDES page, JSON, text


def test_700_010_ndes_page(srv, pki):
    r = page(srv, "u1")
    pw, text = html_password(r)
    assert r.header("Cache-Control") == "no-store"
    thumb = THUMB.search(text)
    assert thumb and thumb.group(1) == sha1_hex(pki.issuing.cert), text
    assert re.search(rf"can be used once only and will expire within {LIFETIME // 60} "
                     r"minutes", text)
    assert '<Meta HTTP-Equiv="Content-Type" Content="text/html; charset=UTF-16">' in text
    # stored hashed, never in clear
    h = hashlib.sha256(pw.encode()).hexdigest()
    assert storeenv.sqlite_query(db(srv), f"SELECT created_by, via, purpose FROM "
                                 f"challenges WHERE hash = '{h}'") == ["u1|page|1"]
    assert pw not in "\n".join(storeenv.sqlite_query(db(srv), ".dump"))
    assert pw not in srv.read_log(0)


def test_700_011_json_and_text(srv, pki):
    for how in ({"headers": {"Accept": "application/json"}},
                {"query": "?format=json"},
                {"query": "?format=JSON", "headers": {"Accept": "text/html"}}):
        r = page(srv, "u5", how.get("query", ""), how.get("headers"))
        assert r.status == 200, r.body
        assert r.content_type == "application/json"
        d = json.loads(r.body)
        assert set(d) == {"challenge", "expires", "ca_thumbprint_sha1",
                          "ca_thumbprint_sha256"}, d
        assert re.fullmatch(r"[0-9A-F]{16}", d["challenge"])
        assert d["ca_thumbprint_sha1"] == sha1_hex(pki.issuing.cert)
        assert d["ca_thumbprint_sha256"] == pki.issuing.cert.fingerprint(
            hashes.SHA256()).hex().upper()
        exp = calendar.timegm(time.strptime(d["expires"], "%Y-%m-%dT%H:%M:%SZ"))
        assert LIFETIME - 30 < exp - time.time() <= LIFETIME + 1, d
        storeenv.cli_store(srv.root.conf, "challenge", "--revoke", "user=u5")
    r = page(srv, "u5", "?format=text")
    assert r.content_type.startswith("text/plain")
    assert re.fullmatch(rb"[0-9A-F]{16}\n", r.body)
    # a q=0 JSON is no request for JSON
    r = page(srv, "u5", headers={"Accept": "application/json;q=0, text/html"})
    html_password(r)
    storeenv.cli_store(srv.root.conf, "challenge", "--revoke", "user=u5")


def test_700_012_head_and_other_methods_issue_nothing(srv):
    fresh(srv, "u6")          # the store exists
    before = outstanding(srv, "u6")
    r = srv.head(ADMIN + "?format=json", headers={"Authorization": basic("u6")})
    assert r.status == 200 and r.body == b""
    assert r.content_type == "application/json"
    for m in ("POST", "PUT", "DELETE"):
        r = scepenv.http_request(srv.port, m, ADMIN, body=b"x",
                                 headers={"Authorization": basic("u6")})
        assert r.status == 405, (m, r.status)
        assert r.header("Allow") == "GET, HEAD"
    assert outstanding(srv, "u6") == before


# ---------------------------------------------------------------------------
# using it


def test_700_020_password_enrolls_once(srv, pki, keypool):
    pw, _ = html_password(page(srv, "u1"))
    a, b = keypool.clients(2, start=700)
    rep = enroll(pki, srv.port, a, pw)
    assert rep.status == scepmsg.SUCCESS, rep
    shown = storeenv.cli_store(srv.root.conf, "show", rep.serial).stdout
    assert re.search(r"enrolled by:\s+u1$", shown, re.M), shown
    start = srv.log_size()
    rep2 = enroll(pki, srv.port, b, pw)
    assert rep2.status == scepmsg.FAILURE and rep2.fail_name == "badRequest", rep2
    line = re.search(r"\[scep_ota:notice\].*SCEP2200: .*", srv.read_log(start))
    assert line, srv.read_log(start)
    assert "127.0.0.1 (already used, a challenge of user 'u1')" in line.group(0)
    assert re.search(r"\d+ for user 'u1'", line.group(0))
    assert pw not in srv.read_log(start)


def test_700_021_expired_password_refused(srv, pki, keypool):
    pw = fresh(srv, "u7")
    h = hashlib.sha256(pw.encode()).hexdigest()
    storeenv.sqlite_query(db(srv), f"UPDATE challenges SET expires = 1 WHERE hash = '{h}'")
    start = srv.log_size()
    rep = enroll(pki, srv.port, keypool.client(703), pw)
    assert rep.status == scepmsg.FAILURE and rep.fail_name == "badRequest", rep
    assert "(expired, a challenge of user 'u7')" in srv.read_log(start)


def test_700_022_scepclient_enrolls_with_the_page(srv, pki, tmp_path):
    if not shutil.which("scepclient"):
        pytest.skip("scepclient (Debian package scep) not installed")
    pw, _ = html_password(page(srv, "u8"))

    def run(d, cn):
        d.mkdir()
        p = subprocess.run(["scepclient", "-private-key", str(d / "key.pem"),
                            "-server-url", f"http://127.0.0.1:{srv.port}{MSCEP}",
                            "-challenge", pw, "-cn", cn, "-debug"], cwd=d,
                           capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout + p.stderr

    rc, out = run(tmp_path / "a", "scepclient-700")
    assert rc == 0 and "pkiStatus=SUCCESS" in out, out
    cert = x509.load_pem_x509_certificate((tmp_path / "a" / "client.pem").read_bytes())
    assert cert.issuer == pki.issuing.cert.subject
    rc, out = run(tmp_path / "b", "scepclient-700b")
    assert rc != 0 and "failInfo: badRequest" in out, out


def test_700_023_binding_enforced(srv, pki, client, own_keys):
    cn, dns = "bound-700", "bound-700.example.com"
    q = f"?format=text&subject=/O=Example/CN={cn}&san=dns:{dns}"
    pw = fresh(srv, "u9", query=q)
    san = [x509.DNSName(dns)]
    # another subject, or another name: refused, the challenge stays
    rep, _ = client.enroll("someone-else", challenge=pw, csr_args={"sans": san})
    assert (rep.status, rep.fail_info) == ("FAILURE", "badRequest"), rep
    other = x509.Name([x509.NameAttribute(x509.oid.NameOID.ORGANIZATION_NAME, "Example"),
                       x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, cn)])
    key = own_keys.get("t700-bound")
    rep, _ = client.enroll(other, key=key, challenge=pw,
                           csr_args={"sans": [x509.DNSName("evil.example.com")]})
    assert (rep.status, rep.fail_info) == ("FAILURE", "badRequest"), rep
    rep, _ = client.enroll(other, key=key, challenge=pw, csr_args={"sans": san})
    assert rep.status == "SUCCESS", rep
    assert rep.cert.subject == other
    got = rep.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert got.value.get_values_for_type(x509.DNSName) == [dns]


@pytest.mark.parametrize("query,why", [
    ("?san=dns:x.example.com", "needs a subject"),
    ("?subject=/CN=a&subject=/CN=b", "twice"),
    ("?subject=not-a-dn", "subject"),
    ("?subject=/CN=x&san=smtp:x", "subjectAltName"),
    ("?format=xml", "format"),
    ("?colour=blue", "unknown parameter"),
])
def test_700_024_bad_binding_400(srv, query, why):
    srv.expect_log(r"SCEP0407")
    fresh(srv, "u10")
    before = outstanding(srv, "u10")
    start = srv.log_size()
    r = page(srv, "u10", query)
    assert r.status == 400, (query, r.status)
    assert re.search(rf"SCEP0407.*{why}", srv.read_log(start)), srv.read_log(start)
    assert outstanding(srv, "u10") == before
    storeenv.cli_store(srv.root.conf, "challenge", "--revoke", "user=u10")


# ---------------------------------------------------------------------------
# limits


def test_700_030_cache_full(srv, pki, keypool):
    storeenv.cli_store(srv.root.conf, "challenge", "--revoke", "user=u3")
    pws = [fresh(srv, "u3") for _ in range(CACHE)]
    r = page(srv, "u3")
    assert r.status == 200 and r.body[:2] == b"\xff\xfe"
    text = r.body.decode("utf-16")
    assert "The password cache is full." in text and not PASSWORD.search(text)
    r = page(srv, "u3", "?format=json")
    assert r.status == 429, r.status
    assert 0 < int(r.header("Retry-After")) <= LIFETIME
    assert json.loads(r.body)["error"] == "the password cache is full"
    r = page(srv, "u3", "?format=text")
    assert r.status == 429 and int(r.header("Retry-After")) > 0
    # another user is not affected
    fresh(srv, "u4")
    # a used one frees its place at once
    assert enroll(pki, srv.port, keypool.client(710), pws[0]).status == scepmsg.SUCCESS
    pws.append(fresh(srv, "u3"))
    assert page(srv, "u3", "?format=json").status == 429
    # so does an expired one
    h = hashlib.sha256(pws[1].encode()).hexdigest()
    storeenv.sqlite_query(db(srv), f"UPDATE challenges SET expires = 1 WHERE hash = '{h}'")
    pws.append(fresh(srv, "u3"))
    assert outstanding(srv, "u3") == CACHE


def test_700_031_cli_lists_and_revokes(srv, pki, keypool):
    storeenv.cli_store(srv.root.conf, "challenge", "--revoke", "user=u11")
    pws = [fresh(srv, "u11") for _ in range(2)]
    p = storeenv.cli_store(srv.root.conf, "challenge", "--list", "--user", "u11")
    rows = [ln.split() for ln in p.stdout.splitlines()[1:]]
    assert len(rows) == 2 and all(r[1] == "u11" and r[2] == "page" for r in rows), p.stdout
    assert "u11: 2 outstanding" in p.stderr
    for pw in pws:
        assert pw not in p.stdout + p.stderr
    everyone = storeenv.cli_store(srv.root.conf, "challenge", "--list").stdout
    assert all(pw not in everyone for pw in pws)
    # revoke one by its reference: that password no longer enrolls
    h = hashlib.sha256(pws[0].encode()).hexdigest()
    ref = storeenv.sqlite_query(db(srv), f"SELECT ref FROM challenges WHERE hash = '{h}'")[0]
    assert ref in [r[0] for r in rows]
    out = storeenv.cli_store(srv.root.conf, "challenge", "--revoke", ref).stdout
    assert "revoked 1 challenge" in out
    start = srv.log_size()
    rep = enroll(pki, srv.port, keypool.client(720), pws[0])
    assert rep.status == scepmsg.FAILURE, rep
    assert "(revoked, a challenge of user 'u11')" in srv.read_log(start)
    again = storeenv.cli_store(srv.root.conf, "challenge", "--revoke", ref, check=False)
    assert again.returncode != 0
    # the other one still works
    assert enroll(pki, srv.port, keypool.client(721), pws[1]).status == scepmsg.SUCCESS


def test_700_032_cli_challenge_lifetime_from_the_config(srv):
    p = storeenv.cli_store(srv.root.conf, "challenge")
    m = re.search(r"valid until (\S+)", p.stderr)
    exp = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%SZ"))
    assert LIFETIME - 30 < exp - time.time() <= LIFETIME + 1, p.stderr


def test_700_033_guessing_is_counted(env, pki, users_file, keypool):
    """Unknown challenges from one address: each refusal is a notice with
    the running count; the 100th is a warning. (A start of httpd starts
    the counts again.)"""
    env.apache_restart(snippet(pki, users_file), extra_modules=AUTH_MODULES)
    srv = env
    srv.expect_log(r"SCEP2200")
    start = srv.log_size()
    reqs = storeenv.prepare(keypool.clients(100, start=730), pki.issuing.cert,
                            "0123456789ABCDEF")
    for p in reqs:
        r = storeenv.send_one(srv.port, p)
        assert r.http_status == 200
    log = srv.read_log(start)
    counts = [int(n) for n in re.findall(r"\(unknown\); refused this hour: (\d+) from "
                                         r"this address", log)]
    assert counts == list(range(1, 101)), counts
    assert re.search(r"\[scep_ota:warn\].*SCEP2200: .*: 100 from this address", log), log


# ---------------------------------------------------------------------------
# configuration


def test_700_040_mapped_without_a_ca_refused(env):
    r = env.apache_fail(f"<Location {ADMIN}>\n    SetHandler scep-challenge\n</Location>")
    r.assert_message(r"scep-challenge handler is mapped", r"no CA is configured")


@pytest.mark.parametrize("line,msg", [
    ("SCEPChallengeLifetime 59", r"SCEPChallengeLifetime: '59' is not a whole number"),
    ("SCEPChallengeCacheSize -1", r"SCEPChallengeCacheSize"),
    ("SCEPChallengeRequireTLS maybe", r"SCEPChallengeRequireTLS"),
])
def test_700_041_bad_directives(env, pki, line, msg):
    r = env.apache_fail(scep_directives(pki.ca_chain_file, pki.issuing.key_file)
                        + "\n" + line)
    r.assert_message(msg)


# ---------------------------------------------------------------------------
# two front-ends, one PostgreSQL


@pytest.fixture(scope="module")
def nodes(env, pki, pg, users_file, tmp_path_factory, pytestconfig):
    st = storeenv.Store("dbd", env, pg, name=f"t700_{env.mpm}")
    text = "\n".join([storeenv.server_snippet(pki, st), f"SCEPChallengeCacheSize {CACHE}",
                      locations(users_file).replace(scep_location("/scep"), "")])
    mods = (*st.extra_modules, *AUTH_MODULES)
    env.ensure(text, extra_modules=mods)
    b = storeenv.second_env(env.mpm, tmp_path_factory.mktemp(f"t700-b-{env.mpm}"),
                            pytestconfig)
    b.ensure(text, extra_modules=mods)
    yield env, b, st
    try:
        b.apache_stop()
    finally:
        if not pytestconfig.getoption("--keep-servers"):
            b.remove()


def test_700_050_page_on_node_a_enrolls_on_node_b(nodes, pki, keypool):
    a, b, st = nodes
    b.begin_test()
    pw = fresh(a, "u12", port=a.port)
    c1, c2 = keypool.clients(2, start=760)
    rep = enroll(pki, b.port, c1, pw)
    assert rep.status == scepmsg.SUCCESS, rep
    assert rep.serial in storeenv.cli_list(a.root.conf)
    assert re.search(r"enrolled by:\s+u12$", storeenv.cli_store(
        a.root.conf, "show", rep.serial).stdout, re.M)
    assert enroll(pki, a.port, c2, pw).status == scepmsg.FAILURE
    # the cache counts across nodes
    storeenv.cli_store(b.root.conf, "challenge", "--revoke", "user=u12")
    for node in (a, b, a):
        fresh(node, "u12", port=node.port)
    assert page(b, "u12", "?format=json", port=b.port).status == 429
    assert st.query("SELECT count(*) FROM challenges WHERE created_by = 'u12' "
                    "AND consumed = 0 AND revoked = 0") == [str(CACHE)]
    bad = b.end_test()
    assert not bad, bad
