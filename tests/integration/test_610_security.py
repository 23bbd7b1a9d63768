"""Security behaviour (issue 6, item 4; ../shared/DESIGN.md "Security
rules", section 8 of the SCEP reference):

* a one-time challenge from `scep-ota store challenge` works once; the
  second use is FAILURE badRequest, and the challenge is never logged;
* what a CSR asks for (CA:TRUE, keyCertSign, nameConstraints, foreign and
  critical extensions, its own key identifiers) is not in the certificate;
* RSA keys under SCEPMinKeySize get FAILURE badRequest (the default 2048
  and a virtual host with 3072);
* single DES and MD5 get FAILURE badAlg unless SCEPAllowLegacyAlgorithms is
  on (a virtual host), where they enroll and the reply mirrors them;
* every failure to open the envelope or read what is in it gets one
  answer: bad PKCS#1 v1.5 padding, good padding around a wrong key or a
  key of the wrong length, a broken ciphertext, an undecodable or
  wrongly self-signed CSR all give the same status, failInfo,
  failInfoText and length of CertRep (the timing is measured, not
  asserted, by bench/decrypt_timing.py).

One config: the main server (static challenge, SQLite store) and two
virtual hosts on ports of their own, `strict` (SCEPMinKeySize 3072) and
`legacy` (SCEPAllowLegacyAlgorithms on); the <Location /scep> of the main
server applies to both.
"""

import os
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtensionOID, NameOID

import badinput as bi
import scepclient_own as own
import scepenv
import scepmsg
import storeenv
from scepclient_own import check_issued
from scepenv import scep_directives, scep_location

CHALLENGE = "security-610-static-secret"
LIFETIME = 30
STRICT_MIN = 3072
PKIOP = own.PKIOP
DB = "state/security-610.db"

_PORTS = {}


def ports(env):
    if id(env) not in _PORTS:
        _PORTS[id(env)] = {"strict": scepenv.free_port(), "legacy": scepenv.free_port()}
    return _PORTS[id(env)]


def snippet(pki, p):
    def vhost(port, *body):
        return "\n".join([f"Listen 127.0.0.1:{port}", f"<VirtualHost 127.0.0.1:{port}>",
                          "    ServerName 127.0.0.1", *("    " + b for b in body),
                          "</VirtualHost>"])
    return "\n".join([
        scep_directives(pki.ca_chain_file, pki.issuing.key_file,
                        pki.ra.cert_file, pki.ra.key_file),
        f"SCEPChallengePassword {CHALLENGE}",
        f"SCEPCertificateLifetime {LIFETIME}",
        f"SCEPStore sqlite3:{DB}",
        scep_location("/scep"),
        vhost(p["strict"], f"SCEPMinKeySize {STRICT_MIN}"),
        vhost(p["legacy"], "SCEPAllowLegacyAlgorithms on"),
    ])


@pytest.fixture(autouse=True)
def _server(env, pki):
    env.ensure(snippet(pki, ports(env)))


def _client(env, pki, keys, tmp, where="main"):
    target = env if where == "main" else scepenv.At(env, ports(env)[where])
    c = own.OwnClient(target, tmp / where, recipient=pki.ra.cert_file,
                      trust=pki.ca_chain_file, signer=pki.ra.cert, ca=pki.issuing.cert,
                      keys=keys)
    c.legacy = where == "legacy"
    return c


@pytest.fixture
def client(env, pki, own_keys, tmp_path):
    return _client(env, pki, own_keys, tmp_path)


def csr_file(client, key, cn, **kw):
    return own.make_csr(client._fresh("csr").with_suffix(".pem"), key, cn, **kw)


def certs_in_store(env):
    return storeenv.cli_list(env.root.conf, "all")


def issued_ok(rep, req, pki, tmp_path, subject, key=None):
    assert rep.status == "SUCCESS", rep
    return check_issued(rep.cert, trust=pki.ca_chain_file, issuer=pki.issuing.cert,
                        key=key or req.key, subject=subject, lifetime_days=LIFETIME,
                        tmp=tmp_path)


# ---------------------------------------------------------------------------
# One-time challenges


