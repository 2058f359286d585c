/* test_fused.c - the fused kernels the engine uses to save passes and memory (nn/net.c) against
 * the plain kernels they replace, which are themselves proved against PyTorch (test_bn.c,
 * test_eltwise.c, test_pool.c):
 *   batchnorm_train_stats + batchnorm_apply  ==  batchnorm_forward_train (bitwise)
 *   batchnorm_apply with ReLU/ReLU6/residual ==  batch norm, add, activation one after another (bitwise)
 *   batchnorm_act_backward (in place)        ==  eltwise_relu(6)_backward, batchnorm_backward_*
 *   maxpool_forward_bn_act                   ==  batch norm, activation, maxpool_forward (bitwise)
 *   maxpool_bn_act_backward (in place)       ==  maxpool_backward, activation, batch norm backward
 * Backward tolerances: 1e-5 relative to the tensor's max (the fused versions sum in another
 * order: fewer roundings, not the same ones); d gamma and d beta, every channel, within 1e-4
 * relative (+ 1e-4 absolute). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "kernels/batchnorm.h"
#include "kernels/eltwise.h"
#include "kernels/pool.h"

enum { N = 3, H = 9, W = 7, C = 20, M = N * H * W };
static const size_t CNT = (size_t)M * C;

static float *vec(size_t n, unsigned long long seed, float scale, float shift) {
    float *v = malloc(sizeof(float) * n);
    fill_uniform(v, n, seed);
    for (size_t i = 0; i < n; i++) v[i] = v[i] * scale + shift;
    return v;
}

static bool same(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

/* every one of n channels within rtol relative (+ rtol absolute); *worst: the largest error */
static bool channels_close(const float *a, const float *b, int n, float rtol, double *worst) {
    bool ok = true;
    *worst = 0;
    for (int j = 0; j < n; j++) {
        double e = fabs((double)a[j] - b[j]);
        if (e > *worst) *worst = e;
        ok &= fabsf(a[j] - b[j]) <= rtol * (1 + fabsf(a[j]));
    }
    return ok;
}

/* the inputs every case uses: x, residual z, gradient dy, gamma, beta; the train statistics
 * (scale/shift, saved mean and 1/std, running statistics after the step) and the eval
 * scale/shift from those running statistics */
typedef struct {
    float *x, *z, *dy, *gamma, *beta;
    float rm[C], rv[C], mean[C], istd[C], sc[C], sh[C], esc[C], esh[C];
} inputs;

static void inputs_make(inputs *in) {
    in->x = vec(CNT, 1, 3.0f, 0.5f), in->z = vec(CNT, 2, 1.0f, 0.0f), in->dy = vec(CNT, 3, 1.0f, 0.0f);
    in->gamma = vec(C, 4, 3.0f, 3.0f), in->beta = vec(C, 5, 0.5f, 0.0f);
    for (int j = 0; j < C; j++) in->rm[j] = 0.1f * j, in->rv[j] = 1.0f + 0.05f * j;
    batchnorm_train_stats(M, C, in->x, in->gamma, in->beta, 1e-5f, 0.1f, in->rm, in->rv, in->mean, in->istd, in->sc,
                          in->sh);
    batchnorm_eval_scale_shift(C, in->gamma, in->beta, in->rm, in->rv, 1e-5f, in->esc, in->esh);
}

static void inputs_free(inputs *in) { free(in->x), free(in->z), free(in->dy), free(in->gamma), free(in->beta); }

