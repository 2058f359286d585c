/* conv_gemm.c - the im2col + sgemm backend (conv_backend.h): dense and grouped convolution on
 * NHWC.  Depthwise shapes it declines (conv_depthwise.c runs them).
 *
 * Forward, per chunk of images (a chunk is one image, or a few when the output is small, so the
 * GEMM has >= ~512 rows):  col[rows, KH*KW*Cin/g] (each row KH*KW runs of Cin/g contiguous
 * floats) x W_g^T[K, Cout/g] -> y[rows, Cout/g] (ldc = Cout).  1x1 stride-1 unpadded convs use
 * the input itself as the matrix, one GEMM for the whole batch.
 * Threading: with n >= threads, each thread takes a contiguous block of images, builds its
 * im2col in its own slice of one buffer and calls sgemm (single-threaded inside the parallel
 * region); with fewer images (batch-1 inference) chunks run one after another with a threaded
 * sgemm.  Backward data: dcol = dy x W_g, then col2im accumulates into dx (threads own whole
 * images).  Backward weights: each thread accumulates dW over its images into a private buffer
 * (sgemm beta = 1), then the buffers are summed in thread order: deterministic for a thread count.
 * Work buffers are allocated before anything is written: when the per-thread ones cannot be
 * had, the one-buffer path runs; when that one cannot either, the pass declines (returns 0).
 */
#include "kernels/conv_backend.h"
#include "kernels/gemm.h"
#include "core/error.h"
#include <omp.h>
#include <string.h>

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

/* valid kernel columns [*k0, *k1) for input column origin ix0 */
static void kx_range(const conv_desc *d, int ix0, int *k0, int *k1) {
    *k0 = imax(0, -ix0);
    *k1 = imin(d->kw, d->w - ix0);
    if (*k1 < *k0) *k1 = *k0;
}

/* im2col of output rows [r0, r1) of one image xi, channels [c0, c0+cg): col row r-r0 */
static void im2col(const conv_desc *d, const float *xi, int c0, int cg, int r0, int r1, float *col) {
    long K = (long)d->kh * d->kw * cg;
    for (int r = r0; r < r1; r++) {
        int oy = r / d->ow, ox = r % d->ow;
        float *row = col + (long)(r - r0) * K;
        int iy0 = oy * d->sh - d->pt, ix0 = ox * d->sw - d->pl, k0, k1;
        kx_range(d, ix0, &k0, &k1);
        for (int ky = 0; ky < d->kh; ky++) {
            int iy = iy0 + ky;
            float *dst = row + (long)ky * d->kw * cg;
            if (iy < 0 || iy >= d->h || k1 == k0) {
                memset(dst, 0, sizeof(float) * d->kw * cg);
                continue;
            }
            if (k0 > 0) memset(dst, 0, sizeof(float) * k0 * cg);
            const float *src = xi + ((long)iy * d->w + ix0 + k0) * d->cin + c0;
            if (cg == d->cin)
                memcpy(dst + (long)k0 * cg, src, sizeof(float) * (k1 - k0) * cg);
            else
                for (int kx = k0; kx < k1; kx++) memcpy(dst + (long)kx * cg, src + (long)(kx - k0) * d->cin, sizeof(float) * cg);
            if (k1 < d->kw) memset(dst + (long)k1 * cg, 0, sizeof(float) * (d->kw - k1) * cg);
        }
    }
}

