/* model_file.c - stylenet model files, bare state dicts and TFLite files -> sn_model. */
#include "io/model_file.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "io/safetensors.h"
#include "io/state.h"
#include "io/tflite_net.h"
#include "models/zoo.h"

static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f}, imagenet_std[3] = {0.229f, 0.224f, 0.225f};

void model_free(sn_model *m) {
    if (!m) return;
    net_free(m->net);
    for (int i = 0; m->classes && i < m->n_classes; i++) free(m->classes[i]);
    free(m->classes);
    free(m->history);
    free(m);
}

static void free_names(char **names, int n) {
    for (int i = 0; names && i < n; i++) free(names[i]);
    free(names);
}

char **read_labels(const char *path, int n) {
    FILE *f = fopen(path, "r");
    if (!f) {
        sn_error("%s: cannot open labels file: %m", path);
        return NULL;
    }
    char **names = calloc((size_t)n, sizeof(char *));
    char line[1024];
    int count = 0;
    while (names && fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\r\n");
        if (line[len] == 0 && !feof(f)) {
            sn_error("%s: line %d is longer than %zu characters", path, count + 1, sizeof line - 2);
            goto fail;
        }
        line[len] = 0;
        if (len == 0 && feof(f)) break; /* final newline */
        if (count < n) names[count] = strdup(line);
        count++;
    }
    fclose(f);
    f = NULL;
    if (!names) {
        sn_error("out of memory reading %s", path);
        return NULL;
    }
    if (count != n) {
        sn_error("%s: has %d class names, the model has %d outputs", path, count, n);
        goto fail;
    }
    return names;
fail:
    if (f) fclose(f);
    free_names(names, n);
    return NULL;
}

static char **default_names(int n) {
    char **names = calloc((size_t)n, sizeof(char *));
    for (int i = 0; names && i < n; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "class_%d", i);
        names[i] = strdup(buf);
    }
    return names;
}

static int parse3(const char *s, float out[3]) {
    return s && sscanf(s, "%f,%f,%f", &out[0], &out[1], &out[2]) == 3 ? 0 : -1;
}

/* builds the net an sn_model describes (arch, head, size, classes) */
static int build_net(sn_model *m, const char *path) {
    model_opts o = model_default_opts();
    o.in_h = o.in_w = m->size;
    o.head = !strcmp(m->head, "fastai") ? MODEL_HEAD_FASTAI : MODEL_HEAD_DEFAULT;
    if (m->head_ps >= 0) o.ps = m->head_ps;
    if (m->head_lin_ftrs > 0) o.lin_ftrs = m->head_lin_ftrs;
    m->net = model_build(m->arch, m->n_classes, &o);
    if (!m->net) return sn_error_prefix("%s", path);
    return 0;
}

static sn_model *load_tflite(const char *path, const model_load_opts *o) {
    sn_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    snprintf(m->arch, sizeof m->arch, "mobilenet_v2_tf");
    snprintf(m->head, sizeof m->head, "default");
    snprintf(m->task, sizeof m->task, "single");
    snprintf(m->source, sizeof m->source, "tflite");
    m->head_ps = -1;
    m->size = o && o->size > 0 ? o->size : 224;
    m->n_classes = 1001;
    for (int c = 0; c < 3; c++) m->mean[c] = m->std[c] = 0.5f; /* x/127.5 - 1 */
    if (build_net(m, path) < 0 || net_load_tflite(m->net, path) < 0) goto fail;
    m->classes = o && o->labels ? read_labels(o->labels, m->n_classes) : default_names(m->n_classes);
    if (!m->classes) goto fail;
    return m;
fail:
    model_free(m);
    return NULL;
}

static int meta_int(const st_file *f, const char *key, int def) {
    const char *v = st_meta(f, key);
    return v ? atoi(v) : def;
}

