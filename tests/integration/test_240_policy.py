"""What a certificate may say, through the real httpd: the server's name
policy (SCEPAllowSubjectAltName), challenges bound to names
(`scep-ota store challenge --for subject=DN --san ...`), what an admin
sees before approving, the renewal window and once-only renewal, replays
after a revocation, and several CAs sharing one store without seeing each
other's records.

One config, one SQLite store for all of it:
- the main server: the issuing CA with its RA, a static challenge, DNS
  names under dev.example allowed, the default renewal window (50%);
- `now`: the same CA, renewals at any time, SCEPRevokeSuperseded on;
- `manual`: the same CA, SCEPApproval manual;
- `other`: another CA, no RA (`SCEPRACertificateFile none`), no static
  challenge (`SCEPChallengePassword none`), SCEPApproval manual.
"""

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import scepclient_own as own
import scepenv
import storeenv
from scepenv import scep_directives, scep_location

CHALLENGE = "policy-240-static-secret"
LIFETIME = 30
DB = "state/policy-240.db"
ORG = "mod_scep_ota own client"

_PORTS = {}


def ports(env):
    if id(env) not in _PORTS:
        _PORTS[id(env)] = {w: scepenv.free_port() for w in ("now", "manual", "other")}
    return _PORTS[id(env)]


def vhost(port, *body):
    return "\n".join([f"Listen 127.0.0.1:{port}", f"<VirtualHost 127.0.0.1:{port}>",
                      f"    ServerName vhost-{port}.test",
                      *("    " + b for b in body), "</VirtualHost>"])


def audit_file(env):
    return env.root.logs / f"audit-240-{env.mpm}.log"


def snippet(pki, p, audit):
    return "\n".join([
        f'SCEPAuditLog "{audit}"',
        scep_directives(pki.ca_chain_file, pki.issuing.key_file,
                        pki.ra.cert_file, pki.ra.key_file),
        f"SCEPChallengePassword {CHALLENGE}",
        f"SCEPCertificateLifetime {LIFETIME}",
        "SCEPAllowSubjectAltName dns *.dev.example",
        f"SCEPStore sqlite3:{DB}",
        scep_location("/scep"),
        vhost(p["now"], "SCEPRenewalWindow 100%", "SCEPRevokeSuperseded on"),
        vhost(p["manual"], "SCEPApproval manual"),
        vhost(p["other"], f'SCEPCACertificateFile "{pki.other.cert_file}"',
              f'SCEPCAKeyFile "{pki.other.key_file}"', "SCEPRACertificateFile none",
              "SCEPRAKeyFile none", "SCEPChallengePassword none", "SCEPApproval manual"),
    ])


@pytest.fixture(autouse=True)
def _server(env, pki):
    env.ensure(snippet(pki, ports(env), audit_file(env)))


def client(env, pki, keys, tmp, where="main"):
    target = env if where == "main" else scepenv.At(env, ports(env)[where])
    if where == "other":
        return own.OwnClient(target, tmp / where, recipient=pki.other.cert_file,
                             trust=pki.other.cert_file, signer=pki.other.cert,
                             ca=pki.other.cert, keys=keys)
    return own.OwnClient(target, tmp / where, recipient=pki.ra.cert_file,
                         trust=pki.ca_chain_file, signer=pki.ra.cert, ca=pki.issuing.cert,
                         keys=keys)


def cli(env, *args, check=True, vhost="manual"):
    """scep-ota store on the config; the servers have two CAs, so the CLI
    is told which (manual, now and the main server share the issuing CA)."""
    extra = ["--vhost", f"vhost-{ports(env)[vhost]}.test"] if vhost else []
    return storeenv.cli_store(env.root.conf, *extra, *args, check=check)


def csr(c, key, cn, **kw):
    return own.make_csr(c._fresh("csr").with_suffix(".pem"), key, cn, **kw)


def ca_id(cert):
    """A CA's identity in the store: SHA-256 of its subject and key."""
    from cryptography.hazmat.primitives.serialization import PublicFormat
    return hashlib.sha256(cert.subject.public_bytes() + cert.public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).hexdigest().upper()


def sans_of(cert):
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [str(n.value) for n in ext.value]


