"""A small harness that runs Debian's apache2 with mod_scep_ota for tests.

One `ScepEnv` per MPM owns a throw-away server root: it writes a
self-contained httpd.conf (nothing from /etc/apache2 is used), starts and
stops httpd, answers HTTP requests and watches the error log.

Error log rule: every line at warn level or worse that httpd writes while a
test runs (or while a configuration starts or stops) fails the test, unless
the test declared it with `env.expect_log(regex)` or the `expect_log=`
argument of `apache_restart()`/`ensure()`.
"""

import configparser
import http.client
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path


def _configured():
    """[global] of config.ini, which configure writes beside this file."""
    ini = Path(__file__).resolve().parent / "config.ini"
    cp = configparser.ConfigParser()
    try:
        cp.read(ini)
        g = cp["global"]
    except (configparser.Error, KeyError):
        return {}
    return {k: v for k, v in g.items() if v and "@" not in v}


_CONFIG = _configured()
MODULES_DIR = Path(_CONFIG.get("libexecdir", "/usr/lib/apache2/modules"))
DEFAULT_HTTPD = _CONFIG.get("httpd", "/usr/sbin/apache2")
WORKER_USER = "www-data"
WORKER_GROUP = "www-data"

# The default GetCACaps answer, in the order the module emits it.
DEFAULT_CAPS = ["AES", "DES3", "POSTPKIOperation", "Renewal", "SCEPStandard",
                "SHA-1", "SHA-256", "SHA-512"]
KNOWN_CAPS = ["AES", "DES3", "GetNextCACert", "POSTPKIOperation", "Renewal",
              "SCEPStandard", "SHA-1", "SHA-256", "SHA-512"]

# [date] [module:level] [pid ...] message
_LOG_LINE = re.compile(r"^\[[^\]]*\] \[([^\]:]*):(\w+)\]")
BAD_LEVELS = ("emerg", "alert", "crit", "error", "warn")
# The suite's PKI lives 30 days or less, so at every start the module warns
# that it expires within the default SCEPExpiryWarning (30 days);
# test_810_expiry checks that warning itself.
SUITE_EXPECTED = [r"SCEP6300: the [A-Za-z ]+ certificate in .* expires on "]

# SCEP_TEST_ASAN=1: the module under test (SCEP_OTA_MODULE) was built with
# ./configure --enable-sanitizers (gcc). httpd then gets libasan preloaded
# (SCEP_TEST_ASAN_LIB, else what gcc names), with leak checks off: httpd
# does not free everything at exit, by design. In every mode a sanitizer
# report in httpd's output or error log fails the test.
#
# In that mode ASan writes each report to a file of its own (log_path:
# SANITIZER_LOG_DIR/report.<pid>; SCEP_TEST_ASAN_LOG_DIR, else a new
# temporary directory): a child that ASan stops exits with status 1, which
# httpd does not log, so the files are what tells. conftest.py fails the test
# during which a report file appeared. (UBSan, loaded beside ASan, keeps
# writing to stderr, i.e. httpd's error log, which is scanned anyway.)
ASAN = os.environ.get("SCEP_TEST_ASAN", "") not in ("", "0")
_SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer"
                        r"|runtime error: |^==\d+==ERROR")
SANITIZER_LOG_DIR = None
if ASAN:   # for the CLIs the tests run, too
    SANITIZER_LOG_DIR = Path(os.environ.get("SCEP_TEST_ASAN_LOG_DIR")
                             or tempfile.mkdtemp(prefix="scep-sanitizer-"))
    SANITIZER_LOG_DIR.mkdir(parents=True, exist_ok=True)
    os.chmod(SANITIZER_LOG_DIR, 0o1777)     # httpd's children run as www-data
    _log_path = f"log_path={SANITIZER_LOG_DIR}/report"
    os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    os.environ["ASAN_OPTIONS"] += ":" + _log_path
    os.environ["UBSAN_OPTIONS"] += ":" + _log_path


def sanitizer_reports():
    """{path: text} of the sanitizer report files written so far."""
    if SANITIZER_LOG_DIR is None:
        return {}
    out = {}
    for f in sorted(SANITIZER_LOG_DIR.glob("report*")):
        try:
            out[str(f)] = f.read_text(errors="replace")
        except OSError:
            pass
    return out