def test_610_001_one_time_challenge_replay_refused(env, pki, client, own_keys, tmp_path):
    """A challenge from `scep-ota store challenge -f httpd.conf`: the first
    enrollment with it succeeds; a second enrollment (another key, another
    subject, another transaction) with the same challenge gets FAILURE
    badRequest and no certificate; the first request sent again is an
    idempotent retry (the same certificate, nothing new). The challenge is
    never written to the error log."""
    ch = storeenv.cli_challenge(env.root.conf)
    log0 = env.log_size()
    rep1, req1 = client.enroll("replay-first", key=own_keys.get("t610-replay-1"),
                               challenge=ch)
    cert1 = issued_ok(rep1, req1, pki, tmp_path, "replay-first")
    before = certs_in_store(env)

    rep2, _ = client.enroll("replay-second", key=own_keys.get("t610-replay-2"),
                            challenge=ch)
    assert (rep2.status, rep2.fail_info) == ("FAILURE", "badRequest"), rep2
    assert rep2.cert is None

    again = client.exchange(req1)
    assert again.status == "SUCCESS" and again.cert == cert1, again
    assert certs_in_store(env) == before
    assert ch not in env.read_log(log0), "the one-time challenge is in the error log"


def test_610_002_one_time_challenge_used_by_another_subject_first(env, pki, client,
                                                                  own_keys):
    """The same one-time challenge in two different CSRs sent one after
    the other: exactly one is issued."""
    ch = storeenv.cli_challenge(env.root.conf)
    reps = [client.enroll(f"race-{i}", key=own_keys.get(f"t610-race-{i}"),
                          challenge=ch)[0] for i in range(3)]
    assert sorted(r.status for r in reps) == ["FAILURE", "FAILURE", "SUCCESS"], reps


def _csr_raw_challenge(client, key, cn, value, tag=None):
    """A CSR whose challengePassword is exactly `value` (bytes), of ASN.1
    type `tag` (default UTF8String)."""
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import AttributeOID
    b = x509.CertificateSigningRequestBuilder().subject_name(own.name_of(cn))
    kw = {"_tag": tag} if tag is not None else {}
    b = b.add_attribute(AttributeOID.CHALLENGE_PASSWORD, value, **kw)
    path = client._fresh("csr").with_suffix(".pem")
    path.write_bytes(b.sign(key.obj, hashes.SHA256()).public_bytes(Encoding.PEM))
    return path


def test_610_003_challenge_lookalikes_refused_and_not_consumed(env, pki, client,
                                                                own_keys):
    """The one-time challenge with a NUL and more after it, with a trailing
    space, in upper case, and the static challenge with a NUL tail: all
    refused; none of them uses the one-time challenge up, which then
    works once."""
    ch = storeenv.cli_challenge(env.root.conf)
    before = certs_in_store(env)
    key = own_keys.get("t610-lookalike")
    for i, value in enumerate([ch.encode() + b"\x00extra", ch.encode() + b" ",
                               ch.upper().encode() if ch.upper() != ch else
                               ch.lower().encode(),
                               CHALLENGE.encode() + b"\x00", b"\x00" + ch.encode()]):
        csr = _csr_raw_challenge(client, key, f"lookalike-{i}", value)
        rep = client.exchange(client.request("pkcsreq", key, csr=csr))
        assert (rep.status, rep.fail_info) == ("FAILURE", "badRequest"), (value, rep)
    assert certs_in_store(env) == before
    rep, req = client.enroll("lookalike-ok", key=key, challenge=ch)
    assert rep.status == "SUCCESS", rep


def test_610_004_expired_challenge_refused(env, pki, client, own_keys):
    """A one-time challenge made with --ttl 1 is refused two seconds later."""
    ch = storeenv.cli_challenge(env.root.conf, "--ttl", "1")
    import time
    time.sleep(2.2)
    before = certs_in_store(env)
    rep, _ = client.enroll("expired", key=own_keys.get("t610-expired"), challenge=ch)
    assert (rep.status, rep.fail_info) == ("FAILURE", "badRequest"), rep
    assert certs_in_store(env) == before


