"""Helpers for the store tests (test_300..test_320) and bench/store.py:
a throw-away PostgreSQL through pg.sh, a pool of RSA keys, pre-built
PKCSReqs, a threaded load driver, and readers of the store (the
`scep-ota store` CLI, sqlite3, psql).

Every subprocess runs with a timeout; nothing here installs anything.
"""

import http.client
import itertools
import os
import pwd
import random
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import scepenv
import scepmsg

HERE = Path(__file__).resolve().parent
PG_SH = HERE / "pg.sh"
PKIOP = "/scep?operation=PKIOperation"
CMD_TIMEOUT = 30


def scep_ota_cli():
    """The scep-ota CLI: $SCEP_OTA_CLI, else tools/scep-ota of this tree."""
    env = os.environ.get("SCEP_OTA_CLI")
    return Path(env) if env else scepenv.repo_root() / "tools" / "scep-ota"


def run(cmd, timeout=CMD_TIMEOUT, check=True, env=None, **kw):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL, env=env, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {p.returncode}:\n"
                             f"{p.stdout}\n{p.stderr}")
    return p


# --------------------------------------------------------------------------
# PostgreSQL


def pg_bindir():
    dirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                  key=lambda d: [int(x) for x in re.findall(r"\d+", d.parent.name)] or [0])
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    if dirs and (dirs[-1] / "initdb").exists():
        return dirs[-1]
    w = shutil.which("initdb")
    return Path(w).parent if w else None


def pg_missing():
    """Why a PostgreSQL cluster cannot be started here, or None."""
    if pg_bindir() is None:
        return "no PostgreSQL server binaries (Debian package postgresql)"
    if not shutil.which("psql"):
        return "no psql (Debian package postgresql-client)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no user 'postgres'"
    if not list(Path("/usr/lib").glob("*/apr-util-1/apr_dbd_pgsql*.so")):
        return "no apr_dbd pgsql driver (Debian package libaprutil1-dbd-pgsql)"
    return None


class PgCluster:
    """A cluster started by pg.sh; one database per test via new_db()."""

    def __init__(self, directory, fsync="off"):
        self.dir = Path(directory) / "cluster"
        env = dict(os.environ, PG_FSYNC=fsync)
        p = run(["sh", PG_SH, "start", self.dir], timeout=90, env=env)
        self.params = p.stdout.strip().splitlines()[-1]
        self.port = int((self.dir / "port").read_text().strip())
        self._n = 0
        self._lock = threading.Lock()

    def stop(self):
        run(["sh", PG_SH, "stop", self.dir], timeout=60, check=False)

    def restart(self, mode="fast", down=0.0):
        """Restarts the server (pg_ctl -m fast: every session is ended;
        immediate: killed, as in a crash), down for `down` seconds in
        between; returns when it accepts connections again."""
        run(["sh", PG_SH, "restart", self.dir, mode, f"{down:.2f}"],
            timeout=150)

    @property
    def server_log(self):
        """The server's log (pg.sh keeps it across restarts)."""
        return self.dir / "server.log"

    def log_since(self, offset):
        """The server log from byte `offset` on."""
        with open(self.server_log, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def log_size(self):
        return self.server_log.stat().st_size

    def params_for(self, db):
        return f"host=127.0.0.1 port={self.port} user=scep dbname={db}"

    def psql(self, sql, db="scep", timeout=CMD_TIMEOUT):
        p = run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                 "-h", "127.0.0.1", "-p", self.port, "-U", "scep", "-d", db,
                 "-c", sql], timeout=timeout)
        return [ln for ln in p.stdout.splitlines() if ln]

    def new_db(self, prefix="t"):
        """A fresh, empty database; returns its apr_dbd params string."""
        with self._lock:
            self._n += 1
            name = f"{prefix}_{os.getpid()}_{self._n}"
        self.psql(f"CREATE DATABASE {name}")
        return self.params_for(name)


def db_of(params):
    return re.search(r"dbname=(\S+)", params).group(1)


# --------------------------------------------------------------------------
# Requesters and pre-built requests


@dataclass
class Prepared:
    """One PKCSReq, built before it is sent."""
    client: scepmsg.Client
    msg: bytes
    txid: str


