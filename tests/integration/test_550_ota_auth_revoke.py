"""`scep-ota device --user/--password-file` through an OTA location behind
mod_auth_basic, never showing the password; and OTARevokePrevious: a
device (UDID) that enrolls again through OTA keeps
only its newest certificate. The UDID is the one the server bound in
Phase 2; the older certificates of that device are revoked (reason
superseded) once the new one is recorded. Off (the default), they stay
valid; another device's certificates are never touched."""

import re

import pytest

import otaenv
import storeenv
from otaenv import USERS


@pytest.fixture(scope="module")
def opki(tmp_path_factory, pki, own_keys):
    return otaenv.ota_pki(tmp_path_factory, pki, own_keys)


def start(env, pki, opki, revoke):
    srv = otaenv.OtaServer(env, pki, opki)
    snippet = srv.snippet() + ("\nOTARevokePrevious on" if revoke else "")
    env.ensure(snippet, extra_modules=otaenv.EXTRA_MODULES,
               expect_log=otaenv.STARTUP_LOG)
    return srv


def enroll(srv, dev, tmp_path):
    r = otaenv.run_device(srv.url(), dev, tmp=tmp_path)
    assert r.rc == 0, r
    m = re.search(r"== enrolled: .* \(serial ([0-9A-F]+)\)", r.out)
    assert m, r.out
    return m[1]


def statuses(env):
    return {s: st for s, (st, _) in storeenv.cli_list(env.root.conf).items()}


def test_550_001_reenrollment_revokes_the_older(env, pki, opki, tmp_path):
    srv = start(env, pki, opki, revoke=True)
    a = opki.device("again", udid="00008110-000A1B2C3D4E5F60")
    other = opki.device("other", udid="00008110-000FFFFFFFFFFF01")
    o1 = enroll(srv, other, tmp_path)
    first = enroll(srv, a, tmp_path)
    log0 = env.log_size()
    second = enroll(srv, a, tmp_path)
    assert len({o1, first, second}) == 3
    st = statuses(env)
    assert st[first].startswith("revoked"), st
    assert st[second] == "valid" and st[o1] == "valid", st
    log = env.read_log(log0)
    assert re.search(rf"SCEP6151: revoked certificate {first} of device "
                     rf"00008110-000A1B2C3D4E5F60: superseded by {second}", log), log
    # the reason is in the CRL the CLI prints
    crl = storeenv.cli_store(env.root.conf, "crl").stdout.encode()
    assert "Superseded" in otaenv.openssl("crl", "-noout", "-text", input=crl).out
    # a third enrollment revokes the second, and the first stays revoked
    third = enroll(srv, a, tmp_path)
    st = statuses(env)
    assert st[second].startswith("revoked") and st[third] == "valid", st
    assert st[o1] == "valid"


def test_550_002_off_keeps_them_valid(env, pki, opki, tmp_path):
    srv = start(env, pki, opki, revoke=False)
    a = opki.device("keep", udid="00008110-000A1B2C3D4E5F61")
    first = enroll(srv, a, tmp_path)
    second = enroll(srv, a, tmp_path)
    st = statuses(env)
    assert st[first] == "valid" and st[second] == "valid", st


# --------------------------------------------------------------------------
# the emulator behind Basic auth


def password_file(tmp_path, pw, mode=0o600):
    f = tmp_path / f"pw{mode:o}"
    f.write_text(pw + "\n")
    f.chmod(mode)
    return f


def test_550_010_emulator_passes_basic_auth(env, pki, opki, tmp_path):
    srv = start(env, pki, opki, revoke=False)
    url = srv.url("main", "/ota/auth")
    dev = opki.device("auth", udid="00008110-000A1B2C3D4E5F70")
    pw = password_file(tmp_path, USERS["alice"])
    r = otaenv.run_device(url, dev, "-v", "--user", "alice", "--password-file", pw,
                          tmp=tmp_path)
    assert r.rc == 0, r
    assert "== enrolled:" in r.out
    assert USERS["alice"] not in r.out + r.err
    assert "Authorization" not in r.out + r.err
    # the device was enrolled by alice
    shown = storeenv.cli_store(env.root.conf, "show", enroll_serial(r.out)).stdout
    assert re.search(r"enrolled by\W+alice", shown, re.I), shown
    # without credentials, or with a wrong password: 401, said clearly
    r = otaenv.run_device(url, dev, tmp=tmp_path)
    assert r.rc != 0 and "401" in r.out + r.err, r
    env.expect_log(r"AH01617: user alice: authentication failure")
    (tmp_path / "bad").mkdir()
    bad = password_file(tmp_path / "bad", "not-the-password")
    r = otaenv.run_device(url, dev, "--user", "alice", "--password-file", bad,
                          tmp=tmp_path)
    assert r.rc != 0 and "401" in r.out + r.err, r
    assert "not-the-password" not in r.out + r.err


def enroll_serial(out):
    m = re.search(r"== enrolled: .* \(serial ([0-9A-F]+)\)", out)
    assert m, out
    return m[1]


def test_550_011_credentials_never_shown(env, pki, opki, tmp_path):
    srv = start(env, pki, opki, revoke=False)
    dev = opki.device("auth2", udid="00008110-000A1B2C3D4E5F71")
    url = srv.url("main", "/ota/auth").replace("http://", "http://alice:s3cret-pw@")
    r = otaenv.run_device(url, dev, tmp=tmp_path)
    assert r.rc != 0
    assert "s3cret-pw" not in r.out + r.err, r
    assert "--password-file" in r.err, r
    # a password file others may read is refused, and so is --user alone
    loose = password_file(tmp_path, USERS["alice"], 0o644)
    r = otaenv.run_device(srv.url("main", "/ota/auth"), dev, "--user", "alice",
                          "--password-file", loose, tmp=tmp_path)
    assert r.rc != 0 and "chmod 600" in r.err, r
    r = otaenv.run_device(srv.url("main", "/ota/auth"), dev, "--user", "alice",
                          tmp=tmp_path)
    assert r.rc != 0


def test_550_012_another_users_certificates_are_kept(env, pki, opki, tmp_path):
    """The UDID is what the device's attributes say: bob enrolling with
    alice's device's UDID does not end alice's certificate."""
    srv = start(env, pki, opki, revoke=True)
    url = srv.url("main", "/ota/auth")
    dev = opki.device("shared", udid="00008110-000A1B2C3D4E5F72")
    pa = password_file(tmp_path, USERS["alice"])
    (tmp_path / "b").mkdir()
    pb = password_file(tmp_path / "b", USERS["bob"])
    run = lambda user, pw: otaenv.run_device(  # noqa: E731
        url, dev, "--user", user, "--password-file", pw, tmp=tmp_path)
    a1 = run("alice", pa)
    assert a1.rc == 0, a1
    log0 = env.log_size()
    b1 = run("bob", pb)
    assert b1.rc == 0, b1
    st = statuses(env)
    assert st[enroll_serial(a1.out)] == "valid", st
    assert re.search(r"SCEP6153: certificate \S+ of device 00008110-000A1B2C3D4E5F72 "
                     r"kept: enrolled by alice, not bob", env.read_log(log0))
    # alice again: her older one goes, bob's stays
    a2 = run("alice", pa)
    assert a2.rc == 0, a2
    st = statuses(env)
    assert st[enroll_serial(a1.out)].startswith("revoked"), st
    assert st[enroll_serial(b1.out)] == "valid", st
