"""Tests of the harness itself, with Debian's modules only (no mod_scep_ota),
so a broken harness is told apart from a broken module."""

import pytest

pytestmark = pytest.mark.harness

SNIPPET = """\
<Location /denied>
    Require all denied
</Location>"""


@pytest.fixture(scope="module", autouse=True)
def _plain_httpd(env):
    env.ensure(SNIPPET, load_module=False)


def test_000_001_static_file(env):
    r = env.get("/index.txt")
    assert r.status == 200
    assert r.content_type == "text/plain"
    assert r.body == b"static file\n"


def test_000_002_head_has_no_body(env):
    r = env.head("/index.txt")
    assert r.status == 200
    assert r.body == b""
    assert r.header("Content-Length") == "12"


def test_000_003_ensure_keeps_the_running_server(env):
    pid = env._read_pid(env.root)
    env.ensure(SNIPPET, load_module=False)
    assert env._read_pid(env.root) == pid
    env.apache_restart(SNIPPET, load_module=False)
    assert env._read_pid(env.root) != pid
    assert env.get("/index.txt").status == 200


def test_000_004_error_lines_are_caught_and_can_be_expected(env):
    start = env.log_size()
    r = env.get("/denied/x")
    assert r.status == 403
    text = env.read_log(start)
    assert env.bad_lines(text), f"no error line seen in:\n{text}"
    assert env.bad_lines(text, [r"AH01630"]) == []
    env.expect_log(r"AH01630")      # client denied by server configuration


def test_000_005_apache_fail_on_bad_directive(env):
    res = env.apache_fail("NoSuchDirective on", load_module=False)
    res.assert_message(r"Invalid command 'NoSuchDirective'")
    # the shared server is untouched
    assert env.get("/index.txt").status == 200


def test_000_006_apache_fail_rejects_a_good_config(env):
    with pytest.raises(AssertionError, match=r"accepted the config"):
        env.apache_fail("", load_module=False)


def test_000_007_access_log(env):
    start = env.log_size(env.root.access_log)
    env.get("/index.txt?x=1")
    lines = env.access_lines(start, wait_for=r"GET /index.txt\?x=1 200")
    assert any("GET /index.txt?x=1 200 12" in ln for ln in lines), lines


def test_000_008_startup_warnings_are_caught_and_can_be_expected(env):
    """What httpd prints on stderr before its error log is open counts too."""
    noisy = SNIPPET + f"\nNameVirtualHost 127.0.0.1:{env.port}"
    with pytest.raises(AssertionError, match=r"AH00548"):
        env.apache_restart(noisy, load_module=False)
    env.apache_restart(noisy, load_module=False, expect_log=[r"AH00548"])
    env.ensure(SNIPPET, load_module=False)
    assert env.get("/index.txt").status == 200
