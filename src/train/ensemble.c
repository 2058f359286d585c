/* ensemble.c - see ensemble.h. */
#include "train/ensemble.h"
#include <string.h>
#include "core/error.h"

int ensemble_compatible(const sn_model *a, const char *pa, const sn_model *b, const char *pb) {
    if (strcmp(a->task, b->task) != 0)
        return sn_error("%s is a '%s' model but %s a '%s' model: an ensemble needs models of the same task", pb,
                        b->task, pa, a->task);
    if (a->n_classes != b->n_classes)
        return sn_error("%s has %d classes but %s has %d: an ensemble needs models of the same classes", pb,
                        b->n_classes, pa, a->n_classes);
    for (int c = 0; c < a->n_classes; c++)
        if (strcmp(a->classes[c], b->classes[c]) != 0)
            return sn_error("class %d is '%s' in %s but '%s' in %s: an ensemble needs the same classes in the same "
                            "order", c, b->classes[c], pb, a->classes[c], pa);
    if (a->n_groups != b->n_groups)
        return sn_error("%s has %d label groups but %s has %d: an ensemble needs the same groups", pb, b->n_groups,
                        pa, a->n_groups);
    for (int g = 0; g < a->n_groups; g++)
        if (a->group_lo[g] != b->group_lo[g] || a->group_hi[g] != b->group_hi[g] ||
            strcmp(a->group_names[g], b->group_names[g]) != 0)
            return sn_error("label group %d ('%s') differs between %s and %s: an ensemble needs the same groups", g,
                            b->group_names[g], pb, pa);
    return 0;
}