def rows(env, sql):
    with sqlite3.connect(env.root.path / DB) as db:
        return db.execute(sql).fetchall()


def refused(rep):
    assert (rep.status, rep.fail_info) == ("FAILURE", "badRequest"), rep


def pem(tmp_path, name, cert):
    f = tmp_path / f"{name}.pem"
    f.write_bytes(cert.public_bytes(Encoding.PEM))
    return f


# ---------------------------------------------------------------------------
# names


def test_240_001_san_outside_the_policy(env, pki, own_keys, tmp_path):
    """A CSR asking for a name outside SCEPAllowSubjectAltName gets FAILURE
    badRequest, a log line naming it, and nothing is recorded; the names
    the policy allows are certified."""
    c = client(env, pki, own_keys, tmp_path)
    key = own_keys.get("laptop-240")
    before = rows(env, "SELECT COUNT(*) FROM certificates")
    log0 = env.log_size()
    for bad in (x509.DNSName("vpn.corp.example"), x509.RFC822Name("ceo@corp.example"),
                x509.DNSName("*.dev.example")):
        rep = c.exchange(c.request("pkcsreq", key, csr=csr(
            c, key, "laptop-240", challenge=CHALLENGE,
            sans=[x509.DNSName("laptop.dev.example"), bad])))
        refused(rep)
    log = env.read_log(log0)
    assert re.search(r"SCEP2010: .*subjectAltName DNS:vpn\.corp\.example is not allowed", log)
    assert re.search(r"SCEP2010: .*email:ceo@corp\.example is not allowed", log)
    assert rows(env, "SELECT COUNT(*) FROM certificates") == before
    rep = c.exchange(c.request("pkcsreq", key, csr=csr(
        c, key, "laptop-240", challenge=CHALLENGE,
        sans=[x509.DNSName("Laptop.DEV.example")])))
    assert rep.status == "SUCCESS", rep
    assert sans_of(rep.cert) == ["laptop.dev.example"]


def test_240_002_bound_challenge_fixes_the_names(env, pki, own_keys, tmp_path):
    """`store challenge --for subject=DN --san dns:NAME` enrolls exactly
    that subject with exactly that name; a request asking for more is
    refused and leaves the challenge usable."""
    p = cli(env, "challenge", "--for", f"subject=/O={ORG}/CN=dev-7",
            "--san", "dns:dev-7.hosts.example")
    otp = p.stdout.strip()
    assert f"subject CN=dev-7,O={ORG}, DNS:dev-7.hosts.example" in p.stderr, p.stderr
    c = client(env, pki, own_keys, tmp_path)
    key = own_keys.get("dev-7")
    # a name the binding does not list (though the policy allows it)
    refused(c.exchange(c.request("pkcsreq", key, csr=csr(
        c, key, "dev-7", challenge=otp, sans=[x509.DNSName("dev-7.dev.example")]))))
    # another subject
    refused(c.exchange(c.request("pkcsreq", key, csr=csr(c, key, "dev-8", challenge=otp))))
    # the binding's subject, no SAN asked: the binding's name is written
    rep = c.exchange(c.request("pkcsreq", key, csr=csr(c, key, "dev-7", challenge=otp)))
    assert rep.status == "SUCCESS", rep
    assert sans_of(rep.cert) == ["dev-7.hosts.example"]
    # used
    key2 = own_keys.get("dev-7b")
    refused(c.exchange(c.request("pkcsreq", key2, csr=csr(c, key2, "dev-7", challenge=otp))))


def test_240_003_unknown_binding_is_an_error(env):
    for args, msg in ((["--for", "alice"], "use --for subject=DN"),
                      (["--san", "dns:x.example"], "--san needs --for"),
                      (["--for", "subject=/CN=x", "--san", "upn:x@y"], "no subjectAltName"),
                      (["--for", "subject=/CN=x", "--san", "dns:*.x"], "not a valid")):
        p = cli(env, "challenge", *args, check=False)
        assert p.returncode != 0 and msg in p.stderr, (args, p.stderr)
        assert p.stdout == ""


