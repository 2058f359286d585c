/* conv.c - dense and grouped convolution on NHWC: the dispatch (oneDNN's convolution primitives
 * first, conv_onednn.c), and the im2col + sgemm path that handles everything else.
 *
 * Forward, per chunk of images (a chunk is one image, or a few when the output is small, so the
 * GEMM has >= ~512 rows):  col[rows, KH*KW*Cin/g] (each row KH*KW runs of Cin/g contiguous
 * floats) x W_g^T[K, Cout/g] -> y[rows, Cout/g] (ldc = Cout).  1x1 stride-1 unpadded convs use
 * the input itself as the matrix, one GEMM for the whole batch.
 * Threading: with n >= threads, each thread takes a contiguous block of images, builds its
 * im2col in a private buffer and calls sgemm (single-threaded inside the parallel region);
 * with fewer images (batch-1 inference) chunks run one after another with a threaded sgemm.
 * Backward data: dcol = dy x W_g, then col2im accumulates into dx (threads own whole images).
 * Backward weights: each thread accumulates dW over its images into a private buffer (sgemm
 * beta = 1), then the buffers are summed in thread order: deterministic for a thread count.
 * Depthwise (groups == cin) goes to depthwise.c.  If a work buffer cannot be allocated the
 * reference loops are used (slow but correct); these functions have no error return.
 */
#include "kernels/conv.h"
#include "kernels/gemm.h"
#include "core/error.h"
#include <omp.h>
#include <string.h>

int conv_is_depthwise(const conv_desc *d) { return d->groups == d->cin && d->groups > 1; }
static int is_pointwise(const conv_desc *d) {
    return d->kh == 1 && d->kw == 1 && d->sh == 1 && d->sw == 1 && !d->pt && !d->pb && !d->pl && !d->pr;
}
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

void conv_act_apply(int act, long n, float *y) {
    if (act == CONV_ACT_RELU) {
#pragma omp simd
        for (long k = 0; k < n; k++) y[k] = y[k] > 0.0f ? y[k] : 0.0f;
    } else if (act == CONV_ACT_RELU6) {
#pragma omp simd
        for (long k = 0; k < n; k++) {
            float v = y[k] > 0.0f ? y[k] : 0.0f;
            y[k] = v < 6.0f ? v : 6.0f;
        }
    }
}

/* y[rows, c] += b (b may be NULL), then the fused activation, row by row while the row is in cache */
static void bias_act(long rows, int c, const float *b, int act, float *y) {
    if (!b && !act) return;
#pragma omp parallel for schedule(static) if (rows * c > 32768 && !omp_in_parallel())
    for (long r = 0; r < rows; r++) {
        float *yr = y + r * c;
        if (b)
            for (int j = 0; j < c; j++) yr[j] += b[j];
        conv_act_apply(act, c, yr);
    }
}

static void act_mask_rows(long r0, long r1, int c, int act, const float *y, float *g) {
    conv_act_mask((r1 - r0) * c, act, y + r0 * c, g + r0 * c);
}

/* the fused activation's backward in place: g = 0 where it does not pass at its output y */
void conv_act_mask(long n, int act, const float *yr, float *gr) {
    if (act == CONV_ACT_NONE) return;
    if (act == CONV_ACT_RELU) {
#pragma omp simd
        for (long k = 0; k < n; k++) gr[k] = yr[k] > 0.0f ? gr[k] : 0.0f;
    } else {
#pragma omp simd
        for (long k = 0; k < n; k++) gr[k] = yr[k] > 0.0f && yr[k] < 6.0f ? gr[k] : 0.0f;
    }
}

/* db[c] += column sums of dy[rows, c]: per-thread double partials over a static row split,
 * summed in thread order (deterministic for a thread count).  With act, dy is first masked in
 * place by the activation's backward at y (conv_act_backward), row block by row block. */
static void colsum_acc_act(long rows, int c, int act, const float *y, float *dy, float *db) {
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    double *part = db ? sn_calloc(sizeof(double) * nt * c, "conv bias gradient") : NULL;
    if (!part) {
        if (act) {
#pragma omp parallel for schedule(static) num_threads(nt)
            for (long r = 0; r < rows; r += 64) act_mask_rows(r, r + 64 < rows ? r + 64 : rows, c, act, y, dy);
        }
        for (int j = 0; j < c && db; j++) {
            double s = 0;
            for (long r = 0; r < rows; r++) s += dy[r * c + j];
            db[j] += (float)s;
        }
        return;
    }
    int used = 1;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        if (t == 0) used = T;
        double *p = part + (long)t * c;
        long r = rows * t / T, r1 = rows * (t + 1) / T;
        for (; r + 4 <= r1; r += 4) { /* four rows per update of the partials: a quarter of the stores */
            if (act) act_mask_rows(r, r + 4, c, act, y, dy);
            const float *g0 = dy + r * c, *g1 = g0 + c, *g2 = g1 + c, *g3 = g2 + c;
            for (int j = 0; j < c; j++) p[j] += ((double)g0[j] + g1[j]) + ((double)g2[j] + g3[j]);
        }
        for (; r < r1; r++) {
            if (act) act_mask_rows(r, r + 1, c, act, y, dy);
            for (int j = 0; j < c; j++) p[j] += dy[r * c + j];
        }
    }
    for (int j = 0; j < c; j++) {
        double s = 0;
        for (int t = 0; t < used; t++) s += part[(long)t * c + j];
        db[j] += (float)s;
    }
    sn_free(part);
}

