/* test_train_parts.c - optimisers against torch.optim (SGD, Adam, AdamW with two parameter
 * groups whose learning rates change every step), SGDR against CosineAnnealingWarmRestarts,
 * one-cycle's shape, the LR-finder analysis, and the metrics against fastai's fbeta. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "classifier/metrics.h"
#include "train/optim.h"
#include "train/schedule.h"

static const char *names[4] = {"a.weight", "a.bias", "b.weight", "b.bias"};

static float *get(const st_file *f, const char *name, size_t *n) {
    const st_tensor *t = st_find(f, name);
    if (!t) return NULL;
    float *x = malloc(sizeof(float) * (t->numel ? t->numel : 1));
    st_read_f32(f, t, x, t->numel);
    if (n) *n = t->numel;
    return x;
}

/* a net with linear a (group 0) and linear b (group 2), as in the fixture */
static net *two_groups(void) {
    net *m = net_create(1, 1, 5);
    net_set_group(m, 0);
    int x = net_linear(m, 0, "a", 6, true);
    net_set_group(m, 2);
    x = net_linear(m, x, "b", 3, true);
    return x < 0 ? (net_free(m), NULL) : m;
}

static void test_optim(const st_file *f, const char *name, optim_kind kind) {
    net *m = two_groups();
    size_t n = 0;
    for (int k = 0; k < 4; k++) {
        char key[64];
        snprintf(key, sizeof key, "p0.%s", names[k]);
        float *p = get(f, key, &n);
        memcpy(net_param(m, net_find_param(m, names[k])), p, n * sizeof(float));
        free(p);
    }
    optim *o = optim_create(m, kind, 0.1f, 1e-2f);
    o->momentum = 0.9f;
    o->beta2 = 0.99f;
    float *lrs = get(f, "lrs", NULL);
    for (int s = 0; s < 6; s++) {
        for (int k = 0; k < 4; k++) {
            char key[64];
            snprintf(key, sizeof key, "g%d.%s", s, names[k]);
            float *g = get(f, key, &n);
            memcpy(net_grad(m, net_find_param(m, names[k])), g, n * sizeof(float));
            free(g);
        }
        float l[3] = {lrs[2 * s], lrs[2 * s], lrs[2 * s + 1]};
        optim_set_lrs(o, l, 3);
        optim_step(o, m);
    }
    for (int k = 0; k < 4; k++) {
        char key[64], what[128];
        snprintf(key, sizeof key, "%s.%s", name, names[k]);
        float *want = get(f, key, &n);
        snprintf(what, sizeof what, "%s after 6 steps equals torch.optim (float64): %s", name, names[k]);
        /* float32 updates vs PyTorch in float64: a few ulps of the parameter per step */
        check_close(what, net_param(m, net_find_param(m, names[k])), want, n, 1e-5f, 1e-6f);
        free(want);
    }
    free(lrs);
    optim_free(o);
    net_free(m);
}

