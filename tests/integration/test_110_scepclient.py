"""micromdm's scepclient (Debian package `scep`) against the module with
its default settings.

scepclient encrypts with single DES and signs with SHA-1, so without
`SCEPAllowLegacyAlgorithms on` its PKCSReq gets a signed FAILURE badAlg
(enrollment with legacy algorithms allowed: test_210)."""

import re
import shutil
import subprocess

import pytest

from scepenv import scep_directives, scep_location

SCEPCLIENT = shutil.which("scepclient") or "/usr/bin/scepclient"

pytestmark = pytest.mark.skipif(not shutil.which("scepclient"),
                                reason="scepclient (Debian package scep) not installed")

CONFIGS = {
    "ca": lambda p: scep_directives(p.solo.cert_file, p.solo.key_file),
    "ra": lambda p: scep_directives(p.ca_chain_file, p.issuing.key_file,
                                    p.ra.cert_file, p.ra.key_file),
}


def run_scepclient(env, workdir, challenge="x", cn="test", timeout=30, extra=()):
    key = workdir / "key.pem"
    cmd = [SCEPCLIENT, "-private-key", str(key),
           "-server-url", f"http://127.0.0.1:{env.port}/scep",
           "-challenge", challenge, "-cn", cn, "-debug", *extra]
    p = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout + p.stderr


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_110_001_scepclient_refused_without_legacy(env, pki, tmp_path, config):
    """scepclient fetches the CA (200) and the caps (200), POSTs its
    PKCSReq (200) and gets a signed FAILURE badAlg: no certificate."""
    env.ensure(CONFIGS[config](pki) + "\nSCEPChallengePassword x\n"
               + scep_location("/scep"))
    start = env.log_size(env.root.access_log)
    rc, out = run_scepclient(env, tmp_path)

    lines = env.access_lines(start, wait_for=r"operation=PKIOperation")
    log = "\n".join(lines)
    assert re.search(r"^\S+ GET /scep\?operation=GetCACert\S* 200 ", log, re.M), (
        f"no GetCACert 200 in the access log:\n{log}\nscepclient:\n{out}")
    assert re.search(r"^\S+ GET /scep\?operation=GetCACaps\S* 200 ", log, re.M), (
        f"no GetCACaps 200 in the access log:\n{log}\nscepclient:\n{out}")
    pki_ops = re.findall(r"^\S+ (GET|POST) /scep\?operation=PKIOperation\S* (\d+) ",
                         log, re.M)
    # POSTPKIOperation is advertised by default, so the request is a POST
    assert pki_ops == [("POST", "200")], f"{pki_ops}\n{log}\nscepclient:\n{out}"
    assert rc != 0, f"scepclient succeeded with single DES refused?\n{out}"
    assert re.search(r"failInfo: badAlg", out), out
    assert not (tmp_path / "client.pem").exists()
