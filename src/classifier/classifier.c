/* classifier.c - a classifier from a weights file, back to a model file, and what it says about
 * itself (see classifier.h). */
#include "classifier/classifier.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "classifier/metrics.h"
#include "models/zoo.h"
#include "nn/net_infer.h"

void classifier_free(classifier *c) {
    if (!c) return;
    net_free(c->net);
    model_file_free_names(c->classes, c->n_classes);
    free(c->history);
    free(c);
}

static char **default_names(int n) {
    char **names = calloc((size_t)n, sizeof(char *));
    for (int i = 0; names && i < n; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "class_%d", i);
        if (!(names[i] = strdup(buf))) {
            model_file_free_names(names, n);
            names = NULL;
        }
    }
    if (!names) sn_error("out of memory naming %d classes", n);
    return names;
}

/* the file's description into c; the class names and history move over */
static void take_meta(classifier *c, model_meta *m) {
    memcpy(c->arch, m->arch, sizeof c->arch);
    memcpy(c->head, m->head, sizeof c->head);
    memcpy(c->task, m->task, sizeof c->task);
    c->head_ps = m->head_ps;
    c->head_lin_ftrs = m->head_lin_ftrs;
    c->size = m->size;
    memcpy(c->mean, m->mean, sizeof c->mean);
    memcpy(c->std, m->std, sizeof c->std);
    c->threshold = m->threshold;
    c->temperature = m->temperature;
    c->n_classes = m->n_classes;
    c->classes = m->classes;
    m->classes = NULL;
    c->n_groups = m->n_groups;
    memcpy(c->group_names, m->group_names, sizeof c->group_names);
    memcpy(c->group_lo, m->group_lo, sizeof c->group_lo);
    memcpy(c->group_hi, m->group_hi, sizeof c->group_hi);
    c->history = m->history;
    m->history = NULL;
}

model_meta classifier_meta(const classifier *c) {
    model_meta m = {.head_ps = c->head_ps, .head_lin_ftrs = c->head_lin_ftrs, .size = c->size,
                    .threshold = c->threshold, .temperature = c->temperature, .n_classes = c->n_classes, .classes = c->classes,
                    .n_groups = c->n_groups, .history = c->history};
    memcpy(m.arch, c->arch, sizeof m.arch);
    memcpy(m.head, c->head, sizeof m.head);
    memcpy(m.task, c->task, sizeof m.task);
    memcpy(m.mean, c->mean, sizeof m.mean);
    memcpy(m.std, c->std, sizeof m.std);
    memcpy(m.group_names, c->group_names, sizeof m.group_names);
    memcpy(m.group_lo, c->group_lo, sizeof m.group_lo);
    memcpy(m.group_hi, c->group_hi, sizeof m.group_hi);
    return m;
}

/* builds the net c describes (arch, head, size, classes) */
static int build_net(classifier *c, const char *path) {
    model_opts o = model_default_opts();
    o.in_h = o.in_w = c->size;
    o.head = !strcmp(c->head, "fastai") ? MODEL_HEAD_FASTAI : MODEL_HEAD_DEFAULT;
    if (c->head_ps >= 0) o.ps = c->head_ps;
    if (c->head_lin_ftrs > 0) o.lin_ftrs = c->head_lin_ftrs;
    c->net = model_build(c->arch, c->n_classes, &o);
    if (!c->net) return sn_error_prefix("%s", path);
    return 0;
}