static sn_model *load_safetensors(const char *path, const model_load_opts *o) {
    st_file *f = st_open(path);
    if (!f) return NULL;
    sn_model *m = calloc(1, sizeof *m);
    if (!m) {
        st_close(f);
        return NULL;
    }
    m->head_ps = -1;
    m->threshold = 0.5f;
    const char *fmt = st_meta(f, "stylenet.format");
    if (fmt) { /* our own model file */
        snprintf(m->source, sizeof m->source, "stylenet");
        if (strcmp(fmt, "1") != 0) {
            sn_error("%s: stylenet model format '%s', this build reads format 1", path, fmt);
            goto fail;
        }
        const char *arch = st_meta(f, "arch"), *head = st_meta(f, "head"), *task = st_meta(f, "task");
        const char *classes = st_meta(f, "classes");
        if (!arch || !head || !classes) {
            sn_error("%s: stylenet model file without '%s' in its metadata", path,
                     !arch ? "arch" : !head ? "head" : "classes");
            goto fail;
        }
        snprintf(m->arch, sizeof m->arch, "%s", arch);
        snprintf(m->head, sizeof m->head, "%s", head);
        snprintf(m->task, sizeof m->task, "%s", task ? task : "single");
        m->size = o && o->size > 0 ? o->size : meta_int(f, "size", 224);
        if (st_meta(f, "head_ps")) m->head_ps = (float)atof(st_meta(f, "head_ps"));
        m->head_lin_ftrs = meta_int(f, "head_lin_ftrs", 0);
        if (st_meta(f, "threshold")) m->threshold = (float)atof(st_meta(f, "threshold"));
        if (parse3(st_meta(f, "mean"), m->mean) < 0 || parse3(st_meta(f, "std"), m->std) < 0) {
            sn_error("%s: metadata 'mean'/'std' missing or not three numbers", path);
            goto fail;
        }
        cJSON *arr = cJSON_Parse(classes);
        int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
        if (n <= 0) {
            cJSON_Delete(arr);
            sn_error("%s: metadata 'classes' is not a non-empty JSON array of names", path);
            goto fail;
        }
        m->classes = calloc((size_t)n, sizeof(char *));
        m->n_classes = n;
        for (int i = 0; m->classes && i < n; i++) {
            const cJSON *s = cJSON_GetArrayItem(arr, i);
            m->classes[i] = strdup(cJSON_IsString(s) ? s->valuestring : "?");
        }
        cJSON_Delete(arr);
        cJSON *groups = st_meta(f, "groups") ? cJSON_Parse(st_meta(f, "groups")) : NULL;
        for (int g = 0; cJSON_IsArray(groups) && g < cJSON_GetArraySize(groups) && g < 8; g++) {
            const cJSON *e = cJSON_GetArrayItem(groups, g);
            const cJSON *nm = cJSON_GetArrayItem(e, 0), *lo = cJSON_GetArrayItem(e, 1), *hi = cJSON_GetArrayItem(e, 2);
            if (!cJSON_IsString(nm) || !cJSON_IsNumber(lo) || !cJSON_IsNumber(hi) || lo->valueint < 0 ||
                hi->valueint > n || lo->valueint >= hi->valueint) {
                cJSON_Delete(groups);
                sn_error("%s: metadata 'groups' entry %d is not [name, first, end] within the %d classes", path, g, n);
                goto fail;
            }
            snprintf(m->group_names[g], sizeof m->group_names[g], "%s", nm->valuestring);
            m->group_lo[g] = lo->valueint;
            m->group_hi[g] = hi->valueint;
            m->n_groups = g + 1;
        }
        cJSON_Delete(groups);
        const char *hist = st_meta(f, "history");
        if (hist) m->history = strdup(hist);
        if (build_net(m, path) < 0 || net_load_st(m->net, f, NULL) < 0) goto fail;
    } else { /* a bare PyTorch state dict */
        snprintf(m->source, sizeof m->source, "safetensors");
        if (!o || !o->arch) {
            sn_error("%s: a plain state dict (no stylenet metadata): name its architecture with --arch (%s)", path,
                     model_known_archs());
            goto fail;
        }
        snprintf(m->arch, sizeof m->arch, "%s", o->arch);
        snprintf(m->head, sizeof m->head, "default");
        snprintf(m->task, sizeof m->task, "single");
        m->size = o->size > 0 ? o->size : 224;
        memcpy(m->mean, imagenet_mean, sizeof m->mean);
        memcpy(m->std, imagenet_std, sizeof m->std);
        /* the classifier's size decides the class count */
        const char *fc = !strncmp(o->arch, "resnet", 6) ? "fc.weight" : "classifier.1.weight";
        const st_tensor *t = st_find(f, fc);
        if (!t || t->ndim != 2) {
            sn_error("%s: no 2-D '%s' tensor: not a torchvision %s state dict", path, fc, o->arch);
            goto fail;
        }
        m->n_classes = (int)t->shape[0];
        if (build_net(m, path) < 0 || net_load_st(m->net, f, NULL) < 0) goto fail;
        m->classes = o->labels ? read_labels(o->labels, m->n_classes) : default_names(m->n_classes);
        if (!m->classes) goto fail;
    }
    st_close(f);
    return m;
fail:
    st_close(f);
    model_free(m);
    return NULL;
}

