/* test_train_parts.c - optimisers against torch.optim (SGD, Adam, AdamW with two parameter
 * groups whose learning rates change every step), the optimiser's state through a safetensors
 * file and a copy, the learner's training step against the step written out, SGDR against
 * CosineAnnealingWarmRestarts, one-cycle's shape, the LR-finder analysis, and the metrics
 * against fastai's fbeta. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "kernels/loss.h"
#include "train/learner.h"
#include "classifier/metrics.h"
#include "train/optim.h"
#include "train/schedule.h"

static const char *names[4] = {"a.weight", "a.bias", "b.weight", "b.bias"};

static float *get(const st_file *f, const char *name, size_t *n) {
    const st_tensor *t = st_find(f, name);
    if (!t) return NULL;
    float *x = malloc(sizeof(float) * (t->numel ? t->numel : 1));
    if (!x || st_read_f32(f, t, x, t->numel) < 0) {
        free(x);
        return NULL;
    }
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

/* the PyTorch fixtures, or NULL (a failed check says so) */
static st_file *fixtures(void) {
    st_file *f = st_open(fixture_path("train.safetensors"));
    check(f != NULL, "open train fixtures (%s)", f ? "ok" : sn_last_error());
    return f;
}

/* six steps with the fixture's gradients and rates equal torch.optim's parameters */
static void test_optim(const char *name, optim_kind kind) {
    st_file *f = fixtures();
    if (!f) return;
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
    optim_set_momentum(o, 0.9f);
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
    st_close(f);
}

static void optim_sgd(void) { test_optim("sgd", OPT_SGD); }
static void optim_adam(void) { test_optim("adam", OPT_ADAM); }
static void optim_adamw(void) { test_optim("adamw", OPT_ADAMW); }

/* Adam and AdamW: vector blocks and the scalar rest give bitwise the same update (a weight
 * matrix of 90300 elements, 4 past the last block of 8, all elements alike, stays uniform over
 * three steps), and 1 thread and all threads give bitwise the same parameters */
static void optim_adam_paths_agree(void) {
    const optim_kind kinds[2] = {OPT_ADAM, OPT_ADAMW};
    int nt = omp_get_max_threads();
    for (int ki = 0; ki < 2; ki++) {
        float *res[2] = {NULL, NULL};
        size_t n = 0;
        for (int r = 0; r < 2; r++) {
            omp_set_num_threads(r == 0 ? 1 : nt);
            net *m = net_create(1, 1, 301);
            if (!m || net_linear(m, 0, "a", 300, true) < 0) {
                check(0, "adam paths: net");
                net_free(m);
                break;
            }
            int pw = net_find_param(m, "a.weight");
            n = m->params[pw].numel;
            float *w = net_param(m, pw), *g = net_grad(m, pw);
            optim *o = optim_create(m, kinds[ki], 1e-2f, 1e-2f);
            for (int s = 0; s < 3; s++) {
                for (size_t j = 0; j < n; j++) w[j] = s ? w[j] : 0.37f, g[j] = 0.25f - 0.1f * s;
                optim_step(o, m);
            }
            res[r] = malloc(n * sizeof(float));
            memcpy(res[r], w, n * sizeof(float));
            optim_free(o);
            net_free(m);
        }
        omp_set_num_threads(nt);
        if (!res[0] || !res[1]) {
            free(res[0]), free(res[1]);
            continue;
        }
        size_t odd = 0;
        for (size_t j = 0; j < n; j++) odd += memcmp(&res[1][j], &res[1][0], sizeof(float)) != 0;
        check(n % 8 != 0 && odd == 0, "%s: %zu of %zu equal elements updated differently (vector blocks vs rest)",
              kinds[ki] == OPT_ADAM ? "adam" : "adamw", odd, n);
        check(!memcmp(res[0], res[1], n * sizeof(float)), "%s: bitwise equal parameters with 1 and %d threads",
              kinds[ki] == OPT_ADAM ? "adam" : "adamw", nt);
        free(res[0]), free(res[1]);
    }
}

/* frozen parameters do not move; bn_wd=false exempts biases from decay */
static void optim_frozen_and_decay(void) {
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
    optim_set_bn_wd(o, false);
    b0 = net_param(m, bb)[0];
    optim_step(o, m);
    check(net_param(m, bb)[0] == b0, "bn_wd off: biases are not decayed");
    optim_free(o);
    net_free(m);
}

static void optim_names(void) {
    optim_kind k;
    int parsed = optim_parse("adamw", &k) == 0 && k == OPT_ADAMW;
    int refused = optim_parse("lamb", &k) < 0;
    check(parsed && refused && strstr(sn_last_error(), "lamb"), "optimiser names parse: %s", sn_last_error());
}

