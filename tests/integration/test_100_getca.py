"""GetCACaps and GetCACert, and the handler's HTTP behaviour."""

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from scepenv import DEFAULT_CAPS, scep_directives, scep_location

LOC = scep_location("/scep")
DEFAULT_CAPS_BODY = "".join(w + "\n" for w in DEFAULT_CAPS).encode()
CA_CERT_TYPE = "application/x-x509-ca-cert"
CA_RA_CERT_TYPE = "application/x-x509-ca-ra-cert"


def der_list(body):
    """The certificates of a certs-only PKCS#7, as DER, in encoded order."""
    return [c.public_bytes(Encoding.DER) for c in pkcs7.load_der_pkcs7_certificates(body)]


def openssl_view(body, tmp_path):
    """(subjects in order, printed structure) of a PKCS#7 by the openssl CLI."""
    f = tmp_path / "getcacert.p7b"
    f.write_bytes(body)
    certs = subprocess.run(["openssl", "pkcs7", "-inform", "DER", "-in", str(f),
                            "-print_certs", "-noout"],
                           capture_output=True, text=True, check=True).stdout
    structure = subprocess.run(["openssl", "cms", "-cmsout", "-print", "-inform", "DER",
                                "-in", str(f)],
                               capture_output=True, text=True, check=True).stdout
    subjects = re.findall(r"^subject=.*?CN\s*=\s*(.+)$", certs, re.M)
    return subjects, structure


def assert_certs_only(body, expected, tmp_path):
    """`body` is a degenerate certs-only SignedData holding exactly the
    certificates `expected` (Credentials), in that order."""
    assert der_list(body) == [c.der for c in expected], (
        "certificates differ or are out of order: got "
        + ", ".join(_subject_of(d) for d in der_list(body)))
    subjects, structure = openssl_view(body, tmp_path)
    assert subjects == [c.cert.subject.rfc4514_string().split("CN=")[1].split(",")[0]
                        for c in expected]
    assert re.search(r"signerInfos:\s*\n\s*<EMPTY>", structure), structure
    assert re.search(r"eContent:\s*<ABSENT>", structure), structure


def _subject_of(der):
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


# ---------------------------------------------------------------------------
# One CA certificate, default capabilities