def test_610_005_certpoll_by_another_key_gets_nothing(env, pki, client, own_keys,
                                                      tmp_path):
    """A CertPoll for a transaction that was issued, signed by another
    requester's key (it knows the transactionID and the subject, not the
    key): no certificate."""
    victim = own_keys.get("t610-poll-victim")
    csr = csr_file(client, victim, "poll-victim", challenge=CHALLENGE)
    req = client.request("pkcsreq", victim, csr=csr)
    issued_ok(client.exchange(req), req, pki, tmp_path, "poll-victim")
    thief = own_keys.get("t610-poll-thief")
    poll = client.request("certpoll", thief, csr=csr, txid=req.txid,
                          issuer=pki.issuing.cert_file)
    rep = client.exchange(poll)
    assert rep.status == "FAILURE" and rep.cert is None, rep


# ---------------------------------------------------------------------------
# What a CSR asks for is not what it gets


FOREIGN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1.2.3")


def _requested(kind, key):
    ski_bogus = x509.SubjectKeyIdentifier(b"\x01" * 20)
    everything = {
        "ca-true": [(x509.BasicConstraints(ca=True, path_length=5), True)],
        "key-cert-sign": [(x509.KeyUsage(True, True, True, True, True, True, True, False,
                                         False), True)],
        "name-constraints": [(x509.NameConstraints(
            permitted_subtrees=[x509.DNSName("example.com")], excluded_subtrees=None),
            True)],
        "foreign-critical": [(x509.UnrecognizedExtension(FOREIGN_OID, b"\x05\x00"), True)],
        "eku-any-and-server": [(x509.ExtendedKeyUsage([
            x509.oid.ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
            x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
            x509.oid.ExtendedKeyUsageOID.CODE_SIGNING]), False)],
        "policies-and-pointers": [
            (x509.CertificatePolicies([x509.PolicyInformation(
                x509.ObjectIdentifier("2.5.29.32.0"), None)]), False),
            (x509.CRLDistributionPoints([x509.DistributionPoint(
                [x509.UniformResourceIdentifier("http://evil.example/crl")], None, None,
                None)]), False),
            (x509.AuthorityInformationAccess([x509.AccessDescription(
                x509.oid.AuthorityInformationAccessOID.OCSP,
                x509.UniformResourceIdentifier("http://evil.example/ocsp"))]), False),
            (x509.OCSPNoCheck(), False),
            (x509.PolicyConstraints(require_explicit_policy=0,
                                    inhibit_policy_mapping=None), True),
            (x509.InhibitAnyPolicy(0), True)],
        "own-key-identifiers": [
            (ski_bogus, False),
            (x509.AuthorityKeyIdentifier(b"\x02" * 20, None, None), False)],
    }
    if kind == "everything":
        return [e for k in everything for e in everything[k]]
    return everything[kind]


@pytest.mark.parametrize("kind", ["ca-true", "key-cert-sign", "name-constraints",
                                  "foreign-critical", "eku-any-and-server",
                                  "policies-and-pointers", "own-key-identifiers",
                                  "everything"])
def test_610_010_csr_extensions_are_not_copied(env, pki, client, own_keys, tmp_path,
                                               kind):
    cn = f"ext-{kind}"
    key = own_keys.get(f"t610-{cn}")
    csr = csr_file(client, key, cn, challenge=CHALLENGE, extensions=_requested(kind, key))
    rep = client.exchange(client.request("pkcsreq", key, csr=csr))
    # check_issued: the template's five extensions and nothing else, CA:FALSE,
    # keyUsage digitalSignature + keyEncipherment only, EKU clientAuth only,
    # AKI = the issuing CA's SKI
    cert = issued_ok(rep, None, pki, tmp_path, cn, key=key)
    ext = cert.extensions
    bc = ext.get_extension_for_class(x509.BasicConstraints)
    assert bc.value.ca is False and bc.value.path_length is None
    assert not ext.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    for oid in (ExtensionOID.NAME_CONSTRAINTS, FOREIGN_OID,
                ExtensionOID.CERTIFICATE_POLICIES, ExtensionOID.CRL_DISTRIBUTION_POINTS,
                ExtensionOID.AUTHORITY_INFORMATION_ACCESS, ExtensionOID.OCSP_NO_CHECK,
                ExtensionOID.POLICY_CONSTRAINTS, ExtensionOID.INHIBIT_ANY_POLICY):
        with pytest.raises(x509.ExtensionNotFound):
            ext.get_extension_for_oid(oid)
    ski = ext.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski.digest == x509.SubjectKeyIdentifier.from_public_key(
        key.obj.public_key()).digest, "the SKI is not the hash of the certified key"