/* forward: stats + apply is batchnorm_forward_train, bitwise; eval likewise */
static void stats_apply(void) {
    inputs in;
    inputs_make(&in);
    float rm[C], rv[C], rm2[C], rv2[C], mean[C], istd[C], mean2[C], istd2[C], sc[C], sh[C], esc[C], esh[C];
    for (int j = 0; j < C; j++) rm[j] = rm2[j] = 0.1f * j, rv[j] = rv2[j] = 1.0f + 0.05f * j;
    float *y1 = malloc(sizeof(float) * CNT), *y2 = malloc(sizeof(float) * CNT);
    batchnorm_forward_train(M, C, in.x, in.gamma, in.beta, 1e-5f, 0.1f, rm, rv, mean, istd, y1);
    batchnorm_train_stats(M, C, in.x, in.gamma, in.beta, 1e-5f, 0.1f, rm2, rv2, mean2, istd2, sc, sh);
    batchnorm_apply(M, C, in.x, sc, sh, NULL, ACT_NONE, y2);
    check(same(y1, y2, CNT) && same(rm, rm2, C) && same(rv, rv2, C) && same(mean, mean2, C) && same(istd, istd2, C),
          "train statistics + apply == batchnorm_forward_train, bitwise (output, running and saved statistics)");
    batchnorm_forward_eval(M, C, in.x, in.gamma, in.beta, rm, rv, 1e-5f, y1);
    batchnorm_eval_scale_shift(C, in.gamma, in.beta, rm, rv, 1e-5f, esc, esh);
    batchnorm_apply(M, C, in.x, esc, esh, NULL, ACT_NONE, y2);
    check(same(y1, y2, CNT), "eval scale/shift + apply == batchnorm_forward_eval, bitwise");
    free(y1), free(y2);
    inputs_free(&in);
}

/* apply with activation and residual == the ops one after another */
static void apply_activation(void) {
    inputs in;
    inputs_make(&in);
    float *y1 = malloc(sizeof(float) * CNT), *y2 = malloc(sizeof(float) * CNT), *t = malloc(sizeof(float) * CNT);
    batchnorm_apply(M, C, in.x, in.sc, in.sh, NULL, ACT_NONE, t);
    eltwise_relu_forward(CNT, t, y1);
    batchnorm_apply(M, C, in.x, in.sc, in.sh, NULL, ACT_RELU, y2);
    check(same(y1, y2, CNT), "batch norm + ReLU in one pass, bitwise");
    eltwise_relu6_forward(CNT, t, y1);
    batchnorm_apply(M, C, in.x, in.sc, in.sh, NULL, ACT_RELU6, y2);
    check(same(y1, y2, CNT), "batch norm + ReLU6 in one pass, bitwise");
    eltwise_add_forward(CNT, t, in.z, y1);
    batchnorm_apply(M, C, in.x, in.sc, in.sh, in.z, ACT_NONE, y2);
    check(same(y1, y2, CNT), "batch norm + residual add in one pass, bitwise");
    free(y1), free(y2), free(t);
    inputs_free(&in);
}

static const char *act_name(sn_act act) { return act == ACT_NONE ? "" : act == ACT_RELU ? " + ReLU" : " + ReLU6"; }

/* backward through activation and batch norm, in place, train and eval */
static void act_backward_in_place(void) {
    inputs in;
    inputs_make(&in);
    for (int train = 0; train <= 1; train++)
        for (sn_act act = ACT_NONE; act <= ACT_RELU6; act++) {
            const float *s = train ? in.sc : in.esc, *b = train ? in.sh : in.esh;
            float *a = malloc(sizeof(float) * CNT), *ref = calloc(CNT, sizeof(float)), *g = malloc(sizeof(float) * CNT);
            float dg1[C] = {0}, db1[C] = {0}, dg2[C] = {0}, db2[C] = {0};
            batchnorm_apply(M, C, in.x, s, b, NULL, act, a); /* the activation's output */
            if (act == ACT_NONE) memcpy(g, in.dy, sizeof(float) * CNT);
            else {
                memset(g, 0, sizeof(float) * CNT);
                if (act == ACT_RELU) eltwise_relu_backward(CNT, a, in.dy, g);
                else eltwise_relu6_backward(CNT, a, in.dy, g);
            }
            if (train) batchnorm_backward_train(M, C, in.x, g, in.gamma, in.mean, in.istd, ref, dg1, db1);
            else batchnorm_backward_eval(M, C, in.x, g, in.gamma, in.rm, in.rv, 1e-5f, ref, dg1, db1);
            memcpy(g, in.dy, sizeof(float) * CNT);
            batchnorm_act_backward(train, M, C, in.x, s, b, act, in.gamma, train ? in.mean : in.rm,
                                   train ? in.istd : in.rv, 1e-5f, g, dg2, db2);
            char what[96];
            snprintf(what, sizeof what, "in-place %s backward of batch norm%s: d input", train ? "train" : "eval",
                     act_name(act));
            check_close(what, g, ref, CNT, 1e-5f, 0);
            double eg, eb;
            bool okg = channels_close(dg1, dg2, C, 1e-4f, &eg), okb = channels_close(db1, db2, C, 1e-4f, &eb);
            check(okg && okb, "  ... d gamma, d beta, all %d channels (%s%s; worst abs err %.3g, %.3g)", C,
                  train ? "train" : "eval", act_name(act), eg, eb);
            free(a), free(ref), free(g);
        }
    inputs_free(&in);
}

