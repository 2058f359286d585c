/* lazy.h - objects built at their first use by whichever thread asks first, lock free; private
 * to src/data/.
 *
 * data_publish_once(slot, mine, drop): stores mine in the empty slot and returns it; when
 * another thread filled the slot first (both built the object: the same pixels, since the
 * builders are deterministic), drops mine (drop(mine)) and returns the slot's.  Readers
 * atomic_load the slot: NULL means not built yet.
 */
#ifndef STYLENET_LAZY_H
#define STYLENET_LAZY_H
#include <stdatomic.h>
#include <stdlib.h>
#include "io/image.h"

static inline void *data_publish_once(_Atomic(void *) *slot, void *mine, void (*drop)(void *)) {
    void *expected = NULL;
    if (atomic_compare_exchange_strong(slot, &expected, mine)) return mine;
    drop(mine);
    return expected;
}

/* drop for a malloc'd image */
static inline void data_drop_image(void *p) {
    image_free(p);
    free(p);
}
#endif
