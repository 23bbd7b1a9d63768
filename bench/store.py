#!/usr/bin/python3
"""Enrollments/s through mod_scep_ota with each store, in one run:

  baseline   SQLite on a tmpfs (/dev/shm): the module has no store-less
             mode, so this is the closest to "no store": the same SQL, but
             fsync costs nothing;
  sqlite     SQLite on disk (WAL, synchronous=FULL), the default store;
  dbd        PostgreSQL through mod_dbd (SCEPStore dbd), fsync on;
  pgsql      PostgreSQL with the module's own connections (SCEPStore pgsql:).

Each run replays the same pre-built, distinct PKCSReqs (AES-128-CBC,
SHA-256, RSA-2048 requesters; every one a transactionID of its own) against
a fresh, empty store, from 1, 4 and 16 client threads (one connection per
request), and counts SUCCESS replies only. Runs are interleaved (every
store at one concurrency, then the next round) so machine noise hits all
alike; each figure is the median of the rounds. The crypto bound is
measured in the same run: `openssl speed -multi NCPU rsa2048` signs/s
divided by the 3 RSA private-key operations of an enrollment.

    bench/store.py [--requests N] [--rounds R] [--concurrency 1,4,16]
                   [--stores baseline,sqlite,dbd,pgsql] [--mpm event]
                   [--extra-conf 'httpd config lines']

Needs a built module, apache2, openssl, python3-cryptography, and for the
PostgreSQL stores postgresql + libaprutil1-dbd-pgsql (tests/integration/pg.sh
starts a throw-away cluster on a loopback port). Run as root (httpd's
children then run as www-data) or as a user.
"""

import argparse
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP / "tests" / "integration"))
sys.path.insert(0, str(TOP / "bench"))

import benchlib  # noqa: E402
import scepenv  # noqa: E402
import scepmsg  # noqa: E402
import storeenv  # noqa: E402
from testpki import TestPKI  # noqa: E402

STORES = ("baseline", "sqlite", "dbd", "pgsql")


def crypto_bound(seconds=3):
    """(signs/s of RSA-2048 on all cores, that / 3)."""
    signs = benchlib.rsa2048_signs(seconds)
    return signs, signs / 3


class Bench:
    def __init__(self, args, work):
        self.args = args
        self.work = work
        self.pg = None
        self.shm = Path(f"/dev/shm/scep-ota-bench-{os.getpid()}")
        self.n = 0
        base = work / "srv"
        base.mkdir()
        scepenv.open_path_for_workers(base)
        # a copy of the module: every run uses the same binary, whatever a
        # concurrent `make` does to the build tree
        module = work / "mod_scep_ota.so"
        shutil.copy2(scepenv.module_path(), module)
        os.chmod(module, 0o755)
        self.env = scepenv.ScepEnv(args.mpm, base, module=module,
                                   module_loglevel=None)
        self.pki = TestPKI(work / "pki")
        scepenv.open_path_for_workers(work / "pki")

    def close(self):
        try:
            self.env.apache_stop()
        finally:
            self.env.remove()
            if self.pg:
                self.pg.stop()
            shutil.rmtree(self.shm, ignore_errors=True)

    def start_pg(self):
        if self.pg is None:
            why = storeenv.pg_missing()
            if why:
                raise SystemExit(f"bench: PostgreSQL stores need {why}")
            d = self.work / "pg"
            d.mkdir()
            scepenv.open_path_for_workers(d)
            self.pg = storeenv.PgCluster(d, fsync="on")
        return self.pg

    def store_config(self, store):
        """(SCEPStore lines, extra modules, a function counting the
        certificates recorded) for a fresh store."""
        self.n += 1
        name = f"run{self.n}"
        if store in ("baseline", "sqlite"):
            # the module creates the directory (and hands it to the
            # worker user); tmpfs for the baseline, ServerRoot's disk else
            d = self.shm if store == "baseline" else self.env.root.path / "state"
            path = d / f"{name}.db"
            return (f"SCEPStore sqlite3:{path}", (),
                    lambda: int(storeenv.sqlite_query(
                        path, "SELECT count(*) FROM certificates")[0]))
        pg = self.start_pg()
        params = pg.new_db(name)
        count = (lambda: int(pg.psql("SELECT count(*) FROM certificates",
                                     db=storeenv.db_of(params))[0]))
        if store == "pgsql":
            return f'SCEPStore "pgsql:{params}"', (), count
        return (f'DBDriver pgsql\nDBDParams "{params}"\nSCEPStore dbd',
                ("dbd",), count)

    def run(self, store, conc, warmup, reqs):
        lines, mods, count = self.store_config(store)
        snippet = "\n".join([
            scepenv.scep_directives(self.pki.ca_chain_file, self.pki.issuing.key_file),
            f"SCEPChallengePassword {storeenv.STATIC_CHALLENGE}",
            lines,
            storeenv.MPM_TUNING,
            scepenv.scep_location("/scep"),
            self.args.extra_conf,
        ])
        self.env.apache_restart(snippet, extra_modules=mods)
        port = self.env.port
        # warm-up: every thread's first request opens its database connection
        w = storeenv.run_load(port, [warmup[i::conc] for i in range(conc)])
        results, wall, cpu = drive(port, reqs, conc)
        ok = 0
        lat = []
        for r in results:
            if r.http_status == 200 and r.body:
                if scepmsg.parse_certrep(r.body).status == scepmsg.SUCCESS:
                    ok += 1
                    lat.append(r.latency)
        w_ok = sum(1 for r in w if r.http_status == 200 and
                   scepmsg.parse_certrep(r.body).status == scepmsg.SUCCESS)
        recorded = count()
        if recorded != ok + w_ok:
            print(f"  WARNING: {store} c={conc}: {ok + w_ok} SUCCESS but "
                  f"{recorded} certificates recorded", flush=True)
        lat.sort()
        return {
            "rate": ok / wall,
            "ok": ok,
            "n": len(reqs),
            "p50": 1000 * pct(lat, 50),
            "p99": 1000 * pct(lat, 99),
            "client_cpu": cpu / wall,
        }


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, round(p / 100 * len(sorted_vals)) - 1))
    return sorted_vals[k]