/* col2im: dxi[channels c0..c0+cg] += the dcol rows of one image (serial: rows overlap) */
static void col2im_acc(const conv_desc *d, const float *dcol, int c0, int cg, float *dxi) {
    long K = (long)d->kh * d->kw * cg;
    int rows = d->oh * d->ow;
    for (int r = 0; r < rows; r++) {
        int oy = r / d->ow, ox = r % d->ow;
        const float *row = dcol + (long)r * K;
        int iy0 = oy * d->sh - d->pt, ix0 = ox * d->sw - d->pl, k0, k1;
        kx_range(d, ix0, &k0, &k1);
        if (k1 == k0) continue;
        for (int ky = 0; ky < d->kh; ky++) {
            int iy = iy0 + ky;
            if (iy < 0 || iy >= d->h) continue;
            const float *src = row + ((long)ky * d->kw + k0) * cg;
            float *dst = dxi + ((long)iy * d->w + ix0 + k0) * d->cin + c0;
            if (cg == d->cin) {
                long len = (long)(k1 - k0) * cg;
                for (long e = 0; e < len; e++) dst[e] += src[e];
            } else {
                for (int kx = k0; kx < k1; kx++)
                    for (int c = 0; c < cg; c++) dst[(long)(kx - k0) * d->cin + c] += src[(long)(kx - k0) * cg + c];
            }
        }
    }
}

/* images per chunk: enough for ~512 GEMM rows, col buffer <= 4 MiB, at most `avail` */
static int chunk_images(const conv_desc *d, int avail) {
    long rows = (long)d->oh * d->ow, K = (long)d->kh * d->kw * (d->cin / d->groups);
    long c = (512 + rows - 1) / rows;
    long cap = (4L << 20) / (long)sizeof(float) / (rows * K);
    if (c > cap) c = cap;
    if (c > avail) c = avail;
    return c < 1 ? 1 : (int)c;
}

/* y[rows, c] += b (b may be NULL), then the fused activation, row by row while the row is in cache */
static void bias_act(long rows, int c, const float *b, sn_act act, float *y) {
    if (!b && !act) return;
#pragma omp parallel for schedule(static) if (rows * c > 32768 && !omp_in_parallel())
    for (long r = 0; r < rows; r++) {
        float *yr = y + r * c;
        if (b)
            for (int j = 0; j < c; j++) yr[j] += b[j];
        act_apply(act, c, yr);
    }
}

/* forward of images [i, i+cn): im2col into col, one GEMM per group, bias */
static void fwd_chunk(const conv_desc *d, int i, int cn, const float *x, const float *w, const float *b, float *y,
                      float *col, int par) {
    int G = d->groups, cig = d->cin / G, cog = d->cout / G, rows = d->oh * d->ow;
    long K = (long)d->kh * d->kw * cig, xs = (long)d->h * d->w * d->cin;
    float *yc = y + (long)i * rows * d->cout;
    for (int g = 0; g < G; g++) {
        for (int j = 0; j < cn; j++) {
            const float *xi = x + (long)(i + j) * xs;
            float *cj = col + (long)j * rows * K;
            int nb = (rows + 31) / 32;
#pragma omp parallel for schedule(static) if (par)
            for (int bk = 0; bk < nb; bk++)
                im2col(d, xi, g * cig, cig, bk * 32, imin(rows, bk * 32 + 32), cj + (long)bk * 32 * K);
        }
        gemm_sgemm(false, true, cn * rows, cog, (int)K, 1.0f, col, (int)K, w + (long)g * cog * K, (int)K, 0.0f, yc + g * cog,
              d->cout);
    }
    bias_act((long)cn * rows, d->cout, b, d->act, yc);
}

/* im2col buffer floats per thread when each of nt threads takes a block of the n images: enough
 * for the largest block (a thread's chunk never exceeds chunk_images(d, n)) */
static long per_thread_col(const conv_desc *d, int n) {
    return (long)chunk_images(d, n) * d->oh * d->ow * d->kh * d->kw * (d->cin / d->groups);
}

