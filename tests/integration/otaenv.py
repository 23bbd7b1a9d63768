"""Helpers for the OTA tests (test_5xx): the OTA test PKI, one shared
server configuration, the openssl CLI / plistutil path, the `scep-ota
device` emulator, a proxy that drops GetCACaps, and access-log reading.

The PKI
-------
`OtaPKI` adds to the suite's TestPKI (whose issuing CA is the SCEP CA):

* an "Apple-like" device chain made with the openssl CLI, like Apple's:
  a root (SHA-1, valid), an "iPhone Certification Authority" (RSA-2048,
  SHA-1, expired 2022), an "iPhone Device CA" (RSA-1024, SHA-1, expired
  2014) and device certificates under it (RSA-1024, SHA-1, expired);
  OTADeviceCACertificateFile holds the three CAs;
* a foreign device CA (another name, another key) and an impostor CA (the
  device CA's very name, another key), each with a device under it;
* the profile signer (issued by the test root, its file carries the root
  behind it), a TLS server certificate for 127.0.0.1, the OTAProfile, an
  htpasswd file.

The server
----------
`OtaServer.snippet()` is one config for all the OTA tests of an MPM, so
they share one running httpd. It serves on several ports:

* the main port (env.port): /scep, /ota/profile, and /ota/auth (the same
  service behind mod_auth_basic + mod_authn_file);
* `deny`: a virtual host whose GetCACaps is answered 403 by httpd
  (`<If>` + `Require all denied`), its OTASCEPURL pointing at itself;
* `drop`: a virtual host whose OTASCEPURL points at `DropProxy`, a TCP
  proxy in the test process that forwards everything to the main port
  except GetCACaps, whose connection it closes without a byte of answer;
* `tls`: a virtual host with `SSLEngine on` (mod_ssl), no client
  certificate requested anywhere.

Every request goes to the harness's access log and to
`logs/ota_access.log` (request time, local port, method, URL, status,
bytes, type, user).
"""

import base64
import datetime
import hashlib
import ipaddress
import itertools
import os
import plistlib
import re
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import scepenv
from scepenv import scep_directives, scep_location

CMD_TIMEOUT = 60
ASPEN = "application/x-apple-aspen-config"
PKCS7_SIG = "application/pkcs7-signature"
SCEP_PAYLOAD = "com.apple.security.scep"
UDID = "00008101-001938611EE9001E"
OTA_SUBJECT = "/O=mod_scep_ota OTA tests/OU=%{PRODUCT}/CN=%{UDID}"
SCEP_NAME = "ota-test-ca"
RETRIES, RETRY_DELAY = 4, 7
USERS = {"alice": "alice-pw", "bob": "bob-pw"}


def cli_path():
    env = os.environ.get("SCEP_OTA_CLI")
    return Path(env) if env else scepenv.repo_root() / "tools" / "scep-ota"


def run(cmd, check=True, input=None, timeout=CMD_TIMEOUT, cwd=None):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, input=input,
                       stdin=None if input is not None else subprocess.DEVNULL,
                       timeout=timeout, cwd=cwd)
    p.out = p.stdout.decode(errors="replace")
    p.err = p.stderr.decode(errors="replace")
    if check and p.returncode != 0:
        raise AssertionError(f"`{' '.join(map(str, cmd))}` exited {p.returncode}:\n"
                             f"{p.out}\n{p.err}")
    return p


_numbers = itertools.count(1)


# --------------------------------------------------------------------------
# The PKI


