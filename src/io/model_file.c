/* model_file.c - stylenet model files, bare state dicts and TFLite files: their descriptions and
 * weights (see model_file.h). */
#include <stdbool.h>
#include "io/model_file.h"
#include "io/weights.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "io/state.h"
#include "io/tflite_net.h"
#include "models/zoo.h"

static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f}, imagenet_std[3] = {0.229f, 0.224f, 0.225f};

void model_file_free_names(char **names, int n) {
    for (int i = 0; names && i < n; i++) free(names[i]);
    free(names);
}

char **model_file_read_labels(const char *path, int n) {
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
        if (count < n && !(names[count] = strdup(line))) {
            sn_error("out of memory reading %s", path);
            goto fail;
        }
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
    model_file_free_names(names, n);
    return NULL;
}

const char *model_file_kind_name(model_file_kind k) {
    return k == MODEL_FILE_STYLENET ? "stylenet" : k == MODEL_FILE_TFLITE ? "tflite" : "safetensors";
}

static int parse3(const char *s, float out[3]) {
    return s && sscanf(s, "%f,%f,%f", &out[0], &out[1], &out[2]) == 3 ? 0 : -1;
}

static int meta_int(const st_file *f, const char *key, int def) {
    const char *v = st_meta(f, key);
    return v ? atoi(v) : def;
}

/* "classes": a non-empty JSON array of names */
static int read_classes(const st_file *f, const char *path, model_meta *m) {
    cJSON *arr = cJSON_Parse(st_meta(f, "classes"));
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
    if (n <= 0) {
        cJSON_Delete(arr);
        return sn_error("%s: metadata 'classes' is not a non-empty JSON array of names", path);
    }
    m->classes = calloc((size_t)n, sizeof(char *));
    m->n_classes = n;
    for (int i = 0; m->classes && i < n; i++) {
        const cJSON *s = cJSON_GetArrayItem(arr, i);
        if (!(m->classes[i] = strdup(cJSON_IsString(s) ? s->valuestring : "?"))) break;
    }
    cJSON_Delete(arr);
    if (!m->classes || !m->classes[n - 1]) return sn_error("%s: out of memory reading the class names", path);
    return 0;
}

/* "groups": [[name, first, end], ...] within the classes (at most MODEL_MAX_GROUPS are kept) */
static int read_groups(const st_file *f, const char *path, model_meta *m) {
    cJSON *groups = st_meta(f, "groups") ? cJSON_Parse(st_meta(f, "groups")) : NULL;
    const int n = m->n_classes;
    for (int g = 0; cJSON_IsArray(groups) && g < cJSON_GetArraySize(groups) && g < MODEL_MAX_GROUPS; g++) {
        const cJSON *e = cJSON_GetArrayItem(groups, g);
        const cJSON *nm = cJSON_GetArrayItem(e, 0), *lo = cJSON_GetArrayItem(e, 1), *hi = cJSON_GetArrayItem(e, 2);
        if (!cJSON_IsString(nm) || !cJSON_IsNumber(lo) || !cJSON_IsNumber(hi) || lo->valueint < 0 ||
            hi->valueint > n || lo->valueint >= hi->valueint) {
            cJSON_Delete(groups);
            return sn_error("%s: metadata 'groups' entry %d is not [name, first, end] within the %d classes", path, g, n);
        }
        snprintf(m->group_names[g], sizeof m->group_names[g], "%s", nm->valuestring);
        m->group_lo[g] = lo->valueint;
        m->group_hi[g] = hi->valueint;
        m->n_groups = g + 1;
    }
    cJSON_Delete(groups);
    return 0;
}