def asan_env():
    """What httpd's environment needs with SCEP_TEST_ASAN=1."""
    lib = os.environ.get("SCEP_TEST_ASAN_LIB") or subprocess.run(
        ["gcc", "-print-file-name=libasan.so"], capture_output=True,
        text=True).stdout.strip()
    return {"LD_PRELOAD": lib, "ASAN_OPTIONS": os.environ["ASAN_OPTIONS"],
            "UBSAN_OPTIONS": os.environ["UBSAN_OPTIONS"]}

_MPM_CONF = {
    "event": """\
<IfModule mpm_event_module>
    StartServers            2
    ServerLimit             4
    ThreadsPerChild         16
    ThreadLimit             16
    MinSpareThreads         8
    MaxSpareThreads         48
    MaxRequestWorkers       64
</IfModule>""",
    "worker": """\
<IfModule mpm_worker_module>
    StartServers            2
    ServerLimit             4
    ThreadsPerChild         16
    ThreadLimit             16
    MinSpareThreads         8
    MaxSpareThreads         48
    MaxRequestWorkers       64
</IfModule>""",
    "prefork": """\
<IfModule mpm_prefork_module>
    StartServers            2
    MinSpareServers         1
    MaxSpareServers         4
    MaxRequestWorkers       16
</IfModule>""",
}


def repo_root():
    """The git work tree this file belongs to (tests/integration/../..)."""
    here = Path(__file__).resolve().parent
    for d in [here, *here.parents]:
        if (d / ".git").exists() or (d / "configure.ac").exists():
            return d
    return here.parents[1]


def module_path():
    env = os.environ.get("SCEP_OTA_MODULE")
    if env:
        return Path(env).resolve()
    return repo_root() / "mod_scep_ota" / ".libs" / "mod_scep_ota.so"


def missing_module_message(path):
    return (f"mod_scep_ota is not built: {path} does not exist.\n"
            f"Run `make` in {repo_root()} first (or point SCEP_OTA_MODULE at the .so).")


_PORTS_GIVEN = set()


def free_port():
    """A port nobody listens on now and that this run has not handed out
    before: a port given to a server that is not started yet (or is
    restarting) is free to the kernel, and must not go to a second one."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port


def open_path_for_workers(path):
    """Let the unprivileged httpd children traverse every directory down to
    `path` (pytest makes its temp tree 0700)."""
    if os.geteuid() != 0:
        return
    path = Path(path).resolve()
    for d in [path, *path.parents]:
        if d == Path("/"):
            break
        st = d.stat()
        if st.st_uid == os.geteuid() and not st.st_mode & stat.S_IXOTH:
            os.chmod(d, stat.S_IMODE(st.st_mode) | stat.S_IXOTH)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie nobody reaps is gone for our purposes
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("State:"):
                    return "Z" not in line.split(":", 1)[1]
    except OSError:
        return False
    return True


def processes_of(root):
    """Live processes whose command line names this server root's config:
    httpd processes this harness started there (parent and children)."""
    needle = str(root.conf).encode()
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmdline = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline.split(b"\0") and _pid_alive(int(d.name)):
            pids.append(int(d.name))
    return pids


def kill_processes_of(root):
    """End, by pid, what is left of an httpd started in `root`; returns
    the pids that were found."""
    pids = processes_of(root)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 2
        while any(_pid_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
    return pids


def _port_answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# HTTP


class HttpResponse:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value), as sent
        self.body = body

    def header(self, name):
        """The raw value of the first header called `name`, or None."""
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    @property
    def content_type(self):
        return self.header("Content-Type")

    def __repr__(self):
        return (f"<HttpResponse {self.status} {self.reason} "
                f"type={self.content_type!r} {len(self.body)} bytes>")


def http_request(port, method, target, body=None, headers=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, target, body=body, headers=dict(headers or {}))
        r = conn.getresponse()
        data = r.read()
        return HttpResponse(r.status, r.reason, r.getheaders(), data)
    finally:
        conn.close()


class At:
    """The env's HTTP helpers aimed at another port (a virtual host), so
    the suite's own client can talk to it."""

    def __init__(self, env, port):
        self.env = env
        self.port = port

    def post(self, target, body=b"", headers=None):
        hdrs = {"Content-Type": "application/x-pki-message", **(headers or {})}
        return http_request(self.port, "POST", target, body=body, headers=hdrs)

    def get(self, target, headers=None):
        return http_request(self.port, "GET", target, headers=headers)


