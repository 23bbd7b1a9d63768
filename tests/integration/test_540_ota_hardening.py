"""OTA requests that must cost the server nothing, or get nothing:

* HEAD on the Profile Service location answers the headers of a GET and
  stores no challenge, signs no profile;
* Phase 2 accepts a device signer only when a CA certificate of
  OTADeviceCACertificateFile issued it directly: a root in that file does
  not make the leaves of its other intermediates device identities;
* binary plists whose objects are shared (each reference parsed again by
  libplist: 2^depth nodes from a few hundred bytes) are refused before
  they are parsed, and the children's memory stays flat.

The first and the last share the OTA config of otaenv.OtaServer; the trust
tests run a config of their own (the next test's fixture restores the
shared one).
"""

import plistlib
import re
import struct

import pytest

import otaenv
import storeenv
from otaenv import ASPEN, assert_no_crash, attributes, challenge_of, cms_sign, post_signed


@pytest.fixture(scope="module")
def opki(tmp_path_factory, pki, own_keys):
    return otaenv.ota_pki(tmp_path_factory, pki, own_keys)


@pytest.fixture
def srv(env, pki, opki):
    return otaenv.ota_server(env, pki, opki)


def challenge_rows(env, srv):
    return storeenv.sqlite_query(env.root.path / srv.store,
                                 "SELECT hash FROM challenges")


# ---------------------------------------------------------------------------
# HEAD of Phase 1


def test_540_001_head_of_phase1_stores_nothing(env, srv, opki, tmp_path):
    """HEAD gets the status and headers of a GET and no body; no challenge
    is stored for it. A GET afterwards still stores one."""
    challenge_of(srv.url(), tmp_path, opki.trust)      # the store exists
    before = set(challenge_rows(env, srv))
    for _ in range(3):
        r = env.head("/ota/profile")
        assert r.status == 200, r
        assert r.header("Content-Type") == ASPEN
        assert "attachment" in r.header("Content-Disposition")
        assert r.body == b""
    assert set(challenge_rows(env, srv)) == before
    challenge_of(srv.url(), tmp_path, opki.trust)
    assert len(set(challenge_rows(env, srv)) - before) == 1


# ---------------------------------------------------------------------------
# Exponential binary plists


def exponential_bplist(depth):
    """A binary plist of (depth + 2) objects: a dictionary {UDID: array 1},
    array i holding array i+1 twice, the last array empty. Each object is
    stored once; a reader that parses an object at every reference builds
    2^depth arrays."""
    objs = []
    # object 0: dict with 1 pair: key ref 1, value ref 2
    objs.append(bytes([0xD1, 1, 2]))
    objs.append(b"\x54UDID")                  # object 1: ASCII string "UDID"
    for i in range(depth):                    # objects 2 .. depth+1
        nxt = 2 + i + 1
        objs.append(bytes([0xA2, nxt, nxt]))
    objs.append(bytes([0xA0]))                # object depth+2: empty array
    body = b"bplist00"
    offsets = []
    for o in objs:
        offsets.append(len(body))
        body += o
    table = len(body)
    assert max(offsets) < 256 and len(objs) < 256
    body += bytes(offsets)
    body += bytes(6) + bytes([1, 1]) + struct.pack(">QQQ", len(objs), 0, table)
    return body


def peak_rss_kb(pid):
    """VmHWM: the most memory the process ever had resident (what it
    freed since cannot hide a spike)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for ln in f:
                if ln.startswith("VmHWM:"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return None


def test_540_020_exponential_binary_plist_is_refused(env, srv, opki, tmp_path):
    """The attributes as a binary plist (under the 4 KiB limit) with one
    array referenced twice per level, 22 levels deep (2^22 arrays once
    parsed, about 1 GB), signed by a genuine device identity: 400, and no
    child's peak RSS grows by more than 50 MB."""
    bpl = exponential_bplist(22)
    assert len(bpl) < 200
    body = cms_sign(bpl, opki.device("bplist"), tmp_path, md="sha1")
    pids = storeenv.child_pids(env)
    peak0 = {p: peak_rss_kb(p) for p in pids}
    log0 = env.log_size()
    env.expect_log(r"SCEP5008")
    for _ in range(2):
        a = post_signed(srv.url(), body)
        assert a.status == 400, a
    growth = {p: peak_rss_kb(p) - peak0[p] for p in pids
              if peak0[p] is not None and peak_rss_kb(p) is not None}
    assert growth and max(growth.values()) < 50 * 1024, growth
    assert re.search(r"SCEP5008", env.read_log(log0))
    assert_no_crash(env, log0)


