"""The store under concurrency, on SQLite and on PostgreSQL (through
mod_dbd):

- 16 concurrent clients x 30 distinct enrollments: no failure, unique
  serials, every certificate handed out is in the store (read with
  `scep-ota store list` and with sqlite3/psql);
- the same load while httpd children are killed with SIGKILL: every
  certificate a client received in a SUCCESS is in the store, no serial
  twice, retries of an interrupted request get the certificate recorded
  for it, and the server keeps answering;
- 8 requests racing on one one-time challenge: exactly one SUCCESS;
- 8 copies of one request at once: one certificate, the same for all;
- a request interrupted between consuming its one-time challenge and
  recording its certificate gets its certificate when it is retried (the
  challenge remembers which request consumed it);
- the writers of a SQLite store queue on httpd's global mutex
  "scep-ota-store" (set with the Mutex directive); reads do not take it.

The 480 PKCSReqs (AES-128-CBC, SHA-256, RSA-2048) are built once, before
any timed part, and replayed against a fresh store in each test (a fresh
store has never seen their transactionIDs).
"""

import fcntl
import os
import signal
import subprocess
import threading
import time

import pytest

import scepmsg
import storeenv
from storeenv import Store, cli_challenge, cli_list

CLIENTS = 16
PER_CLIENT = 30
LOAD_KINDS = ("sqlite", "dbd")


@pytest.fixture(scope="module")
def load_requests(pki, keypool):
    """16 batches of 30 PKCSReqs, each with a transactionID of its own."""
    reqs = storeenv.prepare(keypool.clients(CLIENTS * PER_CLIENT), pki.issuing.cert,
                            storeenv.STATIC_CHALLENGE)
    return [reqs[i::CLIENTS] for i in range(CLIENTS)]


def fresh_server(env, pki, kind, request, name):
    pg = request.getfixturevalue("pg") if kind != "sqlite" else None
    st = Store(kind, env, pg, name=f"{name}_{kind}_{env.mpm}")
    storeenv.start_with(env, pki, st)
    return st


def check_store(st, env, results):
    """Every certificate received in a SUCCESS is in the store, as issued,
    and the store holds no serial twice. Returns the stored serials."""
    received = [r for r in results if r.success]
    stored = st.serials()
    assert len(stored) == len(set(stored)), "a serial is stored twice"
    listed = cli_list(env.root.conf)
    assert set(listed) == set(stored), "scep-ota store list differs from the db"
    missing = [r.rep.serial for r in received if r.rep.serial not in listed]
    assert not missing, (f"{len(missing)} certificates handed out are not in "
                         f"the store: {missing[:5]}")
    by_serial = {}
    for r in received:
        prev = by_serial.setdefault(r.rep.serial, r)
        # one serial, one certificate, one transaction
        assert prev.rep.cert == r.rep.cert, f"serial {r.rep.serial} on two certificates"
        assert prev.prepared.txid == r.prepared.txid
    return stored


@pytest.mark.parametrize("kind", LOAD_KINDS)
def test_320_001_16_clients_x_30_enrollments(env, pki, load_requests, kind, request):
    st = fresh_server(env, pki, kind, request, "t320_load")
    results = storeenv.run_load(env.port, load_requests)
    storeenv.decode(results, verify_with=pki.issuing.cert)
    n = CLIENTS * PER_CLIENT
    assert sum(r.success for r in results) == n, storeenv.summary(results)
    assert all(r.rep.cert is not None and r.rep.signature_ok for r in results)
    serials = [r.rep.serial for r in results]
    assert len(set(serials)) == n, "serials not unique"
    stored = check_store(st, env, results)
    assert sorted(stored) == sorted(serials)
    # one record per transaction, none for anything else
    assert st.query("SELECT count(DISTINCT transaction_id) FROM certificates") == [str(n)]