class KeyPool:
    """RSA-2048 test keys, SIZE of them, cached on disk between runs
    (pytest's cache dir): making one takes ~0.1-0.2 s, so only the first
    run pays (~5 s on 2 cores).

    Requester i has key i % SIZE and the subject CN=client-<i % SIZE>, so
    a key always goes with the same subject: using a key again in one store
    (with a fresh transactionID) is a new enrollment of that subject and
    gets a new certificate, never a key certified to two subjects. Tests
    that need more requesters than keys (the 16 x 30 load) thus enroll each
    key a few times, every time as a distinct transaction."""

    SIZE = 64

    def __init__(self, cache_dir=None):
        self.cache_dir = cache_dir or private_tmp_dir("scep-ota-test-keys")
        self._keys = None
        self._clients = {}
        self._lock = threading.Lock()

    def keys(self):
        with self._lock:
            if self._keys is None:
                self._keys = scepmsg.load_or_make_keys(self.SIZE, self.cache_dir)
            return self._keys

    def client(self, i):
        i %= self.SIZE
        if i not in self._clients:
            self._clients[i] = scepmsg.make_client(self.keys()[i], f"client-{i:04d}")
        return self._clients[i]

    def clients(self, n, start=0):
        """n requesters from index start on; n may exceed SIZE (keys repeat)."""
        return [self.client(i) for i in range(start, start + n)]


def private_tmp_dir(name):
    """A directory of ours under the temp dir (0700, owned by us), or None
    when the name is taken by someone else."""
    import tempfile
    d = Path(tempfile.gettempdir()) / f"{name}-{os.geteuid()}"
    try:
        d.mkdir(mode=0o700, exist_ok=True)
        st = d.lstat()
    except OSError:
        return None
    if not d.is_dir() or d.is_symlink() or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        return None
    return str(d)


def prepare(clients, ca_cert, challenge, cipher="aes128", digest="sha256"):
    """One PKCSReq per client (a fresh transactionID each)."""
    out = []
    for c in clients:
        csr = scepmsg.make_csr(c, challenge)
        msg, txid, _ = scepmsg.build_pkcsreq(c, ca_cert, csr, cipher=cipher,
                                             digest=digest)
        out.append(Prepared(c, msg, txid))
    return out


# --------------------------------------------------------------------------
# Sending


@dataclass
class Result:
    prepared: Prepared
    http_status: int = None
    body: bytes = None
    error: str = None              # connection-level failure of the last try
    tries: int = 0
    latency: float = None          # seconds, of the answered try
    rep: scepmsg.CertRep = None
    sent: float = None             # time.monotonic() when first sent (Load)

    @property
    def success(self):
        return self.rep is not None and self.rep.status == scepmsg.SUCCESS


class Sender:
    """HTTP to 127.0.0.1:port. By default one connection per request, as
    many SCEP clients do: on a kept-alive connection a request can cross
    the server's closing of that idle connection (RFC 9112, 9.3.1), which
    is a property of HTTP keep-alive, not of the store, and would blur
    "0 failures". keepalive=True reuses the connection."""

    def __init__(self, port, timeout=30, keepalive=False):
        self.port = port
        self.timeout = timeout
        self.keepalive = keepalive
        self.conn = None

    def post(self, body):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                   timeout=self.timeout)
        try:
            self.conn.request("POST", PKIOP, body=body,
                              headers={"Content-Type": "application/x-pki-message"})
            r = self.conn.getresponse()
            data = r.read()
            if not self.keepalive or r.getheader("Connection", "").lower() == "close":
                self.close()
            return r.status, data
        except BaseException:
            self.close()
            raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def send_one(port, prepared, retries=0, sender=None):
    """Sends a request (and, on a connection error, the very same request
    again, up to `retries` times: a SCEP client's retry)."""
    res = Result(prepared)
    s = sender or Sender(port)
    try:
        while True:
            res.tries += 1
            t0 = time.monotonic()
            try:
                res.http_status, res.body = s.post(prepared.msg)
                res.latency = time.monotonic() - t0
                res.error = None
                break
            except (OSError, http.client.HTTPException) as e:
                res.error = f"{type(e).__name__}: {e}"
                if res.tries > retries:
                    break
                time.sleep(0.02)
    finally:
        if sender is None:
            s.close()
    return res


def run_load(port, batches, retries=0, barrier_timeout=30):
    """Sends batches[i] (a list of Prepared) from thread i, all threads
    starting together, each on keep-alive connections; returns the Results
    in batch order. `port` is a port, or a function (thread i, request j)
    -> port. Replies are not decoded here (see decode())."""
    port_of = port if callable(port) else (lambda i, j: port)
    results = [[None] * len(b) for b in batches]
    barrier = threading.Barrier(len(batches))

    def worker(i):
        senders = {}
        try:
            barrier.wait(barrier_timeout)
            for j, p in enumerate(batches[i]):
                pt = port_of(i, j)
                s = senders.setdefault(pt, Sender(pt))
                results[i][j] = send_one(pt, p, retries=retries, sender=s)
        finally:
            for s in senders.values():
                s.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
        assert not t.is_alive(), "a load thread did not finish in 300 s"
    return [r for batch in results for r in batch]


