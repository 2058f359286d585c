/* model_file.h - the bytes of a model file: what a weights file says about the classifier in it.
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
 *   temperature      logits are divided by it before the sigmoid / softmax
 *                    (classifier/calibration.h); absent = 1; a positive number
 *   groups           JSON array of [name, first, end) class ranges for labels made of groups
 *                    (Style multi: [["brand",0,7],["product",7,17]]); absent = one group
 *   history          JSON text: how it was trained (free form, shown by `stylenet info`)
 *
 * model_file_open(path, arch, &f) reads the description of any supported weights file:
 *   - a stylenet model file (metadata above), checked: format 1, arch, head and classes present,
 *     mean/std three numbers each, groups within the classes;
 *   - a bare state dict in safetensors or a PyTorch checkpoint (torchvision / timm /
 *     efficientnet-lite-pytorch, as PyTorch wrote it): `arch` names the architecture, or NULL
 *     for the one model_file_guess_arch recognises; ImageNet normalisation at 224 px (EfficientNet-
 *     Lite: (x - 127) / 128 at 224/240/260), single-label; the class count is the rows of its
 *     classifier weight ("fc.weight" for ResNets, "_fc.weight" for EfficientNet-Lite,
 *     "classifier.1.weight" otherwise);
 *     no class names (classes NULL);
 *   - a TFLite MobileNetV2 (mobilenet_v2_1.0_224_quant.tflite): mobilenet_v2_tf, 1001 classes,
 *     224 px, x/127.5 - 1, single-label, no class names.
 * The kind is found from the bytes.  The file stays open (f.st) until model_file_close, so
 * model_file_load_weights can fill a net built from the description (strictly: every tensor
 * present with its shape).  Every failure names the file and what is wrong.
 *
 * model_file_write(path, net, meta) writes a stylenet model file atomically (io/safetensors.h);
 * model_meta_text_make gives its metadata entries as text, for other file formats.
 * model_file_read_labels(path, n): a labels file has one class name per line; its line count
 * must equal n.
 */
#ifndef STYLENET_MODEL_FILE_H
#define STYLENET_MODEL_FILE_H
#include "io/safetensors.h"
#include "nn/net.h"

enum { MODEL_MAX_GROUPS = 8 };

typedef enum { MODEL_FILE_STYLENET, MODEL_FILE_STATE_DICT, MODEL_FILE_TFLITE } model_file_kind;

/* what a model file says besides its tensors */
typedef struct {
    char arch[32];
    char head[16];       /* "default" | "fastai" */
    float head_ps;       /* fastai head dropout; < 0: the head's default */
    int head_lin_ftrs;   /* fastai hidden width; 0: the default */
    int size;            /* input side */
    float mean[3], std[3];
    char task[16];       /* "single" | "multi" */
    float threshold;     /* multi-label */
    float temperature;   /* > 0; 1: none */
    int n_classes;
    char **classes;      /* n_classes malloc'd names, or NULL when the file has none */
    int n_groups;        /* 0 = no groups */
    char group_names[MODEL_MAX_GROUPS][32];
    int group_lo[MODEL_MAX_GROUPS], group_hi[MODEL_MAX_GROUPS];
    char *history;       /* JSON text or NULL */
} model_meta;

typedef struct {
    const char *path;
    model_file_kind kind;
    model_meta meta;     /* owned: model_file_close frees what is still there */
    st_file *st;         /* safetensors kinds: the open file */
} model_file;

/* reads path's description into *f (arch: the architecture of a bare state dict, may be NULL) */
int model_file_open(const char *path, const char *arch, model_file *f);
/* the zoo architecture whose parameter names (and, for EfficientNet-Lite, block count and head width)
 * a bare state dict carries: resnet18|34|50, mobilenet_v2, efficientnet_lite0|1|2; NULL if none */
const char *model_file_guess_arch(const st_file *f);
/* loads the file's tensors into n, a net built from f->meta */
int model_file_load_weights(const model_file *f, net *n);
void model_file_close(model_file *f);
/* "stylenet" | "safetensors" | "tflite" */
const char *model_file_kind_name(model_file_kind k);

int model_file_write(const char *path, const net *n, const model_meta *meta);
/* the metadata entries above as text: kv = {key0, value0, key1, value1, ...} (n pairs), pointing
 * into t and into meta (which must outlive t); -1 with an error if out of memory */
enum { MODEL_META_KEYS = 14 };
typedef struct {
    const char *kv[2 * MODEL_META_KEYS];
    int n;
    char size[16], ps[32], lin[16], thr[32], temp[32], mean[64], std[64];
    char *classes, *groups; /* JSON text */
} model_meta_text;
int model_meta_text_make(const model_meta *meta, model_meta_text *t);
void model_meta_text_free(model_meta_text *t);
/* n names (exactly), malloc'd, from a labels file; NULL with an error naming the file */
char **model_file_read_labels(const char *path, int n);
void model_file_free_names(char **names, int n);
#endif
