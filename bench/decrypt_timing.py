#!/usr/bin/python3
"""Response times of PKIOperations that fail to decrypt: is the RA key a
timing oracle? (issue 6, item 4; section 8 of the SCEP reference.)

Kinds of request, all otherwise alike (same requester, same transactionID
length, a CSR with the right challenge, AES-128-CBC, SHA-256):

  bad-padding     the RSA-encrypted key's plaintext is not PKCS#1 v1.5
                  (block type 3): RSA decryption itself fails;
  good-padding    correct PKCS#1 v1.5 around a random 16-byte key that is
                  not the content's key: RSA decryption succeeds, the
                  content decryption then fails (or yields garbage);
  short-key       correct padding around a 7-byte key (wrong length for
                  AES-128);
  valid           (reference, --with-valid) the right key, a CSR with a
                  wrong challenge: decrypts and parses, FAILURE badRequest.

The kinds are sent in turn (A B C A B C ...) over one kept-alive
connection after a warm-up, N of each; every answer must be a signed
FAILURE (checked). Reported per kind: the client's round trip and httpd's
own time for the request (%D of the access log), in ms: mean, stdev, p50,
p90, p99, min, max; and for bad-padding vs good-padding the difference of
medians and a Mann-Whitney U z-score (|z| > 3: the two distributions
differ beyond what chance makes likely, at these sample sizes). Under
prefork, %D starts when the child begins to wait for the next request on
the kept-alive connection, so it includes the client's own time between
requests; the event MPM hands the connection to a worker only once the
request has arrived.

    bench/decrypt_timing.py [-n 200] [--mpm event] [--with-valid]

Uses the suite's harness (tests/integration: scepenv, testpki, badinput)
and a copy of the built module (or $SCEP_OTA_MODULE). No assertion on
timing anywhere: this prints numbers.
"""

import argparse
import http.client
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP / "tests" / "integration"))

import badinput as bi  # noqa: E402
import scepenv  # noqa: E402
import scepmsg  # noqa: E402
from testpki import TestPKI  # noqa: E402

CHALLENGE = "timing-secret"


def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(xs):
    return {"n": len(xs), "mean": statistics.fmean(xs), "stdev": statistics.pstdev(xs),
            "p50": pct(xs, 50), "p90": pct(xs, 90), "p99": pct(xs, 99),
            "min": min(xs), "max": max(xs)}


