/* A small reader of httpd configuration syntax, for scep-ota store. */

#include <stdlib.h>
#include <string.h>
#include <glob.h>
#include <sys/stat.h>

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_file_io.h>

#include "httpd_conf.h"

#define HCONF_MAX_DEPTH 16

typedef struct {
    apr_pool_t *p;
    hconf_t *c;
    apr_table_t *defines;
    hconf_vhost_t *vhost;        /* inside <VirtualHost>, else NULL */
    const char *err;
} reader_t;

static apr_status_t read_file(reader_t *rd, const char *file, int depth);

/* ${NAME} from Define, then the environment; unknown names stay. */
static const char *expand(reader_t *rd, const char *s)
{
    const char *out = "", *start, *end, *val;
    char *name;

    while ((start = strstr(s, "${")) && (end = strchr(start, '}'))) {
        name = apr_pstrmemdup(rd->p, start + 2, (apr_size_t)(end - start - 2));
        val = apr_table_get(rd->defines, name);
        if (!val) {
            val = getenv(name);
        }
        out = apr_pstrcat(rd->p, out,
                          apr_pstrmemdup(rd->p, s, (apr_size_t)(start - s)),
                          val ? val : apr_pstrmemdup(rd->p, start,
                                            (apr_size_t)(end - start + 1)),
                          NULL);
        s = end + 1;
    }
    return apr_pstrcat(rd->p, out, s, NULL);
}

/* The next word of a line, quotes removed ("..." or '...', with \ escapes
 * inside); NULL at the end. */
static const char *next_word(apr_pool_t *p, const char **line)
{
    const char *s = *line;
    char *w, *o;
    char quote = 0;

    while (*s && apr_isspace(*s)) {
        ++s;
    }
    if (!*s) {
        *line = s;
        return NULL;
    }
    if (*s == '"' || *s == '\'') {
        quote = *s++;
    }
    w = o = apr_palloc(p, strlen(s) + 1);
    while (*s && (quote ? *s != quote : !apr_isspace(*s))) {
        if (quote && *s == '\\' && (s[1] == quote || s[1] == '\\')) {
            ++s;
        }
        *o++ = *s++;
    }
    if (quote && *s) {
        ++s;
    }
    *o = '\0';
    *line = s;
    return w;
}

static const char *root_path(apr_pool_t *p, const char *root,
                             const char *path)
{
    if (!path || path[0] == '/' || !root) {
        return path;
    }
    return apr_pstrcat(p, root, "/", path, NULL);
}

/* Include and IncludeOptional: a file, a directory or a glob. */
static apr_status_t include(reader_t *rd, const char *arg, int optional,
                            int depth)
{
    const char *pattern = root_path(rd->p, rd->c->server_root, arg);
    struct stat sb;
    glob_t g;
    apr_status_t rv = APR_SUCCESS;
    size_t i;

    if (!stat(pattern, &sb) && S_ISDIR(sb.st_mode)) {
        pattern = apr_pstrcat(rd->p, pattern, "/*", NULL);
        optional = 1;
    }
    memset(&g, 0, sizeof(g));
    if (glob(pattern, 0, NULL, &g)) {
        globfree(&g);
        if (optional || strpbrk(pattern, "*?[")) {
            return APR_SUCCESS;
        }
        rd->err = apr_psprintf(rd->p, "Include %s: no such file", pattern);
        return APR_ENOENT;
    }
    for (i = 0; i < g.gl_pathc && APR_SUCCESS == rv; ++i) {
        if (!stat(g.gl_pathv[i], &sb) && S_ISREG(sb.st_mode)) {
            rv = read_file(rd, apr_pstrdup(rd->p, g.gl_pathv[i]), depth + 1);
        }
    }
    globfree(&g);
    return rv;
}

static void set_first(apr_table_t *t, const char *name, const char *value)
{
    if (value && !apr_table_get(t, name)) {
        apr_table_set(t, name, value);
    }
}

static void vhost_begin(reader_t *rd, const char *args)
{
    hconf_vhost_t *v = apr_pcalloc(rd->p, sizeof(*v));
    char *a = apr_pstrdup(rd->p, args), *gt = strrchr(a, '>');

    if (gt) {
        *gt = '\0';
    }
    v->names = a;
    v->dirs = apr_table_make(rd->p, 8);
    APR_ARRAY_PUSH(rd->c->vhosts, hconf_vhost_t *) = v;
    rd->vhost = v;
}

static const char *lower(apr_pool_t *p, const char *s)
{
    char *out = apr_pstrdup(p, s), *c;

    for (c = out; *c; ++c) {
        *c = (char)apr_tolower(*c);
    }
    return out;
}

