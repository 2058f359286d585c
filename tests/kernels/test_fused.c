/* test_fused.c - the fused kernels the engine uses to save passes and memory (nn/net.c) against
 * the plain kernels they replace, which are themselves proved against PyTorch (test_bn.c,
 * test_eltwise.c, test_pool.c):
 *   batchnorm_train_stats + batchnorm_apply  ==  batchnorm_forward_train (bitwise)
 *   batchnorm_apply with ReLU/ReLU6/residual ==  batch norm, add, activation one after another (bitwise)
 *   batchnorm_act_backward (in place)        ==  relu(6)_backward then batchnorm_backward_*
 *   maxpool_forward_bn_act                   ==  batch norm, activation, maxpool_forward (bitwise)
 *   maxpool_bn_act_backward (in place)       ==  maxpool_backward, activation, batch norm backward
 * Backward tolerances: 1e-5 relative to the tensor's max (the fused versions sum in another
 * order: fewer roundings, not the same ones). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "kernels/batchnorm.h"
#include "kernels/eltwise.h"
#include "kernels/pool.h"

enum { N = 3, H = 9, W = 7, C = 20 };

static float *vec(size_t n, unsigned long long seed, float scale, float shift) {
    float *v = malloc(sizeof(float) * n);
    fill_uniform(v, n, seed);
    for (size_t i = 0; i < n; i++) v[i] = v[i] * scale + shift;
    return v;
}

static bool same(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

int main(void) {
    const int m = N * H * W;
    const size_t cnt = (size_t)m * C;
    float *x = vec(cnt, 1, 3.0f, 0.5f), *z = vec(cnt, 2, 1.0f, 0.0f), *dy = vec(cnt, 3, 1.0f, 0.0f);
    float *gamma = vec(C, 4, 3.0f, 3.0f), *beta = vec(C, 5, 0.5f, 0.0f);
    float rm[C], rv[C], rm2[C], rv2[C], mean[C], istd[C], mean2[C], istd2[C], sc[C], sh[C];
    for (int j = 0; j < C; j++) rm[j] = rm2[j] = 0.1f * j, rv[j] = rv2[j] = 1.0f + 0.05f * j;

    /* forward: stats + apply is batchnorm_forward_train, bitwise; eval likewise */
    float *y1 = malloc(sizeof(float) * cnt), *y2 = malloc(sizeof(float) * cnt), *t = malloc(sizeof(float) * cnt);
    batchnorm_forward_train(m, C, x, gamma, beta, 1e-5f, 0.1f, rm, rv, mean, istd, y1);
    batchnorm_train_stats(m, C, x, gamma, beta, 1e-5f, 0.1f, rm2, rv2, mean2, istd2, sc, sh);
    batchnorm_apply(m, C, x, sc, sh, NULL, 0, y2);
    check(same(y1, y2, cnt) && same(rm, rm2, C) && same(rv, rv2, C) && same(mean, mean2, C) && same(istd, istd2, C),
          "train statistics + apply == batchnorm_forward_train, bitwise (output, running and saved statistics)");
    float esc[C], esh[C];
    batchnorm_forward_eval(m, C, x, gamma, beta, rm, rv, 1e-5f, y1);
    batchnorm_eval_scale_shift(C, gamma, beta, rm, rv, 1e-5f, esc, esh);
    batchnorm_apply(m, C, x, esc, esh, NULL, 0, y2);
    check(same(y1, y2, cnt), "eval scale/shift + apply == batchnorm_forward_eval, bitwise");

    /* apply with activation and residual == the ops one after another */
    batchnorm_apply(m, C, x, sc, sh, NULL, 0, t);
    eltwise_relu_forward(cnt, t, y1);
    batchnorm_apply(m, C, x, sc, sh, NULL, 1, y2);
    check(same(y1, y2, cnt), "batch norm + ReLU in one pass, bitwise");
    eltwise_relu6_forward(cnt, t, y1);
    batchnorm_apply(m, C, x, sc, sh, NULL, 2, y2);
    check(same(y1, y2, cnt), "batch norm + ReLU6 in one pass, bitwise");
    eltwise_add_forward(cnt, t, z, y1);
    batchnorm_apply(m, C, x, sc, sh, z, 0, y2);
    check(same(y1, y2, cnt), "batch norm + residual add in one pass, bitwise");

    /* backward through activation and batch norm, in place, train and eval */
    for (int train = 0; train <= 1; train++)
        for (int act = 0; act <= 2; act++) {
            const float *s = train ? sc : esc, *b = train ? sh : esh;
            float *a = malloc(sizeof(float) * cnt), *ref = calloc(cnt, sizeof(float)), *g = malloc(sizeof(float) * cnt);
            float dg1[C] = {0}, db1[C] = {0}, dg2[C] = {0}, db2[C] = {0};
            batchnorm_apply(m, C, x, s, b, NULL, act, a); /* the activation's output */
            if (act == 0) memcpy(g, dy, sizeof(float) * cnt);
            else {
                memset(g, 0, sizeof(float) * cnt);
                if (act == 1) eltwise_relu_backward(cnt, a, dy, g);
                else eltwise_relu6_backward(cnt, a, dy, g);
            }
            if (train) batchnorm_backward_train(m, C, x, g, gamma, mean, istd, ref, dg1, db1);
            else batchnorm_backward_eval(m, C, x, g, gamma, rm, rv, 1e-5f, ref, dg1, db1);
            memcpy(g, dy, sizeof(float) * cnt);
            batchnorm_act_backward(train, m, C, x, s, b, act, gamma, train ? mean : rm, train ? istd : rv, 1e-5f, g, dg2,
                                   db2);
            char what[96];
            snprintf(what, sizeof what, "in-place %s backward of batch norm%s: d input", train ? "train" : "eval",
                     act == 0 ? "" : act == 1 ? " + ReLU" : " + ReLU6");
            check_close(what, g, ref, cnt, 1e-5f, 0);
            snprintf(what, sizeof what, "  ... d gamma, d beta (%s, act %d)", train ? "train" : "eval", act);
            check(fabsf(dg1[0] - dg2[0]) <= 1e-4f * (1 + fabsf(dg1[0])) && fabsf(db1[C - 1] - db2[C - 1]) <= 1e-4f * (1 + fabsf(db1[C - 1])),
                  "%s", what);
            free(a), free(ref), free(g);
        }

    /* max pool of ReLU(batch norm): forward bitwise, backward in place */
    pool_desc pd = {.h = H, .w = W, .c = C, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .pt = 1, .pb = 1, .pl = 1, .pr = 1};
    check(pool_desc_init(&pd) == 0, "pool descriptor");
    size_t pc = (size_t)N * pd.oh * pd.ow * C;
    float *py1 = malloc(sizeof(float) * pc), *py2 = malloc(sizeof(float) * pc), *pdy = vec(pc, 9, 1.0f, 0.0f);
    int32_t *am1 = malloc(sizeof(int32_t) * pc), *am2 = malloc(sizeof(int32_t) * pc);
    for (int act = 1; act <= 2; act++) {
        float *a = malloc(sizeof(float) * cnt), *g = calloc(cnt, sizeof(float)), *ref = calloc(cnt, sizeof(float));
        batchnorm_apply(m, C, x, sc, sh, NULL, act, a);
        maxpool_forward(&pd, N, a, py1, am1);
        maxpool_forward_bn_act(&pd, N, x, sc, sh, act, py2, am2);
        check(same(py1, py2, pc) && !memcmp(am1, am2, sizeof(int32_t) * pc), "max pool of batch norm + %s on the fly, bitwise",
              act == 1 ? "ReLU" : "ReLU6");
        float *gm = calloc(cnt, sizeof(float)), dg1[C] = {0}, db1[C] = {0}, dg2[C] = {0}, db2[C] = {0};
        maxpool_backward(&pd, N, pdy, am1, gm);
        if (act == 1) eltwise_relu_backward(cnt, a, gm, g);
        else eltwise_relu6_backward(cnt, a, gm, g);
        batchnorm_backward_train(m, C, x, g, gamma, mean, istd, ref, dg1, db1);
        double mu[C], is[C];
        for (int j = 0; j < C; j++) mu[j] = mean[j], is[j] = istd[j];
        float *xc = malloc(sizeof(float) * cnt);
        memcpy(xc, x, sizeof(float) * cnt);
        check(maxpool_bn_act_backward(&pd, N, pdy, am2, act, sc, sh, mu, is, 1, gamma, xc, dg2, db2) == 0,
              "fused max pool backward runs");
        check_close("  ... in place: d batch-norm input", xc, ref, cnt, 1e-5f, 0);
        check(fabsf(dg1[3] - dg2[3]) <= 1e-4f * (1 + fabsf(dg1[3])) && fabsf(db1[5] - db2[5]) <= 1e-4f * (1 + fabsf(db1[5])),
              "  ... d gamma, d beta");
        free(a), free(g), free(ref), free(gm), free(xc);
    }
    free(py1), free(py2), free(pdy), free(am1), free(am2);
    free(x), free(z), free(dy), free(gamma), free(beta), free(y1), free(y2), free(t);
    return check_exit();
}