def test_610_011_ca_subject_in_csr_is_refused(env, pki, client, own_keys, tmp_path):
    """A CSR that asks for the issuing CA's own subject (and CA:TRUE), or
    the root's, or the RA's, is refused: no leaf of this CA carries the
    name of a CA certificate. Nothing is recorded."""
    before = certs_in_store(env)
    for who in (pki.issuing.cert, pki.root.cert, pki.ra.cert):
        key = own_keys.get("t610-ca-subject")
        csr = csr_file(client, key, who.subject, challenge=CHALLENGE,
                       extensions=_requested("ca-true", key))
        rep = client.exchange(client.request("pkcsreq", key, csr=csr))
        assert (rep.status, rep.fail_info) == ("FAILURE", "badRequest"), rep
        assert "subject" in (rep.fail_text or ""), rep
    assert certs_in_store(env) == before


# ---------------------------------------------------------------------------
# Key size


def test_610_020_key_under_min_size(env, pki, own_keys, tmp_path):
    """Default SCEPMinKeySize (2048): 1024 refused. The `strict` host
    (3072): 2048 refused, 3072 and an EC P-256 key (the size applies to
    RSA) enrolled. A refusal records nothing."""
    main = _client(env, pki, own_keys, tmp_path)
    strict = _client(env, pki, own_keys, tmp_path, "strict")
    before = certs_in_store(env)
    for c, bits, cn in [(main, 1024, "rsa1024-main"), (strict, 2048, "rsa2048-strict"),
                        (strict, 1024, "rsa1024-strict")]:
        key = own_keys.get(f"t610-{cn}", bits=bits)
        rep = c.exchange(c.request("pkcsreq", key,
                                   csr=csr_file(c, key, cn, challenge=CHALLENGE)))
        assert (rep.status, rep.fail_info) == ("FAILURE", "badRequest"), (cn, rep)
    assert certs_in_store(env) == before
    for bits, cn in [(STRICT_MIN, "rsa3072-strict"), ("p256", "ec-p256-strict")]:
        key = own_keys.get(f"t610-{cn}", bits=bits)
        req = strict.request("pkcsreq", key, csr=csr_file(strict, key, cn,
                                                          challenge=CHALLENGE))
        issued_ok(strict.exchange(req), req, pki, tmp_path, cn)


# ---------------------------------------------------------------------------
# Legacy algorithms


@pytest.mark.parametrize("cipher,digest", [("des", "sha256"), ("aes128", "md5"),
                                           ("des", "md5")])
def test_610_030_legacy_algorithms(env, pki, own_keys, tmp_path, cipher, digest):
    """Without SCEPAllowLegacyAlgorithms: FAILURE badAlg (signed with an
    allowed digest) and nothing recorded. On the `legacy` host: enrolled,
    the reply in the request's own cipher and digest."""
    cn = f"legacy-{cipher}-{digest}"
    key = own_keys.get(f"t610-{cn}")
    main = _client(env, pki, own_keys, tmp_path)
    before = certs_in_store(env)
    req = main.request("pkcsreq", key, csr=csr_file(main, key, cn, challenge=CHALLENGE),
                       cipher=cipher, digest=digest)
    rep = main.exchange(req)
    assert (rep.status, rep.fail_info) == ("FAILURE", "badAlg"), rep
    assert rep.der.digest_oid != own.DIGEST_OIDS["md5"]
    assert certs_in_store(env) == before

    legacy = _client(env, pki, own_keys, tmp_path, "legacy")
    csr = csr_file(legacy, key, cn, challenge=CHALLENGE)
    req = legacy.request("pkcsreq", key, csr=csr, cipher=cipher, digest=digest)
    rep = legacy.exchange(req)      # read() checks the mirrored cipher and digest
    issued_ok(rep, req, pki, tmp_path, cn)
    assert rep.der.cipher_oid == own.CIPHER_OIDS[cipher]
    assert rep.der.digest_oid == own.DIGEST_OIDS[digest]


def test_610_031_caps_never_offer_des_or_md5(env):
    """GetCACaps is unauthenticated (a downgrade vector): neither host
    offers single DES or MD5, whatever it accepts."""
    for port in (env.port, *ports(env).values()):
        r = scepenv.http_request(port, "GET", "/scep?operation=GetCACaps")
        words = {w.upper() for w in r.body.decode().split()}
        assert r.status == 200 and not words & {"DES", "MD5"}, words