/* max pool of ReLU(batch norm): forward bitwise, backward in place */
static void maxpool_bn_act(void) {
    inputs in;
    inputs_make(&in);
    pool_desc pd = {.h = H, .w = W, .c = C, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .pt = 1, .pb = 1, .pl = 1, .pr = 1};
    check(pool_desc_init(&pd) == 0, "pool descriptor");
    size_t pc = (size_t)N * pd.oh * pd.ow * C;
    float *py1 = malloc(sizeof(float) * pc), *py2 = malloc(sizeof(float) * pc), *pdy = vec(pc, 9, 1.0f, 0.0f);
    int32_t *am1 = malloc(sizeof(int32_t) * pc), *am2 = malloc(sizeof(int32_t) * pc);
    for (sn_act act = ACT_RELU; act <= ACT_RELU6; act++) {
        float *a = malloc(sizeof(float) * CNT), *g = calloc(CNT, sizeof(float)), *ref = calloc(CNT, sizeof(float));
        batchnorm_apply(M, C, in.x, in.sc, in.sh, NULL, act, a);
        maxpool_forward(&pd, N, a, py1, am1);
        maxpool_forward_bn_act(&pd, N, in.x, in.sc, in.sh, act, py2, am2);
        check(same(py1, py2, pc) && !memcmp(am1, am2, sizeof(int32_t) * pc),
              "max pool of batch norm%s on the fly, bitwise", act_name(act));
        float *gm = calloc(CNT, sizeof(float)), dg1[C] = {0}, db1[C] = {0}, dg2[C] = {0}, db2[C] = {0};
        maxpool_backward(&pd, N, pdy, am1, gm);
        if (act == ACT_RELU) eltwise_relu_backward(CNT, a, gm, g);
        else eltwise_relu6_backward(CNT, a, gm, g);
        batchnorm_backward_train(M, C, in.x, g, in.gamma, in.mean, in.istd, ref, dg1, db1);
        double mu[C], is[C];
        for (int j = 0; j < C; j++) mu[j] = in.mean[j], is[j] = in.istd[j];
        float *xc = malloc(sizeof(float) * CNT);
        memcpy(xc, in.x, sizeof(float) * CNT);
        check(maxpool_bn_act_backward(&pd, N, pdy, am2, act, in.sc, in.sh, mu, is, 1, in.gamma, xc, dg2, db2) == 0,
              "fused max pool backward runs");
        check_close("  ... in place: d batch-norm input", xc, ref, CNT, 1e-5f, 0);
        double eg, eb;
        bool okg = channels_close(dg1, dg2, C, 1e-4f, &eg), okb = channels_close(db1, db2, C, 1e-4f, &eb);
        check(okg && okb, "  ... d gamma, d beta, all %d channels (worst abs err %.3g, %.3g)", C, eg, eb);
        free(a), free(g), free(ref), free(gm), free(xc);
    }
    free(py1), free(py2), free(pdy), free(am1), free(am2);
    inputs_free(&in);
}

static const test_case cases[] = {
    {"stats-apply", stats_apply},
    {"apply-activation", apply_activation},
    {"act-backward", act_backward_in_place},
    {"maxpool-bn-act", maxpool_bn_act},
};
TEST_MAIN(cases)