def test_240_004_pending_shows_what_is_approved(env, pki, own_keys, tmp_path):
    c = client(env, pki, own_keys, tmp_path, "manual")
    key = own_keys.get("pending-240", bits=3072)
    req = c.request("pkcsreq", key, csr=csr(c, key, "pending-240", challenge=CHALLENGE,
                                             sans=[x509.DNSName("p.dev.example")]))
    assert c.exchange(req).status == "PENDING"
    out = cli(env, "list", "--status", "pending").stdout
    line = next(ln for ln in out.splitlines() if req.txid in ln)
    assert "RSA 3072" in line and "[DNS:p.dev.example]" in line, out
    assert f"CN=pending-240,O={ORG}" in line
    p = cli(env, "approve", req.txid)
    assert "subjectAltNames DNS:p.dev.example" in p.stdout and "RSA 3072" in p.stdout
    poll = c.request("certpoll", key, cert=req.signer_file, csr=req.csr_file, txid=req.txid)
    rep = c.exchange(poll)
    assert rep.status == "SUCCESS", rep
    assert sans_of(rep.cert) == ["p.dev.example"]
    show = cli(env, "show", format(rep.cert.serial_number, "X")).stdout
    assert "subjectAltName: DNS:p.dev.example" in show and "key:            RSA 3072" in show


# ---------------------------------------------------------------------------
# renewal


def enrolled(c, own_keys, cn, sans=()):
    key = own_keys.get(f"{cn}-old")
    rep = c.exchange(c.request("pkcsreq", key, csr=csr(c, key, cn, challenge=CHALLENGE,
                                                        sans=list(sans))))
    assert rep.status == "SUCCESS", rep
    return key, rep.cert


def renewal(c, own_keys, old_key, old_file, cn, name, sans=()):
    new = own_keys.get(name)
    return c.request("renewalreq", old_key, cert=old_file,
                     csr=csr(c, new, cn, sans=list(sans)))


def test_240_010_renewal_waits_for_its_window(env, pki, own_keys, tmp_path):
    """Default SCEPRenewalWindow 50%: a certificate of 30 days renews
    itself only in its last 15; the refusal is logged."""
    c = client(env, pki, own_keys, tmp_path)
    key, cert = enrolled(c, own_keys, "early-240")
    log0 = env.log_size()
    rep = c.exchange(renewal(c, own_keys, key, pem(tmp_path, "early", cert),
                             "early-240", "early-new"))
    refused(rep)
    assert "not due for renewal" in rep.fail_text
    assert re.search(r"SCEP2013: .*renewal of [0-9A-F]+ refused, it is due from \d+",
                     env.read_log(log0))


def test_240_011_renewal_keeps_names_once(env, pki, own_keys, tmp_path):
    """A renewal keeps the subject and SANs (asking for others is refused),
    its retry gets the same certificate, a second renewal of the same
    certificate is refused; the old one is superseded and, with
    SCEPRevokeSuperseded on, revoked as superseded."""
    c = client(env, pki, own_keys, tmp_path, "now")
    key, old = enrolled(c, own_keys, "ren-240", [x509.DNSName("ren.dev.example")])
    old_file = pem(tmp_path, "old", old)
    refused(c.exchange(renewal(c, own_keys, key, old_file, "ren-240", "ren-a",
                               [x509.DNSName("ren.dev.example"),
                                x509.DNSName("admin.dev.example")])))
    req = renewal(c, own_keys, key, old_file, "ren-240", "ren-b")
    rep = c.exchange(req)
    assert rep.status == "SUCCESS", rep
    assert sans_of(rep.cert) == ["ren.dev.example"]
    again = c.exchange(req)
    assert again.status == "SUCCESS" and again.cert.serial_number == rep.cert.serial_number
    refused(c.exchange(renewal(c, own_keys, key, old_file, "ren-240", "ren-c")))
    old_serial = format(old.serial_number, "X")
    show = cli(env, "show", old_serial).stdout
    assert f"renewed by:     {format(rep.cert.serial_number, 'X')}" in show, show
    assert "reason:         superseded" in show, show
    crl = subprocess.run(["openssl", "crl", "-noout", "-text"], input=cli(env, "crl").stdout,
                         capture_output=True, text=True, check=True).stdout
    assert re.search(rf"Serial Number: 0*{old_serial}\b", crl, re.I)
    assert "Superseded" in crl
    # the revocation is in the audit trail, once, beside the renewal
    lines = [json.loads(l) for l in audit_file(env).read_text().splitlines()]
    revoked = [l for l in lines if l["event"] == "revoked" and l.get("serial") == old_serial]
    assert len(revoked) == 1, lines
    assert revoked[0]["reason"] == "superseded"
    assert revoked[0]["transaction_id"] == req.txid
    assert any(l["event"] == "renewed" and l.get("serial") == format(rep.cert.serial_number, "X")
               for l in lines), lines


