/* test_calibration.c - calibration metrics and temperature scaling (classifier/metrics.h,
 * classifier/calibration.h):
 *   - ECE, reliability bins, Brier and NLL on constructed data against hand-computed values
 *     (bin edges, p = 1 in the last bin, empty bins NaN, photos without a truth left out);
 *   - ECE against a numpy implementation and the NLL at a temperature against PyTorch's
 *     binary_cross_entropy_with_logits / cross_entropy on random data ($STYLENET_PY);
 *   - the fit recovers a known temperature from synthetic logits (multi- and single-label),
 *     sits at the NLL's minimum, and stops at the bound for separable data;
 *   - calibration_probs: T = 1 (or unset) is the plain sigmoid / softmax, in place works. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../common/check.h"
#include "classifier/calibration.h"
#include "classifier/metrics.h"
#include "core/rng.h"

static const char *python(void) {
    const char *p = getenv("STYLENET_PY");
    return p && p[0] ? p : "build/venv/bin/python";
}

/* rows of a flat [n, C] array */
static void rows_of(int n, int C, const float *p, const uint8_t *h, const float **pr, const uint8_t **hr) {
    for (int i = 0; i < n; i++) pr[i] = p + (size_t)i * C, hr[i] = h + (size_t)i * C;
}

static void ece_constructed(void) {
    /* 4 photos x 2 tags, 10 bins:
     *   bin 0: 0.00 (true), 0.05 (false)             conf 0.025  acc 0.5   gap 0.475
     *   bin 3: 0.30 (false)                          conf 0.3    acc 0     gap 0.3
     *   bin 5: 0.55 (true), 0.55 (false), 0.50 (f)  conf 0.5333 acc 0.333 gap 0.2
     *   bin 9: 0.95 (true), 1.00 (true)              conf 0.975  acc 1     gap 0.025
     * ECE = (2 * 0.475 + 0.3 + 3 * 0.2 + 2 * 0.025) / 8 = 0.2375 */
    const float p[8] = {0.00f, 0.05f, 0.55f, 0.55f, 0.50f, 0.95f, 1.00f, 0.30f};
    const uint8_t h[8] = {1, 0, 1, 0, 0, 1, 1, 0};
    const float *pr[4];
    const uint8_t *hr[4];
    rows_of(4, 2, p, h, pr, hr);
    metrics_calibration c;
    metrics_tag_calibration(4, pr, hr, 0, 2, 10, &c);
    check(c.n == 8 && c.count[0] == 2 && c.count[5] == 3 && c.count[9] == 2 && c.count[3] == 1 && c.count[1] == 0,
          "tags: 8 outcomes in bins 0, 3, 5, 9 (0.50 in bin 5, 1.00 in the last bin)");
    check(fabs(c.conf[5] - 1.6 / 3) < 1e-6 && fabs(c.acc[5] - 1.0 / 3) < 1e-12 && isnan(c.conf[1]) && isnan(c.acc[1]),
          "a bin's confidence and accuracy; an empty bin NaN");
    check(fabs(c.ece - 0.2375) < 1e-6, "ECE 0.2375 by hand, got %.6f", c.ece);
    metrics_tag_calibration(4, pr, hr, 0, 2, 0, &c);
    check(c.bins == METRICS_ECE_BINS, "bins 0 means the default %d", METRICS_ECE_BINS);

    /* top-1 of 3 classes, 5 bins: photo 0 top 0.6 right, 1 top 0.7 wrong, 2 top 0.9 right,
     * 3 has no true class (left out).  bin 3: {0.6 T, 0.7 F} conf 0.65 acc 0.5; bin 4: {0.9 T}
     * conf 0.9 acc 1.  ECE = (2 * 0.15 + 1 * 0.1) / 3 = 0.133333 */
    const float q[12] = {0.6f, 0.3f, 0.1f, 0.2f, 0.7f, 0.1f, 0.05f, 0.05f, 0.9f, 0.4f, 0.3f, 0.3f};
    const uint8_t t[12] = {1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0};
    const float *qr[4];
    const uint8_t *tr[4];
    rows_of(4, 3, q, t, qr, tr);
    metrics_top1_calibration(4, qr, tr, 0, 3, 5, &c);
    check(c.n == 3 && fabs(c.ece - 0.4 / 3) < 1e-6, "top-1: %ld photos (one without a truth left out), ECE %.6f == 0.133333",
          c.n, c.ece);
    metrics_top1_calibration(4, qr, tr, 1, 3, 5, &c);
    check(c.n == 1 && fabs(c.ece - 0.1) < 1e-6, "top-1 of classes [1, 3): only photo 2 has its truth there, ECE 0.1 (%.4f)",
          c.ece);
    /* Brier: sum of squares 0.16 + 0.09 + 0.01 + 0.64 + 0.49 + 0.01 + 0.0025 + 0.0025 + 0.01
     * + 0.16 + 0.09 + 0.09 = 1.755, over 12 */
    check(fabs(metrics_brier(4, 3, qr, tr) - 1.755 / 12) < 1e-6, "Brier %.6f == 1.755 / 12", metrics_brier(4, 3, qr, tr));
    double nll = metrics_nll(3, 3, qr, tr, false);
    check(fabs(nll - (-log(0.6) - log(0.2) - log(0.9)) / 3) < 1e-6, "NLL: the mean of -log p(true class), %.6f", nll);
    metrics_calibration_init(&c, 5);
    metrics_calibration_finish(&c);
    check(isnan(c.ece), "no outcomes: ECE NaN");
}