int main(void) {
    st_file *f = st_open(fixture_path("train.safetensors"));
    if (!check(f != NULL, "open train fixtures (%s)", f ? "ok" : sn_last_error())) return check_exit();
    test_optim(f, "sgd", OPT_SGD);
    test_optim(f, "adam", OPT_ADAM);
    test_optim(f, "adamw", OPT_ADAMW);

    /* frozen parameters do not move; bn_wd=false exempts biases from decay */
    net *m = two_groups();
    net_init_params(m, 3);
    net_freeze_groups(m, 2);
    optim *o = optim_create(m, OPT_ADAMW, 0.1f, 0.1f);
    int aw = net_find_param(m, "a.weight"), bb = net_find_param(m, "b.bias");
    float a0 = net_param(m, aw)[0], b0 = net_param(m, bb)[0];
    memset(m->grad, 0, m->n_floats * sizeof(float));
    net_freeze_weights(m);
    optim_step(o, m);
    check(m->wkey == 0, "optim_step lifts net_freeze_weights (the weights change)");
    check(net_param(m, aw)[0] == a0, "a frozen group is not updated");
    check(net_param(m, bb)[0] != b0, "zero gradient still decays a trainable bias with bn_wd on");
    o->bn_wd = false;
    b0 = net_param(m, bb)[0];
    optim_step(o, m);
    check(net_param(m, bb)[0] == b0, "bn_wd off: biases are not decayed");
    optim_free(o);
    net_free(m);
    optim_kind k;
    int parsed = optim_parse("adamw", &k) == 0 && k == OPT_ADAMW;
    int refused = optim_parse("lamb", &k) < 0;
    check(parsed && refused && strstr(sn_last_error(), "lamb"), "optimiser names parse: %s", sn_last_error());

    /* SGDR 1+2+4 epochs of 5 iterations against torch's CosineAnnealingWarmRestarts */
    size_t n = 0;
    float *sg = get(f, "sgdr", &n);
    sgdr_params sp = {.cycle_len = 1, .cycle_mult = 2, .floor = 0};
    float mine[64];
    for (size_t i = 0; i < n; i++) mine[i] = (float)sgdr_factor(&sp, (long)i, 5);
    check_close("SGDR schedule equals CosineAnnealingWarmRestarts(T_0=5, T_mult=2)", mine, sg, n, 1e-6f, 1e-7f);
    check(sgdr_epochs(3, 1, 2) == 7, "3 cycles of 1, 2, 4 epochs = 7");
    free(sg);

    /* one-cycle: starts at 1/div, peaks at pct_start, ends at 1/(div*final_div) */
    onecycle_params oc = onecycle_defaults();
    double s0 = onecycle_factor(&oc, 0, 100), peak = onecycle_factor(&oc, 30, 100), end = onecycle_factor(&oc, 100, 100);
    check(fabs(s0 - 1 / 25.0) < 1e-9 && fabs(peak - 1) < 1e-9 && fabs(end - 1 / 25e4) < 1e-9,
          "one-cycle: %.4g -> %.4g -> %.4g", s0, peak, end);
    check(fabs(onecycle_momentum(&oc, 0, 100) - 0.95) < 1e-6 && fabs(onecycle_momentum(&oc, 30, 100) - 0.85) < 1e-6 &&
              fabs(onecycle_momentum(&oc, 100, 100) - 0.95) < 1e-6,
          "one-cycle momentum 0.95 -> 0.85 -> back");

    /* LR finder on a synthetic curve: flat, falling fastest around 1e-3, then diverging */
    double lrs[100], loss[100], smooth[100];
    for (int i = 0; i < 100; i++) {
        lrs[i] = lr_sweep(1e-7, 10, i, 100);
        double x = log10(lrs[i]);
        loss[i] = 2.0 - 1.5 / (1 + exp(-(x + 3) * 3)) + (x > -0.5 ? pow(10, (x + 0.5) * 2) : 0);
    }
    long steep, min_i, stop = lr_find_analyse(lrs, loss, 100, smooth, &steep, &min_i);
    check(fabs(lrs[0] - 1e-7) < 1e-15 && fabs(lrs[99] - 10) < 1e-9, "sweep spans 1e-7 .. 10");
    check(stop < 100 && lrs[stop] > 0.3, "the sweep stops once the loss diverges (at lr %.3g)", lrs[stop]);
    /* the smoothed (EMA, beta 0.98) curve lags the raw one by a few points: 5x to the right */
    check(lrs[steep] > 3e-4 && lrs[steep] < 1e-2, "steepest descent of the smoothed loss near 1e-3 (%.3g)", lrs[steep]);
    check(lrs[min_i] > 1e-2 && lrs[min_i] < 1, "minimum before the divergence (%.3g)", lrs[min_i]);

    /* metrics */
    float *probs = get(f, "probs", NULL), *target = get(f, "target", NULL), *fb = get(f, "fbeta", NULL);
    const float th[3] = {0.1f, 0.2f, 0.5f};
    for (int i = 0; i < 3; i++) {
        double v = metrics_fbeta_samples(40, 17, probs, target, th[i], 2);
        check(fabs(v - fb[i]) < 1e-6, "F2 at threshold %.1f equals fastai's fbeta: %.6f vs %.6f", th[i], v, fb[i]);
    }
    double bf;
    float bt = metrics_best_threshold(40, 17, probs, target, 2, &bf);
    check(bf >= fb[0] && bf >= fb[1] && bf >= fb[2] && bt > 0 && bt < 1, "threshold search finds %.2f (F2 %.4f)", bt, bf);
    const int bounds[3] = {0, 7, 17};
    double ab = metrics_group_accuracy(40, 17, target, target, 0, 7), both = metrics_groups_all_right(40, 17, target, target, bounds, 2);
    check(ab == 1 && both == 1, "grouped accuracies of the truth itself are 1");
    int pred[6] = {0, 1, 1, 2, 2, 0}, truth[6] = {0, 1, 2, 2, 2, 1}, cm[9];
    double pr[3], rc[3];
    metrics_confusion(6, 3, pred, truth, cm);
    metrics_precision_recall(3, cm, pr, rc);
    check(cm[0] == 1 && cm[1 * 3 + 1] == 1 && cm[2 * 3 + 1] == 1 && cm[2 * 3 + 2] == 2 && cm[1 * 3 + 0] == 1,
          "confusion matrix rows are truth, columns prediction");
    check(fabs(pr[1] - 0.5) < 1e-12 && fabs(rc[2] - 2.0 / 3) < 1e-12, "precision and recall per class");
    int ti[3] = {0, 1, 2};
    float sc[9] = {1, 0, 0, 0, 0, 1, 0, 0, 1};
    check(fabs(metrics_accuracy(3, 3, sc, ti) - 2.0 / 3) < 1e-12, "accuracy");
    free(probs); free(target); free(fb);
    st_close(f);
    return check_exit();
}