def mann_whitney_z(a, b):
    """z of the Mann-Whitney U statistic (normal approximation, ties
    averaged)."""
    both = sorted([(x, 0) for x in a] + [(x, 1) for x in b])
    ranks = [0.0] * len(both)
    i = 0
    while i < len(both):
        j = i
        while j + 1 < len(both) and both[j + 1][0] == both[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    r1 = sum(r for r, (_, g) in zip(ranks, both) if g == 0)
    n1, n2 = len(a), len(b)
    u1 = r1 - n1 * (n1 + 1) / 2
    mu = n1 * n2 / 2
    sigma = math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    return (u1 - mu) / sigma


def build(pki, n, with_valid):
    key = scepmsg.new_key()
    client = scepmsg.make_client(key, "timing-requester")
    good = scepmsg.make_csr(client, CHALLENGE)
    wrong = scepmsg.make_csr(client, "wrong-challenge")
    pub = pki.ra.cert.public_key()
    kinds = {
        "bad-padding": lambda e: setattr(e, "ek", bi.bad_padding_key(pub)),
        "good-padding": lambda e: setattr(e, "ek", bi.good_padding_key(pub)),
        "short-key": lambda e: setattr(e, "ek", bi.good_padding_key(pub, 7)),
    }
    if with_valid:
        kinds["valid"] = None
    msgs = {k: [] for k in kinds}
    for i in range(n):
        for k, (kind, change) in enumerate(kinds.items()):
            e = bi.Envelope(pki.ra.cert, wrong if kind == "valid" else good)
            if change:
                change(e)
            txid = f"TIMING-{k:02d}-{i:06d}"
            attrs = bi.scep_attrs(txid, os.urandom(16))
            msgs[kind].append(bi.sign(client, e.der(), attrs))
    return msgs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=200, help="requests of each kind (200)")
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--mpm", default="event", choices=("event", "worker", "prefork"))
    ap.add_argument("--with-valid", action="store_true",
                    help="also time decryptable requests refused for their challenge")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="scep-decrypt-timing-"))
    scepenv.open_path_for_workers(work)
    env = None
    try:
        module = work / "mod_scep_ota.so"
        shutil.copy2(scepenv.module_path(), module)
        os.chmod(module, 0o755)
        pki = TestPKI(work / "pki")
        env = scepenv.ScepEnv(args.mpm, work / "srv", module=module, module_loglevel=None)
        timing_log = env.root.logs / "timing.log"
        env.apache_restart("\n".join([
            scepenv.scep_directives(pki.ca_chain_file, pki.issuing.key_file,
                                    pki.ra.cert_file, pki.ra.key_file),
            f"SCEPChallengePassword {CHALLENGE}",
            "SCEPStore sqlite3:state/timing.db",
            'LogFormat "%D %U%q %>s" timing',
            f'CustomLog "{timing_log}" timing',
            scepenv.scep_location("/scep"),
        ]))
        t0 = time.monotonic()
        msgs = build(pki, args.n + args.warmup, args.with_valid)
        print(f"built {sum(len(v) for v in msgs.values())} requests in "
              f"{time.monotonic() - t0:.1f} s; httpd {args.mpm}, "
              f"{os.cpu_count()} CPUs, {scepenv.module_path()}")
        kinds = list(msgs)
        conn = http.client.HTTPConnection("127.0.0.1", env.port, timeout=30)
        rtt = {k: [] for k in kinds}
        order = []
        classes = {k: set() for k in kinds}
        for i in range(args.n + args.warmup):
            for kind in kinds:
                der = msgs[kind][i]
                t = time.perf_counter_ns()
                conn.request("POST", bi.PKIOP, body=der,
                             headers={"Content-Type": bi.PKI_MESSAGE})
                r = conn.getresponse()
                body = r.read()
                dt = (time.perf_counter_ns() - t) / 1e6
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", env.port, timeout=30)
                classes[kind].add((r.status, bi.answer_class(
                    r.status, r.getheader("Content-Type"), body, pki.ra.cert), len(body)))
                order.append(kind)
                if i >= args.warmup:
                    rtt[kind].append(dt)
        conn.close()
        # httpd's own time per request, in the order sent (one connection)
        deadline = time.monotonic() + 5
        while True:
            lines = [ln for ln in timing_log.read_text().splitlines()
                     if "PKIOperation" in ln]
            if len(lines) >= len(order) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        server = {k: [] for k in kinds}
        for n, (kind, ln) in enumerate(zip(order, lines)):
            if n >= args.warmup * len(kinds):
                server[kind].append(int(re.match(r"(\d+) ", ln)[1]) / 1000)
        print("\nanswers (HTTP status, class, bytes) per kind:")
        for k in kinds:
            print(f"  {k:13} {sorted(classes[k])}")
        for title, data in (("client round trip", rtt), ("httpd %D", server)):
            print(f"\n{title}, ms (after {args.warmup} warm-up rounds):")
            print(f"  {'kind':13} {'n':>5} {'mean':>7} {'stdev':>7} {'p50':>7} {'p90':>7} "
                  f"{'p99':>7} {'min':>7} {'max':>7}")
            for k in kinds:
                s = summary(data[k])
                print(f"  {k:13} {s['n']:5d} {s['mean']:7.3f} {s['stdev']:7.3f} "
                      f"{s['p50']:7.3f} {s['p90']:7.3f} {s['p99']:7.3f} {s['min']:7.3f} "
                      f"{s['max']:7.3f}")
            a, b = data["bad-padding"], data["good-padding"]
            print(f"  bad-padding - good-padding: median "
                  f"{pct(a, 50) - pct(b, 50):+.3f} ms, mean "
                  f"{statistics.fmean(a) - statistics.fmean(b):+.3f} ms, "
                  f"Mann-Whitney z = {mann_whitney_z(a, b):+.2f}")
    finally:
        try:
            if env is not None:
                try:
                    env.apache_stop()
                finally:
                    env.remove()
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
