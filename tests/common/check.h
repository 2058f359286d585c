/* check.h - the tiny test harness every test binary uses.
 *
 * Each check prints one TAP line: "ok N - what" or "not ok N - what"; tests/run.sh counts them
 * and prints the suite's summary "N passed, N failed".  Lines starting with "# " are notes
 * (measured errors, timings) that run.sh shows.  A test binary returns check_exit().
 *
 * Tolerances: check_close() passes when max|a-b| <= atol + rtol * max|b|, i.e. the worst
 * element error is judged against the scale of the reference tensor.  It prints that worst
 * error and the scale, so a reader sees how close, not only that it passed.
 */
#ifndef STYLENET_TEST_CHECK_H
#define STYLENET_TEST_CHECK_H
/* ASAN: 1 in the AddressSanitizer build (make check-asan), where tests allow for its slowness
 * and memory, else 0 */
#if defined(__SANITIZE_ADDRESS__)
#define ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN 1
#endif
#endif
#ifndef ASAN
#define ASAN 0
#endif
#include <stddef.h>
#include <stdbool.h>

bool check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* compares n floats: got vs ref (the oracle); returns pass */
bool check_close(const char *what, const float *got, const float *ref, size_t n, float rtol, float atol);
/* max |a-b| and max |b| of two arrays */
void max_err(const float *got, const float *ref, size_t n, double *err, double *scale);
int check_exit(void);

/* Cases: a test binary lists its checks as named cases and its main returns
 * test_main(argc, argv, cases, n).  With no argument every case runs in order; arguments are
 * names (or parts of names) and only the cases matching one of them run, so a failing check is
 * run alone with `build/tests/kernels/test_conv winograd`; `--list` prints the case names.  Each
 * case prints "# case NAME" before its checks.  A filter that matches no case is an error. */
typedef struct {
    const char *name;
    void (*run)(void);
} test_case;
int test_main(int argc, char **argv, const test_case *cases, size_t n);
#define TEST_MAIN(cases) \
    int main(int argc, char **argv) { return test_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0])); }

/* paths: $STYLENET_FIXTURES (PyTorch reference data written by tools/make_fixtures.py) and
 * $STYLENET_SHARED (../shared: data set and weights).  Returns a static buffer. */
const char *fixture_path(const char *name);
const char *shared_path(const char *name);
/* finds a folder of the repository (e.g. "tests/fuzz/corpus") relative to the working
 * directory, else in a folder above the test binary; writes its path to out */
bool find_repo_dir(const char *rel, char *out, size_t cap);
/* runs a shell command line with stderr merged into stdout, captures the output into out
 * (NUL-terminated, cut at cap - 1 bytes); returns the exit status, or -1 if it did not exit */
int run_capture(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* deterministic test data in [-1, 1) */
void fill_uniform(float *x, size_t n, unsigned long long seed);
/* the worst |got - ref| / bound over n values (a NaN gives NaN): an error judged against what
 * bounds it, e.g. sum |x||w| for a convolution */
double max_rel_error(const float *got, const float *ref, const float *bound, size_t n);
/* the last n characters of text on one line (newlines shown as '|'), in a static buffer: errors
 * and sanitizer reports come last, and tests/run.sh shows only the "not ok" line */
const char *flat_tail(const char *text, size_t n);
/* "dir/name" in a static buffer, one of eight used in turn (so a call may hold a few at once) */
const char *path_in(const char *dir, const char *name);
/* copies file a to b; -1 if either cannot be opened */
int copy_file(const char *a, const char *b);
/* the names of the Style set's photos (shared_path("data/style"), "<brand>_<product>_<n>.png"),
 * sorted, so that a test picking every k-th one gets the same subset on every machine; *names is
 * malloc'd (style_names_free); returns the count, -1 if the folder cannot be read */
int style_names(char ***names);
void style_names_free(char **names, int n);
#endif