@pytest.mark.parametrize("kind", LOAD_KINDS)
def test_320_002_kill_children_during_load(env, pki, keypool, load_requests, kind,
                                          request):
    """SIGKILL of a random httpd child every 0.1 s while 16 clients enroll;
    a client whose connection breaks sends the very same request again (up
    to 10 times), as a SCEP client retries."""
    if env.mpm != "prefork":
        pytest.skip("kill -9 of children is tested with prefork (one request per child)")
    st = fresh_server(env, pki, kind, request, "t320_kill")
    log_start = env.log_size()
    killer = storeenv.Killer(env, interval=0.1, seed=320)
    killer.start()
    try:
        results = storeenv.run_load(env.port, load_requests, retries=10)
    finally:
        killer.stop()
    storeenv.decode(results, verify_with=pki.issuing.cert)
    interrupted = [r for r in results if r.tries > 1]
    assert len(killer.killed) >= 5, f"only {len(killer.killed)} children killed"
    # the point: nothing a client was told had succeeded is lost
    check_store(st, env, results)
    # and as every client retried, every transaction ended in a certificate,
    # the first one recorded for it (no second issuance on a retry)
    assert all(r.success for r in results), storeenv.summary(results)
    n = CLIENTS * PER_CLIENT
    assert st.query("SELECT count(*) FROM certificates") == [str(n)]
    # the server keeps answering: GetCACaps and a new enrollment
    assert storeenv.server_answers(env.port)
    extra = storeenv.prepare(keypool.clients(1), pki.issuing.cert,
                             storeenv.STATIC_CHALLENGE)[0]
    after = storeenv.decode([storeenv.send_one(env.port, extra)])[0]
    assert after.success, after.rep
    repeated = env.read_log(log_start).count("PKIOperation repeated")
    print(f"killed {len(killer.killed)} children; {len(interrupted)} requests "
          f"retried, {repeated} answered from the store (committed before the kill)")


@pytest.fixture(scope="module", params=storeenv.KINDS)
def race_store(request, env):
    """One fresh store per backend (and MPM) for the racing tests."""
    pg = request.getfixturevalue("pg") if request.param != "sqlite" else None
    return Store(request.param, env, pg, name=f"t320_race_{request.param}_{env.mpm}")


def test_320_003_eight_requests_race_on_one_challenge(env, pki, keypool, race_store):
    """3 rounds: one fresh one-time challenge, 8 requests with distinct keys
    released at once: exactly one SUCCESS, 7 FAILURE badRequest, one
    certificate stored."""
    st = race_store
    storeenv.start_with(env, pki, st)
    txids = []
    for rnd in range(3):
        challenge = cli_challenge(env.root.conf)
        reqs = storeenv.prepare(keypool.clients(8, start=8 * rnd), pki.issuing.cert,
                                challenge)
        txids += [p.txid for p in reqs]
        results = storeenv.decode(storeenv.race(lambda i: env.port, reqs))
        won = [r for r in results if r.success]
        assert len(won) == 1, (rnd, storeenv.summary(results))
        assert all(r.rep is not None and r.rep.status == scepmsg.FAILURE
                   and r.rep.fail_name == "badRequest"
                   for r in results if not r.success), storeenv.summary(results)
        assert won[0].rep.serial in cli_list(env.root.conf)
    ids = "','".join(txids)
    assert st.query(f"SELECT count(*) FROM certificates "
                    f"WHERE transaction_id IN ('{ids}')") == ["3"]


def test_320_004_same_request_eight_times_at_once(env, pki, keypool, race_store):
    """A client that sends its PKCSReq again while the first is still being
    answered (8 copies at once): one certificate, the same for all."""
    st = race_store
    storeenv.start_with(env, pki, st)
    for rnd in range(2):
        p = storeenv.prepare(keypool.clients(1, start=40 + rnd), pki.issuing.cert,
                             storeenv.STATIC_CHALLENGE)[0]
        results = storeenv.decode(storeenv.race(lambda i: env.port, [p] * 8))
        assert all(r.success for r in results), (rnd, storeenv.summary(results))
        assert len({r.rep.cert for r in results}) == 1
        assert st.query(f"SELECT count(*) FROM certificates "
                        f"WHERE transaction_id = '{p.txid}'") == ["1"]