/* a few AdamW steps with the same gradients on m from its current weights; the weights after */
static void steps(net *m, optim *o, int n, float *out) {
    for (int s = 0; s < n; s++) {
        fill_uniform(m->grad, m->n_floats, 100 + (unsigned long long)s);
        optim_step(o, m);
    }
    memcpy(out, m->data, m->n_floats * sizeof(float));
}

/* the state through a safetensors file and through optim_clone / optim_copy_state: continuing
 * from either gives bitwise the steps of the optimiser that was never interrupted */
static void optim_state_round_trip(void) {
    for (int kind = OPT_SGD; kind <= OPT_ADAMW; kind++) {
        net *m = two_groups();
        net_init_params(m, 5);
        optim *o = optim_create(m, (optim_kind)kind, 0.05f, 1e-2f), *o2 = optim_create(m, (optim_kind)kind, 0.05f, 1e-2f);
        const size_t nb = m->n_floats * sizeof(float);
        float *w0 = malloc(nb), *want = malloc(nb), *got = malloc(nb), *from_copy = malloc(nb);
        if (!check(w0 && want && got && from_copy, "buffers of %zu floats", m->n_floats)) return;
        steps(m, o, 3, w0);
        optim *snap = optim_clone(o);
        st_writer *w = st_writer_new();
        uint8_t *buf = NULL;
        size_t len = 0;
        bool saved = w && optim_add_to_writer(o, m, w) == 0 && st_writer_serialize(w, &buf, &len) == 0;
        st_writer_free(w);
        steps(m, o, 2, want);
        st_file *f = saved ? st_open_mem(buf, len, "state.safetensors") : NULL;
        memcpy(m->data, w0, m->n_floats * sizeof(float));
        bool loaded = f && optim_load_st(o2, m, f) == 0;
        steps(m, o2, 2, got);
        memcpy(m->data, w0, m->n_floats * sizeof(float));
        optim_copy_state(o, snap);
        steps(m, o, 2, from_copy);
        check(saved && loaded && !memcmp(want, got, nb) && !memcmp(want, from_copy, nb),
              "%s state saved and loaded, or copied, continues bitwise as the optimiser that went on",
              optim_name((optim_kind)kind));
        bool has_t = f && st_find(f, "optim.t") != NULL;
        check(has_t && (kind == OPT_SGD) == (st_find(f, "optim.v.a.weight") == NULL),
              "%s state: optim.m.*, optim.t, and optim.v.* unless SGD", optim_name((optim_kind)kind));
        st_close(f);
        free(buf);
        free(w0); free(want); free(got); free(from_copy);
        optim_free(snap);
        optim_free(o);
        optim_free(o2);
        net_free(m);
    }
    /* a file without the state: an error naming it and the tensor */
    net *m = two_groups();
    optim *o = optim_create(m, OPT_ADAMW, 0.1f, 0.f);
    st_writer *w = st_writer_new();
    uint8_t *buf = NULL;
    size_t len = 0;
    int64_t shape[1] = {1};
    float one = 1;
    st_writer_add_f32(w, "x", 1, shape, &one);
    st_writer_serialize(w, &buf, &len);
    st_writer_free(w);
    st_file *f = st_open_mem(buf, len, "other.safetensors");
    check(f && optim_load_st(o, m, f) < 0 && strstr(sn_last_error(), "other.safetensors") &&
              strstr(sn_last_error(), "optim.m.a.weight"),
          "a file without optimiser state: %s", sn_last_error());
    st_close(f);
    free(buf);
    optim_free(o);
    net_free(m);
}

typedef struct {
    const int *y;
    int calls;
} ce_ctx;

static float ce(void *ctx, int n, const float *logits, float *dl) {
    ce_ctx *c = ctx;
    c->calls++;
    return loss_softmax_ce(n, 3, logits, c->y, dl);
}

/* learner_step is forward, loss, zero_grad, backward and the update, and nothing else */
static void learner_step_is_the_step(void) {
    net *a = two_groups(), *b = two_groups();
    net_init_params(a, 9);
    net_init_params(b, 9);
    optim *oa = optim_create(a, OPT_ADAMW, 0.01f, 1e-2f), *ob = optim_create(b, OPT_ADAMW, 0.01f, 1e-2f);
    float x[4 * 5], dla[4 * 3], dlb[4 * 3], la = 0, lb = 0;
    const int y[4] = {0, 2, 1, 2};
    fill_uniform(x, 20, 3);
    ce_ctx ctx = {.y = y};
    const learner_loss loss = {.fn = ce, .ctx = &ctx, .dl = dla};
    int rc = 0;
    for (int s = 0; s < 3; s++) {
        rc |= learner_step(a, oa, x, 0, 4, &loss, &la);
        net_set_batch(b, 4);
        lb = loss_softmax_ce(4, 3, net_forward(b, x, true), y, dlb);
        net_zero_grad(b);
        net_backward(b, dlb);
        optim_step(ob, b);
    }
    check(rc == 0 && ctx.calls == 3 && la == lb && !memcmp(a->data, b->data, a->n_floats * sizeof(float)),
          "learner_step: three steps bitwise those written out (loss %g vs %g)", la, lb);
    optim_free(oa);
    optim_free(ob);
    net_free(a);
    net_free(b);
}

