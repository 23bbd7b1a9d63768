"""Two httpd front-ends (two server roots, two ports) sharing one
PostgreSQL database through mod_dbd (`SCEPStore dbd`): serials are unique
across both, a retry on the other node gets the same certificate, and a
one-time challenge made through one node's config is accepted once through
the other and then refused everywhere, also when 8 requests race for it
on both nodes at once."""

import pytest

import scepmsg
import storeenv
from storeenv import Store, cli_challenge, cli_list, cli_store


@pytest.fixture(scope="module")
def nodes(env, pki, pg, tmp_path_factory, pytestconfig):
    """(node A, node B, store): A is the suite's `env`, B a second httpd
    with the same config but its own root and port; both on one database."""
    st = Store("dbd", env, pg, name=f"t310_{env.mpm}")
    storeenv.start_with(env, pki, st)
    b = storeenv.second_env(env.mpm, tmp_path_factory.mktemp(f"node-b-{env.mpm}"),
                            pytestconfig)
    b.ensure(storeenv.server_snippet(pki, st), extra_modules=st.extra_modules)
    yield env, b, st
    try:
        b.apache_stop()
    finally:
        if not pytestconfig.getoption("--keep-servers"):
            b.remove()


@pytest.fixture(autouse=True)
def _node_b_log_check(nodes):
    """Node B's error log is held to the same rule as env's."""
    b = nodes[1]
    b.begin_test()
    yield
    bad = b.end_test()
    if bad:
        pytest.fail("unexpected error log lines on node B:\n" + "\n".join(bad),
                    pytrace=False)


def send(node, prepared, pki):
    r = storeenv.send_one(node.port, prepared)
    assert r.http_status == 200, (node.port, r.http_status, r.error)
    storeenv.decode([r], verify_with=pki.issuing.cert)
    assert r.rep.signature_ok
    return r.rep


def test_310_001_both_nodes_list_the_same_store(nodes, pki, keypool):
    a, b, st = nodes
    reqs = storeenv.prepare(keypool.clients(2, start=100), pki.issuing.cert,
                            storeenv.STATIC_CHALLENGE)
    ra, rb = send(a, reqs[0], pki), send(b, reqs[1], pki)
    assert ra.status == rb.status == scepmsg.SUCCESS, (ra, rb)
    for conf in (a.root.conf, b.root.conf):
        listed = cli_list(conf)
        assert {ra.serial, rb.serial} <= set(listed), listed
    assert {ra.serial, rb.serial} <= set(st.serials())


def test_310_002_serials_unique_across_nodes(nodes, pki, keypool):
    """8 clients, each alternating between the nodes, 10 enrollments each."""
    a, b, st = nodes
    reqs = storeenv.prepare(keypool.clients(80, start=110), pki.issuing.cert,
                            storeenv.STATIC_CHALLENGE)
    batches = [reqs[i::8] for i in range(8)]
    out = storeenv.run_load(lambda i, j: (a, b)[(i + j) % 2].port, batches)
    results = storeenv.decode(out, pki.issuing.cert)
    assert all(r.success for r in results), storeenv.summary(results)
    serials = [r.rep.serial for r in results]
    assert len(set(serials)) == len(serials) == 80
    stored = st.serials()
    assert len(stored) == len(set(stored))
    assert set(serials) <= set(stored)
    assert set(serials) <= set(cli_list(b.root.conf))


def test_310_003_retry_on_the_other_node(nodes, pki, keypool):
    """A client whose answer from A was lost asks B: the same certificate."""
    a, b, st = nodes
    p = storeenv.prepare(keypool.clients(1, start=190), pki.issuing.cert,
                         storeenv.STATIC_CHALLENGE)[0]
    first = send(a, p, pki)
    again = send(b, p, pki)
    assert first.status == again.status == scepmsg.SUCCESS
    assert again.serial == first.serial and again.cert == first.cert
    assert st.query(f"SELECT count(*) FROM certificates "
                    f"WHERE transaction_id = '{p.txid}'") == ["1"]


def test_310_004_challenge_made_on_one_node_used_once_on_the_other(nodes, pki,
                                                                  keypool):
    a, b, st = nodes
    challenge = cli_challenge(a.root.conf)
    c = keypool.clients(4, start=200)
    ok = send(b, storeenv.prepare([c[0]], pki.issuing.cert, challenge)[0], pki)
    assert ok.status == scepmsg.SUCCESS, ok
    assert ok.serial in cli_list(a.root.conf)
    for node, client in ((b, c[1]), (a, c[2]), (a, c[0]), (b, c[3])):
        rep = send(node, storeenv.prepare([client], pki.issuing.cert, challenge)[0], pki)
        assert rep.status == scepmsg.FAILURE and rep.fail_name == "badRequest", (
            node.port, rep)


def test_310_005_eight_requests_race_on_one_challenge_across_nodes(nodes, pki,
                                                                  keypool):
    """3 rounds: 8 requests (distinct keys), 4 to each node, released at
    once, all with one fresh challenge: exactly one SUCCESS each round."""
    a, b, st = nodes
    for rnd in range(3):
        challenge = cli_challenge(b.root.conf)
        clients = keypool.clients(8, start=210 + 8 * rnd)
        reqs = storeenv.prepare(clients, pki.issuing.cert, challenge)
        results = storeenv.race(lambda i: (a, b)[i % 2].port, reqs)
        storeenv.decode(results, pki.issuing.cert)
        won = [r for r in results if r.success]
        assert len(won) == 1, (rnd, storeenv.summary(results))
        lost = [r for r in results if not r.success]
        assert all(r.rep is not None and r.rep.fail_name == "badRequest"
                   for r in lost), storeenv.summary(results)
        keys = "','".join(r.prepared.txid for r in results)
        assert st.query(f"SELECT count(*) FROM certificates "
                        f"WHERE transaction_id IN ('{keys}')") == ["1"]


def test_310_006_revoked_through_one_node_is_revoked_for_both(nodes, pki, keypool):
    a, b, st = nodes
    p = storeenv.prepare(keypool.clients(1, start=240), pki.issuing.cert,
                         storeenv.STATIC_CHALLENGE)[0]
    rep = send(a, p, pki)
    assert rep.status == scepmsg.SUCCESS
    cli_store(b.root.conf, "revoke", rep.serial, "superseded")
    assert cli_list(a.root.conf)[rep.serial][0] == "revoked"
    again = send(a, p, pki)
    assert again.status == scepmsg.FAILURE, again
