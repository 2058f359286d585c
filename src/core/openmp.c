/* openmp.c - see openmp.h. */
#include "core/openmp.h"
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

void sn_openmp_setup(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    /* the program's own path (not /proc/self/exe itself, which would rename the process "exe") */
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0 || n >= (ssize_t)sizeof self - 1) return;
    self[n] = 0;
    if (setenv("GOMP_SPINCOUNT", "10000", 1) != 0) return;
    execv(self, argv); /* only returns on failure */
    unsetenv("GOMP_SPINCOUNT");
}
