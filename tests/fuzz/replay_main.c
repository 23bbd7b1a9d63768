/* Replays fuzz inputs without libFuzzer: every file of the directories (or
 * the files) given goes to LLVMFuzzerTestOneInput once. Without
 * arguments it replays $top_srcdir/tests/fuzz/corpus/FUZZ_TARGET, which is
 * how `make check` runs it. A crash is the failure; exit status 1 when
 * nothing could be read. So is an input after which the process's peak
 * RSS has grown by more than REPLAY_RSS_LIMIT_MB: what libFuzzer's -rss_limit_mb catches
 * (a small input that makes a parser build a huge tree) fails here too. */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "fuzz.h"

/* defined by a target that needs one-time setup */
#pragma weak LLVMFuzzerInitialize

#define REPLAY_MAX_INPUT (16 * 1024 * 1024)
/* growth of the peak RSS over what the setup took */
#define REPLAY_RSS_LIMIT_MB 512

static long peak_rss_mb(void)
{
    struct rusage ru;

    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss / 1024 : 0;
}

static long rss_base_mb;

static void check_rss(const char *path)
{
    long mb = peak_rss_mb();

    if (mb - rss_base_mb > REPLAY_RSS_LIMIT_MB) {
        fprintf(stderr, "replay: %s: peak RSS grew to %ld MB, over the "
                "limit of %ld + %d MB\n", path, mb, rss_base_mb,
                REPLAY_RSS_LIMIT_MB);
        abort();
    }
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    size_t n;

    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 0;
    }
    buf = malloc(REPLAY_MAX_INPUT);
    if (!buf) {
        fclose(f);
        return 0;
    }
    n = fread(buf, 1, REPLAY_MAX_INPUT, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    check_rss(path);
    return 1;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Files of a directory in name order (so a crash reproduces the same). */
static int run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL, *path;
    size_t n = 0, cap = 0, i;
    int count = 0;
    struct stat st;

    if (!d) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof(*names));
            if (!names) {
                closedir(d);
                return -1;
            }
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n) {
        qsort(names, n, sizeof(*names), cmp);
    }
    for (i = 0; i < n; ++i) {
        path = malloc(strlen(dir) + strlen(names[i]) + 2);
        if (path) {
            sprintf(path, "%s/%s", dir, names[i]);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                count += run_file(path);
            }
            free(path);
        }
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv)
{
    const char *top = getenv("top_srcdir");
    char *def = NULL;
    int i, n, total = 0;

    if (LLVMFuzzerInitialize) {
        LLVMFuzzerInitialize(&argc, &argv);
    }
    rss_base_mb = peak_rss_mb();
    if (argc < 2) {
        top = top && *top ? top : ".";
        def = malloc(strlen(top) + sizeof("/tests/fuzz/corpus/")
                     + sizeof(FUZZ_TARGET));
        if (!def) {
            return 1;
        }
        sprintf(def, "%s/tests/fuzz/corpus/%s", top, FUZZ_TARGET);
        total = run_dir(def);
        if (total < 0) {
            fprintf(stderr, "replay: cannot read %s\n", def);
        }
        free(def);
        if (total <= 0) {
            return 1;
        }
    }
    for (i = 1; i < argc; ++i) {
        n = run_dir(argv[i]);
        if (n < 0) {
            n = run_file(argv[i]);
        }
        total += n > 0 ? n : 0;
    }
    printf("%s: replayed %d input(s)\n", FUZZ_TARGET, total);
    return total > 0 ? 0 : 1;
}