def test_320_005_retry_after_a_kill_between_challenge_and_record(env, pki, keypool,
                                                                   request):
    """Deterministic: PostgreSQL holds an EXCLUSIVE lock on the certificates
    table (SELECTs and the challenge's UPDATE pass, the INSERT waits), the
    request consumes its one-time challenge and waits on the INSERT, every
    httpd child is SIGKILLed, the lock goes; the client sends the same
    request again and should get its certificate."""
    pg = request.getfixturevalue("pg")
    st = fresh_server(env, pki, "pgsql", request, "t320_burn")
    challenge = cli_challenge(env.root.conf)
    p = storeenv.prepare(keypool.clients(1, start=50), pki.issuing.cert, challenge)[0]
    locker = subprocess.Popen(
        ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "scep",
         "-d", storeenv.db_of(st.params)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    first = {}
    try:
        locker.stdin.write("BEGIN;\nLOCK TABLE certificates IN EXCLUSIVE MODE;\n"
                           "SELECT pg_sleep(60);\n")
        locker.stdin.flush()
        deadline = time.monotonic() + 10
        while st.query("SELECT count(*) FROM pg_locks l JOIN pg_class c "
                       "ON l.relation = c.oid WHERE c.relname = 'certificates' "
                       "AND l.mode = 'ExclusiveLock' AND l.granted") != ["1"]:
            assert time.monotonic() < deadline, "psql did not take the lock"
            time.sleep(0.05)
        t = threading.Thread(target=lambda: first.setdefault(
            "r", storeenv.send_one(env.port, p)), daemon=True)
        t.start()
        while st.query("SELECT count(*) FROM challenges WHERE consumed = 1") != ["1"]:
            assert time.monotonic() < deadline, "the challenge was not consumed"
            time.sleep(0.05)
        time.sleep(0.2)                          # now waiting on the INSERT
        for pid in storeenv.child_pids(env):
            os.kill(pid, signal.SIGKILL)
        t.join(30)
    finally:
        locker.kill()
        locker.wait(10)
        # the server side of psql sleeps on, holding the lock, until told
        st.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()")
    assert first["r"].http_status is None, "the first try was answered"
    assert st.query("SELECT count(*) FROM certificates") == ["0"]
    deadline = time.monotonic() + 15
    while not storeenv.server_answers(env.port):
        assert time.monotonic() < deadline, "httpd did not replace its children"
        time.sleep(0.1)
    again = storeenv.decode([storeenv.send_one(env.port, p)])[0]
    assert again.success, f"the retry of the interrupted request got {again.rep}"


def test_320_006_sqlite_writers_queue_on_the_store_mutex(env, pki, keypool):
    """With `Mutex flock:DIR scep-ota-store`, the test holds that lock
    file: a request already recorded is answered at once (reads take no
    lock), a new enrollment waits on its write and ends in SUCCESS once the
    lock is given back."""
    lockdir = env.root.path / "storelock"
    lockdir.mkdir(exist_ok=True)
    os.chmod(lockdir, 0o755)
    for f in lockdir.iterdir():
        f.unlink()
    st = Store("sqlite", env, name=f"t320_mutex_{env.mpm}")
    storeenv.start_with(env, pki, st, extra=f"Mutex flock:{lockdir} scep-ota-store")
    locks = [f for f in lockdir.iterdir() if "scep-ota-store" in f.name]
    assert len(locks) == 1, list(lockdir.iterdir())
    done, waiting = keypool.clients(2, start=60)
    done, waiting = storeenv.prepare([done, waiting], pki.issuing.cert,
                                     storeenv.STATIC_CHALLENGE)
    assert storeenv.decode([storeenv.send_one(env.port, done)])[0].success
    fd = os.open(locks[0], os.O_RDWR)
    second = {}
    t = threading.Thread(target=lambda: second.setdefault(
        "r", storeenv.send_one(env.port, waiting)), daemon=True)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        t0 = time.monotonic()
        again = storeenv.decode([storeenv.send_one(env.port, done)])[0]
        assert again.success and time.monotonic() - t0 < 5, again.rep
        t.start()
        t.join(2.0)
        assert t.is_alive(), "the enrollment did not wait for the lock"
        assert st.query("SELECT count(*) FROM certificates") == ["1"]
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    t.join(30)
    r = storeenv.decode([second["r"]])[0]
    assert r.success, r.rep
    assert st.query("SELECT count(*) FROM certificates") == ["2"]
