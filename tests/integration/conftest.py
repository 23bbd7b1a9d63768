"""pytest wiring for the mod_scep_ota integration tests (see README.md)."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scepenv  # noqa: E402
import storeenv  # noqa: E402
from testpki import TestPKI  # noqa: E402

MPMS = ("event", "worker", "prefork")


def pytest_addoption(parser):
    g = parser.getgroup("mod_scep_ota", "mod_scep_ota integration tests")
    g.addoption("--mpm", default=os.environ.get("MPM", "event,prefork"),
                help="comma-separated MPMs to run every test under "
                     "(event, worker, prefork; default: event,prefork; env MPM)")
    g.addoption("--scep-loglevel", default="trace4",
                help="LogLevel for scep_ota in the generated configs "
                     "(default trace4; 'none' leaves it at warn)")
    g.addoption("--httpd", default=os.environ.get("APACHE2", scepenv.DEFAULT_HTTPD),
                help="httpd binary (default /usr/sbin/apache2; env APACHE2)")
    g.addoption("--keep-servers", action="store_true",
                help="leave the generated server roots on disk")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "harness: tests of the harness itself; they do not load mod_scep_ota")
    config.addinivalue_line(
        "markers", "interim: asserts behaviour of an unfinished feature "
                   "(e.g. PKIOperation -> 501); update it when the feature lands")
    mpms = [m.strip() for m in config.getoption("--mpm").split(",") if m.strip()]
    bad = [m for m in mpms if m not in MPMS]
    if bad or not mpms:
        raise pytest.UsageError(f"--mpm: unknown MPM(s) {bad}; choose from {MPMS}")
    config._scep_mpms = mpms


def pytest_collection_finish(session):
    """Stop at once, with one clear message, when the module is not built
    and some selected test needs it."""
    needs_module = [i for i in session.items if not i.get_closest_marker("harness")]
    path = scepenv.module_path()
    if needs_module and not path.exists():
        pytest.exit(scepenv.missing_module_message(path), returncode=2)


def pytest_generate_tests(metafunc):
    if "mpm" in metafunc.fixturenames:
        metafunc.parametrize("mpm", metafunc.config._scep_mpms, scope="session")


def pytest_report_header(config):
    path = scepenv.module_path()
    state = "" if path.exists() else "  (MISSING: run make)"
    return [f"mod_scep_ota: {path}{state}",
            f"httpd: {config.getoption('--httpd')}, MPMs: {','.join(config._scep_mpms)}"]


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """The test PKI (see testpki.py), readable by the httpd workers."""
    d = tmp_path_factory.mktemp("pki")
    scepenv.open_path_for_workers(d)
    return TestPKI(d)


@pytest.fixture(scope="session")
def pg(tmp_path_factory):
    """A throw-away PostgreSQL cluster on a loopback port (pg.sh), started
    when a test first asks for it and stopped at the end of the session.
    fsync is off: these tests kill httpd children, not the database.
    pg.new_db() gives each test a database of its own."""
    why = storeenv.pg_missing()
    if why:
        pytest.skip(f"PostgreSQL tests need {why}")
    d = tmp_path_factory.mktemp("pg")
    scepenv.open_path_for_workers(d)   # as root the server runs as postgres
    cluster = storeenv.PgCluster(d, fsync="off")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def keypool(pytestconfig):
    """RSA-2048 test keys for the store and load tests, cached between runs
    in pytest's cache directory (with -p no:cacheprovider: in a private
    directory under /tmp); the first run makes them (~0.1-0.2 s a key)."""
    cache = getattr(pytestconfig, "cache", None)
    return storeenv.KeyPool(cache.mkdir("scep-ota-keys") if cache else None)


@pytest.fixture(scope="session")
def own_keys(tmp_path_factory, pytestconfig):
    """Named RSA keys for the suite's own SCEP client (scepclient_own.py):
    the same name gives the same key, cached between runs."""
    import scepclient_own
    cache = getattr(pytestconfig, "cache", None)
    return scepclient_own.KeyBox(tmp_path_factory.mktemp("own-keys"),
                                 cache.mkdir("scep-ota-own-keys") if cache else None)


@pytest.fixture(scope="session")
def env(mpm, tmp_path_factory, pytestconfig):
    """The httpd under test for one MPM; every test using it runs once per
    MPM given with --mpm."""
    level = pytestconfig.getoption("--scep-loglevel")
    e = scepenv.ScepEnv(mpm, tmp_path_factory.mktemp(f"srv-{mpm}"),
                        httpd=pytestconfig.getoption("--httpd"),
                        module_loglevel=None if level == "none" else level)
    yield e
    try:
        e.apache_stop()
    finally:
        if not pytestconfig.getoption("--keep-servers"):
            e.remove()


_sanitizer_seen = set()


def _new_sanitizer_reports():
    """Sanitizer report files (SCEP_TEST_ASAN=1) not yet blamed on a test."""
    new = {p: t for p, t in scepenv.sanitizer_reports().items()
           if p not in _sanitizer_seen}
    _sanitizer_seen.update(new)
    return new


@pytest.fixture(autouse=True)
def _sanitizer_check():
    """With SCEP_TEST_ASAN=1: fail the test during which httpd or a CLI
    wrote a sanitizer report (reports older than the test fail it too:
    a child may die after the previous test already passed)."""
    if not scepenv.ASAN:
        yield
        return
    old = _new_sanitizer_reports()
    yield
    new = {**old, **_new_sanitizer_reports()}
    if new:
        pytest.fail("sanitizer reports:\n" + "\n".join(
            f"--- {p}\n{t}" for p, t in new.items()), pytrace=False)


def pytest_sessionfinish(session, exitstatus):
    """A report that appeared after the last test fails the run."""
    if not scepenv.ASAN:
        return
    new = _new_sanitizer_reports()
    if new:
        sys.stderr.write("sanitizer reports after the last test:\n" + "\n".join(
            f"--- {p}\n{t}" for p, t in new.items()) + "\n")
        session.exitstatus = 1


@pytest.fixture(autouse=True)
def _error_log_check(request):
    """After each test that uses `env`: fail on new error-log lines at warn
    level or worse that the test did not declare with env.expect_log()."""
    if "env" not in request.fixturenames:
        yield
        return
    e = request.getfixturevalue("env")
    e.begin_test()
    yield
    bad = e.end_test()
    if bad:
        pytest.fail(f"unexpected error log lines ({e.mpm}):\n" + "\n".join(bad),
                    pytrace=False)