def test_240_012_replay_after_revocation(env, pki, own_keys, tmp_path):
    """A captured renewal replayed after its certificate was revoked for
    keyCompromise gets FAILURE, never a new certificate; nor does a new
    PKCSReq for that key."""
    c = client(env, pki, own_keys, tmp_path, "now")
    key, old = enrolled(c, own_keys, "replay-240")
    req = renewal(c, own_keys, key, pem(tmp_path, "old", old), "replay-240", "replay-new")
    rep = c.exchange(req)
    assert rep.status == "SUCCESS", rep
    cli(env, "revoke", format(rep.cert.serial_number, "X"), "keyCompromise")
    before = rows(env, "SELECT COUNT(*) FROM certificates")
    refused(c.exchange(req))
    new_key = own_keys.get("replay-new")
    refused(c.exchange(c.request("pkcsreq", new_key, csr=csr(
        c, new_key, "replay-240", challenge=CHALLENGE))))
    assert rows(env, "SELECT COUNT(*) FROM certificates") == before


# ---------------------------------------------------------------------------
# several CAs, one store


def test_240_020_cas_share_the_store_apart(env, pki, own_keys, tmp_path):
    """Two CAs on one store: a request pending at one and approved there is
    unknown to the other; a challenge handed out for one does not enroll
    at the other; each CRL lists its own revocations; `none` switched off
    the inherited RA and static challenge."""
    mine = client(env, pki, own_keys, tmp_path, "manual")
    theirs = client(env, pki, own_keys, tmp_path, "other")
    key = own_keys.get("apart-240")
    req = mine.request("pkcsreq", key, csr=csr(mine, key, "apart-240", challenge=CHALLENGE))
    assert mine.exchange(req).status == "PENDING"
    cli(env, "approve", req.txid)
    # polled at the other CA: no such request there
    poll = theirs.request("certpoll", key, cert=req.signer_file, csr=req.csr_file, txid=req.txid)
    refused(theirs.exchange(poll))
    # the other CA's store view is empty of the issuing CA's records
    out = cli(env, "list", "--status", "pending", vhost="other").stdout
    assert req.txid not in out
    # the issuing CA's one-time challenge, at the other CA
    otp = cli(env, "challenge").stdout.strip()
    k2 = own_keys.get("apart-240-b")
    refused(theirs.exchange(theirs.request("pkcsreq", k2, csr=csr(
        theirs, k2, "apart-240-b", challenge=otp))))
    # the static challenge of the main server does not reach it (none)
    refused(theirs.exchange(theirs.request("pkcsreq", k2, csr=csr(
        theirs, k2, "apart-240-b", challenge=CHALLENGE))))
    # its own challenge works (PENDING: manual), and GetCACert is the CA alone
    otp2 = cli(env, "challenge", vhost="other").stdout.strip()
    assert theirs.exchange(theirs.request("pkcsreq", k2, csr=csr(
        theirs, k2, "apart-240-b", challenge=otp2))).status == "PENDING"
    ca = scepenv.At(env, ports(env)["other"]).get("/scep?operation=GetCACert")
    assert ca.content_type == "application/x-x509-ca-cert"
    # every record carries its CA
    ids = {r[0] for r in rows(env, "SELECT DISTINCT ca FROM pending")}
    want = {ca_id(c) for c in (pki.issuing.cert, pki.other.cert)}
    assert ids == want, ids
    # a revocation at the issuing CA is not on the other CA's CRL
    main = client(env, pki, own_keys, tmp_path)
    _k, cert = enrolled(main, own_keys, "apart-240-revoked")
    serial = format(cert.serial_number, "X")
    cli(env, "revoke", serial, "keyCompromise")
    crl_other = subprocess.run(["openssl", "crl", "-noout", "-text"],
                               input=cli(env, "crl", vhost="other").stdout,
                               capture_output=True, text=True, check=True).stdout
    assert "Test Other Vhost CA" in crl_other
    assert not re.search(rf"Serial Number: 0*{serial}\b", crl_other, re.I)


