/* model_file.h - a trained classifier as one file, and loading any supported weights file.
 *
 * stylenet's model file is safetensors: the network's parameters in PyTorch layout and names
 * (io/state.h), plus "__metadata__" string entries that say how to rebuild and use it:
 *   stylenet.format  "1"
 *   arch             resnet18 | resnet34 | resnet50 | mobilenet_v2 | mobilenet_v2_tf
 *   head             "default" (the architecture's classifier) | "fastai" (models/zoo.h)
 *   head_ps, head_lin_ftrs   fastai head dropout and hidden width
 *   size             input side in pixels (square)
 *   mean, std        per-channel normalisation of RGB in [0,1]: "0.485,0.456,0.406"
 *   task             "single" (softmax) | "multi" (sigmoid, multi-label)
 *   classes          JSON array of class names, in output order
 *   threshold        multi-label decision threshold
 *   groups           JSON array of [name, first, end) class ranges for labels made of groups
 *                    (Style multi: [["brand",0,7],["product",7,17]]); absent = one group
 *   history          JSON text: how it was trained (free form, shown by `stylenet info`)
 *
 * model_load(path, opts) accepts:
 *   - a stylenet model file (metadata above): rebuilt and loaded strictly;
 *   - a bare state dict in safetensors (torchvision / timm, as PyTorch wrote it): opts->arch
 *     names the architecture, ImageNet normalisation, classes from opts->labels or "class_<i>";
 *   - a TFLite MobileNetV2 (mobilenet_v2_1.0_224_quant.tflite): mobilenet_v2_tf, 1001 classes,
 *     224x224, x/127.5 - 1, classes from opts->labels.
 * The kind is found from the bytes.  A labels file has one class name per line; its line count
 * must equal the model's outputs.  Every failure names the file and what is wrong.
 * model_save writes atomically (io/safetensors.h).
 */
#ifndef STYLENET_MODEL_FILE_H
#define STYLENET_MODEL_FILE_H
#include <stdbool.h>
#include "nn/net.h"

typedef struct {
    net *net;
    char arch[32];
    char head[16];       /* "default" | "fastai" */
    float head_ps;
    int head_lin_ftrs;
    int size;            /* input side */
    float mean[3], std[3];
    char task[16];       /* "single" | "multi" */
    float threshold;     /* multi-label */
    int n_classes;
    char **classes;
    int n_groups;        /* 0 = no groups */
    char group_names[8][32];
    int group_lo[8], group_hi[8];
    char *history;       /* JSON text or NULL */
    char source[32];     /* "stylenet" | "safetensors" | "tflite": what the file was */
} sn_model;

typedef struct {
    const char *arch;    /* for bare state dicts */
    const char *labels;  /* class names file, or NULL */
    int size;            /* override the input size (0: the model's own) */
} model_load_opts;

sn_model *model_load(const char *path, const model_load_opts *opts);
int model_save(const sn_model *m, const char *path);
void model_free(sn_model *m);
/* reads a labels file: n names (exactly); returns a malloc'd array of malloc'd strings */
char **read_labels(const char *path, int n);
/* what `stylenet info --json` prints (and serve's GET /model): source, architecture, head, input
 * size and normalisation, parameters, MACs per image, task, classes, label groups and the training
 * history, as JSON text (pretty or one line) the caller frees; NULL if out of memory */
char *model_info_json(const sn_model *m, const char *path, bool pretty);
/* adds "classes" (names) and "groups" ([{name, first, end}]) to the JSON object o */
struct cJSON;
void model_classes_json(struct cJSON *o, const sn_model *m);
#endif