class TestSingleCA:

    @pytest.fixture(autouse=True, scope="class")
    def _server(self, env, pki):
        env.ensure(scep_directives(pki.solo.cert_file, pki.solo.key_file) + "\n" + LOC)

    def test_100_001_getcacaps_default(self, env):
        r = env.get("/scep?operation=GetCACaps")
        assert r.status == 200
        assert r.content_type == "text/plain"
        assert r.body == DEFAULT_CAPS_BODY

    @pytest.mark.parametrize("query", [
        "operation=GetCACaps&message=anything",
        "operation=GetCACaps&message=",
        "message=CA%20identifier&operation=GetCACaps",
        "operation=GetCACaps&message=0",
    ])
    def test_100_002_getcacaps_ignores_message(self, env, query):
        r = env.get("/scep?" + query)
        assert r.status == 200
        assert r.content_type == "text/plain"
        assert r.body == DEFAULT_CAPS_BODY

    def test_100_003_getcacaps_by_post(self, env):
        r = env.post("/scep?operation=GetCACaps", body=b"")
        assert r.status == 200
        assert r.content_type == "text/plain"
        assert r.body == DEFAULT_CAPS_BODY

    def test_100_004_getcacaps_by_post_with_body(self, env):
        r = env.post("/scep?operation=GetCACaps", body=b"ignored body")
        assert r.status == 200
        assert r.body == DEFAULT_CAPS_BODY

    def test_100_005_getcacert_single_ca_is_der(self, env, pki):
        r = env.get("/scep?operation=GetCACert")
        assert r.status == 200
        assert r.content_type == CA_CERT_TYPE
        assert r.body == pki.solo.der

    def test_100_006_getcacert_with_message(self, env, pki):
        r = env.get("/scep?operation=GetCACert&message=Device%20Management%20Identity")
        assert r.status == 200
        assert r.content_type == CA_CERT_TYPE
        assert r.body == pki.solo.der

    @pytest.mark.parametrize("op", ["GetCACert", "GetCACaps"])
    def test_100_007_head_like_get_without_body(self, env, op):
        g = env.get("/scep?operation=" + op)
        h = env.head("/scep?operation=" + op)
        assert h.status == g.status == 200
        assert h.content_type == g.content_type
        assert h.body == b""
        if h.header("Content-Length") is not None:
            assert h.header("Content-Length") == str(len(g.body))

    def test_100_008_content_length(self, env):
        r = env.get("/scep?operation=GetCACert")
        assert r.header("Content-Length") == str(len(r.body))

    @pytest.mark.parametrize("query", ["", "?", "?message=x", "?Operation", "?operation"])
    def test_100_010_missing_operation_is_400(self, env, query):
        r = env.get("/scep" + query)
        assert r.status == 400

    @pytest.mark.parametrize("op", ["Bogus", "", "GetCACertX", "GetCRL",
                                    "%00GetCACaps", "GetCACaps%00"])
    def test_100_011_unknown_operation_is_400(self, env, op):
        r = env.get("/scep?operation=" + op)
        assert r.status == 400

    def test_100_012_unknown_operation_by_post_is_400(self, env):
        r = env.post("/scep?operation=Bogus", body=b"x")
        assert r.status == 400

    @pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
    def test_100_013_other_methods_are_405(self, env, method):
        r = env.request(method, "/scep?operation=GetCACaps", body=b"x")
        assert r.status == 405
        allow = [m.strip() for m in (r.header("Allow") or "").split(",")]
        assert "GET" in allow and "POST" in allow, r.headers

    def test_100_014_pkioperation_undecodable_is_400(self, env):
        """PKIOperation with bytes that are no pkiMessage: 400 by POST and
        by GET (enrollment itself: test_200 and after)."""
        r = env.post("/scep?operation=PKIOperation", body=b"\x30\x03\x02\x01\x00")
        assert r.status == 400
        r = env.get("/scep?operation=PKIOperation&message=MAMCAQA%3D")
        assert r.status == 400

    def test_100_015_head_never_enrolls(self, env):
        """HEAD must have no side effect: a PKIOperation by HEAD is refused
        before the message is even read."""
        r = env.head("/scep?operation=PKIOperation&message=MAMCAQA%3D")
        assert r.status == 405
        assert r.header("Allow") == "GET, POST"

    def test_100_015_other_urls_untouched(self, env):
        r = env.get("/index.txt?operation=GetCACert")
        assert r.status == 200
        assert r.body == b"static file\n"

    def test_100_016_subpath_of_the_location(self, env, pki):
        """<Location /scep> covers /scep/pkiclient.exe (the Cisco/NDES path)."""
        r = env.get("/scep/pkiclient.exe?operation=GetCACert")
        assert r.status == 200
        assert r.body == pki.solo.der


# ---------------------------------------------------------------------------
# The issuing CA with its chain, no RA


class TestCAWithChain:

    @pytest.fixture(autouse=True, scope="class")
    def _server(self, env, pki):
        env.ensure(scep_directives(pki.ca_chain_file, pki.issuing.key_file) + "\n" + LOC)

    def test_100_020_getcacert_is_the_issuing_ca(self, env, pki):
        """No RA: the answer is the issuing CA certificate alone, as DER."""
        r = env.get("/scep?operation=GetCACert")
        assert r.status == 200
        assert r.content_type == CA_CERT_TYPE
        assert r.body == pki.issuing.der


# ---------------------------------------------------------------------------
# RA: one certificate with digitalSignature + keyEncipherment


class TestSingleRA:

    @pytest.fixture(autouse=True, scope="class")
    def _server(self, env, pki):
        env.ensure(scep_directives(pki.ca_chain_file, pki.issuing.key_file,
                                   pki.ra.cert_file, pki.ra.key_file) + "\n" + LOC)

    def test_100_030_getcacert_ra_ca_chain(self, env, pki, tmp_path):
        r = env.get("/scep?operation=GetCACert")
        assert r.status == 200
        assert r.content_type == CA_RA_CERT_TYPE
        assert_certs_only(r.body, [pki.ra, pki.issuing, pki.root], tmp_path)

    def test_100_031_head(self, env):
        g = env.get("/scep?operation=GetCACert")
        h = env.head("/scep?operation=GetCACert")
        assert (h.status, h.content_type, h.body) == (200, CA_RA_CERT_TYPE, b"")
        if h.header("Content-Length") is not None:
            assert h.header("Content-Length") == str(len(g.body))

    def test_100_032_getcacaps_unchanged_by_ra(self, env):
        r = env.get("/scep?operation=GetCACaps")
        assert (r.status, r.content_type, r.body) == (200, "text/plain", DEFAULT_CAPS_BODY)