static void colsum_acc(long rows, int c, const float *dy, float *db) {
    colsum_acc_act(rows, c, CONV_ACT_NONE, NULL, (float *)dy, db);
}

void conv_act_backward(long rows, int c, int act, const float *y, float *g, float *db) {
    colsum_acc_act(rows, c, act, y, g, db);
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

void conv2d_forward_gemm(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y) {
    if (n <= 0) return;
    if (conv_is_depthwise(d)) {
        conv2d_depthwise_forward(d, n, x, w, b, y);
        return;
    }
    int G = d->groups, cig = d->cin / G, cog = d->cout / G, rows = d->oh * d->ow;
    long K = (long)d->kh * d->kw * cig, xs = (long)d->h * d->w * d->cin, ys = (long)rows * d->cout;
    if (is_pointwise(d)) {
        for (int g = 0; g < G; g++)
            gemm_sgemm(false, true, n * rows, cog, cig, 1.0f, x + g * cig, d->cin, w + (long)g * cog * cig, cig, 0.0f,
                  y + g * cog, d->cout);
        bias_act((long)n * rows, d->cout, b, d->act, y);
        return;
    }
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (nt > 1 && n >= nt) {
#pragma omp parallel num_threads(nt)
        {
            int t = omp_get_thread_num(), T = omp_get_num_threads();
            int i0 = (int)((long)n * t / T), i1 = (int)((long)n * (t + 1) / T);
            int ch = chunk_images(d, imax(1, i1 - i0));
            float *col = sn_alloc(sizeof(float) * ch * rows * K, "im2col buffer");
            if (!col)
                conv2d_forward_ref(d, i1 - i0, x + i0 * xs, w, b, y + i0 * ys);
            else
                for (int i = i0; i < i1; i += ch) fwd_chunk(d, i, imin(ch, i1 - i), x, w, b, y, col, 0);
            sn_free(col);
        }
        return;
    }
    int ch = chunk_images(d, n);
    float *col = sn_alloc(sizeof(float) * ch * rows * K, "im2col buffer");
    if (!col) {
        conv2d_forward_ref(d, n, x, w, b, y);
        return;
    }
    for (int i = 0; i < n; i += ch) fwd_chunk(d, i, imin(ch, n - i), x, w, b, y, col, nt > 1);
    sn_free(col);
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

void conv2d_backward_data_gemm(const conv_desc *d, int n, const float *dy, const float *w, float *dx) {
    if (n <= 0 || !dx) return;
    if (conv_is_depthwise(d)) {
        conv2d_depthwise_backward_data(d, n, dy, w, dx);
        return;
    }
    int G = d->groups, cig = d->cin / G, cog = d->cout / G, rows = d->oh * d->ow;
    long K = (long)d->kh * d->kw * cig, xs = (long)d->h * d->w * d->cin, ys = (long)rows * d->cout;
    if (is_pointwise(d)) {
        for (int g = 0; g < G; g++)
            gemm_sgemm(false, false, n * rows, cig, cog, 1.0f, dy + g * cog, d->cout, w + (long)g * cog * cig, cig, 1.0f,
                  dx + g * cig, d->cin);
        return;
    }
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (nt > 1 && n >= nt) {
#pragma omp parallel num_threads(nt)
        {
            int t = omp_get_thread_num(), T = omp_get_num_threads();
            int i0 = (int)((long)n * t / T), i1 = (int)((long)n * (t + 1) / T);
            int ch = chunk_images(d, imax(1, i1 - i0));
            float *dcol = sn_alloc(sizeof(float) * ch * rows * K, "col2im buffer");
            if (!dcol)
                conv2d_backward_data_ref(d, i1 - i0, dy + i0 * ys, w, dx + i0 * xs);
            else
                for (int i = i0; i < i1; i += ch) bwd_data_chunk(d, i, imin(ch, i1 - i), dy, w, dx, dcol);
            sn_free(dcol);
        }
        return;
    }
    int ch = chunk_images(d, n);
    float *dcol = sn_alloc(sizeof(float) * ch * rows * K, "col2im buffer");
    if (!dcol) {
        conv2d_backward_data_ref(d, n, dy, w, dx);
        return;
    }
    for (int i = 0; i < n; i += ch) bwd_data_chunk(d, i, imin(ch, n - i), dy, w, dx, dcol);
    sn_free(dcol);
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

void conv2d_backward_weights_gemm(const conv_desc *d, int n, const float *x, const float *dy, float *dw, float *db) {
    if (n <= 0) return;
    if (conv_is_depthwise(d)) {
        conv2d_depthwise_backward_weights(d, n, x, dy, dw, db);
        return;
    }
    int G = d->groups, cig = d->cin / G, cog = d->cout / G, rows = d->oh * d->ow;
    long K = (long)d->kh * d->kw * cig, xs = (long)d->h * d->w * d->cin, ys = (long)rows * d->cout;
    long wsz = (long)d->cout * K;
    if (db) colsum_acc((long)n * rows, d->cout, dy, db);
    if (!dw) return;
    if (is_pointwise(d)) {
        for (int g = 0; g < G; g++)
            gemm_sgemm(true, false, cog, cig, n * rows, 1.0f, dy + g * cog, d->cout, x + g * cig, d->cin, 1.0f,
                  dw + (long)g * cog * cig, cig);
        return;
    }
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    float *part = nt > 1 && n >= nt ? sn_alloc(sizeof(float) * nt * wsz, "conv weight-gradient partials") : NULL;
    if (part) {
        int used = 1;
#pragma omp parallel num_threads(nt)
        {
            int t = omp_get_thread_num(), T = omp_get_num_threads();
            int i0 = (int)((long)n * t / T), i1 = (int)((long)n * (t + 1) / T);
            float *p = part + t * wsz;
            memset(p, 0, sizeof(float) * wsz);
            if (t == 0) used = T;
            int ch = chunk_images(d, imax(1, i1 - i0));
            float *col = sn_alloc(sizeof(float) * ch * rows * K, "im2col buffer");
            if (!col)
                conv2d_backward_weights_ref(d, i1 - i0, x + i0 * xs, dy + i0 * ys, p, NULL);
            else
                for (int i = i0; i < i1; i += ch) bwd_w_chunk(d, i, imin(ch, i1 - i), x, dy, p, col, 0);
            sn_free(col);
#pragma omp barrier
#pragma omp for schedule(static)
            for (long e = 0; e < wsz; e++) {
                float s = part[e];
                for (int u = 1; u < used; u++) s += part[u * wsz + e];
                dw[e] += s;
            }
        }
        sn_free(part);
        return;
    }
    int ch = chunk_images(d, n);
    float *col = sn_alloc(sizeof(float) * ch * rows * K, "im2col buffer");
    if (!col) {
        conv2d_backward_weights_ref(d, n, x, dy, dw, NULL);
        return;
    }
    for (int i = 0; i < n; i += ch) bwd_w_chunk(d, i, imin(ch, n - i), x, dy, dw, col, nt > 1);
    sn_free(col);
}

/* ---- dispatch: oneDNN's primitives when they take the call, else the paths above ---- */

void conv2d_forward(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y) {
    conv2d_forward_keyed(d, n, x, w, b, y, 0);
}

void conv2d_forward_keyed(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y,
                          unsigned long wkey) {
    if (n <= 0) return;
    if (conv_is_depthwise(d) || conv2d_onednn_forward_keyed(d, n, x, w, b, y, wkey)) conv2d_forward_gemm(d, n, x, w, b, y);
}

void conv2d_backward_data(const conv_desc *d, int n, const float *dy, const float *w, float *dx) {
    if (n <= 0 || !dx) return;
    if (conv_is_depthwise(d) || conv2d_onednn_backward_data(d, n, dy, w, dx, 1)) conv2d_backward_data_gemm(d, n, dy, w, dx);
}

void conv2d_backward_data_set(const conv_desc *d, int n, const float *dy, const float *w, float *dx) {
    if (n <= 0 || !dx) return;
    if (conv_is_depthwise(d)) {
        conv2d_depthwise_backward_data_ex(d, n, dy, w, dx, 0, CONV_ACT_NONE, NULL);
        return;
    }
    if (!conv2d_onednn_backward_data(d, n, dy, w, dx, 0)) return;
    memset(dx, 0, sizeof(float) * n * d->h * d->w * d->cin);
    conv2d_backward_data_gemm(d, n, dy, w, dx);
}

void conv2d_backward_weights(const conv_desc *d, int n, const float *x, const float *dy, float *dw, float *db) {
    if (n <= 0) return;
    if (conv_is_depthwise(d) || !dw || conv2d_onednn_backward_weights(d, n, x, dy, dw)) {
        conv2d_backward_weights_gemm(d, n, x, dy, dw, db);
        return;
    }
    if (db) colsum_acc((long)n * d->oh * d->ow, d->cout, dy, db);
}
