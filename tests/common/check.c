#include "check.h"
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <limits.h>
#include <unistd.h>

static int n_checks, n_failed;

bool check(bool ok, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%s %d - ", ok ? "ok" : "not ok", ++n_checks);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    if (!ok) n_failed++;
    return ok;
}

void note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("# ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

void max_err(const float *got, const float *ref, size_t n, double *err, double *scale) {
    double e = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (!(d <= e)) e = d; /* NaN propagates as failure */
        if (fabs(ref[i]) > s) s = fabs(ref[i]);
    }
    *err = e;
    *scale = s;
}

bool check_close(const char *what, const float *got, const float *ref, size_t n, float rtol, float atol) {
    double e, s;
    max_err(got, ref, n, &e, &s);
    bool ok = e <= atol + rtol * s;
    return check(ok, "%s: max err %.3g, scale %.3g (rel %.3g; tol rel %.1g abs %.1g)", what, e, s,
                 s > 0 ? e / s : e, rtol, atol);
}

int check_exit(void) {
    if (n_checks == 0) {
        printf("not ok 1 - test binary ran no check\n");
        return 1;
    }
    return n_failed ? 1 : 0;
}

static bool case_selected(const char *name, int argc, char **argv) {
    if (argc < 2) return true;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i])) return true;
    return false;
}

int test_main(int argc, char **argv, const test_case *cases, size_t n) {
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n; i++) printf("%s\n", cases[i].name);
        return 0;
    }
    size_t ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (!case_selected(cases[i].name, argc, argv)) continue;
        note("case %s", cases[i].name);
        cases[i].run();
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "%s: no case matches the arguments (--list names them)\n", argv[0]);
        return 2;
    }
    return check_exit();
}

const char *fixture_path(const char *name) {
    static char buf[4096];
    const char *d = getenv("STYLENET_FIXTURES");
    snprintf(buf, sizeof buf, "%s/%s", d ? d : "build/fixtures", name);
    return buf;
}

const char *shared_path(const char *name) {
    static char buf[4096];
    const char *d = getenv("STYLENET_SHARED");
    snprintf(buf, sizeof buf, "%s/%s", d ? d : "../shared", name);
    return buf;
}

const char *path_in(const char *dir, const char *name) {
    static char buf[8][4400];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

void fill_uniform(float *x, size_t n, unsigned long long seed) {
    unsigned long long s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
}

double max_rel_error(const float *got, const float *ref, const float *bound, size_t n) {
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        const double r = fabs((double)got[i] - ref[i]) / (bound[i] > 0 ? bound[i] : 1e-30);
        if (!(r <= e)) e = r; /* NaN too */
    }
    return e;
}

int run_capture(char *out, size_t cap, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = 0, k;
    while (n + 1 < cap && (k = fread(out + n, 1, cap - 1 - n, p)) > 0) n += k;
    out[n] = 0;
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {} /* drain the rest so the child can finish */
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

bool find_repo_dir(const char *rel, char *out, size_t cap) {
    struct stat s;
    snprintf(out, cap, "%s", rel);
    if (stat(out, &s) == 0 && S_ISDIR(s.st_mode)) return true;
    char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k <= 0) return false;
    exe[k] = 0;
    for (char *slash = strrchr(exe, '/'); slash; slash = strrchr(exe, '/')) {
        *slash = 0;
        snprintf(out, cap, "%s/%s", exe, rel);
        if (stat(out, &s) == 0 && S_ISDIR(s.st_mode)) return true;
    }
    return false;
}

const char *flat_tail(const char *text, size_t n) {
    static char buf[4096];
    size_t len = strlen(text), start = len > n ? len - n : 0;
    snprintf(buf, sizeof buf, "%s", text + start);
    for (char *p = buf; *p; p++)
        if (*p == '\n') *p = '|';
    return buf;
}

int copy_file(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "wb");
    if (!fa || !fb) {
        if (fa) fclose(fa);
        if (fb) fclose(fb);
        return -1;
    }
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, fa)) > 0) fwrite(buf, 1, k, fb);
    fclose(fa);
    fclose(fb);
    return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int style_names(char ***names) {
    DIR *d = opendir(shared_path("data/style"));
    if (!d) return -1;
    int n = 0, cap = 1024;
    char **v = malloc((size_t)cap * sizeof *v);
    for (struct dirent *e; v && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".png") != 0 || e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        if (n == cap) {
            char **w = realloc(v, (size_t)(cap *= 2) * sizeof *v);
            if (!w) break;
            v = w;
        }
        v[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (!v) return -1;
    qsort(v, (size_t)n, sizeof *v, by_name); /* readdir's order differs between file systems */
    *names = v;
    return n;
}

void style_names_free(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}