def test_540_021_shallow_binary_attributes_still_enroll_phase2(env, srv, opki,
                                                               tmp_path):
    """A binary plist of attributes without shared containers (Python's
    plistlib, which shares equal strings) is still a Phase 2 request."""
    ch = challenge_of(srv.url(), tmp_path, opki.trust)
    attrs = dict(otaenv.DEVICE_ATTRS, CHALLENGE=ch, IMEI="", MEID="")
    bpl = plistlib.dumps(attrs, fmt=plistlib.FMT_BINARY)
    a = post_signed(srv.url(), cms_sign(bpl, opki.device("bplist"), tmp_path,
                                        md="sha1"))
    assert a.status == 200 and a.content_type == ASPEN, a


def test_540_022_phase3_signer_checked_before_its_attributes(env, srv, pki,
                                                              tmp_path):
    """Signed by a certificate of our CA that the store never recorded: 403
    from the store check, before the content is read (the exponential
    plist, or no plist at all, does not get as far as the parser)."""
    leaf = otaenv.Cred(pki.leaf.cert_file, pki.leaf.key_file)
    log0 = env.log_size()
    env.expect_log(r"SCEP5101")
    for content in (exponential_bplist(22), b"not a plist at all"):
        a = post_signed(srv.url(), cms_sign(content, leaf, tmp_path))
        assert a.status == 403, a
    log = env.read_log(log0)
    assert len(re.findall(r"SCEP5101: .*not in the store", log)) == 2, log
    assert "SCEP5008" not in log


# ---------------------------------------------------------------------------
# The device signer must be issued directly by a configured device CA


@pytest.fixture(scope="module")
def sibling(opki):
    """A second intermediate under the Apple-like root (beside the iPhone
    CA) and a device-like leaf under it."""
    o = opki
    ca = o.ca.issue("sibling-ca", "/C=US/O=Test Apple-like/OU=Other/"
                    "CN=Test Sibling Intermediate", o.key_pem("sibling-ca", 1024),
                    "070416000000Z", "300416000000Z", "v3_ca", issuer=o.apple_root)
    leaf = o.ca.issue("dev-sibling", f"/CN={otaenv.UDID}",
                      o.key_pem("dev-sibling", 1024), "100101000000Z",
                      "300101000000Z", "v3_device", issuer=ca)
    leaf.cas = o.ca.dir / "dev-sibling-cas.pem"
    leaf.cas.write_bytes(ca.cert.read_bytes() + o.apple_root.cert.read_bytes())
    root_and_device = o.dir / "device-ca-and-root.pem"
    root_and_device.write_bytes(o.device_ca.cert.read_bytes()
                                + o.apple_root.cert.read_bytes())
    root_only = o.dir / "root-only.pem"
    root_only.write_bytes(o.apple_root.cert.read_bytes())
    o._make_readable()
    return {"leaf": leaf, "root+device": root_and_device, "root": root_only}


def run_with_device_cas(env, srv, cafile):
    snippet = srv.snippet().replace(f'"{srv.opki.device_ca_file}"', f'"{cafile}"')
    assert str(cafile) in snippet
    env.ensure(snippet, extra_modules=otaenv.EXTRA_MODULES,
               expect_log=otaenv.STARTUP_LOG)


def test_540_040_sibling_intermediate_leaf_is_403(env, srv, opki, sibling, tmp_path):
    """OTADeviceCACertificateFile holds the root and the device CA. A leaf
    of another intermediate of that root, sending its full chain and a
    valid challenge, is refused 403; the real device still enrolls."""
    run_with_device_cas(env, srv, sibling["root+device"])
    log0 = env.log_size()
    ch = challenge_of(srv.url(), tmp_path, opki.trust)
    env.expect_log(r"SCEP5007")
    a = post_signed(srv.url(), cms_sign(attributes(ch), sibling["leaf"], tmp_path,
                                        md="sha1"))
    assert a.status == 403, a
    assert re.search(r"SCEP5007: .*Test Sibling Intermediate", env.read_log(log0))
    ch = challenge_of(srv.url(), tmp_path, opki.trust)
    ok = post_signed(srv.url(), cms_sign(attributes(ch), opki.device("sibling-test"),
                                         tmp_path, md="sha1"))
    assert ok.status == 200 and ok.content_type == ASPEN, ok
    # the same with only the signer sent (as macOS does)
    ch = challenge_of(srv.url(), tmp_path, opki.trust)
    ok = post_signed(srv.url(), cms_sign(attributes(ch), opki.device("sibling-test"),
                                         tmp_path, md="sha1", chain=False))
    assert ok.status == 200, ok


def test_540_041_a_root_alone_trusts_no_device(env, srv, opki, sibling, tmp_path):
    """OTADeviceCACertificateFile holding only the root: the genuine device
    (issued by the device CA under the iPhone CA under that root) is
    refused 403, its chain sent or not."""
    run_with_device_cas(env, srv, sibling["root"])
    env.expect_log(r"SCEP5007")
    for chain in (True, False):
        ch = challenge_of(srv.url(), tmp_path, opki.trust)
        a = post_signed(srv.url(), cms_sign(attributes(ch), opki.device("sibling-test"),
                                            tmp_path, md="sha1", chain=chain))
        assert a.status == 403, a