int conv2d_gemm_forward(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y) {
    if (n <= 0 || conv_is_depthwise(d)) return 0;
    int G = d->groups, cig = d->cin / G, cog = d->cout / G, rows = d->oh * d->ow;
    long K = (long)d->kh * d->kw * cig;
    if (conv_is_pointwise(d)) {
        for (int g = 0; g < G; g++)
            gemm_sgemm(false, true, n * rows, cog, cig, 1.0f, x + g * cig, d->cin, w + (long)g * cog * cig, cig, 0.0f,
                       y + g * cog, d->cout);
        bias_act((long)n * rows, d->cout, b, d->act, y);
        return n;
    }
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    long per = per_thread_col(d, n);
    float *cols = nt > 1 && n >= nt ? sn_alloc(sizeof(float) * nt * per, "im2col buffers") : NULL;
    if (cols) {
#pragma omp parallel num_threads(nt)
        {
            int t = omp_get_thread_num(), T = omp_get_num_threads();
            int i0 = (int)((long)n * t / T), i1 = (int)((long)n * (t + 1) / T);
            int ch = chunk_images(d, imax(1, i1 - i0));
            for (int i = i0; i < i1; i += ch) fwd_chunk(d, i, imin(ch, i1 - i), x, w, b, y, cols + t * per, 0);
        }
        sn_free(cols);
        return n;
    }
    int ch = chunk_images(d, n);
    float *col = sn_alloc(sizeof(float) * ch * rows * K, "im2col buffer");
    if (!col) return 0;
    for (int i = 0; i < n; i += ch) fwd_chunk(d, i, imin(ch, n - i), x, w, b, y, col, nt > 1);
    sn_free(col);
    return n;
}

/* backward data of images [i, i+cn) */
static void bwd_data_chunk(const conv_desc *d, int i, int cn, const float *dy, const float *w, float *dx,
                           float *dcol) {
    int G = d->groups, cig = d->cin / G, cog = d->cout / G, rows = d->oh * d->ow;
    long K = (long)d->kh * d->kw * cig, xs = (long)d->h * d->w * d->cin;
    const float *dyc = dy + (long)i * rows * d->cout;
    for (int g = 0; g < G; g++) {
        gemm_sgemm(false, false, cn * rows, (int)K, cog, 1.0f, dyc + g * cog, d->cout, w + (long)g * cog * K, (int)K, 0.0f,
              dcol, (int)K);
        for (int j = 0; j < cn; j++) col2im_acc(d, dcol + (long)j * rows * K, g * cig, cig, dx + (long)(i + j) * xs);
    }
}

int conv2d_gemm_backward_data(const conv_desc *d, int n, const float *dy, const float *w, float *dx) {
    if (n <= 0 || conv_is_depthwise(d)) return 0;
    if (!dx) return n;
    int G = d->groups, cig = d->cin / G, cog = d->cout / G, rows = d->oh * d->ow;
    long K = (long)d->kh * d->kw * cig;
    if (conv_is_pointwise(d)) {
        for (int g = 0; g < G; g++)
            gemm_sgemm(false, false, n * rows, cig, cog, 1.0f, dy + g * cog, d->cout, w + (long)g * cog * cig, cig, 1.0f,
                       dx + g * cig, d->cin);
        return n;
    }
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    long per = per_thread_col(d, n);
    float *dcols = nt > 1 && n >= nt ? sn_alloc(sizeof(float) * nt * per, "col2im buffers") : NULL;
    if (dcols) {
#pragma omp parallel num_threads(nt)
        {
            int t = omp_get_thread_num(), T = omp_get_num_threads();
            int i0 = (int)((long)n * t / T), i1 = (int)((long)n * (t + 1) / T);
            int ch = chunk_images(d, imax(1, i1 - i0));
            for (int i = i0; i < i1; i += ch) bwd_data_chunk(d, i, imin(ch, i1 - i), dy, w, dx, dcols + t * per);
        }
        sn_free(dcols);
        return n;
    }
    int ch = chunk_images(d, n);
    float *dcol = sn_alloc(sizeof(float) * ch * rows * K, "col2im buffer");
    if (!dcol) return 0;
    for (int i = 0; i < n; i += ch) bwd_data_chunk(d, i, imin(ch, n - i), dy, w, dx, dcol);
    sn_free(dcol);
    return n;
}

