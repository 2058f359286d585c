/* ensemble.c - the mean probabilities of several classifiers (see ensemble.h). */
#include "classifier/ensemble.h"
#include <stdlib.h>
#include <string.h>
#include "core/error.h"

void ensemble_free(ensemble *e) {
    if (!e) return;
    for (int i = 0; i < e->n; i++) classifier_free(e->members[i]);
    free(e->x);
    free(e->one);
    free(e->sum);
    free(e);
}

ensemble *ensemble_load(const char *const *paths, int n, const classifier_load_opts *opts) {
    if (n < 1 || n > ENSEMBLE_MAX) {
        sn_error("an ensemble of %d models: 1 to %d", n, ENSEMBLE_MAX);
        return NULL;
    }
    ensemble *e = calloc(1, sizeof *e);
    if (!e) {
        sn_error("out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        e->paths[i] = paths[i];
        e->members[i] = classifier_load(paths[i], opts);
        if (e->members[i]) e->n = i + 1;
        if (!e->members[i] ||
            (i > 0 && classifier_compatible(e->members[0], paths[0], e->members[i], paths[i]) < 0)) {
            ensemble_free(e);
            return NULL;
        }
        net_freeze_weights(e->members[i]->net); /* scoring only */
    }
    return e;
}

int ensemble_max_size(const ensemble *e) {
    int s = 0;
    for (int i = 0; i < e->n; i++) s = e->members[i]->size > s ? e->members[i]->size : s;
    return s;
}

int ensemble_reserve(ensemble *e, int batch) {
    const size_t S = (size_t)ensemble_max_size(e), K = (size_t)e->members[0]->n_classes;
    free(e->x);
    free(e->one);
    free(e->sum);
    e->x = malloc(sizeof(float) * (size_t)batch * S * S * 3);
    e->one = malloc(sizeof(float) * (size_t)batch * K);
    e->sum = malloc(sizeof(float) * (size_t)batch * K);
    e->batch = 0;
    if (!e->x || !e->one || !e->sum) return sn_error("out of memory for a batch of %d images", batch);
    for (int i = 0; i < e->n; i++)
        if (net_set_batch(e->members[i]->net, batch) < 0) return -1;
    e->batch = batch;
    return 0;
}

/* member m's input for the batch: ims[i] with ok[i] at m's size, zeros elsewhere */
static int member_inputs(const classifier *m, const image *ims, const bool *ok, int n, int batch, float *x) {
    const size_t per = (size_t)m->size * m->size * 3;
    for (int i = 0; i < batch; i++) {
        float *xi = x + (size_t)i * per;
        if (i < n && ok[i]) {
            if (classifier_input(m, &ims[i], xi) < 0) return -1;
        } else {
            memset(xi, 0, sizeof(float) * per);
        }
    }
    return 0;
}

int ensemble_predict(ensemble *e, const image *ims, const bool *ok, int n, float *probs) {
    if (n > e->batch) return sn_error("%d images for a batch of %d", n, e->batch);
    const int B = e->batch, K = e->members[0]->n_classes;
    memset(e->sum, 0, sizeof(float) * (size_t)B * K);
    for (int k = 0; k < e->n; k++) {
        const classifier *m = e->members[k];
        if (member_inputs(m, ims, ok, n, B, e->x) < 0) return -1;
        const float *logits = net_forward(m->net, e->x, false);
        if (!logits) return -1;
        classifier_probs(m, B, logits, e->one);
        for (size_t j = 0; j < (size_t)B * K; j++) e->sum[j] += e->one[j];
    }
    for (int i = 0; i < n; i++)
        if (ok[i])
            for (int c = 0; c < K; c++) probs[(size_t)i * K + c] = e->sum[(size_t)i * K + c] / (float)e->n;
    return 0;
}
