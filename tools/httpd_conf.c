/* A reader of httpd configuration files for scep-ota store: which store
 * and CA httpd uses, decided as httpd 2.4 decides it (httpd_conf.h). */

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <fnmatch.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_file_io.h>
#include <apr_thread_proc.h>

#include "httpd_conf.h"

#define HCONF_MAX_DEPTH 128      /* httpd's AP_MAX_INCLUDE_DEPTH */
#define HCONF_MAX_LINE (1024 * 1024)

/* What a section does to the directives inside it. */
typedef enum {
    SEC_PLAIN,                   /* a true <IfDefine>, <IfModule>, <IfFile> */
    SEC_VHOST,                   /* <VirtualHost> */
    SEC_IF,                      /* <If>, <ElseIf>, <Else>: per request */
    SEC_COND,                    /* <IfVersion> ...: not evaluated here */
    SEC_DIR                      /* <Directory>, <Location>, ... */
} sec_kind_t;

typedef struct {
    const char *name;            /* as written, e.g. "<IfModule" */
    sec_kind_t kind;
    const char *file;
    int line;
} section_t;

typedef struct {
    apr_pool_t *p;
    const hconf_opts_t *o;
    hconf_t *c;
    apr_hash_t *defined;         /* -D, Define: name -> "" */
    apr_table_t *vars;           /* Define NAME VALUE */
    apr_hash_t *modules;         /* file and identifier names -> "" */
    int builtin_known;
    hconf_server_t *server;      /* main, or the <VirtualHost> being read */
    apr_array_header_t *sections;    /* section_t, across includes */
    const char *err;
} reader_t;

typedef struct {
    apr_file_t *f;
    const char *name;
    int line;                    /* of the logical line last read */
    int next;                    /* physical lines read */
    int base;                    /* sections open when the file began */
} cfile_t;

/* Directives whose value the CLI uses (server scope). */
static const char *const needed[] = {
    "scepstore", "scepcacertificatefile", "scepcakeyfile", "dbdriver",
    "dbdparams", "servername", "serveralias", "scepchallengelifetime",
    "scepcrlvalidity", "scepauditlog", NULL
};

/* Directives httpd runs while it reads (EXEC_ON_READ): they take effect
 * wherever they are, even inside <If> or <VirtualHost>. */
static const char *const on_read[] = {
    "include", "includeoptional", "define", "undefine", "serverroot",
    "loadmodule", NULL
};

/* Module file names whose identifier is not the file's stem + _module. */
static const struct {
    const char *file;
    const char *ident;
} module_names[] = {
    { "core.c", "core_module" },
    { "http_core.c", "http_module" },
    { "util_ldap.c", "ldap_module" },
};
#define N_MODULE_NAMES (sizeof(module_names) / sizeof(module_names[0]))

/* What Debian's apache2 compiles in (`apache2 -l`), when no httpd binary
 * can be asked. */
static const char *const debian_builtin[] = {
    "core.c", "mod_so.c", "mod_watchdog.c", "http_core.c", "mod_log_config.c",
    "mod_logio.c", "mod_version.c", "mod_unixd.c", NULL
};

static apr_status_t read_file(reader_t *rd, const char *file, int depth);

static int in_list(const char *const *list, const char *name)
{
    for (; *list; ++list) {
        if (!strcmp(*list, name)) {
            return 1;
        }
    }
    return 0;
}

static const char *lower(apr_pool_t *p, const char *s)
{
    char *out = apr_pstrdup(p, s), *c;

    for (c = out; *c; ++c) {
        *c = (char)apr_tolower(*c);
    }
    return out;
}

static int has_suffix(const char *s, const char *suffix)
{
    apr_size_t n = strlen(s), m = strlen(suffix);

    return n > m && !strcmp(s + n - m, suffix);
}