/* writes n x C probabilities / logits and truths as text for Python; NULL on failure */
static const char *write_data(const char *name, int n, int C, const float *v, const uint8_t *h) {
    static char path[2][256];
    static int k;
    char *p = path[k++ % 2];
    snprintf(p, 256, "/tmp/stylenet_calib_%d_%s.txt", (int)getpid(), name);
    FILE *f = fopen(p, "w");
    if (!f) return NULL;
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < C; c++) fprintf(f, "%.9g %d%c", v[(size_t)i * C + c], h[(size_t)i * C + c], c == C - 1 ? '\n' : ' ');
    }
    fclose(f);
    return p;
}

/* n x C random logits (scale s) and truths drawn from their sigmoid (multi) or one class per photo */
static void random_data(int n, int C, double s, bool multi, uint64_t seed, float *z, uint8_t *h) {
    for (int i = 0; i < n; i++) {
        int t = (int)(rng_uniform(seed, (uint64_t)i, 99) * C) % C;
        for (int c = 0; c < C; c++) {
            size_t k = (size_t)i * C + c;
            z[k] = (float)(s * (2 * rng_uniform(seed, (uint64_t)i, (uint64_t)c) - 1));
            h[k] = multi ? rng_uniform(seed + 1, (uint64_t)i, (uint64_t)c) < 1 / (1 + exp(-z[k])) : c == t;
        }
    }
}

static void oracle(void) {
    enum { N = 300, C = 6 };
    float z[N * C], p[N * C];
    uint8_t h[N * C];
    random_data(N, C, 4, true, 5, z, h);
    calibration_probs(N, C, z, 1.7, true, p);
    const float *pr[N];
    const uint8_t *hr[N];
    rows_of(N, C, p, h, pr, hr);
    metrics_calibration tag, top;
    metrics_tag_calibration(N, pr, hr, 0, C, 15, &tag);
    metrics_top1_calibration(N, pr, hr, 0, C, 15, &top);
    const char *pf = write_data("p", N, C, p, h), *zf = write_data("z", N, C, z, h);
    char out[512];
    /* numpy: the usual ECE (bins by floor(p * 15), the last closed; top-1 of the photos with a
     * true tag); PyTorch: the NLL */
    int rc = run_capture(out, sizeof out,
                         "%s -c \"import numpy as np, torch, torch.nn.functional as F\n"
                         "def ece(p, y):\n"
                         "  b = np.minimum((p * 15).astype(int), 14); e = 0\n"
                         "  for k in range(15):\n"
                         "    m = b == k\n"
                         "    if m.any(): e += m.sum() / p.size * abs(p[m].mean() - y[m].mean())\n"
                         "  return e\n"
                         "a = np.loadtxt('%s'); p = a[:, 0::2].astype(np.float32).astype(np.float64); y = a[:, 1::2]\n"
                         "i = p.argmax(1); k = y.sum(1) > 0; c = p[np.arange(len(p)), i][k]; r = y[np.arange(len(p)), i][k]\n"
                         "b = np.loadtxt('%s'); z = torch.tensor(b[:, 0::2], dtype=torch.float64); t = torch.tensor(b[:, 1::2])\n"
                         "bce = F.binary_cross_entropy_with_logits(z / 1.7, t).item()\n"
                         "print('%%.10f %%.10f %%.10f' %% (ece(p.ravel(), y.ravel()), ece(c, r), bce))\"",
                         python(), pf, zf);
    double e_tag = NAN, e_top = NAN, bce = NAN, ce = NAN;
    if (!check(rc == 0 && sscanf(out, "%lf %lf %lf", &e_tag, &e_top, &bce) == 3, "numpy / PyTorch oracle ran: %s",
               flat_tail(out, 200)))
        goto done;
    check(fabs(tag.ece - e_tag) < 1e-6, "ECE over every tag: %.8f, numpy %.8f", tag.ece, e_tag);
    check(fabs(top.ece - e_top) < 1e-6, "top-1 ECE: %.8f, numpy %.8f", top.ece, e_top);
    double nb = calibration_nll(N, C, z, hr, true, 1.7);
    check(fabs(nb - bce) < 1e-7, "NLL at T = 1.7 (multi-label): %.8f, PyTorch BCE with logits %.8f", nb, bce);
done:
    unlink(pf);
    unlink(zf);
    random_data(N, C, 4, false, 6, z, h);
    zf = write_data("z1", N, C, z, h);
    rc = run_capture(out, sizeof out,
                     "%s -c \"import numpy as np, torch, torch.nn.functional as F\n"
                     "b = np.loadtxt('%s'); z = torch.tensor(b[:, 0::2], dtype=torch.float64); t = torch.tensor(b[:, 1::2])\n"
                     "print('%%.10f' %% F.cross_entropy(z / 0.6, t.argmax(1)).item())\"",
                     python(), zf);
    unlink(zf);
    if (check(rc == 0 && sscanf(out, "%lf", &ce) == 1, "PyTorch cross-entropy ran: %s", flat_tail(out, 200))) {
        double nc = calibration_nll(N, C, z, hr, false, 0.6);
        check(fabs(nc - ce) < 1e-7, "NLL at T = 0.6 (single-label): %.8f, PyTorch cross-entropy %.8f", nc, ce);
    }
}