def drive(port, reqs, conc):
    """conc threads take the next request until none is left; returns
    (results, wall seconds, client CPU seconds)."""
    nxt = iter(range(len(reqs)))
    lock = threading.Lock()
    results = [None] * len(reqs)
    barrier = threading.Barrier(conc + 1)

    def worker():
        s = storeenv.Sender(port)
        barrier.wait()
        while True:
            with lock:
                i = next(nxt, None)
            if i is None:
                return
            results[i] = storeenv.send_one(port, reqs[i], sender=s)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(conc)]
    for t in threads:
        t.start()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    barrier.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join(600)
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return results, wall, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=800,
                    help="distinct PKCSReqs per run (default 800)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--stores", default=",".join(STORES))
    ap.add_argument("--mpm", default="event", choices=("event", "worker", "prefork"))
    ap.add_argument("--extra-conf", default="",
                    help="more httpd config lines, e.g. MPM settings")
    ap.add_argument("--key-cache", default=str(TOP / ".pytest_cache" / "d" / "scep-ota-keys"),
                    help="where the RSA test keys are kept between runs "
                         "(default: the integration tests' cache)")
    args = ap.parse_args()
    concs = [int(c) for c in args.concurrency.split(",")]
    stores = [s for s in args.stores.split(",") if s]
    for s in stores:
        if s not in STORES:
            raise SystemExit(f"bench: unknown store {s}; choose from {STORES}")
    if not scepenv.module_path().exists():
        raise SystemExit(scepenv.missing_module_message(scepenv.module_path()))

    # `timeout` or Ctrl-C: stop httpd and PostgreSQL on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t_start = time.monotonic()
    signs, bound = crypto_bound()
    print(f"crypto bound: openssl speed -multi {os.cpu_count()} rsa2048: "
          f"{signs:.0f} signs/s -> {bound:.0f} enrollments/s (3 RSA private-key "
          f"operations each)", flush=True)

    work = Path(tempfile.mkdtemp(prefix="scep-bench-store."))
    os.chmod(work, 0o755)
    bench = None
    try:
        Path(args.key_cache).mkdir(parents=True, exist_ok=True)
        pool = storeenv.KeyPool(args.key_cache)
        t = time.monotonic()
        pool.keys()
        bench = Bench(args, work)
        clients = pool.clients(args.requests + 64)
        reqs = storeenv.prepare(clients[:args.requests], bench.pki.issuing.cert,
                                storeenv.STATIC_CHALLENGE)
        warmup = storeenv.prepare(clients[args.requests:], bench.pki.issuing.cert,
                                  storeenv.STATIC_CHALLENGE)
        print(f"{len(reqs)} PKCSReqs (+{len(warmup)} for warm-up) built from "
              f"{pool.SIZE} RSA-2048 keys in {time.monotonic() - t:.1f} s; "
              f"MPM {args.mpm}, {os.cpu_count()} cores", flush=True)
        data = {}
        for rnd in range(args.rounds):
            for conc in concs:
                for store in stores:
                    res = bench.run(store, conc, warmup[:max(conc * 2, 8)], reqs)
                    data.setdefault((store, conc), []).append(res)
                    print(f"  round {rnd + 1} {store:8s} c={conc:<2d} "
                          f"{res['rate']:7.1f}/s  p50 {res['p50']:6.1f} ms  "
                          f"p99 {res['p99']:6.1f} ms  ok {res['ok']}/{res['n']}",
                          flush=True)
    finally:
        if bench:
            bench.close()
        shutil.rmtree(work, ignore_errors=True)

    def med(store, conc, key):
        return statistics.median(r[key] for r in data[(store, conc)])

    print()
    print(f"{'store':9s} {'c':>3s} {'enroll/s':>9s} {'of bound':>9s} "
          f"{'vs base':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'SUCCESS':>9s} {'client CPU':>10s}")
    for conc in concs:
        for store in stores:
            rate = med(store, conc, "rate")
            base = med("baseline", conc, "rate") if "baseline" in stores else None
            ok = sum(r["ok"] for r in data[(store, conc)])
            n = sum(r["n"] for r in data[(store, conc)])
            print(f"{store:9s} {conc:3d} {rate:9.1f} {100 * rate / bound:8.0f}% "
                  f"{(f'{100 * rate / base:7.0f}%') if base else '       -'} "
                  f"{med(store, conc, 'p50'):8.1f} {med(store, conc, 'p99'):8.1f} "
                  f"{ok:4d}/{n:<4d} {100 * med(store, conc, 'client_cpu'):9.0f}%")
    print(f"\n(medians of {args.rounds} rounds of {args.requests} enrollments; "
          f"bound {bound:.0f}/s; client CPU = the driver's share of one core; "
          f"total {time.monotonic() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
