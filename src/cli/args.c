/* args.c - what the verbs share when they read their arguments (see cli.h). */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "core/error.h"

int cli_usage_error(const char *verb, void (*usage)(FILE *)) {
    fprintf(stderr, "stylenet %s: %s\n", verb, sn_last_error());
    usage(stderr);
    return 2;
}

static int whole_number(const char *s, double *v) {
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return end != s && *end == '\0' && errno == 0 && isfinite(*v) ? 0 : -1;
}

int cli_num(const char *flag, const char *s, double lo, double hi, double *v) {
    double d = 0;
    if (whole_number(s, &d) < 0 || d < lo || d > hi) return sn_error("%s takes a number from %g to %g, not '%s'", flag, lo, hi, s);
    *v = d;
    return 0;
}

int cli_float(const char *flag, const char *s, double lo, double hi, float *v) {
    double d = 0;
    if (cli_num(flag, s, lo, hi, &d) < 0) return -1;
    *v = (float)d;
    return 0;
}

int cli_int(const char *flag, const char *s, long lo, long hi, int *v) {
    double d = 0;
    if (whole_number(s, &d) < 0 || d != floor(d) || d < (double)lo || d > (double)hi)
        return sn_error("%s takes a whole number from %ld to %ld, not '%s'", flag, lo, hi, s);
    *v = (int)d;
    return 0;
}

int cli_seed(const char *flag, const char *s, uint64_t *v) {
    char *end;
    errno = 0;
    unsigned long long u = strtoull(s, &end, 10);
    if (end == s || *end || errno || s[0] == '-' || u > (unsigned long long)INT64_MAX)
        return sn_error("%s takes a whole number from 0 to 2^63-1, not '%s'", flag, s);
    *v = (uint64_t)u;
    return 0;
}

int cli_threads(const char *s) {
    int n = 0;
    if (cli_int("--threads", s, 0, 1024, &n) < 0) return -1;
    if (n > 0) omp_set_num_threads(n);
    return 0;
}

bool cli_data_flag(int c, const char *arg, ds_options *o) {
    switch (c) {
    case 'd': o->root = arg; return true;
    case CLI_O_TASK: o->task = arg; return true;
    case CLI_O_CSV: o->csv = arg; return true;
    case CLI_O_PATTERN: o->pattern = arg; return true;
    case CLI_O_NAMES: o->names = arg; return true;
    default: return false;
    }
}