# ---------------------------------------------------------------------------
# RA: a sign-only and an encrypt-only certificate, in either order in the
# file; the answer always puts the encryption certificate first.


@pytest.mark.parametrize("order", ["sign_first", "encrypt_first"])
def test_100_040_getcacert_ra_pair(env, pki, tmp_path, order):
    if order == "sign_first":
        certs, keys = pki.ra_pair_sign_first, pki.ra_pair_keys
    else:
        certs, keys = pki.ra_pair_encrypt_first, pki.ra_pair_keys_sign_first
    env.ensure(scep_directives(pki.ca_chain_file, pki.issuing.key_file, certs, keys)
               + "\n" + LOC)
    r = env.get("/scep?operation=GetCACert")
    assert r.status == 200
    assert r.content_type == CA_RA_CERT_TYPE
    assert_certs_only(r.body, [pki.ra_encrypt, pki.ra_sign, pki.issuing, pki.root],
                      tmp_path)


# ---------------------------------------------------------------------------
# SCEPCACaps


@pytest.mark.parametrize("caps", [
    ["SHA-512", "AES", "POSTPKIOperation"],
    ["SCEPStandard"],
    ["SHA-256", "SHA-1", "DES3", "Renewal", "POSTPKIOperation", "AES", "SCEPStandard",
     "SHA-512"],
])
def test_100_050_configured_caps_in_configured_order(env, pki, caps):
    env.ensure(scep_directives(pki.solo.cert_file, pki.solo.key_file, caps=caps)
               + "\n" + LOC)
    for method in ("GET", "POST"):
        r = env.request(method, "/scep?operation=GetCACaps&message=x", body=b"")
        assert r.status == 200
        assert r.content_type == "text/plain"
        assert r.body == "".join(w + "\n" for w in caps).encode()


def test_100_051_caps_words_any_case_answered_in_exact_case(env, pki):
    """Capability words are directive keywords (any case); the answer uses
    the exact case RFC 8894 prescribes."""
    env.ensure(scep_directives(pki.solo.cert_file, pki.solo.key_file,
                               caps=["aes", "sha-256", "postpkioperation"]) + "\n" + LOC)
    r = env.get("/scep?operation=GetCACaps")
    assert r.status == 200
    assert r.body == b"AES\nSHA-256\nPOSTPKIOperation\n"


# ---------------------------------------------------------------------------
# Virtual hosts


class TestVhosts:
    """Main server: issuing CA with chain, default caps. own.test: its own
    CA and caps. inherit.test: nothing of its own. capsonly.test: only its
    own caps, the main server's CA."""

    OWN_CAPS = ["SHA-256", "AES"]
    CAPSONLY_CAPS = ["SHA-512", "POSTPKIOperation"]

    @pytest.fixture(autouse=True, scope="class")
    def _server(self, env, pki):
        def vh(name, body=""):
            inner = "".join("    " + ln + "\n" for ln in body.splitlines())
            return (f"<VirtualHost 127.0.0.1:{env.port}>\n    ServerName {name}\n"
                    f"{inner}</VirtualHost>\n")
        env.ensure(
            scep_directives(pki.ca_chain_file, pki.issuing.key_file) + "\n" + LOC + "\n"
            + vh("own.test", scep_directives(pki.other.cert_file, pki.other.key_file,
                                             caps=self.OWN_CAPS))
            + vh("inherit.test")
            + vh("capsonly.test", scep_directives(caps=self.CAPSONLY_CAPS)))

    def _get(self, env, host, op):
        return env.get("/scep?operation=" + op, headers={"Host": host})

    def test_100_060_own_ca(self, env, pki):
        r = self._get(env, "own.test", "GetCACert")
        assert (r.status, r.content_type) == (200, CA_CERT_TYPE)
        assert r.body == pki.other.der

    def test_100_061_own_caps(self, env):
        r = self._get(env, "own.test", "GetCACaps")
        assert r.status == 200
        assert r.body == "".join(w + "\n" for w in self.OWN_CAPS).encode()

    def test_100_062_inherited_ca(self, env, pki):
        r = self._get(env, "inherit.test", "GetCACert")
        assert (r.status, r.content_type) == (200, CA_CERT_TYPE)
        assert r.body == pki.issuing.der

    def test_100_063_inherited_caps(self, env):
        r = self._get(env, "inherit.test", "GetCACaps")
        assert r.status == 200
        assert r.body == DEFAULT_CAPS_BODY

    def test_100_064_caps_only_vhost_keeps_main_ca(self, env, pki):
        r = self._get(env, "capsonly.test", "GetCACert")
        assert r.status == 200
        assert r.body == pki.issuing.der
        r = self._get(env, "capsonly.test", "GetCACaps")
        assert r.body == "".join(w + "\n" for w in self.CAPSONLY_CAPS).encode()