class Load:
    """Requests from `threads` threads, each sending one after the other
    (a fresh connection each) until stop(), while a test changes something
    under it. make(i) builds request i (a Prepared) in the sending thread,
    so the load runs as long as needed; pause (seconds) between a thread's
    requests keeps the rate modest. Replies are decoded as they come
    (verify_with: the CA certificate), so the test can watch them."""

    def __init__(self, port, make, threads=3, pause=0.02, verify_with=None):
        self.port = port
        self.make = make
        self.pause = pause
        self.verify_with = verify_with
        self.results = []
        self._n = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._worker, daemon=True)
                         for _ in range(threads)]

    def _worker(self):
        while not self._stop.is_set():
            p = self.make(next(self._n))
            t0 = time.monotonic()
            r = send_one(self.port, p)
            r.sent = t0
            decode([r], verify_with=self.verify_with)
            with self._lock:
                self.results.append(r)
            self._stop.wait(self.pause)

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(120)
            assert not t.is_alive(), "a load thread did not finish in 120 s"
        return self.snapshot()

    def snapshot(self):
        with self._lock:
            return list(self.results)

    def wait_for(self, predicate, timeout):
        """Polls until predicate(results so far) is true; returns whether
        it became true within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate(self.snapshot()):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True


def decode(results, verify_with=None):
    """Parses every answered reply (and opens the envelope of a SUCCESS
    with the requester's key)."""
    for r in results:
        if r.http_status == 200 and r.body:
            r.rep = scepmsg.parse_certrep(r.body, r.prepared.client.key,
                                          verify_with=verify_with)
    return results


def enroll_one(port, ca_cert, client, challenge=None):
    """One PKCSReq of client to the server on port with the static
    challenge (or challenge); its certificate reply, which must be a
    SUCCESS signed by ca_cert."""
    p = prepare([client], ca_cert, challenge or STATIC_CHALLENGE)[0]
    r = decode([send_one(port, p)], verify_with=ca_cert)[0]
    assert r.success, r.rep
    return r.rep


def summary(results):
    """Counts by outcome, for assertion messages."""
    out = {}
    for r in results:
        if r.rep is not None:
            k = r.rep.status_name + (f" {r.rep.fail_name}"
                                     if r.rep.status == scepmsg.FAILURE else "")
        elif r.error:
            k = f"connection error ({r.error})"
        else:
            k = f"HTTP {r.http_status}"
        out[k] = out.get(k, 0) + 1
    return out


def race(port_of, prepared, rounds_timeout=30):
    """Sends all `prepared` at once, one thread and one fresh connection
    each, released together by a barrier after they connected;
    port_of(i) names the server request i goes to."""
    barrier = threading.Barrier(len(prepared))
    results = [None] * len(prepared)

    def worker(i):
        s = Sender(port_of(i))
        s.conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        s.conn.connect()
        try:
            barrier.wait(rounds_timeout)
            results[i] = send_one(s.port, prepared[i], sender=s)
        finally:
            s.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(len(prepared))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "a racing request did not finish in 60 s"
    return results


# --------------------------------------------------------------------------
# Reading the store


def cli_store(conf, *args, timeout=CMD_TIMEOUT, check=True):
    """Runs `scep-ota store -f CONF ARGS...`."""
    return run([scep_ota_cli(), "store", "-f", conf, *args], timeout=timeout,
               check=check)


def cli_list(conf, status=None):
    """{serial: (status, subject)} from `scep-ota store list -f CONF`."""
    args = ["list"] + (["--status", status] if status else [])
    out = cli_store(conf, *args).stdout.splitlines()
    assert out and out[0].split()[0] == "SERIAL", out[:3]
    recs = {}
    for ln in out[1:]:
        f = ln.split(None, 3)
        assert f[0] not in recs, f"serial {f[0]} listed twice"
        recs[f[0]] = (f[1], f[3] if len(f) > 3 else "")
    return recs


def cli_challenge(conf, *args):
    p = cli_store(conf, "challenge", *args)
    lines = p.stdout.split()
    assert len(lines) == 1, p.stdout
    return lines[0]


def _as_owner(path):
    """Command prefix that runs a tool as the owner of `path` (so SQLite
    never creates a -wal or -shm the httpd children cannot write)."""
    st = os.stat(path)
    if os.geteuid() == 0 and st.st_uid != 0:
        return ["runuser", "-u", pwd.getpwuid(st.st_uid).pw_name, "--"]
    return []


def sqlite_query(db, sql):
    p = run([*_as_owner(db), "sqlite3", "-batch", "-cmd", ".timeout 10000",
             db, sql])
    return [ln for ln in p.stdout.splitlines() if ln]


def sqlite_serials(db):
    return sqlite_query(db, "SELECT serial FROM certificates")


def pg_serials(pg, params):
    return pg.psql("SELECT serial FROM certificates", db=db_of(params))


# --------------------------------------------------------------------------
# httpd


def child_pids(env):
    """The httpd children of env's running server (not the parent)."""
    parent = env._read_pid(env.root)
    return [p for p in scepenv.processes_of(env.root) if p != parent]


def server_answers(port, timeout=5):
    try:
        r = scepenv.http_request(port, "GET", "/scep?operation=GetCACaps",
                                 timeout=timeout)
        return r.status == 200
    except OSError:
        return False


class Killer(threading.Thread):
    """kill -9 of a random httpd child every `interval` seconds until
    stopped; counts what it killed."""

    def __init__(self, env, interval=0.15, seed=None):
        super().__init__(daemon=True)
        self.env = env
        self.interval = interval
        self.stop_event = threading.Event()
        self.killed = []
        self.rng = random.Random(seed)

    def run(self):
        while not self.stop_event.wait(self.interval):
            pids = child_pids(self.env)
            if not pids:
                continue
            pid = self.rng.choice(pids)
            try:
                os.kill(pid, 9)
                self.killed.append(pid)
            except ProcessLookupError:
                pass

    def stop(self):
        self.stop_event.set()
        self.join(10)


def second_env(mpm, base_dir, pytestconfig):
    """Another ScepEnv (own server root and port) for two-node tests."""
    level = pytestconfig.getoption("--scep-loglevel")
    return scepenv.ScepEnv(mpm, base_dir, httpd=pytestconfig.getoption("--httpd"),
                           module_loglevel=None if level == "none" else level)


# --------------------------------------------------------------------------
# Stores and server configs

STATIC_CHALLENGE = "store-tests-static-secret"
KINDS = ("sqlite", "pgsql", "dbd")

# enough prefork children (or event threads) that 16 clients, or 8 racing
# requests, really run at once
MPM_TUNING = """\
<IfModule mpm_prefork_module>
    StartServers            16
    MinSpareServers         8
    MaxSpareServers         16
    MaxRequestWorkers       32
</IfModule>"""


_store_numbers = itertools.count(1)


class Store:
    """A fresh, empty store of one kind, and how to read it directly. Every
    Store has a name of its own, so its config differs from every config
    before it and env.ensure() restarts httpd on it."""

    def __init__(self, kind, env, pg=None, name="store"):
        name = f"{name}_{next(_store_numbers)}"
        self.kind = kind
        self.name = name
        self.pg = pg
        self.extra_modules = ()
        if kind == "sqlite":
            self.rel = f"state/{name}.db"
            self.path = env.root.path / self.rel
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            self.directives = f"SCEPStore sqlite3:{self.rel}"
        elif kind == "pgsql":
            self.params = pg.new_db(name)
            self.directives = f'SCEPStore "pgsql:{self.params}"'
        elif kind == "dbd":
            self.params = pg.new_db(name)
            self.directives = (f"DBDriver pgsql\nDBDParams \"{self.params}\"\n"
                               "SCEPStore dbd")
            self.extra_modules = ("dbd",)
        else:
            raise ValueError(kind)

    def serials(self):
        """Serials of the certificates table, read with sqlite3 or psql."""
        if self.kind == "sqlite":
            return sqlite_serials(self.path)
        return pg_serials(self.pg, self.params)

    def query(self, sql):
        if self.kind == "sqlite":
            return sqlite_query(self.path, sql)
        return self.pg.psql(sql, db=db_of(self.params))


def server_snippet(pki, store, extra=""):
    return "\n".join([
        scepenv.scep_directives(pki.ca_chain_file, pki.issuing.key_file),
        f"SCEPChallengePassword {STATIC_CHALLENGE}",
        store.directives,
        MPM_TUNING,
        scepenv.scep_location("/scep"),
        extra,
    ])


def start_with(env, pki, store, extra=""):
    env.ensure(server_snippet(pki, store, extra), extra_modules=store.extra_modules)
