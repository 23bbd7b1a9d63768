"""PostgreSQL restarted under the module, for `SCEPStore dbd` (mod_dbd's
connections) and `SCEPStore pgsql:` (the module's own pool).

Under a running enrollment load, with the database down for a second:
every request gets a certificate, or a signed FAILURE while the database
is away (never a 500, a dropped connection or a dead child); enrollments
succeed again within RECOVERY_BOUND seconds of the restart, and every one
sent after it succeeds; every certificate a client was given is in the
database, serials unique; each new server session of the module ran its
session setup (SET synchronous_commit TO on) before any of its statements,
as PostgreSQL's own statement log shows; the module said once that it is
connected again.

After a restart while httpd was idle (the server killed, as in a crash),
not one request fails: the first statement to meet a lost connection is a
read, which runs again on a new connection, and the other idle connections
are checked before use.
"""

import re
import time

import pytest

import scepmsg
import storeenv
from storeenv import Store

KINDS = ("dbd", "pgsql")

# a liveness bound, not a benchmark: the module needs no time of its own,
# the first request after the restart reconnects
RECOVERY_BOUND = 5.0

# what a request meeting the database down may log: the lost connection,
# no connection, the failed store operation, a child's first schema check
# and its claim of records without a CA (SCEPStore dbd), and mod_dbd's own
# lines for a connection it cannot (re)open
OUTAGE_LOG = (r"SCEP4050", r"SCEP4010", r"SCEP2002", r"SCEP4003", r"SCEP4002",
              r"SCEP4005", r"AH00629", r"AH00639", r"AH02655")


def new_store(env, pki, pg, kind, what):
    """A fresh store whose database logs every statement (for the session
    setup check), and httpd on it."""
    st = Store(kind, env, pg, name=f"t315_{what}_{kind}_{env.mpm}")
    st.query(f"ALTER DATABASE {storeenv.db_of(st.params)} "
             "SET log_statement = 'all'")
    storeenv.start_with(env, pki, st)
    return st


def maker(keypool, pki, start):
    def make(i):
        return storeenv.prepare([keypool.client(start + i)], pki.issuing.cert,
                                storeenv.STATIC_CHALLENGE)[0]
    return make


def assert_answered(results):
    """A certificate, or a signed FAILURE; nothing else."""
    odd = [r for r in results
           if not r.success and not (r.http_status == 200 and r.rep is not None
                                     and r.rep.status == scepmsg.FAILURE
                                     and r.rep.signature_ok)]
    assert not odd, storeenv.summary(odd)


def assert_recorded(st, results):
    ok = [r for r in results if r.success]
    serials = [r.rep.serial for r in ok]
    assert len(set(serials)) == len(serials), "a serial was given twice"
    stored = st.serials()
    assert len(set(stored)) == len(stored)
    missing = set(serials) - set(stored)
    assert not missing, f"{len(missing)} of {len(serials)} certificates lost"
    return len(ok)


def assert_no_dead_child(env, offset):
    log = env.read_log(offset)
    assert not re.search(r"AH00052|exit signal|Segmentation", log), \
        [ln for ln in log.splitlines() if "exit signal" in ln or "AH00052" in ln]


_PG_EVENT = re.compile(r"\[(\d+)\] LOG:\s+(?:statement: (SET synchronous_commit "
                       r"TO on|PREPARE scep_ota_)|(execute scep_ota_))")


def assert_sessions_set_up(pg, offset):
    """In PostgreSQL's log after the restart (from byte `offset` on):
    every backend that prepared or ran a statement of the module had run
    `SET synchronous_commit TO on` before. Returns how many backends."""
    text = pg.log_since(offset)
    ready = text.rfind("database system is ready to accept connections")
    assert ready >= 0, "no restart in the server log"
    first, used = {}, set()
    for m in _PG_EVENT.finditer(text[ready:]):
        pid, setup = m.group(1), m.group(2) == "SET synchronous_commit TO on"
        first.setdefault(pid, setup)
        if not setup:
            used.add(pid)
    bad = sorted(pid for pid in used if not first[pid])
    assert not bad, ("backends ran the module's statements without its "
                     f"session setup before: {bad}")
    assert used, "no statement of the module ran after the restart"
    return len(used)