_CA_CNF = """\
[ ca ]
default_ca = ca_default
[ ca_default ]
database = {dir}/index.txt
new_certs_dir = {dir}/newcerts
serial = {dir}/serial
policy = policy_any
email_in_dn = no
unique_subject = no
copy_extensions = none
[ policy_any ]
countryName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied
[ v3_ca ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ v3_device ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


class Cred:
    """A certificate and key as PEM files; `chain` is a file with the
    certificate followed by the CAs above it (what a device sends)."""

    def __init__(self, cert, key, chain=None, cas=None):
        self.cert = Path(cert)
        self.key = Path(key)
        self.chain = Path(chain) if chain else self.cert
        self.cas = Path(cas) if cas else None   # the CAs above, without cert

    @property
    def der(self):
        return x509.load_pem_x509_certificate(self.cert.read_bytes()).public_bytes(
            serialization.Encoding.DER)

    def x509(self):
        return x509.load_pem_x509_certificate(self.cert.read_bytes())


class OpensslCA:
    """A small `openssl ca` setup: certificates with any validity window,
    any digest, any key size (for the SHA-1/RSA-1024, expired chain)."""

    def __init__(self, directory):
        self.dir = Path(directory)
        (self.dir / "newcerts").mkdir(parents=True, exist_ok=True)
        (self.dir / "index.txt").touch()
        (self.dir / "serial").write_text("1000\n")
        self.cnf = self.dir / "ca.cnf"
        self.cnf.write_text(_CA_CNF.format(dir=self.dir))

    def _req(self, name, subject, key_pem):
        key, csr = self.dir / f"{name}.key", self.dir / f"{name}.csr"
        key.write_bytes(key_pem)
        run(["openssl", "req", "-new", "-key", key, "-out", csr, "-subj", subject,
             "-batch"])
        return key, csr

    def issue(self, name, subject, key_pem, start, end, ext, issuer=None, md="sha1"):
        """issuer: a Cred, or None for self-signed. start/end: YYMMDDHHMMSSZ."""
        key, csr = self._req(name, subject, key_pem)
        cert = self.dir / f"{name}.pem"
        cmd = ["openssl", "ca", "-batch", "-config", self.cnf, "-in", csr,
               "-out", cert, "-md", md, "-startdate", start, "-enddate", end,
               "-extensions", ext, "-notext"]
        if issuer is None:
            cmd += ["-selfsign", "-keyfile", key]
        else:
            cmd += ["-cert", issuer.cert, "-keyfile", issuer.key]
        run(cmd)
        return Cred(cert, key)


def _asn1_time(dt):
    return dt.strftime("%y%m%d%H%M%SZ")


class OtaPKI:
    """See the module docstring. `pki` is the suite's TestPKI."""

    __test__ = False

    def __init__(self, directory, pki, keys):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pki = pki
        self.keys = keys      # a KeyBox (scepclient_own): cached named keys
        self.ca = OpensslCA(self.dir / "apple")
        self._build_apple_like()
        self._build_ours()
        self._make_readable()

    def key_pem(self, name, bits):
        return self.keys.get("ota-" + name, bits).path.read_bytes()

    # -- the Apple-like device chain (openssl CLI) --------------------------

    def _build_apple_like(self):
        ca = self.ca
        self.apple_root = ca.issue(
            "apple-root", "/C=US/O=Test Apple-like/OU=Certification Authority/"
            "CN=Test Apple-like Root CA", self.key_pem("apple-root", 2048),
            "060425214000Z", "350209214000Z", "v3_ca")
        self.iphone_ca = ca.issue(
            "iphone-ca", "/C=US/O=Test Apple-like/OU=Apple iPhone/"
            "CN=Test iPhone Certification Authority", self.key_pem("iphone-ca", 2048),
            "070412000000Z", "220412000000Z", "v3_ca", issuer=self.apple_root)
        self.device_ca = ca.issue(
            "device-ca", "/C=US/O=Test Apple-like/OU=Apple iPhone/"
            "CN=Test iPhone Device CA", self.key_pem("device-ca", 1024),
            "070416000000Z", "140416000000Z", "v3_ca", issuer=self.iphone_ca)
        self.device_ca_file = self.dir / "device-cas.pem"
        self.device_ca_file.write_bytes(b"".join(
            c.cert.read_bytes() for c in (self.device_ca, self.iphone_ca,
                                          self.apple_root)))
        # not trusted by the server
        self.foreign_ca = ca.issue(
            "foreign-ca", "/C=US/O=Somebody Else/CN=Foreign Device CA",
            self.key_pem("foreign-ca", 1024),
            "070416000000Z", "140416000000Z", "v3_ca")
        self.impostor_ca = ca.issue(
            "impostor-ca", "/C=US/O=Test Apple-like/OU=Apple iPhone/"
            "CN=Test iPhone Device CA", self.key_pem("impostor-ca", 1024),
            "070416000000Z", "140416000000Z", "v3_ca")
        self._devices = {}

    def device(self, name, udid=UDID, under="device"):
        """A device identity (cert, key, chain file with the CAs above it):
        RSA-1024, SHA-1, valid 2010-2013, issued by the device CA, the
        foreign CA or the impostor CA."""
        if (name, under) in self._devices:
            return self._devices[(name, under)]
        issuer, above = {
            "device": (self.device_ca, [self.device_ca, self.iphone_ca]),
            "foreign": (self.foreign_ca, [self.foreign_ca]),
            "impostor": (self.impostor_ca, [self.impostor_ca]),
        }[under]
        c = self.ca.issue(f"dev-{under}-{name}", f"/CN={udid}",
                          self.key_pem(f"dev-{under}-{name}", 1024),
                          "100101000000Z", "130101000000Z", "v3_device", issuer=issuer)
        c.cas = self.ca.dir / f"dev-{under}-{name}-cas.pem"
        c.cas.write_bytes(b"".join(a.cert.read_bytes() for a in above))
        c.chain = self.ca.dir / f"dev-{under}-{name}-chain.pem"
        c.chain.write_bytes(c.cert.read_bytes() + c.cas.read_bytes())
        c.udid = udid
        self._make_readable()
        self._devices[(name, under)] = c
        return c

    # -- our side: profile signer, TLS server, profile, users ---------------

    def _issue(self, name, cn, issuer, usage, eku=None, san=None):
        key = self.keys.get("ota-" + name, 2048).obj
        now = datetime.datetime.now(datetime.timezone.utc)
        subject = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mod_scep_ota tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        b = (x509.CertificateBuilder().subject_name(subject)
             .issuer_name(issuer.cert.subject).public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
             .add_extension(x509.KeyUsage(digital_signature=True,
                                          content_commitment=False,
                                          key_encipherment="key_encipherment" in usage,
                                          data_encipherment=False, key_agreement=False,
                                          key_cert_sign=False, crl_sign=False,
                                          encipher_only=False, decipher_only=False), True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                            False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                 issuer.key.public_key()), False))
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage(eku), False)
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), False)
        cert = b.sign(issuer.key, hashes.SHA256())
        cpath, kpath = self.dir / f"{name}.pem", self.dir / f"{name}.key"
        cpath.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        kpath.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
        return Cred(cpath, kpath)

    def _build_ours(self):
        root = self.pki.root
        self.signer = self._issue("ota-signer", "Test OTA Profile Signer", root,
                                  ("digital_signature",))
        self.signer.chain = self.dir / "ota-signer-chain.pem"
        self.signer.chain.write_bytes(self.signer.cert.read_bytes() + root.cert_pem)
        self.tls = self._issue("tls-server", "127.0.0.1", root,
                               ("digital_signature", "key_encipherment"),
                               eku=[ExtendedKeyUsageOID.SERVER_AUTH],
                               san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                    x509.DNSName("localhost")])
        self.trust = Path(self.pki.root.cert_file)   # verifies signer and TLS
        self.profile = {
            "PayloadType": "Configuration", "PayloadVersion": 1,
            "PayloadIdentifier": "org.example.ota-tests.final",
            "PayloadUUID": "3F2E8C71-6B0A-4C55-9D0E-5B7A1C2D3E4F",
            "PayloadDisplayName": "OTA test settings",
            "PayloadOrganization": "mod_scep_ota tests",
            "PayloadContent": [
                {"PayloadType": "com.apple.webClip.managed", "PayloadVersion": 1,
                 "PayloadIdentifier": "org.example.ota-tests.clip",
                 "PayloadUUID": "0B3C4D5E-6F70-4182-93A4-B5C6D7E8F901",
                 "PayloadDisplayName": "Intranet clip", "Label": "Intranet",
                 "URL": "https://intranet.example/", "IsRemovable": True},
                {"PayloadType": "com.apple.wifi.managed", "PayloadVersion": 1,
                 "PayloadIdentifier": "org.example.ota-tests.wifi",
                 "PayloadUUID": "1C2D3E4F-5061-4728-B39C-A4D5E6F70812",
                 "PayloadDisplayName": "Office Wi-Fi", "SSID_STR": "office & lab <5G>",
                 "EncryptionType": "WPA2", "AutoJoin": True, "Priority": 3},
            ],
        }
        self.profile_file = self.dir / "final.mobileconfig"
        self.profile_file.write_bytes(plistlib.dumps(self.profile))
        self.htpasswd = self.dir / "users.htpasswd"
        for i, (user, pw) in enumerate(USERS.items()):
            run(["htpasswd", "-b" + ("c" if i == 0 else ""), "-B", "-C", "4",
                 self.htpasswd, user, pw])

    def _make_readable(self):
        # httpd's children (www-data when run as root) read these files
        for d in (self.dir, self.ca.dir):
            os.chmod(d, 0o755)
            for p in d.iterdir():
                if p.is_file():
                    os.chmod(p, 0o644)
        scepenv.open_path_for_workers(self.dir)


