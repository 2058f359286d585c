/* test_loss.c - softmax cross-entropy, BCE-with-logits and the grouped softmax cross-entropy
 * (value and dlogits), softmax and sigmoid, against PyTorch, incl. large logits (+-60, +-80) for stability; finite differences.
 * Tolerances: computed in double and rounded once, so the loss and gradients match the
 * float64 oracle to float rounding: rtol 1e-6.  Finite differences: h = 1e-2 on logits of
 * scale ~3, smooth functions: tolerance 1e-2 of max|grad|.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/check.h"
#include "kfix.h"
#include "kernels/loss.h"

static void fixtures(void) {
    kfix k;
    if (!check(kfix_open(&k, fixture_path("layers.safetensors")) == 0, "loss: open layers.safetensors")) return;
    char names[16][64];
    int nc = kfix_list(kfix_meta(&k, "loss"), names, 16);
    check(nc >= 9, "loss: %d fixture cases", nc);
    for (int ci = 0; ci < nc; ci++) {
        const char *nm = names[ci];
        char key[96], kind[8], w[128], rest[64] = "";
        snprintf(key, sizeof key, "loss.%s", nm);
        const char *m = kfix_meta(&k, key);
        int n, c;
        if (!m || sscanf(m, "%7s %d %d %63s", kind, &n, &c, rest) < 3) {
            check(0, "loss %s: metadata", nm);
            continue;
        }
#define G(s) kfix_getf(&k, NULL, "loss.%s." s, nm)
        float *z = G("logits"), *t = G("target"), *lref = G("loss"), *gref = G("dlogits");
        float *g = calloc((size_t)n * c, 4), *p = calloc((size_t)n * c, 4), l;
        if (!strcmp(kind, "ce")) {
            int *ti = malloc(sizeof(int) * n);
            for (int i = 0; i < n; i++) ti[i] = (int)t[i];
            l = loss_softmax_ce(n, c, z, ti, g);
            loss_softmax(n, c, z, p);
            snprintf(w, sizeof w, "loss %s softmax", nm);
            check_close(w, p, G("softmax"), (size_t)n * c, 1e-6f, 0);
            float l2 = loss_softmax_ce(n, c, z, ti, NULL);
            check(l2 == l, "loss %s: value without dlogits is the same", nm);
            free(ti);
        } else if (!strcmp(kind, "gce")) { /* groups: "lo,b1,...,hi" */
            int bounds[9], nb = 0;
            for (char *tok = strtok(rest, ","); tok && nb < 9; tok = strtok(NULL, ",")) bounds[nb++] = atoi(tok);
            l = loss_group_softmax_ce(n, c, z, t, nb - 1, bounds, g);
            float l2 = loss_group_softmax_ce(n, c, z, t, nb - 1, bounds, NULL);
            check(l2 == l && nb >= 2, "loss %s: %d groups; value without dlogits is the same", nm, nb - 1);
        } else {
            l = loss_sigmoid_bce(n, c, z, t, g);
            loss_sigmoid(n * c, z, p);
            snprintf(w, sizeof w, "loss %s sigmoid", nm);
            check_close(w, p, G("sigmoid"), (size_t)n * c, 1e-6f, 0);
        }
        snprintf(w, sizeof w, "loss %s value (%s)", nm, kind);
        check_close(w, &l, lref, 1, 1e-6f, 0);
        snprintf(w, sizeof w, "loss %s dlogits", nm);
        check_close(w, g, gref, (size_t)n * c, 1e-6f, 0);
#undef G
        free(g), free(p);
    }
    kfix_close(&k);
}