/* logits = T0 x u where the truths follow u: the fit finds T0 */
static void fit_recovers(void) {
    enum { N = 4000, C = 5 };
    float *z = malloc(sizeof(float) * N * C);
    uint8_t *h = malloc(N * C);
    const uint8_t **hr = malloc(sizeof(uint8_t *) * N);
    const double T0[2] = {2.5, 0.4};
    for (int multi = 1; multi >= 0; multi--)
        for (int k = 0; k < 2; k++) {
            random_data(N, C, 3, multi, 11 + k, z, h);
            if (!multi) /* the class drawn from the softmax of u */
                for (int i = 0; i < N; i++) {
                    double s = 0, cum = 0, u = rng_uniform(77, (uint64_t)i, (uint64_t)k);
                    for (int c = 0; c < C; c++) s += exp(z[i * C + c]);
                    int t = C - 1;
                    for (int c = 0; c < C; c++) {
                        cum += exp(z[i * C + c]) / s;
                        if (u < cum) {
                            t = c;
                            break;
                        }
                    }
                    for (int c = 0; c < C; c++) h[i * C + c] = c == t;
                }
            for (int i = 0; i < N * C; i++) z[i] = (float)(z[i] * T0[k]);
            for (int i = 0; i < N; i++) hr[i] = h + (size_t)i * C;
            double T = calibration_fit(N, C, z, hr, multi);
            double f = calibration_nll(N, C, z, hr, multi, T);
            check(fabs(T / T0[k] - 1) < 0.05, "%s: logits %.1f x the truth's: fitted T %.4f (%d photos)",
                  multi ? "multi-label" : "single-label", T0[k], T, N);
            check(f <= calibration_nll(N, C, z, hr, multi, T * 1.01) && f <= calibration_nll(N, C, z, hr, multi, T / 1.01) &&
                      f < calibration_nll(N, C, z, hr, multi, 1),
                  "the fitted T is the NLL's minimum (%.6f; at T = 1: %.6f)", f, calibration_nll(N, C, z, hr, multi, 1));
        }
    /* separable: every tag right with a margin; the NLL falls as T falls */
    for (int i = 0; i < 10 * C; i++) h[i] = i % 3 == 0, z[i] = h[i] ? 2.0f : -2.0f;
    for (int i = 0; i < 10; i++) hr[i] = h + (size_t)i * C;
    double T = calibration_fit(10, C, z, hr, true);
    check(fabs(T - CALIBRATION_T_MIN) < 1e-3, "separable photos: T at the lower bound %.2f (%.4f)", CALIBRATION_T_MIN, T);
    check(calibration_fit(0, C, z, hr, true) == 1, "no photos: T = 1");
    free(z);
    free(h);
    free(hr);
}

static void probs_at_temperature(void) {
    const float z[4] = {2, -1, 0.5f, -3};
    float a[4], b[4];
    calibration_probs(1, 4, z, 1, true, a);
    calibration_probs(1, 4, z, 0, true, b);
    check(!memcmp(a, b, sizeof a) && fabs(a[0] - 1 / (1 + exp(-2.0))) < 1e-7, "T = 1 and T unset: the plain sigmoid");
    calibration_probs(1, 4, z, 2, false, a);
    memcpy(b, z, sizeof b);
    calibration_probs(1, 4, b, 2, false, b);
    double s = 0;
    for (int k = 0; k < 4; k++) s += exp(z[k] / 2.0);
    check(!memcmp(a, b, sizeof a) && fabs(a[0] - exp(1.0) / s) < 1e-6, "T = 2: softmax of z / 2, in place too");
}

static const test_case cases[] = {
    {"ece_constructed", ece_constructed}, {"oracle", oracle}, {"fit_recovers", fit_recovers},
    {"probs_at_temperature", probs_at_temperature}};
TEST_MAIN(cases)