/* dW (all groups, [Cout, K]) += over images [i, i+cn) */
static void bwd_w_chunk(const conv_desc *d, int i, int cn, const float *x, const float *dy, float *dw, float *col,
                        int par) {
    int G = d->groups, cig = d->cin / G, cog = d->cout / G, rows = d->oh * d->ow;
    long K = (long)d->kh * d->kw * cig, xs = (long)d->h * d->w * d->cin;
    const float *dyc = dy + (long)i * rows * d->cout;
    for (int g = 0; g < G; g++) {
        for (int j = 0; j < cn; j++) {
            const float *xi = x + (long)(i + j) * xs;
            float *cj = col + (long)j * rows * K;
            int nb = (rows + 31) / 32;
#pragma omp parallel for schedule(static) if (par)
            for (int bk = 0; bk < nb; bk++)
                im2col(d, xi, g * cig, cig, bk * 32, imin(rows, bk * 32 + 32), cj + (long)bk * 32 * K);
        }
        gemm_sgemm(true, false, cog, (int)K, cn * rows, 1.0f, dyc + g * cog, d->cout, col, (int)K, 1.0f, dw + (long)g * cog * K,
              (int)K);
    }
}

int conv2d_gemm_backward_weights(const conv_desc *d, int n, const float *x, const float *dy, float *dw, float *db) {
    if (n <= 0 || conv_is_depthwise(d)) return 0;
    int G = d->groups, cig = d->cin / G, cog = d->cout / G, rows = d->oh * d->ow;
    long K = (long)d->kh * d->kw * cig, wsz = (long)d->cout * K;
    if (!dw || conv_is_pointwise(d)) {
        if (db) act_bias_grad((long)n * rows, d->cout, dy, db);
        for (int g = 0; g < G && dw; g++)
            gemm_sgemm(true, false, cog, cig, n * rows, 1.0f, dy + g * cog, d->cout, x + g * cig, d->cin, 1.0f,
                       dw + (long)g * cog * cig, cig);
        return n;
    }
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    long per = per_thread_col(d, n);
    float *part = nt > 1 && n >= nt ? sn_alloc(sizeof(float) * nt * wsz, "conv weight-gradient partials") : NULL;
    float *cols = part ? sn_alloc(sizeof(float) * nt * per, "im2col buffers") : NULL;
    if (cols) {
        if (db) act_bias_grad((long)n * rows, d->cout, dy, db);
        int used = 1;
#pragma omp parallel num_threads(nt)
        {
            int t = omp_get_thread_num(), T = omp_get_num_threads();
            int i0 = (int)((long)n * t / T), i1 = (int)((long)n * (t + 1) / T);
            float *p = part + t * wsz;
            memset(p, 0, sizeof(float) * wsz);
            if (t == 0) used = T;
            int ch = chunk_images(d, imax(1, i1 - i0));
            for (int i = i0; i < i1; i += ch) bwd_w_chunk(d, i, imin(ch, i1 - i), x, dy, p, cols + t * per, 0);
#pragma omp barrier
#pragma omp for schedule(static)
            for (long e = 0; e < wsz; e++) {
                float s = part[e];
                for (int u = 1; u < used; u++) s += part[u * wsz + e];
                dw[e] += s;
            }
        }
        sn_free(cols);
        sn_free(part);
        return n;
    }
    sn_free(part);
    int ch = chunk_images(d, n);
    float *col = sn_alloc(sizeof(float) * ch * rows * K, "im2col buffer");
    if (!col) return 0;
    if (db) act_bias_grad((long)n * rows, d->cout, dy, db);
    for (int i = 0; i < n; i += ch) bwd_w_chunk(d, i, imin(ch, n - i), x, dy, dw, col, nt > 1);
    sn_free(col);
    return n;
}