/* the metadata of a stylenet model file */
static int read_stylenet(const st_file *f, const char *path, model_meta *m) {
    const char *fmt = st_meta(f, "stylenet.format");
    if (strcmp(fmt, "1") != 0) return sn_error("%s: stylenet model format '%s', this build reads format 1", path, fmt);
    const char *arch = st_meta(f, "arch"), *head = st_meta(f, "head"), *task = st_meta(f, "task");
    if (!arch || !head || !st_meta(f, "classes"))
        return sn_error("%s: stylenet model file without '%s' in its metadata", path,
                        !arch ? "arch" : !head ? "head" : "classes");
    snprintf(m->arch, sizeof m->arch, "%s", arch);
    snprintf(m->head, sizeof m->head, "%s", head);
    snprintf(m->task, sizeof m->task, "%s", task ? task : "single");
    m->size = meta_int(f, "size", 224);
    if (st_meta(f, "head_ps")) m->head_ps = (float)atof(st_meta(f, "head_ps"));
    m->head_lin_ftrs = meta_int(f, "head_lin_ftrs", 0);
    if (st_meta(f, "threshold")) m->threshold = (float)atof(st_meta(f, "threshold"));
    const char *temp = st_meta(f, "temperature");
    if (temp) {
        char *end;
        double t = strtod(temp, &end);
        if (end == temp || *end || !(t > 0) || !isfinite(t))
            return sn_error("%s: metadata 'temperature' is '%s', not a positive number", path, temp);
        m->temperature = (float)t;
    }
    if (parse3(st_meta(f, "mean"), m->mean) < 0 || parse3(st_meta(f, "std"), m->std) < 0)
        return sn_error("%s: metadata 'mean'/'std' missing or not three numbers", path);
    if (read_classes(f, path, m) < 0 || read_groups(f, path, m) < 0) return -1;
    const char *hist = st_meta(f, "history");
    if (hist && !(m->history = strdup(hist))) return sn_error("%s: out of memory reading the history", path);
    return 0;
}

