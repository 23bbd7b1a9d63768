/* Unit tests of the CLI's httpd configuration reader (tools/httpd_conf.c):
 * the same store and CA as httpd, decided with httpd's rules. */

#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_file_io.h>

#include "httpd_conf.h"

static apr_pool_t *pool;
static const char *dir;          /* a fresh directory per test */
static apr_array_header_t *defines;

static void setup(void)
{
    char tmpl[] = "/tmp/hconf-XXXXXX";

    apr_pool_create(&pool, NULL);
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    dir = apr_pstrdup(pool, tmpl);
    defines = apr_array_make(pool, 2, sizeof(const char *));
}

static int remove_one(const char *path, const struct stat *sb, int flag,
                      struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
    apr_pool_destroy(pool);
}

/* Writes dir/name (making its directory); returns the path. */
static const char *put(const char *name, const char *text)
{
    const char *path = apr_pstrcat(pool, dir, "/", name, NULL);
    char *d = apr_pstrdup(pool, path);
    FILE *f;

    *strrchr(d, '/') = '\0';
    ck_assert_int_eq(apr_dir_make_recursive(d, APR_FPROT_OS_DEFAULT, pool),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(f = fopen(path, "w"));
    fputs(text, f);
    fclose(f);
    return path;
}

/* Reads dir/httpd.conf (text) with ServerRoot dir and the -D names given
 * so far; builtin: compiled-in modules, comma separated. */
static apr_status_t read_conf(const char *text, const char *builtin,
                              hconf_t **c, const char **err)
{
    hconf_opts_t o;
    apr_array_header_t *b = apr_array_make(pool, 4, sizeof(const char *));
    char *list = apr_pstrdup(pool, builtin ? builtin : "core.c,mod_so.c");
    char *tok, *last;

    for (tok = apr_strtok(list, ",", &last); tok;
         tok = apr_strtok(NULL, ",", &last)) {
        APR_ARRAY_PUSH(b, const char *) = tok;
    }
    memset(&o, 0, sizeof(o));
    o.server_root = dir;
    o.defines = defines;
    o.builtin = b;
    *err = NULL;
    return hconf_read(pool, put("httpd.conf", text), &o, c, err);
}

static hconf_t *conf_ok(const char *text)
{
    hconf_t *c;
    const char *err;

    ck_assert_msg(APR_SUCCESS == read_conf(text, NULL, &c, &err), "%s",
                  err ? err : "?");
    return c;
}

static const char *conf_err(const char *text)
{
    hconf_t *c;
    const char *err;

    ck_assert_int_ne(read_conf(text, NULL, &c, &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(err);
    return err;
}

static const char *store_of(const hconf_t *c)
{
    return hconf_get(c, NULL, "scepstore");
}

#define ck_contains(s, sub) \
    ck_assert_msg(strstr((s), (sub)) != NULL, "'%s' lacks '%s'", (s), (sub))

START_TEST(last_value_wins)
{
    hconf_t *c = conf_ok("SCEPStore sqlite3:first.db\n"
                         "SCEPCACertificateFile ca.pem\n"
                         "scepstore \"sqlite3:second.db\"\n");

    ck_assert_str_eq(store_of(c), "sqlite3:second.db");
    ck_assert_str_eq(hconf_get(c, NULL, "scepcacertificatefile"), "ca.pem");
}
END_TEST

START_TEST(vhost_inherits_and_overrides)
{
    hconf_t *c = conf_ok("<VirtualHost *:80>\n"
                         "  ServerName a.example\n"
                         "</VirtualHost>\n"
                         "<VirtualHost *:80>\n"
                         "  ServerName b.example\n"
                         "  SCEPStore sqlite3:b1.db\n"
                         "  SCEPStore sqlite3:b2.db\n"
                         "</VirtualHost>\n"
                         "SCEPStore sqlite3:main.db\n");
    const hconf_server_t *a = APR_ARRAY_IDX(c->vhosts, 0, hconf_server_t *);
    const hconf_server_t *b = APR_ARRAY_IDX(c->vhosts, 1, hconf_server_t *);

    ck_assert_int_eq(c->vhosts->nelts, 2);
    /* the main server's value, even though it comes after the vhost */
    ck_assert_str_eq(hconf_get(c, a, "scepstore"), "sqlite3:main.db");
    ck_assert_str_eq(hconf_get(c, b, "scepstore"), "sqlite3:b2.db");
    ck_assert_str_eq(store_of(c), "sqlite3:main.db");
}
END_TEST

START_TEST(ifdefine)
{
    static const char *text =
        "<IfDefine STAGING>\n  SCEPStore sqlite3:staging.db\n</IfDefine>\n"
        "<IfDefine !STAGING>\n  SCEPStore sqlite3:prod.db\n</IfDefine>\n";

    ck_assert_str_eq(store_of(conf_ok(text)), "sqlite3:prod.db");
    APR_ARRAY_PUSH(defines, const char *) = "STAGING";
    ck_assert_str_eq(store_of(conf_ok(text)), "sqlite3:staging.db");
}
END_TEST

START_TEST(define_undefine_and_variables)
{
    hconf_t *c;

    setenv("HCONF_TEST_DIR", "/env/dir", 1);
    c = conf_ok("Define STATE /var/lib/scep\n"
                "<IfDefine STATE>\n"
                "  SCEPStore sqlite3:${STATE}/a.db\n"
                "</IfDefine>\n"
                "SCEPCACertificateFile ${HCONF_TEST_DIR}/ca.pem\n"
                "SCEPCAKeyFile ${HCONF_TEST_UNSET}/key.pem\n"
                "UnDefine STATE\n"
                "<IfDefine STATE>\n  SCEPStore sqlite3:no.db\n</IfDefine>\n");
    ck_assert_str_eq(store_of(c), "sqlite3:/var/lib/scep/a.db");
    ck_assert_str_eq(hconf_get(c, NULL, "scepcacertificatefile"),
                     "/env/dir/ca.pem");
    /* unknown variables stay as written, as in httpd */
    ck_assert_str_eq(hconf_get(c, NULL, "scepcakeyfile"),
                     "${HCONF_TEST_UNSET}/key.pem");
    unsetenv("HCONF_TEST_DIR");
}
END_TEST

START_TEST(nested_false_sections_are_skipped)
{
    hconf_t *c = conf_ok("<IfDefine NOPE>\n"
                         "  <IfDefine !NOPE>\n"
                         "    SCEPStore sqlite3:inner.db\n"
                         "  </IfDefine>\n"
                         "  Include /nonexistent/file.conf\n"
                         "  Define X 1\n"
                         "  SCEPStore sqlite3:outer.db\n"
                         "</IfDefine>\n"
                         "<IfDefine X>\n  SCEPStore sqlite3:x.db\n"
                         "</IfDefine>\n");

    ck_assert_ptr_null(store_of(c));
}
END_TEST

START_TEST(ifmodule_loaded_so_far)
{
    hconf_t *c = conf_ok("<IfModule ssl_module>\n"
                         "  SCEPStore sqlite3:early.db\n"
                         "</IfModule>\n"
                         "LoadModule ssl_module modules/mod_ssl.so\n"
                         "<IfModule mod_ssl.c>\n"
                         "  SCEPCACertificateFile file-form.pem\n"
                         "</IfModule>\n"
                         "<IfModule ssl_module>\n"
                         "  SCEPCAKeyFile ident-form.pem\n"
                         "</IfModule>\n"
                         "<IfModule mod_nonexistent.c>\n"
                         "  DBDriver none\n"
                         "</IfModule>\n"
                         "<IfModule !mod_nonexistent.c>\n"
                         "  DBDParams yes\n"
                         "</IfModule>\n");

    ck_assert_ptr_null(store_of(c));
    ck_assert_str_eq(hconf_get(c, NULL, "scepcacertificatefile"),
                     "file-form.pem");
    ck_assert_str_eq(hconf_get(c, NULL, "scepcakeyfile"), "ident-form.pem");
    ck_assert_ptr_null(hconf_get(c, NULL, "dbdriver"));
    ck_assert_str_eq(hconf_get(c, NULL, "dbdparams"), "yes");
}
END_TEST

START_TEST(ifmodule_builtin_and_mpm_names)
{
    hconf_t *c;
    const char *err;

    ck_assert_int_eq(read_conf(
        "LoadModule mpm_event_module modules/mod_mpm_event.so\n"
        "<IfModule event.c>\n  SCEPStore sqlite3:event.db\n</IfModule>\n"
        "<IfModule mod_mpm_event.c>\n  SCEPStore sqlite3:not.db\n"
        "</IfModule>\n"
        "<IfModule so_module>\n  SCEPCAKeyFile so.pem\n</IfModule>\n"
        "<IfModule http_module>\n  DBDriver http\n</IfModule>\n"
        "<IfModule mod_watchdog.c>\n  DBDParams watchdog\n</IfModule>\n",
        "core.c,mod_so.c,http_core.c", &c, &err), APR_SUCCESS);
    ck_assert_str_eq(store_of(c), "sqlite3:event.db");
    ck_assert_str_eq(hconf_get(c, NULL, "scepcakeyfile"), "so.pem");
    ck_assert_str_eq(hconf_get(c, NULL, "dbdriver"), "http");
    ck_assert_ptr_null(hconf_get(c, NULL, "dbdparams"));
}
END_TEST

START_TEST(include_relative_to_server_root)
{
    hconf_t *c;

    put("root2/conf.d/10-a.conf", "SCEPStore sqlite3:a.db\n");
    put("root2/conf.d/20-b.conf", "SCEPStore sqlite3:b.db\n");
    put("root2/conf.d/sub/30-c.txt", "SCEPCAKeyFile c.pem\n");
    put("root2/dir/x.conf", "SCEPCACertificateFile dir.pem\n");
    c = conf_ok(apr_pstrcat(pool, "ServerRoot ", dir, "/root2\n"
                            "Include conf.d/*.conf\n"
                            "IncludeOptional missing/*.conf\n"
                            "IncludeOptional missing.conf\n"
                            "Include dir\n"
                            "Include conf.d/sub\n", NULL));
    ck_assert_str_eq(store_of(c), "sqlite3:b.db");    /* sorted, last */
    ck_assert_str_eq(hconf_get(c, NULL, "scepcacertificatefile"), "dir.pem");
    ck_assert_str_eq(hconf_get(c, NULL, "scepcakeyfile"), "c.pem");
    ck_assert_str_eq(hconf_path(pool, c, "state/x.db"),
                     apr_pstrcat(pool, dir, "/root2/state/x.db", NULL));
    ck_assert_str_eq(hconf_path(pool, c, "/abs.db"), "/abs.db");
}
END_TEST

START_TEST(include_missing_fails)
{
    ck_contains(conf_err("Include nothing-here.conf\n"),
                "httpd.conf:1: Include");
    ck_contains(conf_err("\nInclude nothing*.conf\n"),
                "httpd.conf:2: Include");
}
END_TEST

START_TEST(last_server_root_resolves_paths)
{
    hconf_t *c = conf_ok("ServerRoot /first\n"
                         "SCEPStore sqlite3:a.db\n"
                         "<VirtualHost *:80>\nServerRoot /last\n"
                         "</VirtualHost>\n");

    /* ServerRoot acts when read, wherever it is, as in httpd */
    ck_assert_str_eq(c->server_root, "/last");
}
END_TEST

START_TEST(if_is_refused_with_file_and_line)
{
    const char *err = conf_err("SCEPStore sqlite3:a.db\n"
                               "<If \"%{HTTP_HOST} == 'x'\">\n"
                               "  SCEPStore sqlite3:b.db\n"
                               "</If>\n");

    ck_contains(err, "httpd.conf:3: SCEPStore inside <If> (");
    ck_contains(err, "httpd.conf:2)");
    ck_contains(err, "per request");
    err = conf_err("<If true>\n</If>\n<Else>\n"
                   "  SCEPCAKeyFile k.pem\n</Else>\n");
    ck_contains(err, "httpd.conf:4: SCEPCAKeyFile inside <Else> (");
}
END_TEST

START_TEST(if_through_include_is_refused)
{
    const char *inc = put("inc.conf", "\n\nSCEPCACertificateFile ca.pem\n");
    const char *err = conf_err(apr_pstrcat(pool, "<If true>\nInclude ", inc,
                                           "\n</If>\n", NULL));

    ck_contains(err, apr_pstrcat(pool, inc, ":3: SCEPCACertificateFile "
                                 "inside <If>", NULL));
}
END_TEST

START_TEST(read_time_directives_inside_if_apply)
{
    /* httpd runs Define while reading, whatever the <If> around it */
    hconf_t *c = conf_ok("<If false>\n  Define X 1\n</If>\n"
                         "<IfDefine X>\n  SCEPStore sqlite3:x.db\n"
                         "</IfDefine>\n");

    ck_assert_str_eq(store_of(c), "sqlite3:x.db");
}
END_TEST

START_TEST(other_sections_refused)
{
    ck_contains(conf_err("<Location /scep>\n  SCEPStore x\n</Location>\n"),
                "httpd.conf:2: SCEPStore inside <Location>");
    ck_contains(conf_err("<IfVersion >= 2.4>\n  Define X\n</IfVersion>\n"),
                "httpd.conf:2: Define inside <IfVersion>");
    ck_contains(conf_err("<Macro M $x>\n  SCEPStore $x\n</Macro>\n"),
                "httpd.conf:2: SCEPStore inside <Macro>");
    /* a directive the CLI does not need is fine anywhere */
    conf_ok("<Location /scep>\n  SetHandler scep\n</Location>\n"
            "<Macro M $x>\n  Foo $x\n</Macro>\n");
}
END_TEST

START_TEST(unbalanced_sections)
{
    ck_contains(conf_err("<IfDefine !X>\nSCEPStore a\n"),
                "httpd.conf:1: <IfDefine> has no end");
    ck_contains(conf_err("</IfModule>\n"), "httpd.conf:1: </IfModule>");
    ck_contains(conf_err("<IfDefine X>\nSCEPStore a\n"),
                "httpd.conf:1: <IfDefine> has no end");
}
END_TEST

START_TEST(continuation_lines)
{
    hconf_t *c = conf_ok("SCEPStore \\\n   sqlite3:joined.db\n"
                         "SCEPCAKeyFile k.pem\n");

    ck_assert_str_eq(store_of(c), "sqlite3:joined.db");
}
END_TEST

static const char *two_stores =
    "SCEPCACertificateFile ca.pem\n"
    "SCEPStore sqlite3:main.db\n"
    "<VirtualHost 127.0.0.1:8443 [::1]:8443>\n"
    "  ServerName https://scep.example.com:8443\n"
    "  ServerAlias *.devices.example.com enroll\n"
    "  SCEPStore sqlite3:vhost.db\n"
    "</VirtualHost>\n"
    "<VirtualHost *:80>\n"
    "  ServerName www.example.com\n"
    "</VirtualHost>\n";

static const char *picked_store(const hconf_t *c, const char *want)
{
    const hconf_server_t *s;
    const char *err = NULL;

    ck_assert_msg(APR_SUCCESS == hconf_pick(pool, c, want, HCONF_STORE, &s,
                                            &err), "%s", err ? err : "?");
    return hconf_get(c, s, "scepstore");
}

START_TEST(pick_refuses_when_servers_differ)
{
    hconf_t *c = conf_ok(two_stores);
    const hconf_server_t *s;
    const char *err = NULL;

    ck_assert_int_ne(hconf_pick(pool, c, NULL, HCONF_STORE, &s, &err),
                     APR_SUCCESS);
    ck_contains(err, "--vhost");
    ck_contains(err, "sqlite3:vhost.db");
    ck_contains(err, "httpd.conf:3)");
    /* the CA alone is the same everywhere */
    ck_assert_int_eq(hconf_pick(pool, c, NULL, HCONF_CA, &s, &err),
                     APR_SUCCESS);
    ck_assert_ptr_eq(s, c->main);
}
END_TEST

START_TEST(pick_by_name_alias_address_port)
{
    hconf_t *c = conf_ok(two_stores);
    const hconf_server_t *s;
    const char *err = NULL;

    ck_assert_str_eq(picked_store(c, "scep.example.com"), "sqlite3:vhost.db");
    ck_assert_str_eq(picked_store(c, "SCEP.example.com:8443"),
                     "sqlite3:vhost.db");
    ck_assert_str_eq(picked_store(c, "a.devices.example.com"),
                     "sqlite3:vhost.db");
    ck_assert_str_eq(picked_store(c, "enroll"), "sqlite3:vhost.db");
    ck_assert_str_eq(picked_store(c, "127.0.0.1"), "sqlite3:vhost.db");
    ck_assert_str_eq(picked_store(c, "[::1]:8443"), "sqlite3:vhost.db");
    ck_assert_str_eq(picked_store(c, "www.example.com:80"),
                     "sqlite3:main.db");
    ck_assert_int_eq(hconf_pick(pool, c, "scep.example.com:80", HCONF_STORE,
                                &s, &err), APR_NOTFOUND);
    ck_contains(err, "scep.example.com:80");
    ck_assert_int_eq(hconf_pick(pool, c, "example.com", HCONF_STORE, &s,
                                &err), APR_NOTFOUND);
}
END_TEST

START_TEST(pick_one_scep_vhost)
{
    /* only one server configures a CA: it is the one, without --vhost */
    hconf_t *c = conf_ok("<VirtualHost *:80>\n  ServerName www\n"
                         "</VirtualHost>\n"
                         "<VirtualHost *:80>\n  ServerName scep\n"
                         "  SCEPCACertificateFile ca.pem\n"
                         "  SCEPStore sqlite3:scep.db\n</VirtualHost>\n");

    ck_assert_str_eq(picked_store(c, NULL), "sqlite3:scep.db");
}
END_TEST

static Suite *suite_httpd_conf(void)
{
    Suite *s = suite_create("httpd_conf");
    TCase *tc = tcase_create("read");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, last_value_wins);
    tcase_add_test(tc, vhost_inherits_and_overrides);
    tcase_add_test(tc, ifdefine);
    tcase_add_test(tc, define_undefine_and_variables);
    tcase_add_test(tc, nested_false_sections_are_skipped);
    tcase_add_test(tc, ifmodule_loaded_so_far);
    tcase_add_test(tc, ifmodule_builtin_and_mpm_names);
    tcase_add_test(tc, include_relative_to_server_root);
    tcase_add_test(tc, include_missing_fails);
    tcase_add_test(tc, last_server_root_resolves_paths);
    tcase_add_test(tc, if_is_refused_with_file_and_line);
    tcase_add_test(tc, if_through_include_is_refused);
    tcase_add_test(tc, read_time_directives_inside_if_apply);
    tcase_add_test(tc, other_sections_refused);
    tcase_add_test(tc, unbalanced_sections);
    tcase_add_test(tc, continuation_lines);
    tcase_add_test(tc, pick_refuses_when_servers_differ);
    tcase_add_test(tc, pick_by_name_alias_address_port);
    tcase_add_test(tc, pick_one_scep_vhost);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    apr_initialize();
    sr = srunner_create(suite_httpd_conf());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    apr_terminate();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