/* One logical line, variables expanded. */
static apr_status_t directive(reader_t *rd, const char *line, int depth)
{
    const char *name = next_word(rd->p, &line);
    const char *rest = line, *arg;
    apr_table_t *t = rd->vhost ? rd->vhost->dirs : rd->c->main;

    if (!name || name[0] == '#') {
        return APR_SUCCESS;
    }
    name = lower(rd->p, name);
    if (!strcmp(name, "<virtualhost")) {
        vhost_begin(rd, rest);
        return APR_SUCCESS;
    }
    if (!strcmp(name, "</virtualhost>")) {
        rd->vhost = NULL;
        return APR_SUCCESS;
    }
    arg = next_word(rd->p, &line);
    if (!strcmp(name, "include") || !strcmp(name, "includeoptional")) {
        return arg ? include(rd, arg, name[7] == 'o', depth) : APR_SUCCESS;
    }
    if (!strcmp(name, "define") && arg) {
        const char *val = next_word(rd->p, &line);
        apr_table_set(rd->defines, arg, val ? val : "");
        return APR_SUCCESS;
    }
    if (!strcmp(name, "serverroot") && arg && !rd->vhost) {
        rd->c->server_root = arg;
        return APR_SUCCESS;
    }
    if (rd->vhost && (!strcmp(name, "servername")
                      || !strcmp(name, "serveralias"))) {
        rd->vhost->names = apr_pstrcat(rd->p, rd->vhost->names, " ", rest,
                                       NULL);
    }
    set_first(t, name, arg);
    return APR_SUCCESS;
}

/* Reads a file line by line, joining continuation lines. */
static apr_status_t read_file(reader_t *rd, const char *file, int depth)
{
    apr_file_t *f;
    char buf[8192];
    const char *line = NULL;
    apr_status_t rv;
    apr_size_t n;

    if (depth > HCONF_MAX_DEPTH) {
        rd->err = apr_psprintf(rd->p, "%s: includes nest too deep", file);
        return APR_EINVAL;
    }
    rv = apr_file_open(&f, file, APR_FOPEN_READ, APR_FPROT_OS_DEFAULT, rd->p);
    if (APR_SUCCESS != rv) {
        rd->err = apr_psprintf(rd->p, "cannot read %s", file);
        return rv;
    }
    while (APR_SUCCESS == rv
           && APR_SUCCESS == apr_file_gets(buf, sizeof(buf), f)) {
        n = strlen(buf);
        while (n && apr_isspace(buf[n - 1])) {
            buf[--n] = '\0';
        }
        line = line ? apr_pstrcat(rd->p, line, buf, NULL) : buf;
        if (n && buf[n - 1] == '\\') {
            line = apr_pstrmemdup(rd->p, line, strlen(line) - 1);
            continue;
        }
        rv = directive(rd, expand(rd, line), depth);
        line = NULL;
    }
    apr_file_close(f);
    return rv;
}

apr_status_t hconf_read(apr_pool_t *p, const char *file,
                        const char *default_root, hconf_t **conf,
                        const char **err)
{
    reader_t rd;
    apr_status_t rv;

    memset(&rd, 0, sizeof(rd));
    rd.p = p;
    rd.c = apr_pcalloc(p, sizeof(*rd.c));
    rd.c->server_root = default_root;
    rd.c->main = apr_table_make(p, 16);
    rd.c->vhosts = apr_array_make(p, 4, sizeof(hconf_vhost_t *));
    rd.defines = apr_table_make(p, 8);
    rv = read_file(&rd, file, 0);
    *conf = rd.c;
    *err = rd.err;
    return rv;
}

static int names_match(const char *names, const char *want)
{
    const char *s = names;
    apr_size_t n = strlen(want);

    while ((s = strstr(s, want))) {
        int left = s == names || apr_isspace(s[-1]);
        int right = !s[n] || apr_isspace(s[n]) || s[n] == ':';
        if (left && right) {
            return 1;
        }
        s += n;
    }
    return 0;
}

const hconf_vhost_t *hconf_pick(const hconf_t *c, const char *vhost)
{
    int i;

    for (i = 0; i < c->vhosts->nelts; ++i) {
        const hconf_vhost_t *v = APR_ARRAY_IDX(c->vhosts, i, hconf_vhost_t *);
        if (vhost ? names_match(v->names, vhost)
                  : (!apr_table_get(c->main, "scepcacertificatefile")
                     && apr_table_get(v->dirs, "scepcacertificatefile"))) {
            return v;
        }
    }
    return NULL;
}

const char *hconf_get(const hconf_t *c, const hconf_vhost_t *v,
                      const char *name)
{
    const char *val = v ? apr_table_get(v->dirs, name) : NULL;

    return val ? val : apr_table_get(c->main, name);
}

const char *hconf_path(apr_pool_t *p, const hconf_t *c, const char *path)
{
    return root_path(p, c->server_root, path);
}