# --------------------------------------------------------------------------
# Outcome of a configuration that must be refused


class FailResult:
    def __init__(self, test_rc, test_output, start_rc, start_output, log):
        self.test_rc = test_rc
        self.test_output = test_output      # `apache2 -t` stdout + stderr
        self.start_rc = start_rc
        self.start_output = start_output    # `apache2 -k start` stdout + stderr
        self.log = log                      # the error log of that start

    @property
    def text(self):
        return "\n".join([self.test_output, self.start_output, self.log])

    def assert_message(self, *regexes):
        """Some line of what `apache2 -t` printed, AND some line of what the
        refused start printed or logged, match every one of `regexes`
        (case-insensitive)."""
        rxs = [re.compile(rx, re.I) for rx in regexes]

        def found(text):
            return any(all(rx.search(ln) for rx in rxs) for ln in text.splitlines())

        want = " and ".join(f"/{rx}/" for rx in regexes)
        assert found(self.test_output), (
            f"no line of `apache2 -t` output matches {want}:\n{self.test_output}")
        start = self.start_output + "\n" + self.log
        assert found(start), (
            f"no line of the refused start's output/log matches {want}:\n{start}")

    def __repr__(self):
        return f"<FailResult -t rc={self.test_rc} start rc={self.start_rc}>\n{self.text}"


# --------------------------------------------------------------------------
# The server


class ServerRoot:
    """Directory layout of one generated server root."""

    def __init__(self, path):
        self.path = Path(path)
        self.conf = self.path / "conf" / "httpd.conf"
        self.mime_types = self.path / "conf" / "mime.types"
        self.logs = self.path / "logs"
        self.error_log = self.logs / "error.log"
        self.access_log = self.logs / "access.log"
        self.run = self.path / "run"
        self.pid_file = self.run / "httpd.pid"
        self.htdocs = self.path / "htdocs"
        self.cmd_out = self.logs / "command.out"

    def create(self):
        for d in (self.conf.parent, self.logs, self.run, self.htdocs):
            d.mkdir(parents=True, exist_ok=True)
        self.mime_types.write_text("text/plain\ttxt\ntext/html\thtml\n")
        (self.htdocs / "index.txt").write_text("static file\n")
        for d in (self.path, self.conf.parent, self.logs, self.run, self.htdocs):
            os.chmod(d, 0o755)
        for f in (self.mime_types, self.htdocs / "index.txt"):
            os.chmod(f, 0o644)