sn_model *model_load(const char *path, const model_load_opts *opts) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        sn_error("%s: cannot open model: %m", path);
        return NULL;
    }
    fclose(f);
    if (is_tflite_file(path)) return load_tflite(path, opts);
    return load_safetensors(path, opts);
}

int model_save(const sn_model *m, const char *path) {
    char size[16], ps[32], lin[16], thr[32], mean[64], sd[64];
    snprintf(size, sizeof size, "%d", m->size);
    snprintf(ps, sizeof ps, "%g", m->head_ps);
    snprintf(lin, sizeof lin, "%d", m->head_lin_ftrs);
    snprintf(thr, sizeof thr, "%g", m->threshold);
    snprintf(mean, sizeof mean, "%g,%g,%g", m->mean[0], m->mean[1], m->mean[2]);
    snprintf(sd, sizeof sd, "%g,%g,%g", m->std[0], m->std[1], m->std[2]);
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < m->n_classes; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(m->classes[i]));
    char *classes = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    cJSON *ga = cJSON_CreateArray();
    for (int g = 0; ga && g < m->n_groups; g++) {
        cJSON *e = cJSON_CreateArray();
        cJSON_AddItemToArray(e, cJSON_CreateString(m->group_names[g]));
        cJSON_AddItemToArray(e, cJSON_CreateNumber(m->group_lo[g]));
        cJSON_AddItemToArray(e, cJSON_CreateNumber(m->group_hi[g]));
        cJSON_AddItemToArray(ga, e);
    }
    char *groups = ga ? cJSON_PrintUnformatted(ga) : NULL;
    cJSON_Delete(ga);
    if (!classes || !groups) {
        free(classes);
        free(groups);
        return sn_error("%s: out of memory writing the class list", path);
    }
    const char *meta[] = {"stylenet.format", "1", "arch", m->arch, "head", m->head, "head_ps", ps,
                          "head_lin_ftrs", lin, "size", size, "mean", mean, "std", sd, "task", m->task,
                          "threshold", thr, "classes", classes, "groups", groups,
                          "history", m->history ? m->history : "{}"};
    int r = net_save_safetensors(m->net, path, meta, (int)(sizeof meta / sizeof *meta / 2));
    free(classes);
    free(groups);
    return r;
}

void model_classes_json(struct cJSON *o, const sn_model *m) {
    cJSON *cl = cJSON_AddArrayToObject(o, "classes");
    for (int i = 0; i < m->n_classes; i++) cJSON_AddItemToArray(cl, cJSON_CreateString(m->classes[i]));
    cJSON *gr = cJSON_AddArrayToObject(o, "groups");
    for (int g = 0; g < m->n_groups; g++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", m->group_names[g]);
        cJSON_AddNumberToObject(e, "first", m->group_lo[g]);
        cJSON_AddNumberToObject(e, "end", m->group_hi[g]);
        cJSON_AddItemToArray(gr, e);
    }
}

char *model_info_json(const sn_model *m, const char *path, bool pretty) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "model", path);
    cJSON_AddStringToObject(o, "source", m->source);
    cJSON_AddStringToObject(o, "arch", m->arch);
    cJSON_AddStringToObject(o, "head", m->head);
    cJSON_AddNumberToObject(o, "size", m->size);
    cJSON_AddItemToObject(o, "mean", cJSON_CreateFloatArray(m->mean, 3));
    cJSON_AddItemToObject(o, "std", cJSON_CreateFloatArray(m->std, 3));
    cJSON_AddNumberToObject(o, "parameters", (double)model_num_params(m->net));
    cJSON_AddNumberToObject(o, "macs_per_image", net_macs(m->net));
    cJSON_AddStringToObject(o, "task", m->task);
    model_classes_json(o, m);
    cJSON *h = m->history ? cJSON_Parse(m->history) : NULL;
    if (h) cJSON_AddItemToObject(o, "training", h);
    char *t = pretty ? cJSON_Print(o) : cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!t) sn_error("out of memory describing a model");
    return t;
}