/* SGDR 1+2+4 epochs of 5 iterations against torch's CosineAnnealingWarmRestarts */
static void sgdr(void) {
    st_file *f = fixtures();
    if (!f) return;
    size_t n = 0;
    float *sg = get(f, "sgdr", &n);
    sgdr_params sp = {.cycle_len = 1, .cycle_mult = 2, .floor = 0};
    float mine[64];
    for (size_t i = 0; i < n && i < 64; i++) mine[i] = (float)sched_sgdr_factor(&sp, (long)i, 5);
    check(sg && n <= 64, "SGDR fixture of %zu points", n);
    if (sg && n <= 64) check_close("SGDR schedule equals CosineAnnealingWarmRestarts(T_0=5, T_mult=2)", mine, sg, n, 1e-6f, 1e-7f);
    check(sched_sgdr_epochs(3, 1, 2) == 7, "3 cycles of 1, 2, 4 epochs = 7");
    free(sg);
    st_close(f);
}

/* one-cycle: starts at 1/div, peaks at pct_start, ends at 1/(div*final_div) */
static void onecycle(void) {
    onecycle_params oc = sched_onecycle_defaults();
    double s0 = sched_onecycle_factor(&oc, 0, 100), peak = sched_onecycle_factor(&oc, 30, 100), end = sched_onecycle_factor(&oc, 100, 100);
    check(fabs(s0 - 1 / 25.0) < 1e-9 && fabs(peak - 1) < 1e-9 && fabs(end - 1 / 25e4) < 1e-9,
          "one-cycle: %.4g -> %.4g -> %.4g", s0, peak, end);
    check(fabs(sched_onecycle_momentum(&oc, 0, 100) - 0.95) < 1e-6 && fabs(sched_onecycle_momentum(&oc, 30, 100) - 0.85) < 1e-6 &&
              fabs(sched_onecycle_momentum(&oc, 100, 100) - 0.95) < 1e-6,
          "one-cycle momentum 0.95 -> 0.85 -> back");
}

/* LR finder on a synthetic curve: flat, falling fastest around 1e-3, then diverging */
static void lr_find_analysis(void) {
    double lrs[100], loss[100], smooth[100];
    for (int i = 0; i < 100; i++) {
        lrs[i] = sched_lr_sweep(1e-7, 10, i, 100);
        double x = log10(lrs[i]);
        loss[i] = 2.0 - 1.5 / (1 + exp(-(x + 3) * 3)) + (x > -0.5 ? pow(10, (x + 0.5) * 2) : 0);
    }
    long steep, min_i, stop = sched_lr_find_analyse(lrs, loss, 100, smooth, &steep, &min_i);
    check(fabs(lrs[0] - 1e-7) < 1e-15 && fabs(lrs[99] - 10) < 1e-9, "sweep spans 1e-7 .. 10");
    check(stop < 100 && lrs[stop] > 0.3, "the sweep stops once the loss diverges (at lr %.3g)", lrs[stop]);
    /* the smoothed (EMA, beta 0.98) curve lags the raw one by a few points: 5x to the right */
    check(lrs[steep] > 3e-4 && lrs[steep] < 1e-2, "steepest descent of the smoothed loss near 1e-3 (%.3g)", lrs[steep]);
    check(lrs[min_i] > 1e-2 && lrs[min_i] < 1, "minimum before the divergence (%.3g)", lrs[min_i]);
}

static void metrics(void) {
    st_file *f = fixtures();
    if (!f) return;
    float *probs = get(f, "probs", NULL), *target = get(f, "target", NULL), *fb = get(f, "fbeta", NULL);
    if (!check(probs && target && fb, "metrics fixtures")) {
        free(probs); free(target); free(fb);
        st_close(f);
        return;
    }
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
}

static const test_case cases[] = {
    {"optim_sgd", optim_sgd},
    {"optim_adam", optim_adam},
    {"optim_adamw", optim_adamw},
    {"optim_frozen_and_decay", optim_frozen_and_decay},
    {"optim_adam_paths_agree", optim_adam_paths_agree},
    {"optim_names", optim_names},
    {"optim_state_round_trip", optim_state_round_trip},
    {"learner_step_is_the_step", learner_step_is_the_step},
    {"sgdr", sgdr},
    {"onecycle", onecycle},
    {"lr_find_analysis", lr_find_analysis},
    {"metrics", metrics},
};
TEST_MAIN(cases)