def test_100_070_vhost_ra_overrides_main_ca_only(env, pki, tmp_path):
    """A vhost that adds an RA to the inherited CA serves RA + CA chain; the
    main server keeps serving the CA alone."""
    env.ensure(
        scep_directives(pki.ca_chain_file, pki.issuing.key_file) + "\n" + LOC + "\n"
        + f"<VirtualHost 127.0.0.1:{env.port}>\n    ServerName main.test\n</VirtualHost>\n"
        + f"<VirtualHost 127.0.0.1:{env.port}>\n    ServerName ra.test\n"
        + scep_directives(ra_cert=pki.ra.cert_file, ra_key=pki.ra.key_file, indent="    ")
        + "\n</VirtualHost>\n")
    r = env.get("/scep?operation=GetCACert", headers={"Host": "ra.test"})
    assert (r.status, r.content_type) == (200, CA_RA_CERT_TYPE)
    assert_certs_only(r.body, [pki.ra, pki.issuing, pki.root], tmp_path)
    r = env.get("/scep?operation=GetCACert", headers={"Host": "main.test"})
    assert (r.status, r.content_type, r.body) == (200, CA_CERT_TYPE, pki.issuing.der)


# ---------------------------------------------------------------------------
# Under load and across restarts


def test_100_080_concurrent_requests(env, pki):
    """Many parallel requests on both operations all get the same bytes."""
    env.ensure(scep_directives(pki.ca_chain_file, pki.issuing.key_file,
                               pki.ra.cert_file, pki.ra.key_file) + "\n" + LOC)
    want = {op: env.get("/scep?operation=" + op).body for op in ("GetCACert", "GetCACaps")}

    def one(i):
        op = ("GetCACert", "GetCACaps")[i % 2]
        r = env.get(f"/scep?operation={op}&message={i}")
        return r.status, r.body == want[op]

    with ThreadPoolExecutor(max_workers=16) as ex:
        results = list(ex.map(one, range(400)))
    assert results == [(200, True)] * 400


@pytest.mark.parametrize("graceful", [True, False], ids=["graceful", "restart"])
def test_100_081_answers_survive_restarts(env, pki, tmp_path, graceful):
    """`apache2 -k graceful` / `-k restart` re-reads the config; the module
    answers exactly as before, twice over."""
    env.ensure(scep_directives(pki.ca_chain_file, pki.issuing.key_file,
                               pki.ra_pair_sign_first, pki.ra_pair_keys,
                               caps=["SHA-256", "AES"]) + "\n" + LOC)
    for _ in range(2):
        env.apache_reload(graceful=graceful)
        r = env.get("/scep?operation=GetCACert")
        assert (r.status, r.content_type) == (200, CA_RA_CERT_TYPE)
        assert_certs_only(r.body, [pki.ra_encrypt, pki.ra_sign, pki.issuing, pki.root],
                          tmp_path)
        r = env.get("/scep?operation=GetCACaps")
        assert r.body == b"SHA-256\nAES\n"
