/* bench_kernels.c - GFLOPS of stylenet's convolutions (forward, backward-data,
 * backward-weights) on resnet34 layers and mobilenet_v2 depthwise layers at batch 32 and a
 * 128x128 input, EfficientNet-Lite0's depthwise layers (3x3 stride 2 and every 5x5 shape, TF
 * 'SAME' padding) at batch 32 and a 224x224 input, and the machine's FMA peak for the same thread
 * count (12 FMA chains per thread on AVX-512 or AVX2 vectors, whichever the build has).
 * GFLOPS = 2 * multiply-adds of the direct convolution / seconds ("effective" GFLOPS: a layer that
 * runs on Winograd F(4x4,3x3) does fewer multiplies and can exceed the FMA peak); each figure is
 * the median of R timed runs (7) after a warm-up.  "algo" says how the forward pass ran: direct
 * (oneDNN), winograd (oneDNN), im2col (im2col + sgemm) or depthwise (our kernels).
 * Usage: bench_kernels [batch] [--threads N] [--reps R] [--only TEXT] [--json]
 *   --only TEXT  only the layers whose name contains TEXT (e.g. "dw5x5")
 *   --threads N  OpenMP threads (omp_set_num_threads; default: OMP_NUM_THREADS or all cores)
 *   --json       one JSON object per line instead of the table: first {"peak_gflops", "threads",
 *                "batch"}, then per layer {"layer", "kind", "algo", "gflop", "fwd", "bwd_data", "bwd_wt"}
 *                (GFLOPS) -- bench/run.py reads these, bench_kernels_torch.py --json writes the same
 */
#include <math.h>
#include <stdbool.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/error.h"
#include "kernels/conv_backend.h"
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* peak: each thread runs 12 independent FMA chains on the widest vectors the build has */
#ifdef __AVX512F__
#define PEAK_LOOP "AVX-512 FMA loop"
#elif defined(__AVX2__) && defined(__FMA__)
#define PEAK_LOOP "AVX2 FMA loop"
#else
#define PEAK_LOOP "scalar fmaf loop"
#endif
static double fma_peak(void) {
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        long iters = 20000000;
        int lanes = 16;
        double t0 = now();
        float sink = 0;
#pragma omp parallel reduction(+ : sink)
        {
#ifdef __AVX512F__
            __m512 a[12], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
            for (int k = 0; k < 12; k++) a[k] = _mm512_set1_ps((float)k);
            for (long i = 0; i < iters; i++)
                for (int k = 0; k < 12; k++) a[k] = _mm512_fmadd_ps(a[k], m, c);
            for (int k = 0; k < 12; k++) sink += _mm512_reduce_add_ps(a[k]);
#elif defined(__AVX2__) && defined(__FMA__)
            lanes = 8;
            __m256 a[12], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
            for (int k = 0; k < 12; k++) a[k] = _mm256_set1_ps((float)k);
            for (long i = 0; i < iters; i++)
                for (int k = 0; k < 12; k++) a[k] = _mm256_fmadd_ps(a[k], m, c);
            float v[8];
            for (int k = 0; k < 12; k++) {
                _mm256_storeu_ps(v, a[k]);
                sink += v[0];
            }
#else
            float a[12][16];
            for (int k = 0; k < 12; k++)
                for (int j = 0; j < 16; j++) a[k][j] = (float)k;
            for (long i = 0; i < iters; i++)
                for (int k = 0; k < 12; k++)
                    for (int j = 0; j < 16; j++) a[k][j] = fmaf(a[k][j], 0.999999f, 1e-7f);
            for (int k = 0; k < 12; k++) sink += a[k][0];
#endif
        }
        double t = now() - t0;
        double gf = 2.0 * 12 * lanes * iters * omp_get_max_threads() / t / 1e9;
        if (sink == 12345.0f) printf("#");
        if (gf > best) best = gf;
    }
    return best;
}

typedef struct {
    const char *name, *kind;
    int h, w, cin, cout, k, s, p, groups; /* p < 0: TF 'SAME' padding (asymmetric on stride 2) */
} layer;

