/* test_act.c - the fused activations' module (kernels/act.h): the value and the gradient
 * predicate at their boundaries, and the passes against them element by element, bitwise,
 * serial (small or inside a parallel region) and threaded (above ACT_PAR_MIN elements); the
 * masked backward's bias gradient against the mask followed by act_bias_grad, bitwise, and
 * act_bias_grad against a double column sum (rtol 1e-6: both sum in double, in another order).
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "kernels/act.h"
#include "kernels/eltwise.h"

static float *frand(size_t n, unsigned long long seed, float scale) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    fill_uniform(p, n, seed);
    for (size_t i = 0; i < n; i++) p[i] *= scale;
    return p;
}

static const char *name(sn_act act) { return act == ACT_NONE ? "none" : act == ACT_RELU ? "ReLU" : "ReLU6"; }

static void boundaries(void) {
    const float v[] = {-1.0f, -0.0f, 0.0f, 1e-30f, 3.0f, 5.999999f, 6.0f, 6.000001f, 100.0f, NAN};
    const int n = sizeof v / sizeof v[0];
    /* expected: value and passes for ReLU and ReLU6 */
    const float relu[] = {0, 0, 0, 1e-30f, 3, 5.999999f, 6, 6.000001f, 100, 0};
    const float relu6[] = {0, 0, 0, 1e-30f, 3, 5.999999f, 6, 6, 6, 0};
    const int p_relu[] = {0, 0, 0, 1, 1, 1, 1, 1, 1, 0}, p_relu6[] = {0, 0, 0, 1, 1, 1, 0, 0, 0, 0};
    bool ok = true;
    for (int i = 0; i < n; i++) {
        ok &= act_value(ACT_RELU, v[i]) == relu[i] && act_value(ACT_RELU6, v[i]) == relu6[i];
        ok &= !signbit(act_value(ACT_RELU, v[i])) && !signbit(act_value(ACT_RELU6, v[i]));
        ok &= act_passes(ACT_RELU, v[i]) == p_relu[i] && act_passes(ACT_RELU6, v[i]) == p_relu6[i];
        ok &= act_passes(ACT_NONE, v[i]) && (isnan(v[i]) || act_value(ACT_NONE, v[i]) == v[i]);
    }
    check(ok, "act_value / act_passes at -1, -0, 0, 1e-30, 3, 6-, 6, 6+, 100, NaN (ReLU passes above 0, ReLU6 in "
              "(0, 6); NaN gives 0 and does not pass)");
    ok = true;
    for (int i = 0; i < n; i++) /* the output gives the same answer as the input */
        for (sn_act a = ACT_RELU; a <= ACT_RELU6; a++) ok &= act_passes(a, act_value(a, v[i])) == act_passes(a, v[i]);
    check(ok, "act_passes reads the activation's output as well as its input");
}

/* act_apply and act_mask against act_value / act_passes element by element, on n elements */
static void passes_on(size_t n, const char *how) {
    float *x = frand(n, 1, 8.0f), *y = malloc(n * sizeof(float)), *g = frand(n, 2, 1.0f), *g0 = frand(n, 2, 1.0f);
    for (sn_act a = ACT_NONE; a <= ACT_RELU6; a++) {
        memcpy(y, x, n * sizeof(float));
        act_apply(a, (long)n, y);
        memcpy(g, g0, n * sizeof(float));
        act_mask((long)n, a, x, g);
        bool ok_apply = true, ok_mask = true;
        for (size_t i = 0; i < n; i++) {
            ok_apply &= !memcmp(&y[i], &(float){act_value(a, x[i])}, sizeof(float));
            ok_mask &= !memcmp(&g[i], &(float){act_passes(a, x[i]) ? g0[i] : 0.0f}, sizeof(float));
        }
        check(ok_apply && ok_mask, "act_apply / act_mask %s on %zu elements (%s): bitwise act_value / act_passes", name(a),
              n, how);
    }
    free(x), free(y), free(g), free(g0);
}

static void apply_and_mask(void) {
    passes_on(1000, "serial");
    passes_on((size_t)3 * ACT_PAR_MIN + 17, "threaded");
    bool ok = true;
#pragma omp parallel num_threads(2)
    { /* inside a parallel region: serial on each thread, same result */
        size_t n = (size_t)ACT_PAR_MIN + 5;
        float *x = frand(n, 3, 8.0f), *y = malloc(n * sizeof(float));
        memcpy(y, x, n * sizeof(float));
        act_apply(ACT_RELU6, (long)n, y);
        bool mine = true;
        for (size_t i = 0; i < n; i++) mine &= y[i] == act_value(ACT_RELU6, x[i]);
#pragma omp critical
        ok &= mine;
        free(x), free(y);
    }
    check(ok, "act_apply inside a parallel region (serial on each thread): bitwise act_value");
    size_t n = 200003;
    float *x = frand(n, 4, 8.0f), *y1 = malloc(n * sizeof(float)), *y2 = malloc(n * sizeof(float));
    eltwise_relu6_forward(n, x, y1);
    memcpy(y2, x, n * sizeof(float));
    act_apply(ACT_RELU6, (long)n, y2);
    check(!memcmp(y1, y2, n * sizeof(float)), "act_apply ReLU6 in place == eltwise_relu6_forward, bitwise");
    free(x), free(y1), free(y2);
}

/* act_backward: the mask and the bias gradient in one pass == act_mask then act_bias_grad */
static void backward_and_bias(void) {
    const long rows = 3001;
    const int c = 37;
    const size_t n = (size_t)rows * c;
    float *y = frand(n, 5, 8.0f), *g1 = frand(n, 6, 1.0f), *g2 = frand(n, 6, 1.0f), *db1 = frand(c, 7, 1.0f),
          *db2 = frand(c, 7, 1.0f);
    for (sn_act a = ACT_NONE; a <= ACT_RELU6; a++) {
        fill_uniform(g1, n, 6), fill_uniform(g2, n, 6), fill_uniform(db1, c, 7), fill_uniform(db2, c, 7);
        act_backward(rows, c, a, y, g1, db1);
        act_mask((long)n, a, y, g2);
        act_bias_grad(rows, c, g2, db2);
        check(!memcmp(g1, g2, n * sizeof(float)) && !memcmp(db1, db2, c * sizeof(float)),
              "act_backward %s: mask and bias gradient bitwise act_mask then act_bias_grad", name(a));
    }
    float *db = calloc(c, sizeof(float)), ref[37];
    act_bias_grad(rows, c, g2, db);
    for (int j = 0; j < c; j++) {
        double s = 0;
        for (long r = 0; r < rows; r++) s += g2[r * c + j];
        ref[j] = (float)s;
    }
    check_close("act_bias_grad vs a serial double column sum", db, ref, c, 1e-6f, 0);
    fill_uniform(g1, n, 6), memcpy(g2, g1, n * sizeof(float));
    act_backward(rows, c, ACT_RELU6, y, g1, NULL);
    act_mask((long)n, ACT_RELU6, y, g2);
    check(!memcmp(g1, g2, n * sizeof(float)), "act_backward with db NULL: the mask alone");
    free(y), free(g1), free(g2), free(db1), free(db2), free(db);
}

static const test_case cases[] = {
    {"boundaries", boundaries},
    {"apply-and-mask", apply_and_mask},
    {"backward-and-bias", backward_and_bias},
};
TEST_MAIN(cases)
