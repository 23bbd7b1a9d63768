#!/usr/bin/python3
"""OTA Phase 2 and Phase 3 profiles/s through mod_scep_ota, in one run, next
to their own bound and to the static-file rate of the same httpd.

Each Phase 2 or Phase 3 answer costs one RSA private-key operation (the
signature of the profile; the envelope to the device is a public-key
operation), so the bound is `openssl speed -multi NCPU rsa2048` signs/s,
measured before and after the replays (the signer's key is RSA-2048). The
static rate is wrk on a small file of the same httpd at each level.

All bodies are built before anything is timed, each one distinct:
  Phase 2  attributes with the challenge of a Phase 1 GET of their own,
           signed by the Apple-like device identity (openssl cms, SHA-1);
  Phase 3  attributes signed by an identity enrolled over SCEP for it
           (Phase 1, Phase 2 and the SCEP enrollment of its payload, as a
           device does them; a Phase 3 is accepted once per identity).
The requesters' RSA keys are kept in BENCH_KEYS
(/var/tmp/scep-bench-keys-UID) for the next run.
Then each level replays its share once with wrk (bench/replay.lua, one
connection per thread); a 200 counts.

    bench/ota.py [--requests N] [--levels 1,2,4,16] [--mpm event]

Needs wrk, a built module and CLI, apache2, openssl, python3-cryptography.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP / "tests" / "integration"))
sys.path.insert(0, str(TOP / "bench"))

import benchlib  # noqa: E402
import otaenv  # noqa: E402
import scepenv  # noqa: E402
from scepclient_own import KeyBox  # noqa: E402
from testpki import TestPKI  # noqa: E402

PKCS7_SIG = "application/pkcs7-signature"


def wrk_static(url, conc, secs):
    out = subprocess.run(["wrk", f"-t{conc}", f"-c{conc}", f"-d{secs}s", url],
                         capture_output=True, text=True, timeout=secs + 60).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(m.group(1)) if m else 0.0


def replay(url, listfile, conc, work, filler):
    """wrk + replay.lua over the bodies of `listfile`: (rate, p50, p99, ok, n)."""
    done = Path(tempfile.mkdtemp(dir=work, prefix="done-"))
    cmd = ["wrk", f"-t{conc}", f"-c{conc}", "-d3600s", "--timeout", "30s",
           "-s", str(TOP / "bench" / "replay.lua"), url, "--",
           str(listfile), str(conc), str(done), PKCS7_SIG, "200", filler]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and p.poll() is None:
        if len(list(done.iterdir())) >= conc:
            break
        time.sleep(0.1)
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
    out = p.communicate(timeout=60)[0]
    m = re.search(r"^RESULT answered=(\d+) success=(\d+) seconds=\S+ rate=([\d.]+) "
                  r"p50_ms=([\d.]+) p99_ms=([\d.]+)", out, re.M)
    if not m:
        raise SystemExit(f"bench: wrk said:\n{out}")
    return (float(m[3]), float(m[4]), float(m[5]), int(m[2]), int(m[1]))


def enroll(url, dev, opki, pki, keys, tmp, i):
    """Phase 1, Phase 2 and the SCEP enrollment its payload asks for, as a
    device does them, but no Phase 3: the new identity (a Cred)."""
    ch = otaenv.challenge_of(url, tmp, opki.trust)
    a = otaenv.post_signed(url, otaenv.cms_sign(otaenv.attributes(ch), dev, tmp,
                                                md="sha1"))
    if a.status != 200:
        raise SystemExit(f"bench: Phase 2 answered {a.status}")
    content, _ = otaenv.cms_verify(a.body, opki.trust, tmp)
    scep = otaenv.read_plist(content, tmp)["PayloadContent"][0]["PayloadContent"]
    key = keys.get(f"ota-bench-{i}").path
    req, rep, crt = tmp / f"req{i}.der", tmp / f"rep{i}.der", tmp / f"id{i}.crt"
    otaenv.run([otaenv.cli_path(), "request", "--type", "pkcsreq", "--recipient",
                pki.ra.cert_file, "--key", key,
                "--subject", otaenv.subject_arg(scep["Subject"]),
                "--challenge", scep["Challenge"], "--cipher", "aes128",
                "--digest", "sha256", "-o", req])
    r = otaenv.fetch(scep["URL"] + "?operation=PKIOperation", body=req.read_bytes(),
                     content_type="application/x-pki-message")
    rep.write_bytes(r.body)
    otaenv.run([otaenv.cli_path(), "certrep", "--key", key, "--out-cert", crt, rep])
    return otaenv.Cred(crt, key)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=200,
                    help="distinct bodies per phase and level (200)")
    ap.add_argument("--levels", default="1,2,4,16")
    ap.add_argument("--mpm", default="event")
    ap.add_argument("--static-seconds", type=int, default=3)
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    if not shutil.which("wrk"):
        raise SystemExit("bench: wrk is not installed")

    work = Path(tempfile.mkdtemp(prefix="scep-ota-bench-"))
    scepenv.open_path_for_workers(work)
    env = None
    try:
        module = work / "mod_scep_ota.so"
        shutil.copy2(scepenv.module_path(), module)
        os.chmod(module, 0o755)
        (work / "srv").mkdir()
        scepenv.open_path_for_workers(work / "srv")
        env = scepenv.ScepEnv(args.mpm, work / "srv", module=module,
                              module_loglevel=None)
        pki = TestPKI(work / "pki")
        keys = KeyBox(work / "keys", Path(os.environ.get(
            "BENCH_KEYS", f"/var/tmp/scep-bench-keys-{os.getuid()}")))
        keys.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        opki = otaenv.OtaPKI(work / "ota-pki", pki, keys)
        scepenv.open_path_for_workers(work / "pki")
        scepenv.open_path_for_workers(work / "ota-pki")
        url = f"http://127.0.0.1:{env.port}/ota/profile"
        snippet = "\n".join([
            scepenv.scep_directives(pki.ca_chain_file, pki.issuing.key_file,
                                    pki.ra.cert_file, pki.ra.key_file),
            "SCEPStore sqlite3:state/ota-bench.db",
            otaenv.ota_directives(opki, f"http://127.0.0.1:{env.port}/scep"),
            scepenv.scep_location("/scep"),
            otaenv.OTA_LOCATION,
        ])
        env.apache_restart(snippet)
        static = env.root.htdocs / "static.txt"
        static.write_bytes(b"x" * 1024)
        os.chmod(static, 0o644)
        static_url = f"http://127.0.0.1:{env.port}/static.txt"

        dev = opki.device("bench")
        tmp = work / "bodies"
        tmp.mkdir()
        total = args.requests * len(levels)
        print(f"bench: building {total} Phase 2 and {total} Phase 3 bodies...",
              flush=True)
        lists = {}
        for phase in (2, 3):
            files = []
            for i in range(total):
                if phase == 2:
                    ch = otaenv.challenge_of(url, tmp, opki.trust)
                    body = otaenv.cms_sign(otaenv.attributes(ch), dev, tmp, md="sha1")
                else:
                    ident = enroll(url, dev, opki, pki, keys, tmp, i)
                    body = otaenv.cms_sign(otaenv.attributes(), ident, tmp)
                f = tmp / f"p{phase}-{i}.der"
                f.write_bytes(body)
                files.append(f)
            for k, c in enumerate(levels):
                lf = work / f"p{phase}-c{c}.list"
                lf.write_text("".join(f"{x}\n" for x in
                                      files[k * args.requests:(k + 1) * args.requests]))
                lists[(phase, c)] = lf

        print(f"bench: load before: {os.getloadavg()[0]:.2f}", flush=True)
        s0 = benchlib.rsa2048_signs()
        rows = {}
        for c in levels:
            st = wrk_static(static_url, c, args.static_seconds)
            p2 = replay(url, lists[(2, c)], c, work, "/static.txt")
            p3 = replay(url, lists[(3, c)], c, work, "/static.txt")
            rows[c] = (st, p2, p3)
            print(f"c={c:<3} static {st:.0f}/s  phase2 {p2[0]:.0f}/s ({p2[3]}/{p2[4]} ok)"
                  f"  phase3 {p3[0]:.0f}/s ({p3[3]}/{p3[4]} ok)", flush=True)
        s1 = benchlib.rsa2048_signs()
        print(f"bench: load after: {os.getloadavg()[0]:.2f}")
        bound = (s0 + s1) / 2
        print(f"\nRSA-2048 signs/s on {os.cpu_count()} processes: {s0:.0f} before, "
              f"{s1:.0f} after; bound (1 private-key operation a profile) "
              f"{bound:.0f}/s\n")
        print(f"{'level':<6} {'static/s':>9} {'phase2/s':>9} {'p50/p99 ms':>13} "
              f"{'/bound':>7} {'/static':>8} {'phase3/s':>9} {'p50/p99 ms':>13} "
              f"{'/bound':>7} {'/static':>8}")
        for c in levels:
            st, p2, p3 = rows[c]
            print(f"c={c:<4} {st:9.0f} {p2[0]:9.0f} {p2[1]:6.1f}/{p2[2]:<6.1f} "
                  f"{p2[0] / bound:7.2f} {p2[0] / st if st else 0:8.3f} "
                  f"{p3[0]:9.0f} {p3[1]:6.1f}/{p3[2]:<6.1f} "
                  f"{p3[0] / bound:7.2f} {p3[0] / st if st else 0:8.3f}")
        fails = sum(r[4] - r[3] for _, p2, p3 in rows.values() for r in (p2, p3))
        print(f"(non-200 answers: {fails}; wrk one connection per thread, "
              f"{args.mpm} MPM, {args.requests} distinct bodies per phase and level)")
    finally:
        if env is not None:
            try:
                env.apache_stop()
            finally:
                env.remove()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