enum { FWD, BWD_DATA, BWD_W };

#define MAX_REPS 99
static double time_op(int op, int reps, const conv_desc *d, int n, float *x, float *w, float *b, float *y, float *dx,
                      float *dw, float *db) {
    double t[MAX_REPS];
    for (int r = -1; r < reps; r++) {
        double t0 = now();
        if (op == FWD) conv2d_forward(d, n, x, w, b, y);
        else if (op == BWD_DATA) conv2d_backward_data(d, n, y, w, dx);
        else conv2d_backward_weights(d, n, x, y, dw, db);
        if (r >= 0) t[r] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmpd);
    double med = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
    return 2.0 * conv2d_macs(d, n) / med / 1e9;
}

static int usage(void) {
    fprintf(stderr, "usage: bench_kernels [batch] [--threads N] [--reps R (1..%d)] [--only TEXT] [--json]\n", MAX_REPS);
    return 2;
}

int main(int argc, char **argv) {
    int n = 32, reps = 7;
    bool json = false;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            int t = atoi(argv[++i]);
            if (t <= 0) return usage();
            omp_set_num_threads(t);
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
            if (reps <= 0 || reps > MAX_REPS) return usage();
        } else {
            n = argv[i][0] == '-' ? 0 : atoi(argv[i]);
            if (n <= 0) return usage();
        }
    }
    layer L[] = {
        {"r34 stem 7x7 s2 3->64 @128", "conv7x7 stem", 128, 128, 3, 64, 7, 2, 3, 1},
        {"r34 3x3 64 @32", "conv3x3", 32, 32, 64, 64, 3, 1, 1, 1},
        {"r34 3x3 128 @16", "conv3x3", 16, 16, 128, 128, 3, 1, 1, 1},
        {"r34 3x3 256 @8", "conv3x3", 8, 8, 256, 256, 3, 1, 1, 1},
        {"r34 3x3 512 @4", "conv3x3", 4, 4, 512, 512, 3, 1, 1, 1},
        {"r34 3x3 s2 64->128 @32", "conv3x3 s2", 32, 32, 64, 128, 3, 2, 1, 1},
        {"r34 1x1 s2 128->256 @16", "conv1x1", 16, 16, 128, 256, 1, 2, 0, 1},
        {"mv2 1x1 96->576 @8", "conv1x1", 8, 8, 96, 576, 1, 1, 0, 1},
        {"mv2 dw3x3 32 @64", "depthwise3x3", 64, 64, 32, 32, 3, 1, 1, 32},
        {"mv2 dw3x3 s2 96 @64", "depthwise3x3", 64, 64, 96, 96, 3, 2, 1, 96},
        {"mv2 dw3x3 144 @32", "depthwise3x3", 32, 32, 144, 144, 3, 1, 1, 144},
        {"mv2 dw3x3 192 @16", "depthwise3x3", 16, 16, 192, 192, 3, 1, 1, 192},
        {"mv2 dw3x3 384 @8", "depthwise3x3", 8, 8, 384, 384, 3, 1, 1, 384},
        {"mv2 dw3x3 s2 576 @8", "depthwise3x3", 8, 8, 576, 576, 3, 2, 1, 576},
        {"mv2 dw3x3 960 @4", "depthwise3x3", 4, 4, 960, 960, 3, 1, 1, 960},
        {"el0 dw3x3 s2 96 @112", "depthwise3x3", 112, 112, 96, 96, 3, 2, -1, 96},
        {"el0 dw5x5 s2 144 @56", "depthwise5x5", 56, 56, 144, 144, 5, 2, -1, 144},
        {"el0 dw5x5 240 @28", "depthwise5x5", 28, 28, 240, 240, 5, 1, -1, 240},
        {"el0 dw5x5 480 @14", "depthwise5x5", 14, 14, 480, 480, 5, 1, -1, 480},
        {"el0 dw5x5 672 @14", "depthwise5x5", 14, 14, 672, 672, 5, 1, -1, 672},
        {"el0 dw5x5 s2 672 @14", "depthwise5x5", 14, 14, 672, 672, 5, 2, -1, 672},
        {"el0 dw5x5 1152 @7", "depthwise5x5", 7, 7, 1152, 1152, 5, 1, -1, 1152},
    };
    int nl = sizeof L / sizeof L[0];
    double peak = fma_peak();
    if (json) printf("{\"peak_gflops\": %.2f, \"threads\": %d, \"batch\": %d, \"reps\": %d}\n", peak,
                     omp_get_max_threads(), n, reps);
    else {
        printf("threads %d, batch %d; FMA peak measured %.1f GFLOPS (%s, %d threads)\n",
               omp_get_max_threads(), n, peak, PEAK_LOOP, omp_get_max_threads());
        printf("%-28s %-9s %9s | %8s %6s | %8s %6s | %8s %6s\n", "layer", "algo", "GFLOP/fwd", "fwd", "%peak", "bwd-data",
               "%peak", "bwd-wt", "%peak");
    }
    for (int i = 0; i < nl; i++) {
        if (only && !strstr(L[i].name, only)) continue;
        conv_desc d = {.h = L[i].h, .w = L[i].w, .cin = L[i].cin, .cout = L[i].cout, .kh = L[i].k, .kw = L[i].k,
                       .sh = L[i].s, .sw = L[i].s, .pt = L[i].p, .pb = L[i].p, .pl = L[i].p, .pr = L[i].p,
                       .groups = L[i].groups};
        if (L[i].p < 0) {
            conv_same_padding(d.h, d.kh, d.sh, &d.pt, &d.pb);
            conv_same_padding(d.w, d.kw, d.sw, &d.pl, &d.pr);
        }
        if (conv_desc_init(&d)) {
            fprintf(stderr, "bench_kernels: %s: %s\n", L[i].name, sn_last_error());
            return 1;
        }
        size_t X = (size_t)n * d.h * d.w * d.cin, Y = (size_t)n * d.oh * d.ow * d.cout;
        size_t W = (size_t)d.cout * d.kh * d.kw * (d.cin / d.groups);
        float *x = sn_alloc(X * 4, "x"), *dx = sn_calloc(X * 4, "dx"), *y = sn_alloc(Y * 4, "y");
        float *w = sn_alloc(W * 4, "w"), *dw = sn_calloc(W * 4, "dw"), *b = sn_calloc(d.cout * 4, "b"), *db = sn_calloc(d.cout * 4, "db");
        for (size_t j = 0; j < X; j++) x[j] = (float)((j * 7919) % 1000) * 1e-3f - 0.5f;
        for (size_t j = 0; j < W; j++) w[j] = (float)((j * 104729) % 1000) * 1e-4f - 0.05f;
        double g[3];
        for (int op = 0; op < 3; op++) g[op] = time_op(op, reps, &d, n, x, w, b, y, dx, dw, db);
        int alg = conv_is_depthwise(&d) ? -1 : conv2d_onednn_algorithm(&d, n);
        const char *algo = alg < 0 ? "depthwise" : alg == 2 ? "winograd" : alg == 1 ? "direct" : "im2col";
        if (json)
            printf("{\"layer\": \"%s\", \"kind\": \"%s\", \"algo\": \"%s\", \"gflop\": %.6f, \"fwd\": %.3f, "
                   "\"bwd_data\": %.3f, \"bwd_wt\": %.3f}\n",
                   L[i].name, L[i].kind, algo, 2.0 * conv2d_macs(&d, n) / 1e9, g[0], g[1], g[2]);
        else
            printf("%-28s %-9s %9.3f | %8.1f %5.1f%% | %8.1f %5.1f%% | %8.1f %5.1f%%\n", L[i].name, algo,
                   2.0 * conv2d_macs(&d, n) / 1e9, g[0], 100 * g[0] / peak, g[1], 100 * g[1] / peak, g[2],
                   100 * g[2] / peak);
        fflush(stdout);
        sn_free(x), sn_free(dx), sn_free(y), sn_free(w), sn_free(dw), sn_free(b), sn_free(db);
    }
    return 0;
}
