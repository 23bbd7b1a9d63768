"""SCEPAuditLog: one JSON line per decision, from every child and from
`scep-ota store`, into a file or a piped program; never a secret."""

import json
import time

import pytest

import scepenv
import storeenv
from storeenv import Store, cli_store


@pytest.fixture(scope="module")
def clients(keypool):
    return keypool.clients(5, start=120)


def lines(path, n=None, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        got = path.read_text().splitlines() if path.exists() else []
        if n is None or len(got) >= n or time.monotonic() > deadline:
            return [json.loads(ln) for ln in got]
        time.sleep(0.1)


def test_820_001_one_line_per_decision(env, pki, clients):
    manual = scepenv.free_port()
    audit = env.root.logs / f"audit_{env.mpm}.log"
    audit.unlink(missing_ok=True)
    st = Store("sqlite", env, name=f"t820_{env.mpm}")
    extra = "\n".join([f'SCEPAuditLog "{audit}"', f"Listen 127.0.0.1:{manual}",
                       f"<VirtualHost 127.0.0.1:{manual}>",
                       "    SCEPApproval manual", "</VirtualHost>"])
    env.apache_restart(storeenv.server_snippet(pki, st, extra),
                       extra_modules=st.extra_modules)
    ok = storeenv.prepare(clients[0:2], pki.issuing.cert, storeenv.STATIC_CHALLENGE)
    bad = storeenv.prepare(clients[2:3], pki.issuing.cert, "wrong-challenge-xyz")
    pend = storeenv.prepare(clients[3:4], pki.issuing.cert, storeenv.STATIC_CHALLENGE)
    res = storeenv.decode([storeenv.send_one(env.port, p) for p in ok + bad],
                          verify_with=pki.issuing.cert)
    res += storeenv.decode([storeenv.send_one(manual, pend[0])],
                           verify_with=pki.issuing.cert)
    assert [r.rep.status for r in res] == [0, 0, 2, 3]
    env.expect_log(r"SCEP2200: txid \S+: wrong challenge")
    # a retry of an issued request decides nothing new
    storeenv.send_one(env.port, ok[0])
    # the admin: approve, revoke, a challenge
    cli_store(env.root.conf, "approve", pend[0].txid)
    cli_store(env.root.conf, "revoke", res[0].rep.serial, "keyCompromise")
    secret = cli_store(env.root.conf, "challenge").stdout.strip()
    got = lines(audit, 7)
    assert [g["event"] for g in got] == ["issued", "issued", "refused", "pending",
                                         "approved", "revoked", "challenge"], got
    issued = got[0]
    assert issued["serial"] == res[0].rep.serial
    assert issued["transaction_id"] == ok[0].txid
    assert issued["subject"] == res[0].rep.cert.subject.rfc4514_string()
    assert issued["client"] == "127.0.0.1" and issued["time"].endswith("Z")
    assert got[2]["fail_info"] == "badRequest" and got[2]["reason"]
    assert got[3]["transaction_id"] == pend[0].txid
    for g in got[4:]:
        assert g["client"] == "cli" and g["user"], g
    assert got[5]["serial"] == res[0].rep.serial and got[5]["reason"] == "keyCompromise"
    text = audit.read_text()
    for s in (storeenv.STATIC_CHALLENGE, "wrong-challenge-xyz", secret):
        assert s not in text


def test_820_002_piped(env, pki, clients, tmp_path):
    out = env.root.logs / f"audit_pipe_{env.mpm}.log"
    out.unlink(missing_ok=True)
    st = Store("sqlite", env, name=f"t820_p_{env.mpm}")
    env.apache_restart(storeenv.server_snippet(pki, st, f'SCEPAuditLog "|$cat >> {out}"'),
                       extra_modules=st.extra_modules)
    p = storeenv.prepare(clients[4:5], pki.issuing.cert, storeenv.STATIC_CHALLENGE)[0]
    r = storeenv.decode([storeenv.send_one(env.port, p)], verify_with=pki.issuing.cert)[0]
    assert r.success
    got = lines(out, 1)
    assert [g["event"] for g in got] == ["issued"] and got[0]["serial"] == r.rep.serial
    cli_store(env.root.conf, "revoke", r.rep.serial)
    got = lines(out, 2)
    assert [g["event"] for g in got] == ["issued", "revoked"]