_PKIS = {}


def ota_pki(tmp_path_factory, pki, keys):
    """One OtaPKI per session (for fixtures in several test files)."""
    if id(pki) not in _PKIS:
        _PKIS[id(pki)] = OtaPKI(tmp_path_factory.mktemp("ota-pki"), pki, keys)
    return _PKIS[id(pki)]


# --------------------------------------------------------------------------
# The proxy that drops GetCACaps


class DropProxy:
    """A TCP proxy on 127.0.0.1 in front of `backend_port`. A request whose
    request line has `operation=GetCACaps` is read in full and its
    connection is then closed without a byte of answer: the device sees
    "no answer" at the transport level, as behind a middlebox or a SCEP
    server that drops the question. Everything else is passed through
    byte for byte (the emulator sends one request per connection).
    `dropped` lists the request lines it dropped, `passed` the others."""

    def __init__(self, backend_port):
        self.backend_port = backend_port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.port = self.sock.getsockname()[1]
        self.dropped, self.passed = [], []
        self._lock = threading.Lock()
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def reset(self):
        with self._lock:
            self.dropped, self.passed = [], []

    def _serve(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                dst.sendall(b)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _one(self, c):
        c.settimeout(10)
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < 65536:
                b = c.recv(65536)
                if not b:
                    break
                head += b
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            if re.search(r"[?&]operation=GetCACaps(&|\s|$)", line):
                with self._lock:
                    self.dropped.append(line)
                c.close()
                return
            with self._lock:
                self.passed.append(line)
            b = socket.create_connection(("127.0.0.1", self.backend_port), timeout=10)
            b.sendall(head)
            t = threading.Thread(target=self._pump, args=(c, b), daemon=True)
            t.start()
            self._pump(b, c)
            t.join(10)
            b.close()
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self._stop = True
        self.sock.close()


# --------------------------------------------------------------------------
# The server config


OTA_LOG_FORMAT = ('LogFormat "%{usec}t %{local}p %m %U%q %>s %B \\"%{Content-Type}o\\" %u"'
                  ' ota')
# Debian's mod_ssl warns at every start when the OpenSSL library it runs
# on is older than the one it was built against (this host: built 3.0.22,
# running 3.0.19); that is the host's packaging, not the module under test.
STARTUP_LOG = [r"\[ssl:warn\].*AH01882: Init: this version of mod_ssl was compiled"]
EXTRA_MODULES = ("auth_basic", "authn_core", "authn_file", "authz_user", "ssl",
                 "socache_shmcb")


def ota_directives(o, scep_url):
    """The OTA directives of the tests' server (o: an OtaPKI)."""
    return "\n".join([
        f'OTASigningCertificateFile "{o.signer.chain}"',
        f'OTASigningKeyFile "{o.signer.key}"',
        f'OTADeviceCACertificateFile "{o.device_ca_file}"',
        f"OTASCEPURL {scep_url}",
        f'OTAProfile "{o.profile_file}"',
        f'OTASubject "{OTA_SUBJECT}"',
        'OTAOrganization "mod_scep_ota tests"',
        "OTAProfileIdentifier org.example.ota-tests",
        f"OTASCEPPayloadName {SCEP_NAME}",
        f"OTASCEPRetries {RETRIES}",
        f"OTASCEPRetryDelay {RETRY_DELAY}",
    ])


OTA_LOCATION = "<Location /ota/profile>\n    SetHandler ota-profile\n</Location>"


class OtaServer:
    """Ports, proxy and snippet of the shared OTA config of one env."""

    def __init__(self, env, pki, opki):
        self.env = env
        self.pki = pki
        self.opki = opki
        self.ports = {"main": env.port, "deny": scepenv.free_port(),
                      "drop": scepenv.free_port(), "tls": scepenv.free_port()}
        self.proxy = DropProxy(env.port)
        self.store = f"state/ota_{env.mpm}_{next(_numbers)}.db"
        self.access_log = env.root.logs / "ota_access.log"

    def url(self, which="main", path="/ota/profile"):
        scheme = "https" if which == "tls" else "http"
        port = self.proxy.port if which == "proxy" else self.ports[which]
        return f"{scheme}://127.0.0.1:{port}{path}"

    def snippet(self, caps=None):
        o, p = self.opki, self.ports
        vhost = lambda port, body: "\n".join(  # noqa: E731
            [f"Listen 127.0.0.1:{port}", f"<VirtualHost 127.0.0.1:{port}>",
             "    ServerName 127.0.0.1", *["    " + ln for ln in body], "</VirtualHost>"])
        return "\n".join([
            scep_directives(self.pki.ca_chain_file, self.pki.issuing.key_file,
                            self.pki.ra.cert_file, self.pki.ra.key_file, caps=caps),
            f"SCEPStore sqlite3:{self.store}",
            ota_directives(o, self.url("main", "/scep")),
            OTA_LOG_FORMAT,
            f'CustomLog "{self.access_log}" ota',
            f"SSLSessionCache shmcb:{self.env.root.run}/ssl_scache(512000)",
            scep_location("/scep"),
            OTA_LOCATION,
            "<Location /ota/auth>",
            "    SetHandler ota-profile",
            "    AuthType Basic",
            '    AuthName "OTA tests"',
            "    AuthBasicProvider file",
            f'    AuthUserFile "{o.htpasswd}"',
            "    Require valid-user",
            "</Location>",
            vhost(p["deny"], [
                f"OTASCEPURL {self.url('deny', '/scep')}",
                '<If "%{QUERY_STRING} =~ /(^|&)operation=GetCACaps(&|$)/">',
                "    Require all denied",
                "</If>"]),
            vhost(p["drop"], [
                f"OTASCEPURL {self.url('proxy', '/scep')}"]),
            vhost(p["tls"], [
                "SSLEngine on",
                f'SSLCertificateFile "{o.tls.cert}"',
                f'SSLCertificateKeyFile "{o.tls.key}"',
                "SSLVerifyClient none",
                f"OTASCEPURL {self.url('tls', '/scep')}"]),
        ])

    def ensure(self, caps=None):
        self.env.ensure(self.snippet(caps), extra_modules=EXTRA_MODULES,
                        expect_log=STARTUP_LOG)

    # -- the access log ------------------------------------------------------

    def log_pos(self):
        """A mark for access(): the log's size and the time now. Lines a
        previous test's requests write late (after their answer went out)
        are told apart by their request time."""
        size = self.access_log.stat().st_size if self.access_log.exists() else 0
        return (size, int(time.time() * 1e6))

    def access(self, mark, want=0, timeout=3.0):
        """Parsed lines of ota_access.log of the requests received since
        `mark` (from log_pos()): (port, method, url, status, type, user).
        With `want`, wait until that many lines are there (they are
        written after the answer)."""
        start, since = mark
        deadline = time.monotonic() + timeout
        while True:
            text = ""
            if self.access_log.exists():
                with open(self.access_log, "rb") as f:
                    f.seek(start)
                    text = f.read().decode(errors="replace")
            out = []
            for ln in text.splitlines():
                if not ln.strip():
                    continue
                m = re.match(r'^(\d+) (\d+) (\S+) (\S+) (\d+) \S+ "([^"]*)" (\S+)$', ln)
                assert m, f"unexpected access log line: {ln!r}"
                if int(m[1]) >= since:
                    out.append((int(m[2]), m[3], m[4], int(m[5]), m[6], m[7]))
            if len(out) >= want or time.monotonic() > deadline:
                return out
            time.sleep(0.05)


_SERVERS = {}


def ota_server(env, pki, opki):
    """The OtaServer of this env (one per MPM per session), running."""
    key = id(env)
    if key not in _SERVERS:
        _SERVERS[key] = OtaServer(env, pki, opki)
    srv = _SERVERS[key]
    srv.ensure()
    return srv


# --------------------------------------------------------------------------
# The emulator


class DeviceRun:
    def __init__(self, p):
        self.rc = p.returncode
        self.out = p.out
        self.err = p.err

    @property
    def requests(self):
        """(method, url) of every '>>' line of the trace."""
        return re.findall(r"^>> (\S+) (\S+)", self.out, re.M)

    @property
    def answers(self):
        return re.findall(r"^<< (.*)$", self.out, re.M)

    def count(self, op):
        return sum(1 for _, u in self.requests if f"operation={op}" in u)

    def __repr__(self):
        return f"<scep-ota device rc={self.rc}>\n{self.out}\n--- stderr:\n{self.err}"


def run_device(url, dev, *args, tmp=None, cacert=None):
    cmd = [cli_path(), "device", url, "--identity", dev.chain, "--key", dev.key, *args]
    if cacert:
        cmd += ["--cacert", cacert]
    if tmp:
        cmd += ["--save", Path(tmp) / f"device{next(_numbers)}"]
    return DeviceRun(run(cmd, check=False, timeout=120))


# --------------------------------------------------------------------------
# openssl CLI and plistutil


def openssl(*args, input=None, check=True):
    return run(["openssl", *args], input=input, check=check)


def cms_verify(der, cafile, tmp):
    """`openssl cms -verify` of a DER SignedData against `cafile`: the
    signed content (bytes) and the signer certificate (PEM bytes)."""
    n = next(_numbers)
    src, out, signer = tmp / f"v{n}.der", tmp / f"v{n}.out", tmp / f"v{n}-signer.pem"
    src.write_bytes(der)
    openssl("cms", "-verify", "-inform", "DER", "-in", src, "-CAfile", cafile,
            "-binary", "-out", out, "-signer", signer)
    return out.read_bytes(), signer.read_bytes()


def cms_sign(content, cred, tmp, md="sha256", chain=True, certfile=None):
    """`openssl cms -sign -nodetach -outform DER` of `content` by `cred`
    (with the CAs above it, cred.cas, unless chain=False)."""
    n = next(_numbers)
    src, out = tmp / f"s{n}.in", tmp / f"s{n}.der"
    src.write_bytes(content)
    args = ["cms", "-sign", "-nodetach", "-binary", "-outform", "DER", "-in", src,
            "-out", out, "-signer", cred.cert, "-inkey", cred.key, "-md", md]
    extra = certfile or (cred.cas if chain else None)
    if extra:
        args += ["-certfile", extra]
    openssl(*args)
    return out.read_bytes()


def cms_decrypt(der, cert, key, tmp):
    n = next(_numbers)
    src, out = tmp / f"d{n}.der", tmp / f"d{n}.out"
    src.write_bytes(der)
    openssl("cms", "-decrypt", "-inform", "DER", "-in", src, "-recip", cert,
            "-inkey", key, "-binary", "-out", out)
    return out.read_bytes()


def cms_print(der, tmp):
    n = next(_numbers)
    src = tmp / f"p{n}.der"
    src.write_bytes(der)
    return openssl("cms", "-cmsout", "-print", "-inform", "DER", "-in", src).out


def read_plist(raw, tmp):
    """A plist read by plistutil (converted to XML) and, independently, by
    Python's plistlib; both must agree."""
    n = next(_numbers)
    src, out = tmp / f"pl{n}.plist", tmp / f"pl{n}.xml"
    src.write_bytes(raw)
    run(["plistutil", "-i", src, "-f", "xml", "-o", out])
    via_plistutil = plistlib.loads(out.read_bytes())
    assert via_plistutil == plistlib.loads(raw), "plistutil and plistlib disagree"
    return via_plistutil


def plist_xml(obj):
    return plistlib.dumps(obj, fmt=plistlib.FMT_XML)


def sha1(data):
    return hashlib.sha1(data).digest()


# --------------------------------------------------------------------------
# HTTP with urllib (the independent path)


class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def content_type(self):
        return self.headers.get("Content-Type")

    def __repr__(self):
        return f"<Answer {self.status} {self.content_type} {len(self.body)} bytes>"


def fetch(url, body=None, content_type=None, auth=None, context=None, timeout=30):
    """One request with urllib; any HTTP status is an Answer."""
    req = urllib.request.Request(url, data=body, method="POST" if body is not None
                                 else "GET")
    if content_type:
        req.add_header("Content-Type", content_type)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(
            f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
            return Answer(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Answer(e.code, e.headers, e.read())


def tls_context(cafile):
    ctx = ssl.create_default_context(cafile=str(cafile))
    return ctx


def subject_arg(subject):
    """The payload's three-level Subject array as /K=V/K=V for -subj."""
    parts = []
    for rdn in subject:
        parts.append("+".join(f"{k}={v}" for k, v in rdn))
    return "/" + "/".join(parts)


# --------------------------------------------------------------------------
# A device built from the openssl CLI (the independent path)


DEVICE_ATTRS = {"UDID": UDID, "SERIAL": "F4KTESTSERIAL", "PRODUCT": "iPhone13,2",
                "VERSION": "22C152"}


def attributes(challenge=None, **over):
    """The device's attribute plist (XML), as iOS sends it: a dictionary of
    the asked-for attributes, plus CHALLENGE in Phase 2 only."""
    d = dict(DEVICE_ATTRS)
    d.update(over)
    if challenge is not None:
        d["CHALLENGE"] = challenge
    return plist_xml({k: v for k, v in d.items() if v is not None})


def phase1(url, tmp, trust, auth=None, context=None):
    """GET the Profile Service; verify it with openssl against `trust`;
    returns (answer, payload dict read by plistutil)."""
    a = fetch(url, auth=auth, context=context)
    assert a.status == 200, a
    content, _ = cms_verify(a.body, trust, tmp)
    return a, read_plist(content, tmp)


def challenge_of(url, tmp, trust, **kw):
    return phase1(url, tmp, trust, **kw)[1]["PayloadContent"]["Challenge"]


def post_signed(url, der, auth=None, context=None, content_type=PKCS7_SIG):
    return fetch(url, body=der, content_type=content_type, auth=auth, context=context)


def assert_no_crash(env, start):
    """No child died since error-log offset `start` (httpd logs a child's
    death at notice level, which the error-log check does not catch)."""
    text = env.read_log(start)
    assert not re.search(r"exit signal|AH00052|AH00060|Segmentation|Aborted", text), text
