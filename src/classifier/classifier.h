/* classifier.h - a trained image classifier: its network, its classes and label groups, and how
 * it sees a photo (input size, normalisation, task).
 *
 * Contract
 * - classifier_load(path, opts) accepts every weights file io/model_file.h reads: a stylenet
 *   model file (rebuilt and loaded strictly), a bare torchvision/timm state dict (opts->arch names
 *   the architecture), a TFLite MobileNetV2.  Class names come from the file, else from
 *   opts->labels (one per line, as many as the model's outputs), else "class_<i>".  opts->size
 *   overrides the input side.  NULL with an error naming the file and what is wrong.
 *   opts->infer_only: the net is the one prepared for inference (nn/net_infer.h: batch norm
 *   folded, fused passes, weights frozen), what predict, eval, serve and the library run; such a
 *   classifier scores photos but cannot train or be saved.
 * - classifier_save writes a stylenet model file (atomically; -1 with an error for a classifier
 *   loaded infer_only); classifier_free frees everything.
 * - Probabilities: sigmoid of each output for a multi-label task ("multi"), softmax over the
 *   outputs otherwise, of the outputs divided by the classifier's temperature (fitted on
 *   validation photos by `train` or `stylenet calibrate`; 1 when the file has none).  classifier_input turns a decoded photo into the network's input (centre
 *   crop, resize, normalise); classifier_image_probs adds `views` test-time-augmentation views:
 *   fastai's default augmentation drawn from (seed, 1000000 + view), applied to the photo shrunk
 *   to 5/4 of the input side (as `eval --tta` caches its images), and averages the
 *   probabilities: the same photo and seed give the same answer.
 * - Label groups (Style multi: 7 brands, then 10 products): classes [group_lo[g], group_hi[g])
 *   hold exactly one true tag each; a group's prediction is its most probable class.
 *   n_groups = 0: the classes form one group.
 * - classifier_compatible: whether two classifiers can be averaged (an ensemble): the same task,
 *   the same classes in the same order, the same label groups; architectures, input sizes and
 *   normalisations may differ.  classifier_check_classes: a data set's classes must be the
 *   classifier's, in order.  Both: -1 with an error naming the files and the first difference.
 *
 * Layering: above models/, io/ and data/; below train/, which trains classifiers.
 */
#ifndef STYLENET_CLASSIFIER_H
#define STYLENET_CLASSIFIER_H
#include <stdbool.h>
#include <stdint.h>
#include "data/dataset.h"
#include "io/image.h"
#include "io/model_file.h"
#include "nn/net.h"

typedef struct classifier {
    net *net;
    char arch[32];
    char head[16];       /* "default" | "fastai" */
    float head_ps;
    int head_lin_ftrs;
    int size;            /* input side */
    float mean[3], std[3];
    char task[16];       /* "single" | "multi" */
    float threshold;     /* multi-label, applied to the calibrated probabilities */
    float temperature;   /* logits / temperature before the sigmoid or softmax
                            (classifier/calibration.h); 1 (or 0, unset): none */
    int n_classes;
    char **classes;
    int n_groups;        /* 0 = no groups */
    char group_names[MODEL_MAX_GROUPS][32];
    int group_lo[MODEL_MAX_GROUPS], group_hi[MODEL_MAX_GROUPS];
    char *history;       /* JSON text or NULL */
    char source[32];     /* "stylenet" | "safetensors" | "tflite": what the file was */
    size_t n_params;     /* the model's parameters (model_num_params) as loaded, before any preparation; 0: count net's */
} classifier;

typedef struct {
    const char *arch;    /* for bare state dicts */
    const char *labels;  /* class names file, or NULL */
    int size;            /* override the input size (0: the model's own) */
    bool infer_only;     /* prepare the net for inference only (see above) */
} classifier_load_opts;

classifier *classifier_load(const char *path, const classifier_load_opts *opts);
int classifier_save(const classifier *c, const char *path);
/* c's description as a model file's (io/model_file.h), borrowing c's names and history */
model_meta classifier_meta(const classifier *c);
void classifier_free(classifier *c);

bool classifier_is_multi(const classifier *c);
/* logits[n, n_classes] -> probabilities (sigmoid or softmax, see above) */
void classifier_probs(const classifier *c, int n, const float *logits, float *probs);
/* the photo as input: out[size * size * 3] (NHWC, normalised) */
int classifier_input(const classifier *c, const image *im, float *out);
/* probabilities of one photo with `views` TTA views averaged in (0: the plain view only).  The
 * photo is consumed: freed (image_free) once its plain view and the source of the other views are
 * made, so a large photo is not held while the network runs.  n: c->net or a net sharing its
 * parameters (net_share), set to batch 1; x[size * size * 3] and one[n_classes] are scratch.
 * ms (may be NULL) receives the milliseconds spent preparing the views (ms[0]) and in the
 * network (ms[1]). */
int classifier_image_probs(const classifier *c, net *n, image *im, int views, uint64_t seed, float *x,
                           float *one, float *probs, double ms[2]);
/* the most probable class of group g (n_groups = 0: of all classes) in a row of probabilities */
int classifier_group_best(const classifier *c, int g, const float *probs);

int classifier_compatible(const classifier *a, const char *path_a, const classifier *b, const char *path_b);
int classifier_check_classes(const classifier *c, const char *path, const dataset *ds);

/* what `stylenet info --json` prints (and serve's GET /model): source, architecture, head, input
 * size and normalisation, parameters, MACs per image, task, classes, label groups and the training
 * history, as JSON text (pretty or one line) the caller frees; NULL if out of memory */
char *classifier_info_json(const classifier *c, const char *path, bool pretty);
/* adds "classes" (names) and "groups" ([{name, first, end}]) to the JSON object o */
struct cJSON;
void classifier_classes_json(struct cJSON *o, const classifier *c);
/* the first k classes of a ranking (metrics_rank_classes) as a JSON array of
 * {index, class, probability}; NULL if out of memory */
struct ranked_class;
struct cJSON *classifier_ranked_json(const classifier *c, const struct ranked_class *order, int k);
#endif