static apr_status_t fail(reader_t *rd, apr_status_t rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static apr_status_t fail(reader_t *rd, apr_status_t rv, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    rd->err = apr_pvsprintf(rd->p, fmt, ap);
    va_end(ap);
    return rv;
}

/* ------------------------------------------------------------------ */
/* modules                                                              */

/* The identifier of a module file: mod_foo.c -> foo_module, an MPM's
 * event.c -> mpm_event_module. */
static const char *ident_of_file(apr_pool_t *p, const char *name)
{
    apr_size_t n = strlen(name);

    if (!strncmp(name, "mod_", 4)) {
        return apr_pstrcat(p, apr_pstrmemdup(p, name + 4, n - 6), "_module",
                           NULL);
    }
    return apr_pstrcat(p, "mpm_", apr_pstrmemdup(p, name, n - 2), "_module",
                       NULL);
}

/* The file of a module identifier; an MPM's file is event.c, not
 * mod_mpm_event.c. */
static const char *file_of_ident(apr_pool_t *p, const char *name)
{
    apr_size_t n = strlen(name);

    if (!strncmp(name, "mpm_", 4)) {
        return apr_pstrcat(p, apr_pstrmemdup(p, name + 4, n - 11), ".c",
                           NULL);
    }
    return apr_pstrcat(p, "mod_", apr_pstrmemdup(p, name, n - 7), ".c", NULL);
}

/* A pair of module_names[] holding name; 0 when none does. */
static int known_module(const char *name, const char **file,
                        const char **ident)
{
    apr_size_t i;
    int found = 0;

    for (i = 0; i < N_MODULE_NAMES; ++i) {
        if (!strcmp(name, module_names[i].file)
            || !strcmp(name, module_names[i].ident)) {
            *file = module_names[i].file;
            *ident = module_names[i].ident;
            found = 1;
        }
    }
    return found;
}

/* "mod_foo.c" or "foo_module": both names httpd's <IfModule> accepts. */
static void add_module(reader_t *rd, const char *name)
{
    const char *file = name, *ident = name;

    if (known_module(name, &file, &ident)) {
        /* known pair */
    }
    else if (has_suffix(name, ".c")) {
        ident = ident_of_file(rd->p, name);
    }
    else if (has_suffix(name, "_module")) {
        file = file_of_ident(rd->p, name);
    }
    apr_hash_set(rd->modules, file, APR_HASH_KEY_STRING, "");
    apr_hash_set(rd->modules, ident, APR_HASH_KEY_STRING, "");
}

static const char *find_httpd(const reader_t *rd)
{
    static const char *const bins[] = {
        "/usr/sbin/apache2", "/usr/sbin/httpd", "/usr/local/apache2/bin/httpd",
        NULL
    };
    const char *env = getenv("APACHE_HTTPD");
    int i;

    if (rd->o->httpd) {
        return rd->o->httpd;
    }
    if (env && *env) {
        return env;
    }
    for (i = 0; bins[i]; ++i) {
        if (!access(bins[i], X_OK)) {
            return bins[i];
        }
    }
    return NULL;
}

/* `bin -l` started, its output piped; 0 when it cannot be. */
static int start_httpd_l(reader_t *rd, const char *bin, apr_proc_t *proc)
{
    const char *argv[3];
    apr_procattr_t *attr;

    argv[0] = bin;
    argv[1] = "-l";
    argv[2] = NULL;
    return APR_SUCCESS == apr_procattr_create(&attr, rd->p)
           && APR_SUCCESS == apr_procattr_io_set(attr, APR_NO_PIPE,
                                                 APR_FULL_BLOCK, APR_NO_PIPE)
           && APR_SUCCESS == apr_procattr_cmdtype_set(attr, APR_PROGRAM_ENV)
           && APR_SUCCESS == apr_proc_create(proc, bin, argv, NULL, attr,
                                             rd->p);
}

/* A line of `httpd -l`: 1 when it names a module file (added). */
static int listed_module(reader_t *rd, char *buf)
{
    char *s = buf, *e = buf + strlen(buf);

    while (apr_isspace(*s)) {
        ++s;
    }
    while (e > s && apr_isspace(e[-1])) {
        *--e = '\0';
    }
    if (has_suffix(s, ".c") && !strchr(s, ' ')) {
        add_module(rd, apr_pstrdup(rd->p, s));
        return 1;
    }
    return 0;
}

/* The modules `httpd -l` lists; 0 when it cannot be run. */
static int ask_httpd(reader_t *rd)
{
    const char *bin = find_httpd(rd);
    apr_proc_t proc;
    char buf[256];
    int found = 0, code;
    apr_exit_why_e why;

    if (!bin || !start_httpd_l(rd, bin, &proc)) {
        return 0;
    }
    while (APR_SUCCESS == apr_file_gets(buf, sizeof(buf), proc.out)) {
        found += listed_module(rd, buf);
    }
    apr_file_close(proc.out);
    apr_proc_wait(&proc, &code, &why, APR_WAIT);
    return found;
}

static void builtin_modules(reader_t *rd)
{
    int i;

    if (rd->builtin_known) {
        return;
    }
    rd->builtin_known = 1;
    if (rd->o->builtin) {
        for (i = 0; i < rd->o->builtin->nelts; ++i) {
            add_module(rd, APR_ARRAY_IDX(rd->o->builtin, i, const char *));
        }
    }
    else if (!ask_httpd(rd)) {
        for (i = 0; debian_builtin[i]; ++i) {
            add_module(rd, debian_builtin[i]);
        }
    }
}

static int module_loaded(reader_t *rd, const char *name)
{
    if (apr_hash_get(rd->modules, name, APR_HASH_KEY_STRING)) {
        return 1;
    }
    builtin_modules(rd);
    return apr_hash_get(rd->modules, name, APR_HASH_KEY_STRING) != NULL;
}

/* ------------------------------------------------------------------ */
/* lines and words                                                      */

/* ${NAME} from Define, then the environment; unknown names stay, as in
 * httpd (which warns). */
static const char *expand(reader_t *rd, const char *s)
{
    const char *out = "", *start, *end, *val;
    char *name;

    while ((start = strstr(s, "${")) && (end = strchr(start, '}'))) {
        name = apr_pstrmemdup(rd->p, start + 2, (apr_size_t)(end - start - 2));
        val = apr_table_get(rd->vars, name);
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

/* Copies a word from *s up to its end (the quote, or white space),
 * escapes removed inside quotes. */
static const char *copy_word(apr_pool_t *p, const char **s, char quote)
{
    const char *in = *s;
    char *w = apr_palloc(p, strlen(in) + 1), *o = w;

    while (*in && (quote ? *in != quote : !apr_isspace(*in))) {
        if (quote && *in == '\\' && (in[1] == quote || in[1] == '\\')) {
            ++in;
        }
        *o++ = *in++;
    }
    if (quote && *in) {
        ++in;
    }
    *o = '\0';
    *s = in;
    return w;
}

/* The next word of a line, quotes removed ("..." or '...', with \ escapes
 * inside); NULL at the end. */
static const char *next_word(apr_pool_t *p, const char **line)
{
    const char *s = *line;
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
    *line = s;
    return copy_word(p, line, quote);
}

/* line without the white space around it */
static const char *trim(apr_pool_t *p, const char *line)
{
    apr_size_t n;

    while (apr_isspace(*line)) {
        ++line;
    }
    n = strlen(line);
    while (n && apr_isspace(line[n - 1])) {
        --n;
    }
    return apr_pstrmemdup(p, line, n);
}

/* One physical line, trimmed, however long; APR_EOF at the end. */
static apr_status_t physical_line(reader_t *rd, cfile_t *cf, const char **out)
{
    char buf[8192];
    const char *line = NULL;
    apr_size_t n;
    apr_status_t rv;

    while (APR_SUCCESS == (rv = apr_file_gets(buf, sizeof(buf), cf->f))) {
        n = strlen(buf);
        line = line ? apr_pstrcat(rd->p, line, buf, NULL)
                    : apr_pstrdup(rd->p, buf);
        if (strlen(line) > HCONF_MAX_LINE) {
            return fail(rd, APR_EINVAL, "%s:%d: line too long", cf->name,
                        cf->next + 1);
        }
        if (n && buf[n - 1] == '\n') {
            break;
        }
    }
    if (!line) {
        return rv;
    }
    ++cf->next;
    *out = trim(rd->p, line);
    return APR_SUCCESS;
}

/* A logical line: continuation lines (ending in \) joined. */
static apr_status_t logical_line(reader_t *rd, cfile_t *cf, const char **out)
{
    const char *part, *line = "";
    apr_size_t n;
    apr_status_t rv;
    int first = 1;

    while (APR_SUCCESS == (rv = physical_line(rd, cf, &part))) {
        if (first) {
            cf->line = cf->next;
            first = 0;
        }
        n = strlen(part);
        if (n && part[n - 1] == '\\') {
            line = apr_pstrcat(rd->p, line,
                               apr_pstrmemdup(rd->p, part, n - 1), NULL);
            continue;
        }
        *out = apr_pstrcat(rd->p, line, part, NULL);
        return APR_SUCCESS;
    }
    if (!first && APR_STATUS_IS_EOF(rv)) {
        *out = line;
        return APR_SUCCESS;
    }
    return rv;
}

/* "<Name" of a line "</Name>" or "<Name args>": lower-case, without the
 * brackets. */
static const char *section_word(apr_pool_t *p, const char *line)
{
    const char *w = next_word(p, &line);
    char *gt;

    if (!w) {
        return "";
    }
    w = lower(p, w + (w[1] == '/' ? 2 : 1));
    if ((gt = strchr(w, '>'))) {
        *gt = '\0';
    }
    return w;
}

/* ------------------------------------------------------------------ */
/* sections                                                             */

static const section_t *enclosing(const reader_t *rd)
{
    int i;

    for (i = rd->sections->nelts - 1; i >= 0; --i) {
        const section_t *s = &APR_ARRAY_IDX(rd->sections, i, section_t);
        if (s->kind != SEC_PLAIN && s->kind != SEC_VHOST) {
            return s;
        }
    }
    return NULL;
}

/* A directive the CLI cannot place: refused with both places named. */
static apr_status_t refuse(reader_t *rd, const cfile_t *cf, const char *dir,
                           const char *sec, const char *sec_file,
                           int sec_line, sec_kind_t kind)
{
    static const char *const why[] = {
        "", "",
        "httpd evaluates <If>, <ElseIf> and <Else> per request, so which "
        "value applies cannot be decided without a request",
        "scep-ota cannot evaluate that condition without running httpd",
        "httpd accepts it only in the main server or a <VirtualHost>"
    };

    return fail(rd, APR_EINVAL, "%s:%d: %s inside %s> (%s:%d): %s; move it "
                "out of that section", cf->name, cf->line, dir, sec,
                sec_file, sec_line, why[kind]);
}

/* Inside a <Macro>: a directive the CLI needs is refused. */
static apr_status_t macro_line(reader_t *rd, const cfile_t *cf,
                               const char *name, const char *line, int start)
{
    const char *rest = line, *w = next_word(rd->p, &rest);

    if (w && in_list(needed, lower(rd->p, w))) {
        return fail(rd, APR_EINVAL, "%s:%d: %s inside %s> (%s:%d): scep-ota "
                    "does not expand macros; move it out of the macro",
                    cf->name, cf->line, w, name, cf->name, start);
    }
    return APR_SUCCESS;
}

/* Skips a section whose condition is false, up to its end tag, as httpd
 * does (nothing inside is read). check: refuse a needed directive inside
 * (a <Macro> body, which the CLI does not expand). */
static apr_status_t skip_section(reader_t *rd, cfile_t *cf, const char *name,
                                 int check)
{
    const char *open = section_word(rd->p, name), *line;
    int depth = 0, start = cf->line;
    apr_status_t rv;

    while (APR_SUCCESS == (rv = logical_line(rd, cf, &line))) {
        if (line[0] == '<' && line[1] == '/') {
            if (!depth && !strcmp(section_word(rd->p, line), open)) {
                return APR_SUCCESS;
            }
            depth -= depth > 0;
        }
        else if (line[0] == '<') {
            ++depth;
        }
        else if (check && macro_line(rd, cf, name, line, start)) {
            return APR_EINVAL;
        }
    }
    return fail(rd, APR_EINVAL, "%s:%d: %s> has no end before the end of "
                "the file", cf->name, start, name);
}

static int condition(reader_t *rd, const char *sec, const char *arg)
{
    int not = arg[0] == '!';
    struct stat sb;
    int yes;

    arg += not;
    if (!strcmp(sec, "<ifdefine")) {
        yes = apr_hash_get(rd->defined, arg, APR_HASH_KEY_STRING) != NULL;
    }
    else if (!strcmp(sec, "<ifmodule")) {
        yes = module_loaded(rd, arg);
    }
    else {                       /* <IfFile>: relative to ServerRoot */
        yes = !stat(hconf_path(rd->p, rd->c, arg), &sb);
    }
    return not ? !yes : yes;
}

static sec_kind_t kind_of(const char *sec)
{
    static const char *const evaluated[] = {
        "<ifdefine", "<ifmodule", "<iffile", NULL
    };
    static const char *const per_request[] = {
        "<if", "<elseif", "<else", NULL
    };
    static const char *const unknown[] = {
        "<ifversion", "<ifdirective", "<ifsection", NULL
    };

    return in_list(evaluated, sec) ? SEC_PLAIN
         : in_list(per_request, sec) ? SEC_IF
         : in_list(unknown, sec) ? SEC_COND
         : !strcmp(sec, "<virtualhost") ? SEC_VHOST : SEC_DIR;
}

static void vhost_begin(reader_t *rd, const cfile_t *cf, const char *args)
{
    hconf_server_t *v = apr_pcalloc(rd->p, sizeof(*v));
    const char *w;

    v->file = cf->name;
    v->line = cf->line;
    v->addrs = apr_array_make(rd->p, 2, sizeof(const char *));
    v->aliases = apr_array_make(rd->p, 2, sizeof(const char *));
    v->dirs = apr_hash_make(rd->p);
    while ((w = next_word(rd->p, &args))) {
        APR_ARRAY_PUSH(v->addrs, const char *) = w;
    }
    APR_ARRAY_PUSH(rd->c->vhosts, hconf_server_t *) = v;
    rd->server = v;
}

/* <IfDefine>, <IfModule>, <IfFile>: *yes when the section is read. */
static apr_status_t evaluate(reader_t *rd, const cfile_t *cf,
                             const char *name, const char *sec,
                             const char *args, int *yes)
{
    const char *arg = next_word(rd->p, &args);

    if (!arg) {
        return fail(rd, APR_EINVAL, "%s:%d: %s> needs an argument",
                    cf->name, cf->line, name);
    }
    *yes = condition(rd, sec, arg);
    return APR_SUCCESS;
}

/* <VirtualHost args>: in the main server, outside any section the CLI
 * cannot place. */
static apr_status_t vhost_open(reader_t *rd, const cfile_t *cf,
                               const char *name, const char *args)
{
    const section_t *e = enclosing(rd);

    if (rd->server != rd->c->main) {
        return fail(rd, APR_EINVAL, "%s:%d: <VirtualHost> inside "
                    "<VirtualHost> (%s:%d)", cf->name, cf->line,
                    rd->server->file, rd->server->line);
    }
    if (e) {
        return refuse(rd, cf, name, e->name, e->file, e->line, e->kind);
    }
    vhost_begin(rd, cf, args);
    return APR_SUCCESS;
}

static sec_kind_t push_section(reader_t *rd, const cfile_t *cf,
                               const char *name, const char *sec)
{
    section_t *s = apr_array_push(rd->sections);

    s->name = name;
    s->file = cf->name;
    s->line = cf->line;
    s->kind = kind_of(sec);
    return s->kind;
}

/* "<Name args>": evaluated, skipped, or entered. */
static apr_status_t section_open(reader_t *rd, cfile_t *cf, const char *name,
                                 const char *rest)
{
    const char *sec = lower(rd->p, name), *gt = strrchr(rest, '>');
    const char *args;
    apr_status_t rv;
    int yes = 1;

    if (!gt) {
        return fail(rd, APR_EINVAL, "%s:%d: %s> is not closed with >",
                    cf->name, cf->line, name);
    }
    args = apr_pstrmemdup(rd->p, rest, (apr_size_t)(gt - rest));
    if (kind_of(sec) == SEC_PLAIN
        && APR_SUCCESS != (rv = evaluate(rd, cf, name, sec, args, &yes))) {
        return rv;
    }
    if (!yes || !strcmp(sec, "<macro")) {
        return skip_section(rd, cf, name, yes);
    }
    if (push_section(rd, cf, name, sec) == SEC_VHOST) {
        return vhost_open(rd, cf, name, args);
    }
    return APR_SUCCESS;
}

static apr_status_t section_close(reader_t *rd, cfile_t *cf, const char *line)
{
    const char *name = section_word(rd->p, line);
    section_t *s = rd->sections->nelts > cf->base
                   ? &APR_ARRAY_IDX(rd->sections, rd->sections->nelts - 1,
                                    section_t) : NULL;

    if (!s || strcmp(lower(rd->p, s->name + 1), name)) {
        return fail(rd, APR_EINVAL, "%s:%d: %s without a matching opening "
                    "in this file", cf->name, cf->line, line);
    }
    if (s->kind == SEC_VHOST) {
        rd->server = rd->c->main;
    }
    apr_array_pop(rd->sections);
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Include                                                              */

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The entries of a directory (but . and ..), as paths, sorted. */
static apr_array_header_t *dir_entries(reader_t *rd, const char *path,
                                       apr_status_t *rv)
{
    apr_array_header_t *names;
    apr_dir_t *dir;
    apr_finfo_t fi;

    if (APR_SUCCESS != (*rv = apr_dir_open(&dir, path, rd->p))) {
        fail(rd, *rv, "cannot read the directory %s", path);
        return NULL;
    }
    names = apr_array_make(rd->p, 8, sizeof(const char *));
    while (APR_SUCCESS == apr_dir_read(&fi, APR_FINFO_NAME, dir)) {
        if (strcmp(fi.name, ".") && strcmp(fi.name, "..")) {
            APR_ARRAY_PUSH(names, const char *) = apr_pstrcat(
                rd->p, path, "/", fi.name, NULL);
        }
    }
    apr_dir_close(dir);
    qsort(names->elts, (size_t)names->nelts, sizeof(const char *), by_name);
    return names;
}

/* A file, or a directory with everything below it (sorted), as httpd. */
static apr_status_t include_path(reader_t *rd, const char *path, int depth)
{
    apr_finfo_t fi;
    apr_array_header_t *names;
    apr_status_t rv;
    int i;

    if (APR_SUCCESS != (rv = apr_stat(&fi, path, APR_FINFO_TYPE, rd->p))) {
        return fail(rd, rv, "cannot read %s", path);
    }
    if (fi.filetype != APR_DIR) {
        return read_file(rd, path, depth + 1);
    }
    if (!(names = dir_entries(rd, path, &rv))) {
        return rv;
    }
    for (i = 0; i < names->nelts && APR_SUCCESS == rv; ++i) {
        rv = include_path(rd, APR_ARRAY_IDX(names, i, const char *), depth);
    }
    return rv;
}

/* A wildcard's matches, in order; none fails Include only. */
static apr_status_t include_glob(reader_t *rd, const cfile_t *cf,
                                 const char *pattern, int optional, int depth)
{
    glob_t g;
    apr_status_t rv = APR_SUCCESS;
    size_t i;

    memset(&g, 0, sizeof(g));
    if (glob(pattern, 0, NULL, &g)) {
        globfree(&g);
        return optional ? APR_SUCCESS
               : fail(rd, APR_ENOENT, "%s:%d: Include %s: no file matches",
                      cf->name, cf->line, pattern);
    }
    for (i = 0; i < g.gl_pathc && APR_SUCCESS == rv; ++i) {
        rv = include_path(rd, apr_pstrdup(rd->p, g.gl_pathv[i]), depth);
    }
    globfree(&g);
    return rv;
}

/* Include and IncludeOptional: relative to the ServerRoot of the moment;
 * a wildcard that matches nothing, or a missing file, fails Include only. */
static apr_status_t include(reader_t *rd, const cfile_t *cf, const char *arg,
                            int optional, int depth)
{
    const char *pattern = hconf_path(rd->p, rd->c, arg);
    struct stat sb;

    if (strpbrk(pattern, "*?[")) {
        return include_glob(rd, cf, pattern, optional, depth);
    }
    if (stat(pattern, &sb)) {
        return optional ? APR_SUCCESS
               : fail(rd, APR_ENOENT, "%s:%d: Include %s: no such file or "
                      "directory", cf->name, cf->line, pattern);
    }
    return include_path(rd, pattern, depth);
}

/* ------------------------------------------------------------------ */
/* directives                                                           */

/* Define NAME [VALUE] */
static void define(reader_t *rd, const char *name, const char *rest)
{
    const char *val = next_word(rd->p, &rest);

    apr_hash_set(rd->defined, name, APR_HASH_KEY_STRING, "");
    if (val) {
        apr_table_set(rd->vars, name, val);
    }
}

/* The directives httpd runs while reading: wherever they are. */
static apr_status_t read_time(reader_t *rd, cfile_t *cf, const char *name,
                              const char *arg, const char *rest, int depth)
{
    if (!arg) {
        return APR_SUCCESS;
    }
    if (!strcmp(name, "include") || !strcmp(name, "includeoptional")) {
        return include(rd, cf, arg, name[7] == 'o', depth);
    }
    if (!strcmp(name, "define")) {
        define(rd, arg, rest);
    }
    else if (!strcmp(name, "undefine")) {
        apr_hash_set(rd->defined, arg, APR_HASH_KEY_STRING, NULL);
        apr_table_unset(rd->vars, arg);
    }
    else if (!strcmp(name, "serverroot")) {
        rd->c->server_root = arg;
    }
    else if (!strcmp(name, "loadmodule")) {
        add_module(rd, arg);
    }
    return APR_SUCCESS;
}

/* A directive of the current server: the last value wins. */
static void server_directive(reader_t *rd, const cfile_t *cf,
                             const char *name, const char *arg,
                             const char *rest)
{
    hconf_server_t *s = rd->server;
    hconf_val_t *v = apr_pcalloc(rd->p, sizeof(*v));
    const char *w;

    v->value = arg;
    v->file = cf->name;
    v->line = cf->line;
    apr_hash_set(s->dirs, name, APR_HASH_KEY_STRING, v);
    if (!strcmp(name, "servername")) {
        s->name = arg;
    }
    else if (!strcmp(name, "serveralias") && s->aliases) {
        APR_ARRAY_PUSH(s->aliases, const char *) = arg;
        while ((w = next_word(rd->p, &rest))) {
            APR_ARRAY_PUSH(s->aliases, const char *) = w;
        }
    }
}

/* "<Else>", "<IfDefine X>": the ">" of the first word moved to the
 * rest. */
static apr_status_t tag(reader_t *rd, cfile_t *cf, const char *word,
                        const char *rest)
{
    const char *gt = strchr(word, '>');

    if (gt) {
        rest = apr_pstrcat(rd->p, gt, rest, NULL);
        word = apr_pstrmemdup(rd->p, word, (apr_size_t)(gt - word));
    }
    return section_open(rd, cf, word, rest);
}

/* A directive (not a section tag): run while reading, kept for the
 * server, or ignored. */
static apr_status_t plain_directive(reader_t *rd, cfile_t *cf,
                                    const char *word, const char *rest,
                                    int depth)
{
    const char *name = lower(rd->p, word), *arg = next_word(rd->p, &rest);
    const section_t *e = enclosing(rd);

    if (in_list(on_read, name)) {
        if (e && e->kind == SEC_COND) {
            return refuse(rd, cf, word, e->name, e->file, e->line, e->kind);
        }
        return read_time(rd, cf, name, arg, rest, depth);
    }
    if (!in_list(needed, name)) {
        return APR_SUCCESS;
    }
    if (e) {
        return refuse(rd, cf, word, e->name, e->file, e->line, e->kind);
    }
    if (arg) {
        server_directive(rd, cf, name, arg, rest);
    }
    return APR_SUCCESS;
}

/* One logical line, variables expanded. */
static apr_status_t directive(reader_t *rd, cfile_t *cf, const char *line,
                              int depth)
{
    const char *rest = line, *word = next_word(rd->p, &rest);

    if (!word || word[0] == '#') {
        return APR_SUCCESS;
    }
    if (word[0] == '<' && word[1] == '/') {
        return section_close(rd, cf, line);
    }
    if (word[0] == '<') {
        return tag(rd, cf, word, rest);
    }
    return plain_directive(rd, cf, word, rest, depth);
}

/* After the last line: a section of this file still open is an error. */
static apr_status_t sections_closed(reader_t *rd, const cfile_t *cf)
{
    const section_t *s;

    if (rd->sections->nelts <= cf->base) {
        return APR_SUCCESS;
    }
    s = &APR_ARRAY_IDX(rd->sections, rd->sections->nelts - 1, section_t);
    return fail(rd, APR_EINVAL, "%s:%d: %s> has no end before the end of the "
                "file", s->file, s->line, s->name);
}

static apr_status_t read_lines(reader_t *rd, cfile_t *cf, int depth)
{
    const char *line;
    apr_status_t rv;

    while (APR_SUCCESS == (rv = logical_line(rd, cf, &line))) {
        if (APR_SUCCESS != (rv = directive(rd, cf, expand(rd, line),
                                           depth))) {
            break;
        }
    }
    return rv;
}

static apr_status_t read_file(reader_t *rd, const char *file, int depth)
{
    cfile_t cf;
    apr_status_t rv;

    if (depth > HCONF_MAX_DEPTH) {
        return fail(rd, APR_EINVAL, "%s: includes nest too deep", file);
    }
    memset(&cf, 0, sizeof(cf));
    cf.name = file;
    cf.base = rd->sections->nelts;
    rv = apr_file_open(&cf.f, file, APR_FOPEN_READ, APR_FPROT_OS_DEFAULT,
                       rd->p);
    if (APR_SUCCESS != rv) {
        return fail(rd, rv, "cannot read %s", file);
    }
    rv = read_lines(rd, &cf, depth);
    apr_file_close(cf.f);
    if (!APR_STATUS_IS_EOF(rv)) {
        return rd->err ? rv : fail(rd, rv, "cannot read %s", file);
    }
    return sections_closed(rd, &cf);
}

static void reader_init(reader_t *rd, apr_pool_t *p, const hconf_opts_t *o)
{
    int i;

    memset(rd, 0, sizeof(*rd));
    rd->p = p;
    rd->o = o;
    rd->c = apr_pcalloc(p, sizeof(*rd->c));
    rd->c->server_root = o->server_root;
    rd->c->main = apr_pcalloc(p, sizeof(*rd->c->main));
    rd->c->main->dirs = apr_hash_make(p);
    rd->c->vhosts = apr_array_make(p, 4, sizeof(hconf_server_t *));
    rd->server = rd->c->main;
    rd->defined = apr_hash_make(p);
    rd->vars = apr_table_make(p, 8);
    rd->modules = apr_hash_make(p);
    rd->sections = apr_array_make(p, 8, sizeof(section_t));
    for (i = 0; o->defines && i < o->defines->nelts; ++i) {
        apr_hash_set(rd->defined, APR_ARRAY_IDX(o->defines, i, const char *),
                     APR_HASH_KEY_STRING, "");
    }
}

apr_status_t hconf_read(apr_pool_t *p, const char *file,
                        const hconf_opts_t *opts, hconf_t **conf,
                        const char **err)
{
    reader_t rd;
    apr_status_t rv;

    reader_init(&rd, p, opts);
    rv = read_file(&rd, file, 0);
    *conf = rd.c;
    *err = rd.err;
    return rv;
}

/* ------------------------------------------------------------------ */
/* picking a server                                                     */

/* "host:port", "[v6]:port" or "host" split; port NULL when absent. */
static void split_host_port(apr_pool_t *p, const char *s, const char **host,
                            const char **port)
{
    const char *colon = strchr(s, ':'), *close = strchr(s, ']');

    *host = s;                   /* no port, or a bare IPv6 address */
    *port = NULL;
    if (s[0] == '[' && close) {
        *host = apr_pstrmemdup(p, s + 1, (apr_size_t)(close - s - 1));
        *port = close[1] == ':' ? close + 2 : NULL;
    }
    else if (colon && !strchr(colon + 1, ':')) {
        *host = apr_pstrmemdup(p, s, (apr_size_t)(colon - s));
        *port = colon + 1;
    }
}

/* ServerName may be "scheme://host:port". */
static const char *server_name_host(apr_pool_t *p, const char *name)
{
    const char *sep = strstr(name, "://"), *host, *port;

    split_host_port(p, sep ? sep + 3 : name, &host, &port);
    return host;
}

/* ServerName or a ServerAlias (wildcards) is host. */
static int vhost_named(apr_pool_t *p, const hconf_server_t *v,
                       const char *host)
{
    int i;

    if (v->name && !strcasecmp(server_name_host(p, v->name), host)) {
        return 1;
    }
    for (i = 0; i < v->aliases->nelts; ++i) {
        if (!fnmatch(APR_ARRAY_IDX(v->aliases, i, const char *), host,
                     FNM_CASEFOLD)) {
            return 1;
        }
    }
    return 0;
}

static int vhost_matches(apr_pool_t *p, const hconf_server_t *v,
                         const char *host, const char *port)
{
    int i, named = vhost_named(p, v, host), on_port = !port;

    for (i = 0; i < v->addrs->nelts; ++i) {
        const char *ah, *ap;
        split_host_port(p, APR_ARRAY_IDX(v->addrs, i, const char *), &ah,
                        &ap);
        named |= !strcasecmp(ah, host);
        if (port) {
            on_port |= !ap || !strcmp(ap, "*") || !strcmp(ap, port);
        }
    }
    return named && on_port;
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* What the servers must agree on. */
static const char *signature(apr_pool_t *p, const hconf_t *c,
                             const hconf_server_t *s, unsigned what)
{
    const char *store = hconf_get(c, s, "scepstore");
    int dbd = store && !strcasecmp(store, "dbd");
    const char *sig = "";

    if (what & HCONF_STORE) {
        sig = apr_pstrcat(p, nz(store), "\n",
                          dbd ? nz(hconf_get(c, s, "dbdriver")) : "", "\n",
                          dbd ? nz(hconf_get(c, s, "dbdparams")) : "", "\n",
                          NULL);
    }
    if (what & HCONF_CA) {
        sig = apr_pstrcat(p, sig, nz(hconf_get(c, s, "scepcacertificatefile")),
                          "\n", nz(hconf_get(c, s, "scepcakeyfile")), NULL);
    }
    return sig;
}

/* "\n  SERVER: SCEPStore ..., SCEPCACertificateFile ..." */
static const char *describe_settings(apr_pool_t *p, const hconf_t *c,
                                     const hconf_server_t *s)
{
    return apr_pstrcat(p, "\n  ", hconf_describe(p, s), ": ", "SCEPStore ",
                       nz(hconf_get(c, s, "scepstore")),
                       ", SCEPCACertificateFile ",
                       nz(hconf_get(c, s, "scepcacertificatefile")), NULL);
}

/* Among the candidates, the first; an error when they disagree. */
static apr_status_t agree(apr_pool_t *p, const hconf_t *c,
                          const apr_array_header_t *cand, unsigned what,
                          const char *hint, const hconf_server_t **server,
                          const char **err)
{
    const hconf_server_t *first = APR_ARRAY_IDX(cand, 0, hconf_server_t *);
    const char *sig = signature(p, c, first, what), *list = "";
    int i, differ = 0;

    for (i = 0; i < cand->nelts; ++i) {
        const hconf_server_t *s = APR_ARRAY_IDX(cand, i, hconf_server_t *);
        differ |= strcmp(sig, signature(p, c, s, what)) != 0;
        list = apr_pstrcat(p, list, describe_settings(p, c, s), NULL);
    }
    if (differ) {
        *err = apr_pstrcat(p, hint, list, NULL);
        return APR_EINVAL;
    }
    *server = first;
    return APR_SUCCESS;
}

/* The servers --vhost names, or without it those that configure a CA
 * (the main server first). */
static apr_array_header_t *candidates(apr_pool_t *p, const hconf_t *c,
                                      const char *want)
{
    apr_array_header_t *cand = apr_array_make(p, 4, sizeof(hconf_server_t *));
    const char *host = NULL, *port = NULL;
    int i;

    if (want) {
        split_host_port(p, want, &host, &port);
    }
    else if (hconf_get(c, c->main, "scepcacertificatefile")) {
        APR_ARRAY_PUSH(cand, const hconf_server_t *) = c->main;
    }
    for (i = 0; i < c->vhosts->nelts; ++i) {
        const hconf_server_t *v = APR_ARRAY_IDX(c->vhosts, i,
                                                hconf_server_t *);
        if (want ? vhost_matches(p, v, host, port)
                 : hconf_get(c, v, "scepcacertificatefile") != NULL) {
            APR_ARRAY_PUSH(cand, const hconf_server_t *) = v;
        }
    }
    return cand;
}

apr_status_t hconf_pick(apr_pool_t *p, const hconf_t *c, const char *want,
                        unsigned what, const hconf_server_t **server,
                        const char **err)
{
    apr_array_header_t *cand = candidates(p, c, want);

    *server = c->main;
    if (!cand->nelts) {
        *err = want ? apr_psprintf(p, "no <VirtualHost> has the name or "
                                   "address %s", want) : NULL;
        return want ? APR_NOTFOUND : APR_SUCCESS;
    }
    return agree(p, c, cand, what,
                 want ? apr_psprintf(p, "--vhost %s matches virtual hosts "
                                     "with different settings; name one by "
                                     "NAME:PORT or its address:", want)
                      : "the servers use different stores or CAs; choose "
                        "one with --vhost NAME[:PORT]:", server, err);
}

const char *hconf_get(const hconf_t *c, const hconf_server_t *s,
                      const char *name)
{
    const hconf_val_t *v = s ? apr_hash_get(s->dirs, name,
                                            APR_HASH_KEY_STRING) : NULL;

    if (!v) {
        v = apr_hash_get(c->main->dirs, name, APR_HASH_KEY_STRING);
    }
    return v ? v->value : NULL;
}

const char *hconf_describe(apr_pool_t *p, const hconf_server_t *s)
{
    if (!s->file) {
        return "the main server";
    }
    return apr_psprintf(p, "<VirtualHost %s>%s%s (%s:%d)",
                        apr_array_pstrcat(p, s->addrs, ' '),
                        s->name ? " " : "", s->name ? s->name : "", s->file,
                        s->line);
}

const char *hconf_path(apr_pool_t *p, const hconf_t *c, const char *path)
{
    if (!path || path[0] == '/' || !c->server_root) {
        return path;
    }
    return apr_pstrcat(p, c->server_root, "/", path, NULL);
}
