"""Files the module and the CLI write are private, and the store file is
never reached through a link while httpd is root.

The SQLite store: httpd prepares it as root at every start and hands it to
the user the children run as (www-data when the suite runs as root). A new
database is 0600 in a directory of 0700, both the worker user's; an
existing one with looser modes is tightened (logged, SCEP4036); a symbolic
link (dangling or not) or a hard link at the store path or at its -wal or
-shm refuses the configuration (`apache2 -t` and the start, SCEP4030), and
the file it points to is left as it was.

`scep-ota device --save` writes the new key and the decrypted profile
0600; with `--profile-ca` it prints whether each profile's signer chains to
that file.
"""

import os
import pwd
import re
import stat

import pytest

import otaenv
import scepenv
import storeenv
from scepenv import scep_directives, scep_location

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0,
                               reason="ownership changes need httpd started as root")


def worker_uid():
    return pwd.getpwnam(scepenv.WORKER_USER).pw_uid if os.geteuid() == 0 \
        else os.geteuid()


def store_snippet(pki, db=None):
    lines = [scep_directives(pki.ca_chain_file, pki.issuing.key_file),
             f"SCEPChallengePassword {storeenv.STATIC_CHALLENGE}",
             scep_location("/scep")]
    if db is not None:
        lines.append(f"SCEPStore sqlite3:{db}")
    return "\n".join(lines)


def enroll_one(env, pki, client):
    p = storeenv.prepare([client], pki.issuing.cert, storeenv.STATIC_CHALLENGE)[0]
    r = storeenv.send_one(env.port, p)
    assert r.http_status == 200, r.error


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def assert_private(path, mode):
    st = os.lstat(path)
    assert stat.S_IMODE(st.st_mode) == mode, f"{path}: {oct(st.st_mode)}"
    assert st.st_uid == worker_uid(), f"{path}: uid {st.st_uid}"


def workers_dir(path):
    """A directory the worker user owns, as the store's directory is."""
    path.mkdir(parents=True)
    scepenv.open_path_for_workers(path)
    if os.geteuid() == 0:
        os.chown(path, worker_uid(), -1)
    return path


def victim(tmp_path):
    """A root file outside the store, 0644, that a link points at."""
    v = tmp_path / "victim.conf"
    v.write_text("root's own file\n")
    os.chmod(v, 0o644)
    return v


def assert_untouched(v):
    st = os.lstat(v)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (os.geteuid(), 0o644)
    assert v.read_text() == "root's own file\n"


# ---------------------------------------------------------------------------
# A new store


@ROOT_ONLY
def test_630_001_new_store_is_private(env, pki, keypool, tmp_path):
    """SCEPStore in a directory that does not exist yet: the directory is
    made 0700 (its parents 0755, root's), the database 0600, both the
    worker user's; the -wal and -shm the children make are 0600 too."""
    top = tmp_path / "stores"
    db = top / "a" / "scep.db"
    scepenv.open_path_for_workers(tmp_path)
    env.ensure(store_snippet(pki, db))
    enroll_one(env, pki, keypool.clients(1, start=20)[0])
    assert_private(db, 0o600)
    assert_private(db.parent, 0o700)
    assert os.stat(top).st_uid == os.geteuid()
    assert mode_of(top) & 0o055 == 0o055         # traversable by the workers
    sidecars = [f for f in (db.with_name("scep.db-wal"), db.with_name("scep.db-shm"))
                if f.exists()]
    assert sidecars, "SQLite in WAL mode made no -wal/-shm"
    for f in sidecars:
        assert_private(f, 0o600)


@ROOT_ONLY
def test_630_002_default_store_is_private(env, pki, keypool):
    """Without SCEPStore: ServerRoot/state is 0700 and scep_ota.db 0600,
    the worker user's."""
    env.ensure(store_snippet(pki))
    enroll_one(env, pki, keypool.clients(1, start=21)[0])
    db = env.root.path / "state" / "scep_ota.db"
    assert_private(db, 0o600)
    assert_private(db.parent, 0o700)


@ROOT_ONLY
def test_630_003_loose_existing_store_is_tightened(env, pki, keypool, tmp_path):
    """A database and -wal of root's, 0644 (as an older release left them):
    after the start both are 0600 and the worker user's, and the log says
    that the database was readable by others."""
    d = workers_dir(tmp_path / "loose")
    db = d / "scep.db"
    for f in (db, d / "scep.db-wal"):
        f.write_bytes(b"")
        os.chmod(f, 0o644)
        os.chown(f, 0, 0)
    log0 = env.log_size()
    env.ensure(store_snippet(pki, db))
    assert re.search(rf"\[scep_ota:notice\].*SCEP4036: SCEPStore: {re.escape(str(db))} "
                     r"was mode 0644.* now 0600", env.read_log(log0))
    enroll_one(env, pki, keypool.clients(1, start=22)[0])
    assert_private(db, 0o600)
    assert_private(d / "scep.db-wal", 0o600)


