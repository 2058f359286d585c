/* fault.c - fault points for the fault tests (see fault.h). */
#include "core/fault.h"
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char kill_name[32];
static long kill_at;              /* 0: no fault point armed */
static atomic_long passed;
static atomic_int state;          /* 0 unread, 1 being read, 2 read */

/* reads STYLENET_FAULT_KILL once ("NAME:N") */
static void arm(void) {
    int expect = 0;
    if (!atomic_compare_exchange_strong(&state, &expect, 1)) {
        while (atomic_load(&state) != 2) {}
        return;
    }
    const char *v = getenv("STYLENET_FAULT_KILL"), *colon = v ? strrchr(v, ':') : NULL;
    if (colon && (size_t)(colon - v) < sizeof kill_name && atol(colon + 1) > 0) {
        memcpy(kill_name, v, (size_t)(colon - v));
        kill_name[colon - v] = 0;
        kill_at = atol(colon + 1);
    }
    atomic_store(&state, 2);
}

void sn_fault_point(const char *name) {
    if (atomic_load_explicit(&state, memory_order_acquire) != 2) arm();
    if (!kill_at || strcmp(name, kill_name) != 0) return;
    if (atomic_fetch_add(&passed, 1) + 1 == kill_at) kill(getpid(), SIGKILL);
}
