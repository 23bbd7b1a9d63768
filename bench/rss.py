#!/usr/bin/python3
"""Does an httpd child's memory stay flat? (issue 6, item 5)

Starts httpd with the module and ONE child (prefork: StartServers 1,
MaxRequestWorkers 1, MaxConnectionsPerChild 0; or event with one process),
the default SQLite store (SCEPStore not set: state/scep_ota.db under
ServerRoot), an RA, a static challenge and an OTA Profile Service, and
sends it REQUESTS (100000) requests, one after the other on one kept-alive
connection, in a fixed mix per 100:

  30 GetCACaps                     15 GetCACert
  20 PKIOperation PKCSReq, pre-built and distinct (KEYS (128) keys x VARIANTS (16)
     messages each, same transactionID per key, new nonce and envelope
     key per message, sent round-robin): the first of each key is issued,
     every later one answered "repeated" from the store (SUCCESS)
   8 PKIOperation garbage -> 400   7 PKIOperation with a bad signature
                                     -> FAILURE badMessageCheck
   5 PKIOperation, wrong challenge -> FAILURE badRequest
   5 OTA Phase 1 GET (a signed profile; a one-time challenge recorded)
   5 GET with an unknown operation -> 400
   5 PKIOperation, bad PKCS#1 padding -> FAILURE badMessageCheck

and samples the child's VmRSS and VmHWM (/proc/PID/status) before the
first request, after a warm-up of WARMUP requests and every STEP (5000)
requests. Every answer's HTTP status is checked against its kind, and one
in 50 PKIOperation answers is read in full (status, failInfo, signature).
Prints the curve and the growth from the first sample after warm-up to
the last. The child's pid must not change (a crash would show as a new
pid and a reset RSS).

    bench/rss.py [--requests 100000] [--step 5000] [--mpm prefork|event]
                 [--keys 128] [--variants 16] [--warmup 2000]
                 [--without ota,...] [--new-connection]

Uses tests/integration's harness (scepenv, testpki, scepmsg, badinput) and
a copy of the built module ($SCEP_OTA_MODULE, else the tree's).
"""

import argparse
import http.client
import itertools
import os
import plistlib
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP / "tests" / "integration"))

import badinput as bi  # noqa: E402
import scepenv  # noqa: E402
import scepmsg  # noqa: E402
import storeenv  # noqa: E402
from testpki import TestPKI  # noqa: E402

CHALLENGE = "rss-bench-secret"

ONE_CHILD = {
    "prefork": """\
<IfModule mpm_prefork_module>
    StartServers            1
    MinSpareServers         1
    MaxSpareServers         2
    ServerLimit             1
    MaxRequestWorkers       1
    MaxConnectionsPerChild  0
</IfModule>""",
    "event": """\
<IfModule mpm_event_module>
    StartServers            1
    ServerLimit             1
    ThreadsPerChild         4
    ThreadLimit             4
    MinSpareThreads         1
    MaxSpareThreads         4
    MaxRequestWorkers       4
    MaxConnectionsPerChild  0
</IfModule>""",
}

MIX = ([("caps", 30), ("cacert", 15), ("enroll", 20), ("garbage", 8),
        ("badsig", 7), ("wrongch", 5), ("ota", 5), ("unknown-op", 5), ("badpad", 5)])
EXPECT = {"caps": 200, "cacert": 200, "enroll": 200, "garbage": 400, "badsig": 200,
          "wrongch": 200, "ota": 200, "unknown-op": 400, "badpad": 200}
CLASS = {"enroll": "SUCCESS", "badsig": "FAILURE badMessageCheck",
         "wrongch": "FAILURE badRequest", "badpad": "FAILURE badMessageCheck"}


