"""Configuration: what httpd accepts, and what it refuses (apache2 -t and a
start both fail, with a message that names the problem)."""

import os

import pytest

from scepenv import KNOWN_CAPS, scep_directives, scep_location

LOC = scep_location("/scep")


def vhost(port, body, name="v.test"):
    return (f"<VirtualHost 127.0.0.1:{port}>\n    ServerName {name}\n"
            + "\n".join("    " + ln for ln in body.splitlines()) + "\n</VirtualHost>")


# -- configurations httpd must accept --------------------------------------

VALID = {
    "ca_single_cert": lambda p: scep_directives(p.solo.cert_file, p.solo.key_file),
    "ca_with_chain": lambda p: scep_directives(p.ca_chain_file, p.issuing.key_file),
    "ra_single": lambda p: scep_directives(p.ca_chain_file, p.issuing.key_file,
                                           p.ra.cert_file, p.ra.key_file),
    "ra_pair_sign_first": lambda p: scep_directives(
        p.ca_chain_file, p.issuing.key_file, p.ra_pair_sign_first, p.ra_pair_keys),
    "ra_pair_encrypt_first": lambda p: scep_directives(
        p.ca_chain_file, p.issuing.key_file, p.ra_pair_encrypt_first,
        p.ra_pair_keys_sign_first),
    # GetNextCACert may only be advertised with a next CA to serve
    "caps_all_known": lambda p: scep_directives(p.solo.cert_file, p.solo.key_file,
                                                caps=KNOWN_CAPS)
    + f'\nSCEPNextCACertificateFile "{p.other.cert_file}"',
    "caps_one_word": lambda p: scep_directives(p.solo.cert_file, p.solo.key_file,
                                               caps=["SHA-256"]),
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_001_001_valid_config_passes_configtest(env, pki, name):
    rc, out = env.config_test(VALID[name](pki) + "\n" + LOC)
    assert rc == 0, out
    assert "Syntax OK" in out
    assert env.bad_lines(out) == [], out


def test_001_002_module_loaded_but_unused(env):
    """Loading the module without any SCEP directive or handler is fine."""
    env.ensure("")
    assert env.get("/index.txt").status == 200


def test_001_003_paths_relative_to_server_root(env, pki):
    rel = lambda f: os.path.relpath(f, env.fail_root.path)  # noqa: E731
    snippet = scep_directives(rel(pki.ca_chain_file), rel(pki.issuing.key_file),
                              rel(pki.ra.cert_file), rel(pki.ra.key_file))
    assert not snippet.count('"/')
    rc, out = env.config_test(snippet + "\n" + LOC)
    assert rc == 0, out


def test_001_004_vhost_with_own_ca_and_main_without(env, pki):
    """The handler may be mapped inside a vhost that has a CA even when the
    main server has none."""
    body = scep_directives(pki.solo.cert_file, pki.solo.key_file) + "\n" + LOC
    rc, out = env.config_test(vhost(env.fail_port, body))
    assert rc == 0, out


# -- configurations httpd must refuse ----------------------------------------

NOT_READABLE = r"not readable|contains no|no certificate|not a certificate|cannot|could not"
NO_KEY = r"not readable|contains no|no (usable )?(private )?key|cannot|could not"
NO_MATCH = r"does not match|no key .*match"


def _ca(p, cert=None, key=None, **kw):
    return scep_directives(cert, key, **kw) + "\n" + LOC


REFUSED = {
    "caps_getnextcacert_without_next_ca": (
        lambda p: scep_directives(p.solo.cert_file, p.solo.key_file,
                                  caps=KNOWN_CAPS),
        [r"SCEP0006", r"GetNextCACert", r"SCEPNextCACertificateFile"]),
    # CA certificate file
    "ca_cert_missing": (
        lambda p: _ca(p, p.missing, p.issuing.key_file),
        [r"SCEPCACertificateFile", r"does not exist", r"does-not-exist\.pem"]),
    "ca_cert_garbage": (
        lambda p: _ca(p, p.garbage, p.issuing.key_file),
        [r"SCEPCACertificateFile", NOT_READABLE, r"garbage\.pem"]),
    "ca_cert_file_holds_a_key": (
        lambda p: _ca(p, p.issuing.key_file, p.issuing.key_file),
        [r"SCEPCACertificateFile", NOT_READABLE]),
    "ca_cert_is_a_directory": (
        lambda p: _ca(p, p.dir, p.issuing.key_file),
        [r"SCEPCACertificateFile", r"not a regular file|directory|" + NOT_READABLE]),
    "ca_not_a_ca": (
        lambda p: _ca(p, p.leaf.cert_file, p.leaf.key_file),
        [r"SCEPCACertificateFile", r"is not a CA"]),
    "ca_chain_in_wrong_order": (
        lambda p: _ca(p, p.chain_reversed_file, p.issuing.key_file),
        [r"SCEPCACertificateFile", r"issue|order|chain"]),
    # CA key file
    "ca_key_missing": (
        lambda p: _ca(p, p.ca_chain_file, p.missing),
        [r"SCEPCAKeyFile", r"does not exist"]),
    "ca_key_garbage": (
        lambda p: _ca(p, p.ca_chain_file, p.garbage),
        [r"SCEPCAKeyFile", NO_KEY]),
    "ca_key_mismatch": (
        lambda p: _ca(p, p.ca_chain_file, p.stray_key),
        [r"SCEPCAKeyFile", r"does not match"]),
    "ca_key_of_the_root_not_the_issuing_ca": (
        lambda p: _ca(p, p.ca_chain_file, p.root.key_file),
        [r"SCEPCAKeyFile", r"does not match"]),
    # one without the other
    "ca_cert_without_key": (
        lambda p: _ca(p, p.ca_chain_file, None),
        [r"SCEPCACertificateFile", r"SCEPCAKeyFile"]),
    "ca_key_without_cert": (
        lambda p: _ca(p, None, p.issuing.key_file),
        [r"SCEPCAKeyFile", r"SCEPCACertificateFile"]),
    # RA
    "ra_nonrepudiation_only": (
        lambda p: _ca(p, p.ca_chain_file, p.issuing.key_file,
                      ra_cert=p.ra_nonrep.cert_file, ra_key=p.ra_nonrep.key_file),
        [r"SCEPRACertificateFile", r"keyUsage"]),
    "ra_sign_only_alone": (
        lambda p: _ca(p, p.ca_chain_file, p.issuing.key_file,
                      ra_cert=p.ra_sign.cert_file, ra_key=p.ra_sign.key_file),
        [r"SCEPRACertificateFile", r"keyUsage", r"keyEncipherment"]),
    "ra_encrypt_only_alone": (
        lambda p: _ca(p, p.ca_chain_file, p.issuing.key_file,
                      ra_cert=p.ra_encrypt.cert_file, ra_key=p.ra_encrypt.key_file),
        [r"SCEPRACertificateFile", r"keyUsage", r"digitalSignature"]),
    "ra_key_mismatch": (
        lambda p: _ca(p, p.ca_chain_file, p.issuing.key_file,
                      ra_cert=p.ra.cert_file, ra_key=p.stray_key),
        [r"SCEPRAKeyFile", NO_MATCH]),
    "ra_key_is_the_ca_key": (
        lambda p: _ca(p, p.ca_chain_file, p.issuing.key_file,
                      ra_cert=p.ra.cert_file, ra_key=p.issuing.key_file),
        [r"SCEPRAKeyFile", NO_MATCH]),
    "ra_pair_with_one_key": (
        lambda p: _ca(p, p.ca_chain_file, p.issuing.key_file,
                      ra_cert=p.ra_pair_sign_first, ra_key=p.ra_sign.key_file),
        [r"SCEPRAKeyFile", NO_MATCH]),
    "ra_cert_missing": (
        lambda p: _ca(p, p.ca_chain_file, p.issuing.key_file,
                      ra_cert=p.missing, ra_key=p.ra.key_file),
        [r"SCEPRACertificateFile", r"does not exist"]),
    "ra_key_garbage": (
        lambda p: _ca(p, p.ca_chain_file, p.issuing.key_file,
                      ra_cert=p.ra.cert_file, ra_key=p.garbage),
        [r"SCEPRAKeyFile", NO_KEY]),
    "ra_not_issued_by_the_ca": (
        lambda p: _ca(p, p.solo.cert_file, p.solo.key_file,
                      ra_cert=p.ra.cert_file, ra_key=p.ra.key_file),
        [r"SCEPRACertificateFile", r"issued"]),
    "ra_cert_without_key": (
        lambda p: _ca(p, p.ca_chain_file, p.issuing.key_file, ra_cert=p.ra.cert_file),
        [r"SCEPRACertificateFile", r"SCEPRAKeyFile"]),
    "ra_key_without_cert": (
        lambda p: _ca(p, p.ca_chain_file, p.issuing.key_file, ra_key=p.ra.key_file),
        [r"SCEPRAKeyFile", r"SCEPRACertificateFile"]),
    # capabilities
    "caps_unknown_word": (
        lambda p: _ca(p, p.solo.cert_file, p.solo.key_file, caps=["AES", "Bogus"]),
        [r"SCEPCACaps", r"unknown capability", r"Bogus",
         *[r"(?<![\w-])" + w.replace("-", r"\-") + r"(?![\w-])" for w in KNOWN_CAPS]]),
    "caps_listed_twice": (
        lambda p: _ca(p, p.solo.cert_file, p.solo.key_file, caps=["AES", "SHA-1", "AES"]),
        [r"SCEPCACaps", r"AES", r"twice|duplicate|more than once"]),
    # placement: server / virtual host scope only
    "caps_in_location": (
        lambda p: "<Location /x>\n    SCEPCACaps AES\n</Location>",
        [r"SCEPCACaps", r"not allowed"]),
    "ca_cert_in_directory": (
        lambda p: f"<Directory {p.dir}>\n    SCEPCACertificateFile {p.solo.cert_file}"
                  "\n</Directory>",
        [r"SCEPCACertificateFile", r"not allowed"]),
    # the handler needs a CA
    "handler_without_ca": (
        lambda p: LOC,
        [r"\bscep\b", r"handler", r"SCEPCACertificateFile"]),
}


def _vhost_cases(port):
    return {
        "vhost_handler_without_ca": (
            lambda p: vhost(port, LOC),
            [r"\bscep\b", r"handler", r"SCEPCACertificateFile"]),
        "vhost_key_mismatch": (
            lambda p: vhost(port, scep_directives(p.solo.cert_file, p.stray_key) + "\n" + LOC),
            [r"SCEPCAKeyFile", r"does not match"]),
        "vhost_caps_unknown": (
            lambda p: scep_directives(p.solo.cert_file, p.solo.key_file) + "\n"
            + vhost(port, "SCEPCACaps SHA-256 MD5\n" + LOC),
            [r"SCEPCACaps", r"unknown capability", r"MD5"]),
    }


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_001_010_refused(env, pki, case):
    make, regexes = REFUSED[case]
    res = env.apache_fail(make(pki))
    res.assert_message(*regexes)


@pytest.mark.parametrize("case", sorted(_vhost_cases(0)))
def test_001_011_refused_in_vhost(env, pki, case):
    make, regexes = _vhost_cases(env.fail_port)[case]
    res = env.apache_fail(make(pki))
    res.assert_message(*regexes)


def test_001_012_ra_without_any_ca_names_the_missing_directives(env, pki):
    """An RA but no CA at all: the message must say the CA certificate and
    key are missing, and must not claim either of them is set."""
    res = env.apache_fail(scep_directives(ra_cert=pki.ra.cert_file,
                                          ra_key=pki.ra.key_file) + "\n" + LOC)
    res.assert_message(r"SCEPCACertificateFile")
    assert "SCEPCAKeyFile is set" not in res.text, res.text
    assert "SCEPCACertificateFile is set" not in res.text, res.text


def test_001_013_unknown_capability_is_refused_without_the_handler(env, pki):
    """Directive errors do not depend on the handler being mapped."""
    res = env.apache_fail(scep_directives(caps=["SHA-256", "Nope"]))
    res.assert_message(r"SCEPCACaps", r"unknown capability", r"Nope")


def test_001_014_server_keeps_running_after_refused_configs(env, pki):
    """apache_fail() runs in its own server root: the shared server stays up."""
    env.ensure("")
    pid = env._read_pid(env.root)
    env.apache_fail(_ca(pki, pki.missing, pki.issuing.key_file))
    assert env._read_pid(env.root) == pid
    assert env.get("/index.txt").status == 200
