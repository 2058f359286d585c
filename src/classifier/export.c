/* export.c - a classifier as ONNX (see export.h). */
#include "classifier/export.h"
#include <stdio.h>
#include <string.h>
#include "io/onnx_export.h"

enum { EXTRA_KEYS = 7 };

int classifier_export_onnx(const classifier *c, const char *path) {
    model_meta meta = classifier_meta(c);
    model_meta_text t;
    if (model_meta_text_make(&meta, &t) < 0) return -1;
    const bool multi = classifier_is_multi(c);
    char size[16], range[160], pre[256], outs[256], decision[200];
    snprintf(size, sizeof size, "%d", c->size);
    snprintf(range, sizeof range, "RGB / 255 in [0, 1], then (x - mean) / std per channel, mean %s, std %s", t.mean,
             t.std);
    snprintf(pre, sizeof pre,
             "crop the centre square (side: the photo's short side), resize it to %dx%d (bilinear), RGB / 255, "
             "(x - mean) / std per channel, as float32 NCHW",
             c->size, c->size);
    snprintf(outs, sizeof outs, "logits [batch, %d]; probabilities [batch, %d] = %s of logits / temperature (%s)",
             c->n_classes, c->n_classes, multi ? "sigmoid, one per class," : "softmax over the classes", t.temp);
    if (!multi) snprintf(decision, sizeof decision, "the class of the highest probability");
    else if (c->n_groups > 0)
        snprintf(decision, sizeof decision,
                 "each label group (groups: [name, first, end)) has one true class: its most probable one");
    else snprintf(decision, sizeof decision, "every class whose probability is at least threshold (%s)", t.thr);
    const char *kv[2 * (MODEL_META_KEYS + EXTRA_KEYS)];
    int n = 0;
    for (int i = 0; i < t.n; i++) {
        if (!strcmp(t.kv[2 * i], "stylenet.format")) continue;
        kv[2 * n] = t.kv[2 * i], kv[2 * n + 1] = t.kv[2 * i + 1];
        n++;
    }
    const char *extra[2 * EXTRA_KEYS] = {"input_name", "input",  "input_layout", "NCHW", "input_size", size,
                                         "input_range", range,   "preprocess",   pre,    "outputs",    outs,
                                         "decision",   decision};
    memcpy(kv + 2 * n, extra, sizeof extra);
    n += EXTRA_KEYS;
    char doc[160];
    snprintf(doc, sizeof doc, "stylenet %s classifier (%s head), %d classes, %s-label", c->arch, c->head, c->n_classes,
             multi ? "multi" : "single");
    onnx_export_opts o = {.final = multi ? ONNX_FINAL_SIGMOID : ONNX_FINAL_SOFTMAX, .temperature = c->temperature,
                          .meta = kv, .n_meta = n, .doc = doc};
    int r = onnx_export_net(c->net, &o, path);
    model_meta_text_free(&t);
    return r;
}