class ScepEnv:
    """httpd under test, for one MPM."""

    def __init__(self, mpm, base_dir, module=None, httpd=DEFAULT_HTTPD,
                 module_loglevel="trace4", base_modules=("authz_core", "mime")):
        assert mpm in _MPM_CONF, f"unknown MPM {mpm}"
        self.mpm = mpm
        self.httpd = httpd
        self.module = Path(module) if module else module_path()
        self.module_loglevel = module_loglevel
        self.base_modules = list(base_modules)
        self.root = ServerRoot(Path(base_dir) / f"httpd-{mpm}")
        self.fail_root = ServerRoot(Path(base_dir) / f"httpd-{mpm}-fail")
        self.root.create()
        self.fail_root.create()
        open_path_for_workers(self.root.path)
        self.port = free_port()
        self.fail_port = free_port()
        self.running_conf = None        # text of the config httpd runs now
        self._conf_expect = []          # expect_log given with that config
        self._log_pos = 0
        self._expected = []             # regexes declared by the current test

    # -- configuration ----------------------------------------------------

    @property
    def url_base(self):
        return f"http://127.0.0.1:{self.port}"

    def config_text(self, snippet="", load_module=True, root=None, port=None,
                    extra_modules=()):
        root = root or self.root
        port = port or self.port
        if load_module and not self.module.exists():
            raise AssertionError(missing_module_message(self.module))
        lines = [
            "# generated by tests/integration/scepenv.py",
            f'ServerRoot "{root.path}"',
            f'DefaultRuntimeDir "{root.run}"',
            f'PidFile "{root.pid_file}"',
            f"Mutex file:{root.run} default",
            f"Listen 127.0.0.1:{port}",
            "ServerName 127.0.0.1",
            f"LoadModule mpm_{self.mpm}_module {MODULES_DIR}/mod_mpm_{self.mpm}.so",
        ]
        for m in [*self.base_modules, *extra_modules]:
            lines.append(f"LoadModule {m}_module {MODULES_DIR}/mod_{m}.so")
        if load_module:
            lines.append(f'LoadModule scep_ota_module "{self.module}"')
        if os.geteuid() == 0:
            lines += [f"User {WORKER_USER}", f"Group {WORKER_GROUP}"]
        loglevel = "LogLevel warn"
        if load_module and self.module_loglevel:
            loglevel += f" scep_ota:{self.module_loglevel}"
        lines += [
            f'ErrorLog "{root.error_log}"',
            loglevel,
            'LogFormat "%h %m %U%q %>s %B \\"%{Content-Type}o\\"" scepenv',
            f'CustomLog "{root.access_log}" scepenv',
            f'TypesConfig "{root.mime_types}"',
            "Timeout 10",
            "KeepAlive On",
            _MPM_CONF[self.mpm],
            f'DocumentRoot "{root.htdocs}"',
            "<Directory />",
            "    AllowOverride None",
            "    Require all denied",
            "</Directory>",
            f'<Directory "{root.htdocs}">',
            "    Require all granted",
            "</Directory>",
            "",
            "# ---- test snippet ----",
            snippet.rstrip(),
            "",
        ]
        return "\n".join(lines)

    # -- running httpd ------------------------------------------------------

    def _run(self, root, *args, timeout=30):
        cmd = [self.httpd, "-d", str(root.path), "-f", str(root.conf), *args]
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
               "LANG": "C"}
        if ASAN:
            env.update(asan_env())
        with open(root.cmd_out, "wb") as out:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out,
                               stderr=subprocess.STDOUT, env=env, timeout=timeout)
        return p.returncode, root.cmd_out.read_text(errors="replace")

    def _read_pid(self, root):
        try:
            return int(root.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def is_running(self):
        pid = self._read_pid(self.root)
        return pid is not None and _pid_alive(pid)

    def apache_start(self, expect_log=()):
        """Start httpd on the config already written; wait until it answers."""
        assert not self.is_running(), "httpd is already running"
        rc, out = self._run(self.root, "-k", "start")
        # a server of an earlier config may still be letting go of the port
        for _ in range(10):
            if rc == 0 or "Address already in use" not in out:
                break
            time.sleep(0.5)
            rc, out = self._run(self.root, "-k", "start")
        if rc != 0:
            raise AssertionError(f"httpd refused to start (rc={rc}):\n{out}\n"
                                 f"{self._log_tail()}")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.is_running() and _port_answers(self.port):
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"httpd did not come up on port {self.port}:\n"
                                 f"{out}\n{self._log_tail()}")
        self._check_output(out, list(expect_log), "starting httpd")
        self._check_log_now(list(expect_log), "starting httpd")

    def apache_stop(self, expect_log=()):
        # what the running config was started with may show up again
        expect_log = [*expect_log, *self._conf_expect]
        self._conf_expect = []
        pid = self._read_pid(self.root)
        if pid is None or not _pid_alive(pid):
            self.running_conf = None
            left = kill_processes_of(self.root)
            assert not left, (f"httpd processes {left} outlived their parent "
                              f"({self.mpm}):\n{self._log_tail()}")
            return
        rc, out = self._run(self.root, "-k", "stop")
        deadline = time.monotonic() + 20
        while _pid_alive(pid):
            if time.monotonic() > deadline:
                left = kill_processes_of(self.root)
                raise AssertionError(f"httpd (pid {pid}) did not stop; killed "
                                     f"{left}:\n{out}")
            time.sleep(0.05)
        self.running_conf = None
        left = kill_processes_of(self.root)
        assert not left, f"httpd processes {left} survived `-k stop` ({self.mpm})"
        # (what `-k stop` prints is the config check already done at start)
        self._check_log_now(list(expect_log), "stopping httpd")

    def apache_reload(self, graceful=True, expect_log=()):
        """`-k graceful` (or `-k restart`) on the running config; waits until
        the parent says it resumed normal operations."""
        assert self.is_running(), "httpd is not running"
        before = self.read_log(0).count("resuming normal operations")
        rc, out = self._run(self.root, "-k", "graceful" if graceful else "restart")
        assert rc == 0, out
        deadline = time.monotonic() + 15
        while self.read_log(0).count("resuming normal operations") <= before:
            if time.monotonic() > deadline or not self.is_running():
                raise AssertionError(f"httpd did not come back after -k "
                                     f"{'graceful' if graceful else 'restart'}:\n"
                                     f"{out}\n{self._log_tail()}")
            time.sleep(0.05)
        while not _port_answers(self.port):
            if time.monotonic() > deadline:
                raise AssertionError(f"port {self.port} not answering after reload")
            time.sleep(0.05)
        self._check_output(out, [*expect_log, *self._conf_expect], "reloading httpd")

    def apache_restart(self, snippet="", load_module=True, expect_log=(),
                       extra_modules=()):
        """Write a new config and (re)start httpd on it (stop + start)."""
        text = self.config_text(snippet, load_module=load_module,
                                extra_modules=extra_modules)
        self.apache_stop()
        self.root.conf.write_text(text)
        os.chmod(self.root.conf, 0o644)
        self._conf_expect = list(expect_log)
        self.apache_start(expect_log=expect_log)
        self.running_conf = text

    def ensure(self, snippet="", load_module=True, expect_log=(), extra_modules=()):
        """Like apache_restart(), but a no-op if httpd already runs exactly
        this config: tests that share a config share a server."""
        text = self.config_text(snippet, load_module=load_module,
                                extra_modules=extra_modules)
        if text == self.running_conf and self.is_running():
            return
        self.apache_restart(snippet, load_module=load_module,
                            expect_log=expect_log, extra_modules=extra_modules)

    def apache_fail(self, snippet="", load_module=True, extra_modules=()):
        """Assert that httpd refuses `snippet`: `apache2 -t` fails and so does
        `apache2 -k start` (with a non-zero exit, i.e. before it detaches).
        Runs in a second server root on its own port; the server the other
        tests use is not touched.  Returns a FailResult to check messages."""
        root = self.fail_root
        text = self.config_text(snippet, load_module=load_module, root=root,
                                port=self.fail_port, extra_modules=extra_modules)
        root.conf.write_text(text)
        os.chmod(root.conf, 0o644)
        for f in (root.error_log, root.pid_file):
            if f.exists():
                f.unlink()
        test_rc, test_out = self._run(root, "-t")
        start_rc, start_out = self._run(root, "-k", "start")
        started = False
        pid = None
        deadline = time.monotonic() + 2 if start_rc == 0 else 0
        while time.monotonic() < deadline:
            pid = self._read_pid(root)
            if pid and _pid_alive(pid):
                started = True
                break
            time.sleep(0.05)
        if started:
            self._run(root, "-k", "stop")
            deadline = time.monotonic() + 10
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        kill_processes_of(root)
        log = root.error_log.read_text(errors="replace") if root.error_log.exists() else ""
        result = FailResult(test_rc, test_out, start_rc, start_out, log)
        problems = []
        if test_rc == 0:
            problems.append("`apache2 -t` accepted the config")
        if start_rc == 0:
            problems.append("`apache2 -k start` exited 0"
                            + (" and httpd ran" if started else
                               " (it gave up only after detaching)"))
        assert not problems, "; ".join(problems) + f"\n{result!r}"
        return result

    def config_test(self, snippet="", load_module=True):
        """Run `apache2 -t` on a config in the fail root; (rc, output)."""
        root = self.fail_root
        root.conf.write_text(self.config_text(snippet, load_module=load_module,
                                              root=root, port=self.fail_port))
        return self._run(root, "-t")

    # -- HTTP -------------------------------------------------------------

    def request(self, method, target, body=None, headers=None):
        return http_request(self.port, method, target, body=body, headers=headers)

    def get(self, target, headers=None):
        return self.request("GET", target, headers=headers)

    def head(self, target, headers=None):
        return self.request("HEAD", target, headers=headers)

    def post(self, target, body=b"", headers=None):
        hdrs = {"Content-Type": "application/x-pki-message"}
        hdrs.update(headers or {})
        return self.request("POST", target, body=body, headers=hdrs)

    # -- logs ---------------------------------------------------------------

    def expect_log(self, *regexes):
        """Declare error-log lines (by regex, e.g. a tag r"SCEP0123") that
        the current test expects; they do not fail it."""
        self._expected.extend(regexes)

    def log_size(self, path=None):
        path = path or self.root.error_log
        return path.stat().st_size if path.exists() else 0

    def read_log(self, start=0, path=None):
        path = path or self.root.error_log
        if not path.exists():
            return ""
        with open(path, "rb") as f:
            f.seek(start)
            return f.read().decode(errors="replace")

    def access_lines(self, start=0, wait_for=None, timeout=3.0):
        """Access log lines after byte offset `start`. With `wait_for`
        (a regex), poll until a line matches (access lines are written
        after the response went out)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.read_log(start, self.root.access_log).splitlines()
            if wait_for is None or any(re.search(wait_for, ln) for ln in lines):
                return lines
            if time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def _log_tail(self, n=30):
        lines = self.read_log(0).splitlines()
        return "error log tail:\n" + "\n".join(lines[-n:])

    @staticmethod
    def bad_lines(text, expected=(), raw_is_bad=False):
        """Lines at warn level or worse not matched by any `expected` regex.
        With `raw_is_bad` (for what httpd prints on stderr before its error
        log is open, without a [module:level] prefix), any other non-empty
        line counts too."""
        out = []
        for line in text.splitlines():
            m = _LOG_LINE.match(line)
            if _SANITIZER.search(line):
                pass        # a sanitizer report is always bad
            elif m and m.group(2) not in BAD_LEVELS:
                continue
            elif not m and not (raw_is_bad and line.strip()):
                continue
            if any(re.search(rx, line) for rx in [*expected, *SUITE_EXPECTED]):
                continue
            out.append(line)
        return out

    def _take_new_log(self):
        size = self.log_size()
        if size < self._log_pos:        # log was replaced
            self._log_pos = 0
        text = self.read_log(self._log_pos)
        self._log_pos += len(text.encode())
        return text

    def _check_output(self, out, expected, what):
        bad = self.bad_lines(out, [*expected, *self._expected], raw_is_bad=True)
        assert not bad, (f"unexpected output of httpd while {what} "
                         f"({self.mpm}):\n" + "\n".join(bad))

    def _check_log_now(self, expected, what):
        bad = self.bad_lines(self._take_new_log(), [*expected, *self._expected])
        assert not bad, (f"unexpected error log lines while {what} "
                         f"({self.mpm}):\n" + "\n".join(bad))

    def begin_test(self):
        # Lines logged between tests (there should be none) are checked
        # now, so they are neither blamed on nor hidden by the next test.
        self._expected = []
        bad = self.bad_lines(self._take_new_log())
        assert not bad, ("unexpected error log lines between tests "
                         f"({self.mpm}):\n" + "\n".join(bad))

    def end_test(self):
        """The unexpected bad lines logged since begin_test()."""
        bad = self.bad_lines(self._take_new_log(), self._expected)
        self._expected = []
        return bad

    # -- cleanup ------------------------------------------------------------

    def remove(self):
        kill_processes_of(self.root)
        kill_processes_of(self.fail_root)
        shutil.rmtree(self.root.path, ignore_errors=True)
        shutil.rmtree(self.fail_root.path, ignore_errors=True)


# --------------------------------------------------------------------------
# Config snippets


def scep_location(path="/scep"):
    return f"<Location {path}>\n    SetHandler scep\n</Location>"


def scep_directives(ca_cert=None, ca_key=None, ra_cert=None, ra_key=None, caps=None,
                    indent=""):
    lines = []
    if ca_cert is not None:
        lines.append(f'SCEPCACertificateFile "{ca_cert}"')
    if ca_key is not None:
        lines.append(f'SCEPCAKeyFile "{ca_key}"')
    if ra_cert is not None:
        lines.append(f'SCEPRACertificateFile "{ra_cert}"')
    if ra_key is not None:
        lines.append(f'SCEPRAKeyFile "{ra_key}"')
    if caps is not None:
        lines.append("SCEPCACaps " + " ".join(caps))
    return "\n".join(indent + ln for ln in lines)