SCHEMA_1 = """
CREATE TABLE certificates (serial TEXT PRIMARY KEY, subject TEXT NOT NULL,
  transaction_id TEXT, key_hash TEXT, not_before BIGINT NOT NULL,
  not_after BIGINT NOT NULL, status INTEGER NOT NULL DEFAULT 0,
  revoked_at BIGINT NOT NULL DEFAULT 0, reason INTEGER NOT NULL DEFAULT -1,
  issued_at BIGINT NOT NULL, der TEXT NOT NULL);
CREATE UNIQUE INDEX certificates_issuance ON certificates (transaction_id, key_hash)
  WHERE transaction_id IS NOT NULL;
CREATE INDEX certificates_key ON certificates (key_hash);
CREATE INDEX certificates_status ON certificates (status);
CREATE TABLE challenges (hash TEXT PRIMARY KEY, purpose INTEGER NOT NULL,
  bound_to TEXT, expires BIGINT NOT NULL, consumed INTEGER NOT NULL DEFAULT 0,
  created BIGINT NOT NULL);
CREATE TABLE pending (transaction_id TEXT PRIMARY KEY, subject TEXT, key_hash TEXT,
  state INTEGER NOT NULL, created BIGINT NOT NULL, csr TEXT, requester TEXT,
  cert_serial TEXT);
CREATE TABLE devices (udid TEXT PRIMARY KEY, serial_number TEXT, product TEXT,
  cert_serial TEXT, last_seen BIGINT NOT NULL);
CREATE TABLE scep_schema (id INTEGER PRIMARY KEY, version INTEGER NOT NULL);
INSERT INTO scep_schema VALUES (1, 1);
INSERT INTO certificates VALUES ('4ABCDEF', 'CN=legacy,O=x', 'T1', 'k', 0, 0, 0, 0, -1,
  0, 'AAAA');
INSERT INTO pending VALUES ('T2', 'CN=waiting,O=x', 'k2', 0, 0, NULL, NULL, NULL);
"""


def start_fails(env, snippet):
    """httpd accepts the config (`-t`), but the start fails once it opens
    the store (after it detached): no server runs; returns the error log."""
    root = env.fail_root
    root.conf.write_text(env.config_text(snippet, root=root, port=env.fail_port))
    for f in (root.error_log, root.pid_file):
        if f.exists():
            f.unlink()
    assert env._run(root, "-t")[0] == 0
    env._run(root, "-k", "start")
    log = ""
    for _ in range(100):
        log = root.error_log.read_text(errors="replace") if root.error_log.exists() else ""
        if "Configuration Failed" in log:
            break
        time.sleep(0.05)
    scepenv.kill_processes_of(root)
    assert "AH00020: Configuration Failed" in log, log
    return log


def test_240_030_schema1_store(env, pki, tmp_path):
    """A store written before records carried their CA goes to the one CA
    that uses it; when two CAs use it, httpd refuses to start."""
    db = tmp_path / "v1.db"
    with sqlite3.connect(db) as con:
        con.executescript(SCHEMA_1)
    db.chmod(0o666)
    tmp_path.chmod(0o777)
    one = "\n".join([scep_directives(pki.ca_chain_file, pki.issuing.key_file,
                                     pki.ra.cert_file, pki.ra.key_file),
                     f"SCEPChallengePassword {CHALLENGE}", f"SCEPStore sqlite3:{db}",
                     scep_location("/scep")])
    port = scepenv.free_port()
    two = one + "\n" + vhost(port, f'SCEPCACertificateFile "{pki.other.cert_file}"',
                             f'SCEPCAKeyFile "{pki.other.key_file}"',
                             "SCEPRACertificateFile none", "SCEPRAKeyFile none")
    log = start_fails(env, two)
    assert "2 records were written before the store kept CAs apart" in log, log
    env.expect_log(r"SCEP4004")
    env.ensure(one)
    want = ca_id(pki.issuing.cert)
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT ca FROM certificates").fetchall() == [(want,)]
        assert con.execute("SELECT ca FROM pending").fetchall() == [(want,)]
        assert con.execute("SELECT version FROM scep_schema").fetchall() == [(3,)]
    assert "4ABCDEF" in storeenv.cli_list(env.root.conf)