const char *model_file_guess_arch(const st_file *f) {
    if (st_find(f, "features.18.0.weight")) return "mobilenet_v2";
    if (st_find(f, "layer1.0.conv1.weight"))
        return st_find(f, "layer1.0.conv3.weight") ? "resnet50" : st_find(f, "layer3.5.conv1.weight") ? "resnet34" : "resnet18";
    const st_tensor *head = st_find(f, "_conv_head.weight");
    if (!st_find(f, "_conv_stem.weight") || !head || head->ndim != 4) return NULL;
    int blocks = 0;
    for (char name[64];; blocks++) {
        snprintf(name, sizeof name, "_blocks.%d._depthwise_conv.weight", blocks);
        if (!st_find(f, name)) break;
    }
    static const char *const lite[] = {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"};
    for (int v = 0; v < 3; v++) {
        int nb, head_in;
        if (model_efficientnet_lite_layout(v, &nb, &head_in) == 0 && nb == blocks && head_in == head->shape[1]) return lite[v];
    }
    return NULL;
}

/* a bare PyTorch state dict: the classifier's size decides the class count */
static int read_state_dict(const st_file *f, const char *path, const char *arch, model_meta *m) {
    snprintf(m->head, sizeof m->head, "default");
    snprintf(m->task, sizeof m->task, "single");
    m->size = 224;
    memcpy(m->mean, imagenet_mean, sizeof m->mean);
    memcpy(m->std, imagenet_std, sizeof m->std);
    if (!arch) arch = model_file_guess_arch(f);
    if (!arch) return 0; /* the caller asks for the architecture */
    snprintf(m->arch, sizeof m->arch, "%s", arch);
    const bool effnet = !strncmp(arch, "efficientnet_lite", 17);
    if (effnet) { /* TF-lite preprocessing (x - 127) / 128 at the native size: 224, 240, 260 */
        for (int c = 0; c < 3; c++) m->mean[c] = 127.0f / 255, m->std[c] = 128.0f / 255;
        m->size = arch[17] == '1' ? 240 : arch[17] == '2' ? 260 : 224;
    }
    const char *fc = !strncmp(arch, "resnet", 6) ? "fc.weight" : effnet ? "_fc.weight" : "classifier.1.weight";
    const st_tensor *t = st_find(f, fc);
    if (!t || t->ndim != 2) return sn_error("%s: no 2-D '%s' tensor: not a torchvision %s state dict", path, fc, arch);
    m->n_classes = (int)t->shape[0];
    return 0;
}

static void read_tflite(model_meta *m) {
    snprintf(m->arch, sizeof m->arch, "mobilenet_v2_tf");
    snprintf(m->head, sizeof m->head, "default");
    snprintf(m->task, sizeof m->task, "single");
    m->size = 224;
    m->n_classes = 1001;
    for (int c = 0; c < 3; c++) m->mean[c] = m->std[c] = 0.5f; /* x/127.5 - 1 */
}

int model_file_open(const char *path, const char *arch, model_file *f) {
    memset(f, 0, sizeof *f);
    f->path = path;
    f->meta.head_ps = -1;
    f->meta.threshold = 0.5f;
    f->meta.temperature = 1;
    FILE *fp = fopen(path, "rb");
    if (!fp) return sn_error("%s: cannot open model: %m", path);
    fclose(fp);
    if (tflite_is_file(path)) {
        f->kind = MODEL_FILE_TFLITE;
        f->meta.threshold = 0;
        read_tflite(&f->meta);
        return 0;
    }
    if (!(f->st = weights_open_st(path))) return -1;
    f->kind = st_meta(f->st, "stylenet.format") ? MODEL_FILE_STYLENET : MODEL_FILE_STATE_DICT;
    int r = f->kind == MODEL_FILE_STYLENET ? read_stylenet(f->st, path, &f->meta)
                                           : read_state_dict(f->st, path, arch, &f->meta);
    if (r < 0) model_file_close(f);
    return r;
}

int model_file_load_weights(const model_file *f, net *n) {
    if (f->kind == MODEL_FILE_TFLITE) return net_load_tflite(n, f->path) < 0 ? -1 : 0;
    return net_load_st(n, f->st, NULL) < 0 ? -1 : 0;
}

void model_file_close(model_file *f) {
    st_close(f->st);
    f->st = NULL;
    model_file_free_names(f->meta.classes, f->meta.n_classes);
    f->meta.classes = NULL;
    free(f->meta.history);
    f->meta.history = NULL;
}

int model_meta_text_make(const model_meta *m, model_meta_text *t) {
    *t = (model_meta_text){0};
    snprintf(t->size, sizeof t->size, "%d", m->size);
    snprintf(t->ps, sizeof t->ps, "%g", m->head_ps);
    snprintf(t->lin, sizeof t->lin, "%d", m->head_lin_ftrs);
    snprintf(t->thr, sizeof t->thr, "%g", m->threshold);
    snprintf(t->temp, sizeof t->temp, "%.9g", m->temperature > 0 ? m->temperature : 1.0f);
    snprintf(t->mean, sizeof t->mean, "%g,%g,%g", m->mean[0], m->mean[1], m->mean[2]);
    snprintf(t->std, sizeof t->std, "%g,%g,%g", m->std[0], m->std[1], m->std[2]);
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < m->n_classes; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(m->classes[i]));
    t->classes = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    cJSON *ga = cJSON_CreateArray();
    for (int g = 0; ga && g < m->n_groups; g++) {
        cJSON *e = cJSON_CreateArray();
        cJSON_AddItemToArray(e, cJSON_CreateString(m->group_names[g]));
        cJSON_AddItemToArray(e, cJSON_CreateNumber(m->group_lo[g]));
        cJSON_AddItemToArray(e, cJSON_CreateNumber(m->group_hi[g]));
        cJSON_AddItemToArray(ga, e);
    }
    t->groups = ga ? cJSON_PrintUnformatted(ga) : NULL;
    cJSON_Delete(ga);
    if (!t->classes || !t->groups) {
        model_meta_text_free(t);
        return sn_error("out of memory writing the class list");
    }
    const char *kv[] = {"stylenet.format", "1", "arch", m->arch, "head", m->head, "head_ps", t->ps,
                        "head_lin_ftrs", t->lin, "size", t->size, "mean", t->mean, "std", t->std, "task", m->task,
                        "threshold", t->thr, "temperature", t->temp, "classes", t->classes, "groups", t->groups,
                        "history", m->history ? m->history : "{}"};
    _Static_assert(sizeof kv / sizeof *kv == MODEL_META_KEYS * 2, "model_meta_text.kv holds every key");
    memcpy(t->kv, kv, sizeof kv);
    t->n = MODEL_META_KEYS;
    return 0;
}

void model_meta_text_free(model_meta_text *t) {
    free(t->classes);
    free(t->groups);
    *t = (model_meta_text){0};
}

int model_file_write(const char *path, const net *n, const model_meta *m) {
    model_meta_text t;
    if (model_meta_text_make(m, &t) < 0) return sn_error_prefix("%s", path);
    int r = net_save_safetensors(n, path, t.kv, t.n);
    model_meta_text_free(&t);
    return r;
}