# ---------------------------------------------------------------------------
# Links at the store path


@pytest.mark.parametrize("where", ["db", "db-wal", "db-shm", "dangling"])
def test_630_010_symlink_in_the_store_directory_is_refused(env, pki, tmp_path, where):
    """A worker plants a symbolic link where the store (or its -wal/-shm)
    will be: `apache2 -t` and the start refuse with SCEP4030 naming the
    link, and the file it points to keeps its owner, mode and content (a
    dangling link creates nothing)."""
    d = workers_dir(tmp_path / "planted")
    db = d / "scep.db"
    v = victim(tmp_path)
    target = tmp_path / "not-there" if where == "dangling" else v
    link = d / ("scep." + where if where.startswith("db-") else "scep.db")
    if where.startswith("db-"):
        db.write_bytes(b"")
    link.symlink_to(target)
    r = env.apache_fail(store_snippet(pki, db))
    r.assert_message(r"SCEP4030", re.escape(str(link)), r"symbolic link")
    assert_untouched(v)
    assert not (tmp_path / "not-there").exists()
    assert os.path.islink(link)


def test_630_011_hard_link_at_the_store_path_is_refused(env, pki, tmp_path):
    """A hard link to a root file at the store path (possible where
    protected_hardlinks is off) is refused the same way."""
    d = workers_dir(tmp_path / "hard")
    v = victim(tmp_path)
    os.link(v, d / "scep.db")
    r = env.apache_fail(store_snippet(pki, d / "scep.db"))
    r.assert_message(r"SCEP4030", r"hard links")
    assert_untouched(v)


# ---------------------------------------------------------------------------
# scep-ota device


@pytest.fixture(scope="module")
def opki(tmp_path_factory, pki, own_keys):
    return otaenv.ota_pki(tmp_path_factory, pki, own_keys)


@pytest.fixture
def srv(env, pki, opki):
    return otaenv.ota_server(env, pki, opki)


def device(srv, dev, *args):
    cmd = [otaenv.cli_path(), "device", srv.url(), "--identity", dev.chain,
           "--key", dev.key, *args]
    return otaenv.DeviceRun(otaenv.run(cmd, check=False, timeout=120))


def test_630_020_device_save_writes_private_files(env, srv, opki, tmp_path):
    """--save: PREFIX.key and PREFIX.mobileconfig are 0600 whatever the
    umask, also when they existed with 0644; PREFIX.crt is public."""
    prefix = tmp_path / "saved"
    old = os.umask(0o022)
    try:
        (tmp_path / "saved.key").write_text("old\n")
        os.chmod(tmp_path / "saved.key", 0o644)
        r = device(srv, opki.device("files"), "--save", prefix)
    finally:
        os.umask(old)
    assert r.rc == 0, r
    assert mode_of(f"{prefix}.key") == 0o600
    assert mode_of(f"{prefix}.mobileconfig") == 0o600
    assert mode_of(f"{prefix}.crt") == 0o644
    assert "PRIVATE KEY" in open(f"{prefix}.key").read()


def test_630_021_device_prints_whether_the_profile_signer_is_trusted(env, srv, opki):
    """With --profile-ca (the root behind the profile signer) each of the
    three profiles is reported verified; with another CA, not verified
    (the run goes on, as a device installs an unverified profile); without
    the option, not checked."""
    dev = opki.device("files")
    good = device(srv, dev, "--profile-ca", opki.trust)
    assert good.rc == 0, good
    assert len(re.findall(r"^   signer chain: verified against " + re.escape(str(opki.trust)),
                          good.out, re.M)) == 3, good
    bad = device(srv, dev, "--profile-ca", opki.device_ca.cert)
    assert bad.rc == 0, bad
    lines = re.findall(r"^   signer chain: NOT verified against .*: (.*)$", bad.out, re.M)
    assert len(lines) == 3 and all(lines), bad
    none = device(srv, dev)
    assert none.rc == 0, none
    assert len(re.findall(r"^   signer chain: not checked \(no --profile-ca\)",
                          none.out, re.M)) == 3, none