def test_240_040_racing_polls_make_one_certificate(env, pki, own_keys, tmp_path):
    """Eight CertPolls of one approved request at once: one certificate,
    the same for all (the store's constraint decides, not a lookup before
    the insert)."""
    import threading
    c = client(env, pki, own_keys, tmp_path, "manual")
    key = own_keys.get("race-240")
    req = c.request("pkcsreq", key, csr=csr(c, key, "race-240", challenge=CHALLENGE))
    assert c.exchange(req).status == "PENDING"
    cli(env, "approve", req.txid)
    polls = [c.request("certpoll", key, cert=req.signer_file, csr=req.csr_file,
                       txid=req.txid) for _ in range(8)]
    replies = [None] * len(polls)

    def send(i):
        replies[i] = c.exchange(polls[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(polls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r is not None and r.status == "SUCCESS" for r in replies), replies
    assert len({r.cert.serial_number for r in replies}) == 1
    assert rows(env, "SELECT COUNT(*) FROM certificates WHERE request_txid = "
                     f"'{req.txid}'") == [(1,)]


def test_240_050_max_clock_skew(env, pki, own_keys, tmp_path):
    """SCEPMaxClockSkew on a virtual host: a signingTime an hour off gets
    FAILURE badTime there, and passes where it is not set (the default)."""
    port = scepenv.free_port()
    env.ensure(snippet(pki, ports(env), audit_file(env)) + "\n"
               + vhost(port, "SCEPMaxClockSkew 600"))
    skewed = own.OwnClient(scepenv.At(env, port), tmp_path / "skew",
                           recipient=pki.ra.cert_file, trust=pki.ca_chain_file,
                           signer=pki.ra.cert, ca=pki.issuing.cert, keys=own_keys)
    main = client(env, pki, own_keys, tmp_path)
    for n, (when, at, want) in enumerate((("-3600", skewed, "badTime"),
                                          ("+3600", skewed, "badTime"),
                                          ("-300", skewed, None),
                                          ("-3600", main, None))):
        key = own_keys.get(f"skew-240-{n}")
        req = at.request("pkcsreq", key, csr=csr(at, key, f"skew-240-{n}",
                                                 challenge=CHALLENGE),
                         signing_time=when)
        rep = at.exchange(req)
        if want:
            assert (rep.status, rep.fail_info) == ("FAILURE", want), rep
        else:
            assert rep.status == "SUCCESS", rep


@pytest.mark.skipif(os.geteuid() != 0, reason="the CLI runs as root here only as root")
def test_240_060_cli_opens_no_planted_link_as_root(pki, tmp_path):
    """The worker user may write the store's directory: a link it plants
    at the store path (or a hard link) is refused by `scep-ota store` run
    as root, and the file it points at stays as it was; a root-owned store
    in a directory others may write is refused too."""
    import pwd
    worker = pwd.getpwnam("www-data")
    d = tmp_path / "state"
    d.mkdir()
    os.chown(d, worker.pw_uid, worker.pw_gid)
    d.chmod(0o700)
    tmp_path.chmod(0o755)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    ca = ["--ca", str(pki.issuing.cert_file)]
    for make in (lambda p: p.symlink_to(victim), lambda p: os.link(victim, p)):
        db = d / "scep.db"
        if db.exists() or db.is_symlink():
            db.unlink()
        make(db)
        p = subprocess.run([str(own.cli_path()), "store", "--store", f"sqlite3:{db}",
                            *ca, "challenge"], capture_output=True, text=True)
        assert p.returncode != 0 and "is a link or not a regular file" in p.stderr, p
        assert victim.read_bytes() == b"precious\n"
    db.unlink()
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    root_db = open_dir / "scep.db"
    root_db.write_bytes(b"")
    p = subprocess.run([str(own.cli_path()), "store", "--store", f"sqlite3:{root_db}",
                        *ca, "list"], capture_output=True, text=True)
    assert p.returncode != 0 and "others may write its directory" in p.stderr, p