def status_kb(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            k, _, v = ln.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


def build_requests(pki, keys, variants):
    """(enroll, badsig, wrongch, badpad) lists of DER messages."""
    ra = pki.ra.cert
    enroll, badsig, wrongch, badpad = [], [], [], []
    for i, key in enumerate(keys):
        c = scepmsg.make_client(key, f"rss-{i}")
        csr = scepmsg.make_csr(c, CHALLENGE)
        txid = scepmsg.key_txid(key)
        for _ in range(variants):
            der, _, _ = scepmsg.build_pkcsreq(c, ra, csr, txid=txid)
            enroll.append(der)
        badsig.append(bi.flip(enroll[-1], len(enroll[-1]) - 1))
        wrong = scepmsg.make_csr(c, "not-the-challenge")
        der, _, _ = scepmsg.build_pkcsreq(c, ra, wrong, txid=f"RSS-WRONG-{i}")
        wrongch.append(der)
        e = bi.Envelope(ra, csr)
        e.ek = bi.bad_padding_key(ra.public_key())
        badpad.append(bi.sign(c, e.der(), bi.scep_attrs(f"RSS-PAD-{i}", os.urandom(16))))
    # round-robin over keys, so each key's first message is early
    enroll = [enroll[k * variants + v] for v in range(variants) for k in range(len(keys))]
    return enroll, badsig, wrongch, badpad


def ota_files(pki, work):
    profile = work / "final.mobileconfig"
    profile.write_bytes(plistlib.dumps({
        "PayloadType": "Configuration", "PayloadVersion": 1,
        "PayloadIdentifier": "org.example.rss", "PayloadUUID":
        "6A0C2D4E-8F10-4A32-B547-6C7D8E9F0A1B", "PayloadDisplayName": "RSS bench",
        "PayloadContent": []}))
    os.chmod(profile, 0o644)
    return profile


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("--step", type=int, default=5000)
    ap.add_argument("--warmup", type=int, default=2000)
    ap.add_argument("--mpm", default="prefork", choices=("prefork", "event"))
    ap.add_argument("--keys", type=int, default=128)
    ap.add_argument("--variants", type=int, default=16)
    ap.add_argument("--without", default="",
                    help="comma-separated kinds left out of the mix (e.g. ota)")
    ap.add_argument("--new-connection", action="store_true",
                    help="one connection per request instead of one for all")
    ap.add_argument("--key-cache", default=str(TOP / ".pytest_cache" / "d" /
                                               "scep-ota-bench-keys"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="scep-rss-"))
    scepenv.open_path_for_workers(work)
    env = None
    try:
        module = work / "mod_scep_ota.so"
        shutil.copy2(scepenv.module_path(), module)
        os.chmod(module, 0o755)
        pki = TestPKI(work / "pki")
        profile = ota_files(pki, work)
        t0 = time.monotonic()
        Path(args.key_cache).mkdir(parents=True, exist_ok=True)
        keys = scepmsg.load_or_make_keys(args.keys, args.key_cache)
        enroll, badsig, wrongch, badpad = build_requests(pki, keys, args.variants)
        print(f"{len(enroll)} distinct PKCSReqs over {len(keys)} keys, "
              f"{len(badsig) + len(wrongch) + len(badpad)} refused ones, built in "
              f"{time.monotonic() - t0:.1f} s", flush=True)

        env = scepenv.ScepEnv(args.mpm, work / "srv", module=module, module_loglevel=None)
        env.apache_restart("\n".join([
            scepenv.scep_directives(pki.ca_chain_file, pki.issuing.key_file,
                                    pki.ra.cert_file, pki.ra.key_file),
            f"SCEPChallengePassword {CHALLENGE}",
            f'OTASigningCertificateFile "{pki.leaf.cert_file}"',
            f'OTASigningKeyFile "{pki.leaf.key_file}"',
            f'OTADeviceCACertificateFile "{pki.solo.cert_file}"',
            f"OTASCEPURL http://127.0.0.1:{env.port}/scep",
            f'OTAProfile "{profile}"',
            "MaxKeepAliveRequests 0",
            "KeepAliveTimeout 30",
            ONE_CHILD[args.mpm],
            scepenv.scep_location("/scep"),
            "<Location /ota/profile>\n    SetHandler ota-profile\n</Location>",
        ]))
        time.sleep(1.0)
        children = storeenv.child_pids(env)
        assert len(children) == 1, f"expected one child, found {children}"
        child = children[0]
        db = env.root.path / "state" / "scep_ota.db"

        rng = random.Random(6)
        left_out = {k for k in args.without.split(",") if k}
        bad = left_out - set(EXPECT)
        assert not bad, f"--without: unknown kinds {bad}"
        plan = [k for k, n in MIX for _ in range(n) if k not in left_out]
        bodies = {"enroll": itertools.cycle(enroll), "badsig": itertools.cycle(badsig),
                  "wrongch": itertools.cycle(wrongch), "badpad": itertools.cycle(badpad)}
        garbage = [os.urandom(n) for n in (10, 300, 3000)]
        targets = {"caps": "/scep?operation=GetCACaps",
                   "cacert": "/scep?operation=GetCACert",
                   "ota": "/ota/profile", "unknown-op": "/scep?operation=GetSomething"}
        conn = http.client.HTTPConnection("127.0.0.1", env.port, timeout=60)
        samples = [(0, status_kb(child))]
        counts = {k: 0 for k in EXPECT}
        checked = 0
        start = time.monotonic()
        print(f"\nhttpd {args.mpm}, one child (pid {child}); {args.requests} requests"
              f"{' without ' + ','.join(sorted(left_out)) if left_out else ''}, "
              f"{'a new connection each' if args.new_connection else 'one connection'}\n"
              f"{'requests':>9} {'VmRSS kB':>9} {'VmHWM kB':>9} {'req/s':>7} {'certs':>6} "
              f"{'store kB':>8}",
              flush=True)
        print(f"{0:9d} {samples[0][1]['VmRSS']:9d} {samples[0][1]['VmHWM']:9d}",
              flush=True)
        last_t, last_n = start, 0
        for n in range(1, args.requests + 1):
            kind = plan[(n - 1) % len(plan)] if n > 100 else rng.choice(plan)
            if kind in targets:
                conn.request("GET", targets[kind])
            else:
                body = rng.choice(garbage) if kind == "garbage" else next(bodies[kind])
                conn.request("POST", bi.PKIOP, body=body,
                             headers={"Content-Type": bi.PKI_MESSAGE})
            r = conn.getresponse()
            data = r.read()
            counts[kind] += 1
            if r.status != EXPECT[kind]:
                raise SystemExit(f"request {n} ({kind}): HTTP {r.status}: {data[:200]!r}")
            if kind in CLASS and counts[kind] % 50 == 1:
                cls = bi.answer_class(r.status, r.getheader("Content-Type"), data,
                                      pki.ra.cert)
                if cls != CLASS[kind]:
                    raise SystemExit(f"request {n} ({kind}): {cls}, not {CLASS[kind]}")
                checked += 1
            if args.new_connection or r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", env.port, timeout=60)
            if n == args.warmup or n % args.step == 0:
                now = time.monotonic()
                if storeenv.child_pids(env) != [child]:
                    raise SystemExit(f"the child changed: {child} -> "
                                     f"{storeenv.child_pids(env)}")
                s = status_kb(child)
                samples.append((n, s))
                certs = storeenv.sqlite_query(db, "SELECT count(*) FROM certificates")[0]
                size = sum(os.path.getsize(f"{db}{x}") for x in ("", "-wal")
                           if os.path.exists(f"{db}{x}")) // 1024
                print(f"{n:9d} {s['VmRSS']:9d} {s['VmHWM']:9d} "
                      f"{(n - last_n) / (now - last_t):7.0f} {certs:>6} {size:8d}",
                      flush=True)
                last_t, last_n = now, n
        conn.close()
        elapsed = time.monotonic() - start
        base = next(s for n, s in samples if n >= args.warmup)
        end = samples[-1][1]
        after = [s["VmRSS"] for n, s in samples if n >= args.warmup]
        per_request = ((end["VmRSS"] - base["VmRSS"]) * 1024
                       / max(1, args.requests - args.warmup))
        print(f"\n{args.requests} requests in {elapsed:.0f} s "
              f"({args.requests / elapsed:.0f}/s); per kind: {counts}; "
              f"{checked} CertReps read in full")
        print(f"VmRSS after warm-up ({args.warmup}): {base['VmRSS']} kB; at the end: "
              f"{end['VmRSS']} kB; growth {end['VmRSS'] - base['VmRSS']:+d} kB "
              f"({per_request:.1f} bytes/request); min..max after warm-up "
              f"{min(after)}..{max(after)} kB")
        log = env.read_log(0)
        crashed = bi.crash_lines(log)
        print(f"error log: {len(log.splitlines())} lines, crashes: {len(crashed)}")
        for ln in crashed[:5]:
            print("  " + ln)
    finally:
        try:
            if env is not None:
                try:
                    # prefork with MaxRequestWorkers 1 says so once it is busy
                    env.apache_stop(expect_log=[r"AH00161"])
                finally:
                    env.remove()
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
