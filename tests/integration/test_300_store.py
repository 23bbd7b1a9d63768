"""The store, on each backend (SQLite, PostgreSQL with the module's own
connections, PostgreSQL through mod_dbd): an enrollment is recorded and
listed by `scep-ota store list -f httpd.conf`, a retried request gets the
same certificate, revocation, and one-time challenges made with
`scep-ota store challenge -f httpd.conf` (accepted once, then FAILURE
badRequest)."""

import base64
import hashlib
import re
import subprocess

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

import scepmsg
import storeenv
from scepenv import scep_directives, scep_location
from storeenv import KINDS, Store, cli_challenge, cli_list, cli_store


@pytest.fixture(scope="module", params=KINDS)
def kind(request):
    return request.param


@pytest.fixture(scope="module")
def module_store(kind, env, request):
    """One fresh store per backend and MPM."""
    pg = request.getfixturevalue("pg") if kind != "sqlite" else None
    return Store(kind, env, pg, name=f"t300_{kind}_{env.mpm}")


@pytest.fixture
def store(module_store, env, pki):
    """httpd running on the module's store (a no-op when it already does)."""
    storeenv.start_with(env, pki, module_store)
    return module_store


@pytest.fixture(scope="module")
def clients(keypool):
    return keypool.clients(12)


def enroll(env, pki, client, challenge=storeenv.STATIC_CHALLENGE, prepared=None):
    p = prepared or storeenv.prepare([client], pki.issuing.cert, challenge)[0]
    r = storeenv.send_one(env.port, p)
    assert r.http_status == 200, (r.http_status, r.error, r.body[:200] if r.body else None)
    storeenv.decode([r], verify_with=pki.issuing.cert)
    assert r.rep.signature_ok, r.rep
    assert r.rep.transaction_id == p.txid
    return r


def assert_success(r):
    assert r.rep.status == scepmsg.SUCCESS, r.rep
    assert r.rep.cert is not None, r.rep.error
    return r.rep


def assert_refused(r):
    assert r.rep.status == scepmsg.FAILURE, r.rep
    assert r.rep.fail_name == "badRequest", r.rep


def test_300_001_enrollment_is_recorded_and_listed(env, pki, store, clients):
    c = clients[0]
    rep = assert_success(enroll(env, pki, c))
    assert rep.cert.issuer == pki.issuing.cert.subject
    assert f"CN={c.cn}" in rep.cert.subject.rfc4514_string()
    listed = cli_list(env.root.conf)
    assert rep.serial in listed, (rep.serial, listed)
    status, subject = listed[rep.serial]
    assert status == "valid"
    assert f"CN={c.cn}" in subject
    # the database itself, read with sqlite3 / psql
    assert rep.serial in store.serials()
    der = store.query(f"SELECT der FROM certificates WHERE serial = '{rep.serial}'")
    assert base64.b64decode(der[0]) == rep.cert.public_bytes(
        Encoding.DER)


def test_300_002_show(env, pki, store, clients):
    rep = assert_success(enroll(env, pki, clients[1]))
    out = cli_store(env.root.conf, "show", rep.serial).stdout
    assert re.search(rf"^serial:\s+{rep.serial}$", out, re.M), out
    assert re.search(r"^status:\s+valid$", out, re.M), out
    assert rep.cert.public_bytes(Encoding.PEM).decode() in out


def test_300_003_retry_gets_the_same_certificate(env, pki, store, clients):
    p = storeenv.prepare([clients[2]], pki.issuing.cert, storeenv.STATIC_CHALLENGE)[0]
    first = assert_success(enroll(env, pki, clients[2], prepared=p))
    before = len(store.serials())
    again = assert_success(enroll(env, pki, clients[2], prepared=p))
    assert again.serial == first.serial
    assert again.cert == first.cert
    assert len(store.serials()) == before


def test_300_004_revoke(env, pki, store, clients, tmp_path):
    p = storeenv.prepare([clients[3]], pki.issuing.cert, storeenv.STATIC_CHALLENGE)[0]
    rep = assert_success(enroll(env, pki, clients[3], prepared=p))
    out = cli_store(env.root.conf, "revoke", rep.serial, "keyCompromise").stdout
    assert rep.serial in out
    assert cli_list(env.root.conf)[rep.serial][0] == "revoked"
    assert rep.serial in cli_list(env.root.conf, status="revoked")
    assert rep.serial not in cli_list(env.root.conf, status="valid")
    assert store.query(f"SELECT status, reason FROM certificates "
                       f"WHERE serial = '{rep.serial}'") == ["1|1"]
    # twice: refused, nothing changes
    again = cli_store(env.root.conf, "revoke", rep.serial, check=False)
    assert again.returncode != 0
    assert "revoked already" in again.stderr
    # the CRL the CLI signs lists it
    crl = tmp_path / "crl.pem"
    crl.write_text(cli_store(env.root.conf, "crl").stdout)
    text = subprocess.run(["openssl", "crl", "-in", str(crl), "-noout", "-text"],
                          capture_output=True, text=True, timeout=30, check=True).stdout
    assert re.search(rf"Serial Number: 0*{rep.serial}\b", text, re.I), text
    assert "Key Compromise" in text
    # the same transaction again: no certificate for a revoked issuance
    assert_refused(enroll(env, pki, clients[3], prepared=p))


def test_300_005_one_time_challenge(env, pki, store, clients):
    challenge = cli_challenge(env.root.conf)
    assert len(challenge) >= 20
    # stored hashed, never in clear
    rows = store.query("SELECT hash, consumed FROM challenges")
    want = hashlib.sha256(challenge.encode()).hexdigest()
    assert any(r.split("|")[0].lower() == want for r in rows), rows
    assert not any(challenge in r for r in rows)

    first = enroll(env, pki, clients[4], challenge)
    rep = assert_success(first)
    assert rep.serial in cli_list(env.root.conf)
    assert store.query(f"SELECT consumed FROM challenges WHERE hash = '{want}'") == ["1"]
    # used once: another requester, and the same one with a new transaction
    assert_refused(enroll(env, pki, clients[5], challenge))
    assert_refused(enroll(env, pki, clients[4], challenge))
    assert rep.serial in cli_list(env.root.conf)
    # never logged
    assert challenge not in env.read_log(0)


def test_300_006_wrong_challenge_is_refused(env, pki, store, clients):
    before = set(store.serials())
    assert_refused(enroll(env, pki, clients[6], "not-the-challenge"))
    assert_refused(enroll(env, pki, clients[6], None))
    assert set(store.serials()) == before


def test_300_007_default_store_location(env, pki, keypool):
    """Without SCEPStore the store is ServerRoot/state/scep_ota.db, and the
    CLI finds it through the same httpd.conf."""
    snippet = "\n".join([
        scep_directives(pki.ca_chain_file, pki.issuing.key_file),
        f"SCEPChallengePassword {storeenv.STATIC_CHALLENGE}",
        scep_location("/scep"),
    ])
    env.ensure(snippet)
    db = env.root.path / "state" / "scep_ota.db"
    assert db.exists()
    c = keypool.clients(1, start=11)[0]
    rep = assert_success(enroll(env, pki, c))
    assert rep.serial in cli_list(env.root.conf)
    assert rep.serial in storeenv.sqlite_serials(db)
    assert storeenv.sqlite_query(db, "PRAGMA journal_mode") == ["wal"]