@pytest.mark.parametrize("down", (0.0, 1.0), ids=("restart", "outage"))
@pytest.mark.parametrize("kind", KINDS)
def test_315_001_restart_under_load(env, pki, pg, keypool, kind, down):
    """A plain restart (pg_ctl restart -m fast), and one with the server
    down for a second in between."""
    st = new_store(env, pki, pg, kind, "load")
    env.expect_log(*OUTAGE_LOG)
    elog = env.log_size()
    load = storeenv.Load(env.port, maker(keypool, pki, 0), threads=3,
                         verify_with=pki.issuing.cert).start()
    try:
        assert load.wait_for(lambda rs: sum(r.success for r in rs) >= 10, 60), \
            storeenv.summary(load.snapshot())
        pglog = pg.log_size()
        t_down = time.monotonic()
        pg.restart("fast", down=down)
        up = time.monotonic()
        assert load.wait_for(lambda rs: any(r.success and r.sent >= up
                                            for r in rs), RECOVERY_BOUND + 30)
        first = min((r for r in load.snapshot() if r.success and r.sent >= up),
                    key=lambda r: r.sent + r.latency)
        recovery = first.sent + first.latency - up
        # go on for a while on the database that is back
        assert load.wait_for(lambda rs: sum(r.success and r.sent >= up
                                            for r in rs) >= 20, 60)
    finally:
        results = load.stop()
    print(f"\n{kind}/{env.mpm}: restart took {up - t_down:.2f} s "
          f"(down {down} s), first enrollment after it done in "
          f"{recovery:.3f} s; {storeenv.summary(results)}")
    assert_answered(results)
    if down:
        during = [r for r in results if t_down <= r.sent < up - 0.5]
        assert during and not all(r.success for r in during), \
            "the load did not meet the database down"
    assert recovery <= RECOVERY_BOUND, f"recovered after {recovery:.2f} s"
    after = [r for r in results if r.sent >= up]
    assert all(r.success for r in after), storeenv.summary(after)
    assert_recorded(st, results)
    assert_sessions_set_up(pg, pglog)
    assert_no_dead_child(env, elog)
    log = env.read_log(elog)
    assert re.search(r"SCEP4050", log), "the load met no lost connection"
    assert "SCEP4051" in log, "no line said the store reconnected"


@pytest.mark.parametrize("kind", KINDS)
def test_315_002_restart_while_idle_fails_nothing(env, pki, pg, keypool, kind):
    st = new_store(env, pki, pg, kind, "idle")
    # met and replaced, never failing a request
    env.expect_log(r"SCEP4050.*running it again")
    elog = env.log_size()
    make = maker(keypool, pki, 7)
    warm = storeenv.decode(storeenv.run_load(
        env.port, [[make(4 * t + j) for j in range(4)] for t in range(4)]),
        pki.issuing.cert)
    assert all(r.success for r in warm), storeenv.summary(warm)
    pglog = pg.log_size()
    pg.restart("immediate")
    reqs = [[make(100 + 6 * t + j) for j in range(6)] for t in range(4)]
    results = storeenv.decode(storeenv.run_load(env.port, reqs),
                              pki.issuing.cert)
    assert all(r.success for r in results), storeenv.summary(results)
    assert assert_recorded(st, warm + results) == 40
    assert_sessions_set_up(pg, pglog)
    assert re.search(r"SCEP4050.*running it again", env.read_log(elog))
    assert_no_dead_child(env, elog)


@pytest.mark.parametrize("kind", KINDS)
def test_315_003_statement_error_on_a_live_connection(env, pki, pg, keypool,
                                                      kind):
    """The certificates table renamed away for a while: the module's
    statements fail on connections that still answer (signed FAILUREs),
    and once it is back every enrollment succeeds again. On a mod_dbd
    connection our statements are then prepared anew in a session that may
    still hold them (dropped first), as such a failure may as well come
    from a session mod_dbd reopened after another module broke it."""
    st = new_store(env, pki, pg, kind, "sqlerr")
    make = maker(keypool, pki, 30)
    # (a prefork child that starts meanwhile fails its first look at the
    # store too: SCEP4005, SCEP4010)
    env.expect_log(r"SCEP4011", r"SCEP2002", r"SCEP4005", r"SCEP4010")
    warm = storeenv.decode(storeenv.run_load(
        env.port, [[make(3 * t + j) for j in range(3)] for t in range(3)]),
        pki.issuing.cert)
    assert all(r.success for r in warm), storeenv.summary(warm)
    st.query("ALTER TABLE certificates RENAME TO certificates_away")
    try:
        away = storeenv.decode(storeenv.run_load(
            env.port, [[make(20 + 3 * t + j) for j in range(3)]
                       for t in range(3)]), pki.issuing.cert)
    finally:
        st.query("ALTER TABLE certificates_away RENAME TO certificates")
    assert_answered(away)
    assert not any(r.success for r in away), storeenv.summary(away)
    back = storeenv.decode(storeenv.run_load(
        env.port, [[make(40 + 4 * t + j) for j in range(4)] for t in range(3)]),
        pki.issuing.cert)
    assert all(r.success for r in back), storeenv.summary(back)
    assert assert_recorded(st, warm + back) == 21
