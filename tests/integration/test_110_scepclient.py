"""micromdm's scepclient (Debian package `scep`) against the module.

Until enrollment lands, scepclient gets through GetCACert and GetCACaps and
fails at PKIOperation (501)."""

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


def run_scepclient(env, workdir, timeout=30):
    key = workdir / "key.pem"
    cmd = [SCEPCLIENT, "-private-key", str(key),
           "-server-url", f"http://127.0.0.1:{env.port}/scep",
           "-challenge", "x", "-cn", "test", "-debug"]
    p = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout + p.stderr


@pytest.mark.interim
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_110_001_scepclient_reaches_pkioperation(env, pki, tmp_path, config):
    """INTERIM: scepclient fetches the CA (200) and the caps (200), then
    sends its PKCSReq, which gets 501. When enrollment lands this becomes a
    full enrollment test."""
    env.ensure(CONFIGS[config](pki) + "\n" + scep_location("/scep"))
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
    assert pki_ops, f"scepclient never sent PKIOperation:\n{log}\nscepclient:\n{out}"
    # POSTPKIOperation is advertised by default, so the request is a POST
    assert pki_ops[0] == ("POST", "501"), pki_ops
    # no request other than the PKIOperation failed
    failed = [ln for ln in lines if not re.search(r" (200|501) \d+ ", ln)]
    assert not failed, failed
    assert rc != 0, f"scepclient succeeded against a 501?\n{out}"
    assert re.search(r"501|Not Implemented", out, re.I), out