static void fd(void) {
    enum { N = 4, C = 6 };
    float z[N * C], t[N * C], g[N * C];
    int ti[N] = {0, 5, 2, 3};
    fill_uniform(z, N * C, 3);
    fill_uniform(t, N * C, 4);
    for (int i = 0; i < N * C; i++) z[i] *= 3, t[i] = fabsf(t[i]);
    const int bounds[3] = {0, 2, 6};
    static const char *const kinds[3] = {"softmax CE", "BCE with logits", "grouped softmax CE"};
#define LOSS(k, gr) ((k) == 0 ? loss_softmax_ce(N, C, z, ti, gr) : (k) == 1 ? loss_sigmoid_bce(N, C, z, t, gr) \
                                                                    : loss_group_softmax_ce(N, C, z, t, 2, bounds, gr))
    for (int kind = 0; kind < 3; kind++) {
        LOSS(kind, g);
        double worst = 0, gmax = 0;
        for (int i = 0; i < N * C; i++) gmax = fmax(gmax, fabs(g[i]));
        for (int i = 0; i < N * C; i++) {
            float v = z[i];
            double l[2];
            for (int s = 0; s < 2; s++) {
                z[i] = v + (s ? -1e-2f : 1e-2f);
                l[s] = LOSS(kind, NULL);
            }
            z[i] = v;
            worst = fmax(worst, fabs((l[0] - l[1]) / 2e-2 - g[i]));
        }
        check(worst <= 1e-2 * gmax, "%s finite differences (every logit): max err %.3g, scale %.3g (tol rel 1e-2, h 1e-2)",
              kinds[kind], worst, gmax);
    }
#undef LOSS
    /* ignored targets (PyTorch's ignore_index -100) count for nothing */
    int tign[N] = {0, -100, 2, 3};
    float l3 = loss_softmax_ce(N, C, z, tign, g);
    float la = loss_softmax_ce(1, C, z, ti, NULL), lb = loss_softmax_ce(2, C, z + 2 * C, ti + 2, NULL);
    int zero = 1;
    for (int j = 0; j < C; j++) zero &= g[C + j] == 0.0f;
    check(fabsf(l3 - (la + 2 * lb) / 3) < 1e-6f && zero, "softmax CE: target -100 is ignored (mean over the other rows, zero gradient)");
}

/* the grouped loss: one group is softmax CE with probability targets; groups average; tags
 * outside every group get no gradient */
static void grouped(void) {
    enum { N = 3, C = 7 };
    float z[N * C], t[N * C] = {0}, g[N * C], g1[N * 3];
    fill_uniform(z, N * C, 5);
    const int hot[N][2] = {{0, 4}, {2, 3}, {1, 5}};
    int ti[N];
    for (int i = 0; i < N; i++) {
        t[i * C + hot[i][0]] = t[i * C + hot[i][1]] = 1;
        ti[i] = hot[i][0];
    }
    /* group [0,3) alone against softmax_ce_loss on the same logits */
    float zg[N * 3];
    for (int i = 0; i < N; i++) memcpy(zg + i * 3, z + i * C, 3 * sizeof(float));
    const int b1[2] = {0, 3};
    float la = loss_group_softmax_ce(N, C, z, t, 1, b1, g), lb = loss_softmax_ce(N, 3, zg, ti, g1);
    int same = fabsf(la - lb) <= 1e-6f * fabsf(lb), zero = 1;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < C; j++) {
            if (j < 3) same &= fabsf(g[i * C + j] - g1[i * 3 + j]) <= 1e-6f;
            else zero &= g[i * C + j] == 0.0f;
        }
    check(same && zero, "grouped CE with one one-hot group = softmax CE of that group (%g vs %g); other tags no gradient",
          la, lb);
    const int b2[3] = {0, 3, 6}, b3[2] = {3, 6};
    float l2 = loss_group_softmax_ce(N, C, z, t, 2, b2, g), lc = loss_group_softmax_ce(N, C, z, t, 1, b3, NULL);
    int last_zero = 1;
    for (int i = 0; i < N; i++) last_zero &= g[i * C + 6] == 0.0f;
    check(fabsf(l2 - (la + lc) / 2) <= 1e-6f * l2 && last_zero, "grouped CE: the mean of the groups' losses (%g vs %g)", l2,
          (la + lc) / 2);
    check(loss_group_softmax_ce(0, C, z, t, 2, b2, NULL) == 0.0f && loss_group_softmax_ce(N, C, z, t, 0, b2, NULL) == 0.0f,
          "grouped CE: no rows or no groups give 0");
}

static const test_case cases[] = {
    {"pytorch", fixtures},
    {"finite-differences", fd},
    {"grouped", grouped},
};
TEST_MAIN(cases)