# ---------------------------------------------------------------------------
# No decryption oracle


def _decrypt_failures(pki, key, n_each=4):
    """Requests with the right challenge whose envelope or content cannot
    be used, by kind. Same transactionID length and nonce length
    throughout, so the CertReps can be compared byte count for byte
    count."""
    client = scepmsg.make_client(key.obj, "t610-oracle")
    good_csr = scepmsg.make_csr(client, CHALLENGE)
    bad_sig_csr = bi.flip(good_csr, len(good_csr) - 1)
    pub = pki.ra.cert.public_key()
    kinds = {
        "bad-padding": lambda e: setattr(e, "ek", bi.bad_padding_key(pub)),
        "good-padding-wrong-key": lambda e: setattr(e, "ek", bi.good_padding_key(pub)),
        "good-padding-short-key": lambda e: setattr(e, "ek", bi.good_padding_key(pub, 7)),
        "padding-no-separator": lambda e: setattr(e, "ek", bi.raw_rsa(
            pub, b"\x00\x02" + b"\x11" * 254)),
        "zero-key": lambda e: setattr(e, "ek", bytes(256)),
        "ciphertext-flipped": lambda e: setattr(e, "ciphertext", bi.flip(
            e.ciphertext, len(e.ciphertext) - 1)),
        "csr-garbage": None,
        "csr-self-signature": None,
    }
    out = {}
    for k, (kind, change) in enumerate(kinds.items()):
        out[kind] = []
        for i in range(n_each):
            csr = {"csr-garbage": os.urandom(len(good_csr)),
                   "csr-self-signature": bad_sig_csr}.get(kind, good_csr)
            e = bi.Envelope(pki.ra.cert, csr)
            if change:
                change(e)
            txid = f"ORACLE-{k:02d}-{i:04d}"
            attrs = bi.scep_attrs(txid, os.urandom(16))
            out[kind].append(bi.sign(client, e.der(), attrs))
    return out


def test_610_040_decrypt_failures_look_alike(env, pki, own_keys):
    """Every kind gets HTTP 200, a signed FAILURE badMessageCheck with the
    very same failInfoText, and a CertRep of the very same length."""
    key = own_keys.get("t610-oracle")
    seen = {}
    before = certs_in_store(env)
    for kind, msgs in _decrypt_failures(pki, key).items():
        for der in msgs:
            r = env.post(PKIOP, body=der)
            assert r.status == 200 and r.content_type == bi.PKI_MESSAGE, (kind, r)
            rep = scepmsg.parse_certrep(r.body, verify_with=pki.ra.cert)
            assert rep.signature_ok
            d = own.read_certrep_der(r.body)
            text = d.attrs[own.OID_FAIL_INFO_TEXT][1].decode()
            seen.setdefault((r.status, r.content_type, rep.status_name, rep.fail_name,
                             text, len(r.body)), set()).add(kind)
    assert len(seen) == 1, "decrypt/parse failures can be told apart:\n" + "\n".join(
        f"{k}: {sorted(v)}" for k, v in seen.items())
    (status, _, pki_status, fail, text, _), = seen
    assert (pki_status, fail) == ("FAILURE", "badMessageCheck")
    assert certs_in_store(env) == before


def test_610_041_decrypt_failures_log_nothing_above_debug(env, pki, own_keys):
    """The error log at info level does not tell the kinds apart either
    (nothing at info or above is written for them but the one summary
    line each, identical up to the transactionID)."""
    key = own_keys.get("t610-oracle")
    lines = {}
    for kind, msgs in _decrypt_failures(pki, key, n_each=1).items():
        log0 = env.log_size()
        r = env.post(PKIOP, body=msgs[0])
        assert r.status == 200
        text = env.read_log(log0)
        info = [re.sub(r"^\[[^\]]*\] ", "", ln) for ln in text.splitlines()
                if re.search(r"\[scep_ota:(info|notice|warn|error)\]", ln)]
        info = [re.sub(r"ORACLE-\d+-\d+|pid \d+(:tid \d+)?|client [\d.:]+", "X", ln)
                for ln in info]
        lines[kind] = info
    first = next(iter(lines.values()))
    assert all(v == first for v in lines.values()), lines
