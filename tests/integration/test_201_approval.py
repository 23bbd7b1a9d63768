"""SCEPApproval manual: PKCSReq -> PENDING, CertPoll -> PENDING until
`scep-ota store approve TXID` (or reject), then SUCCESS (or FAILURE).

The server here has no RA: requests are encrypted to the issuing CA and
the CertReps are signed by it."""

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

import scepclient_own as own
from scepclient_own import check_issued, serial_hex
from scepenv import scep_directives, scep_location

CHALLENGE = "approval-secret"
LIFETIME = 3


def snippet(pki):
    return "\n".join([
        scep_directives(pki.ca_chain_file, pki.issuing.key_file),
        f"SCEPChallengePassword {CHALLENGE}",
        f"SCEPCertificateLifetime {LIFETIME}",
        "SCEPApproval manual",
        "SCEPRenewalWindow 100%",   # renewals right away
        "SCEPStore sqlite3:state/own-201.db",
        scep_location("/scep"),
    ])


@pytest.fixture(autouse=True)
def _server(env, pki):
    env.ensure(snippet(pki))


@pytest.fixture
def client(env, pki, own_keys, tmp_path):
    return own.OwnClient(env, tmp_path, recipient=pki.issuing.cert_file,
                         trust=pki.ca_chain_file, signer=pki.issuing.cert,
                         ca=pki.issuing.cert, keys=own_keys)


def _pending(client, key, cn, **kw):
    csr = own.make_csr(client._fresh("csr").with_suffix(".pem"), key, cn,
                       challenge=CHALLENGE)
    req = client.request("pkcsreq", key, csr=csr, **kw)
    rep = client.exchange(req)
    assert rep.status == "PENDING", rep
    return req, csr


def _poll(client, pki, key, csr, txid, transport="post", **kw):
    return client.exchange(client.request("certpoll", key, csr=csr, txid=txid,
                                          issuer=pki.issuing.cert_file, **kw), transport)


def test_201_001_approve_then_poll(env, pki, client, own_keys, tmp_path):
    key = own_keys.get("approve-1")
    req, csr = _pending(client, key, "approve-1", cipher="aes256", digest="sha512")
    assert _poll(client, pki, key, csr, req.txid).status == "PENDING"
    listed = client.store(env.root.conf, "list", "--status", "pending").out
    assert req.txid in listed, listed

    client.store(env.root.conf, "approve", req.txid)
    rep = _poll(client, pki, key, csr, req.txid, "get", cipher="3des", digest="sha1")
    assert rep.status == "SUCCESS", rep
    cert = check_issued(rep.cert, trust=pki.ca_chain_file, issuer=pki.issuing.cert,
                        key=key, subject="approve-1", lifetime_days=LIFETIME,
                        tmp=tmp_path)
    # polling again, or retrying the PKCSReq, gives the same certificate
    again = _poll(client, pki, key, csr, req.txid)
    assert again.status == "SUCCESS" and again.cert == cert
    retry = client.exchange(req)
    assert retry.status == "SUCCESS" and retry.cert == cert
    shown = client.store(env.root.conf, "show", serial_hex(cert)).out
    assert "approve-1" in shown, shown


def test_201_002_reject(env, pki, client, own_keys):
    key = own_keys.get("reject-1")
    req, csr = _pending(client, key, "reject-1")
    client.store(env.root.conf, "reject", req.txid)
    rep = _poll(client, pki, key, csr, req.txid)
    assert (rep.status, rep.fail_info) == ("FAILURE", "badRequest")


def test_201_003_poll_by_someone_else(env, pki, client, own_keys):
    """A CertPoll for a pending transaction signed by another key."""
    key, other = own_keys.get("poll-owner"), own_keys.get("poll-thief")
    req, csr = _pending(client, key, "poll-owner")
    rep = _poll(client, pki, other, csr, req.txid)
    assert (rep.status, rep.fail_info) == ("FAILURE", "badMessageCheck")
    client.store(env.root.conf, "approve", req.txid)
    rep = _poll(client, pki, other, csr, req.txid)
    assert rep.status == "FAILURE", rep
    assert _poll(client, pki, key, csr, req.txid).status == "SUCCESS"


def test_201_004_pending_needs_the_challenge(env, pki, client, own_keys):
    """Manual approval does not waive the challenge."""
    key = own_keys.get("pending-nochallenge")
    csr = own.make_csr(client._fresh("csr").with_suffix(".pem"), key,
                       "pending-nochallenge", challenge="wrong")
    rep = client.exchange(client.request("pkcsreq", key, csr=csr))
    assert (rep.status, rep.fail_info) == ("FAILURE", "badRequest")


def test_201_005_same_txid_other_key(env, pki, client, own_keys):
    """A second PKCSReq reusing a pending transactionID with another key."""
    key, other = own_keys.get("txid-owner"), own_keys.get("txid-other")
    req, _ = _pending(client, key, "txid-owner")
    csr2 = own.make_csr(client._fresh("csr").with_suffix(".pem"), other, "txid-other",
                        challenge=CHALLENGE)
    rep = client.exchange(client.request("pkcsreq", other, csr=csr2, txid=req.txid))
    assert (rep.status, rep.fail_info) == ("FAILURE", "badRequest")


def test_201_006_renewal_is_pending_too(env, pki, client, own_keys, tmp_path):
    """Under manual approval a renewal waits for approval as well."""
    key, new_key = own_keys.get("pend-renew-old"), own_keys.get("pend-renew-new")
    req, csr = _pending(client, key, "pend-renew")
    client.store(env.root.conf, "approve", req.txid)
    rep = _poll(client, pki, key, csr, req.txid)
    assert rep.status == "SUCCESS"
    old = tmp_path / "old.pem"
    old.write_bytes(rep.cert.public_bytes(Encoding.PEM))
    csr2 = own.make_csr(client._fresh("csr").with_suffix(".pem"), new_key, "pend-renew")
    req2 = client.request("renewalreq", key, cert=old, csr=csr2)
    assert client.exchange(req2).status == "PENDING"
    client.store(env.root.conf, "approve", req2.txid)
    rep2 = _poll(client, pki, key, csr2, req2.txid, cert=old)
    assert rep2.status == "SUCCESS", rep2
    check_issued(rep2.cert, trust=pki.ca_chain_file, issuer=pki.issuing.cert,
                 key=new_key, subject="pend-renew", lifetime_days=LIFETIME, tmp=tmp_path)