classifier *classifier_load(const char *path, const classifier_load_opts *o) {
    model_file f;
    if (model_file_open(path, o ? o->arch : NULL, &f) < 0) return NULL;
    classifier *c = calloc(1, sizeof *c);
    if (!c) {
        sn_error("out of memory loading %s", path);
        model_file_close(&f);
        return NULL;
    }
    snprintf(c->source, sizeof c->source, "%s", model_file_kind_name(f.kind));
    if (f.kind == MODEL_FILE_STATE_DICT && !f.meta.arch[0]) {
        sn_error("%s: a plain state dict (no stylenet metadata) of an architecture not recognised from its "
                 "parameter names: name it with --arch (%s)", path,
                 model_known_archs());
        goto fail;
    }
    take_meta(c, &f.meta);
    if (o && o->size > 0) c->size = o->size;
    if (build_net(c, path) < 0 || model_file_load_weights(&f, c->net) < 0) goto fail;
    c->n_params = model_num_params(c->net);
    if (o && o->infer_only) {
        net *p = net_prepare_inference(c->net);
        if (!p) {
            sn_error_prefix("%s", path);
            goto fail;
        }
        net_free(c->net);
        c->net = p;
    }
    if (!c->classes) {
        c->classes = o && o->labels ? model_file_read_labels(o->labels, c->n_classes) : default_names(c->n_classes);
        if (!c->classes) goto fail;
    }
    model_file_close(&f);
    return c;
fail:
    model_file_close(&f);
    classifier_free(c);
    return NULL;
}

int classifier_save(const classifier *c, const char *path) {
    if (c->net->infer_only)
        return sn_error("%s: not written: the model was loaded prepared for inference only (batch norm folded into "
                        "its weights)", path);
    model_meta m = classifier_meta(c);
    return model_file_write(path, c->net, &m);
}

bool classifier_is_multi(const classifier *c) { return !strcmp(c->task, "multi"); }

int classifier_compatible(const classifier *a, const char *pa, const classifier *b, const char *pb) {
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

int classifier_check_classes(const classifier *c, const char *path, const dataset *ds) {
    if (c->n_classes != ds->n_classes)
        return sn_error("%s has %d classes, the data %s %d (task '%s'): pick the task the model was trained on", path,
                        c->n_classes, ds->root, ds->n_classes, ds->task ? ds->task : "");
    for (int k = 0; k < c->n_classes; k++)
        if (strcmp(c->classes[k], ds->classes[k]) != 0)
            return sn_error("%s: class %d is '%s' in the model but '%s' in the data %s", path, k, c->classes[k],
                            ds->classes[k], ds->root);
    return 0;
}

cJSON *classifier_ranked_json(const classifier *c, const ranked_class *order, int k) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < k; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "index", order[i].idx);
        cJSON_AddStringToObject(e, "class", c->classes[order[i].idx]);
        cJSON_AddNumberToObject(e, "probability", order[i].p);
        cJSON_AddItemToArray(arr, e);
    }
    return arr;
}

void classifier_classes_json(struct cJSON *o, const classifier *c) {
    cJSON *cl = cJSON_AddArrayToObject(o, "classes");
    for (int i = 0; i < c->n_classes; i++) cJSON_AddItemToArray(cl, cJSON_CreateString(c->classes[i]));
    cJSON *gr = cJSON_AddArrayToObject(o, "groups");
    for (int g = 0; g < c->n_groups; g++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", c->group_names[g]);
        cJSON_AddNumberToObject(e, "first", c->group_lo[g]);
        cJSON_AddNumberToObject(e, "end", c->group_hi[g]);
        cJSON_AddItemToArray(gr, e);
    }
}

char *classifier_info_json(const classifier *c, const char *path, bool pretty) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "model", path);
    cJSON_AddStringToObject(o, "source", c->source);
    cJSON_AddStringToObject(o, "arch", c->arch);
    cJSON_AddStringToObject(o, "head", c->head);
    cJSON_AddNumberToObject(o, "size", c->size);
    cJSON_AddItemToObject(o, "mean", cJSON_CreateFloatArray(c->mean, 3));
    cJSON_AddItemToObject(o, "std", cJSON_CreateFloatArray(c->std, 3));
    cJSON_AddNumberToObject(o, "parameters", (double)(c->n_params ? c->n_params : model_num_params(c->net)));
    cJSON_AddNumberToObject(o, "macs_per_image", net_macs(c->net));
    cJSON_AddStringToObject(o, "task", c->task);
    cJSON_AddNumberToObject(o, "temperature", c->temperature > 0 ? c->temperature : 1);
    classifier_classes_json(o, c);
    cJSON *h = c->history ? cJSON_Parse(c->history) : NULL;
    if (h) cJSON_AddItemToObject(o, "training", h);
    char *t = pretty ? cJSON_Print(o) : cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!t) sn_error("out of memory describing a model");
    return t;
}
