/* conv_winograd.c - Winograd F(2x2,3x3) and F(4x4,3x3) convolution for inference (see
 * conv_winograd.h). */
#include "kernels/conv_winograd.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "kernels/gemm_tile.h"

/* A block of tiles holds at most WG_FLOATS floats of transformed input and output together (2 MB:
 * each GEMM's rows of input stay in L2 while its weight panels stream, the block in L2 and L3),
 * and at most WG_TILES tiles. */
#define WG_FLOATS (512 * 1024)
#define WG_TILES 512
/* the vector width the transforms run on: 8 channels */
#define VL 8

#define AI static inline __attribute__((always_inline))

/* the weight transforms G [alpha][3], row-major (B^T and A^T are written out in bt_1d and at_1d) */
static const double G2[4 * 3] = {1, 0, 0, 0.5, 0.5, 0.5, 0.5, -0.5, 0.5, 0, 0, 1};
static const double G4[6 * 3] = {1.0 / 4,  0,        0,       -1.0 / 6, -1.0 / 6, -1.0 / 6,
                                 -1.0 / 6, 1.0 / 6,  -1.0 / 6, 1.0 / 24, 1.0 / 12, 1.0 / 6,
                                 1.0 / 24, -1.0 / 12, 1.0 / 6, 0,        0,        1};

static long imin(long a, long b) { return a < b ? a : b; }
static long round8(long v) { return (v + 7) / 8 * 8; }
static long round16(long v) { return (v + 15) / 16 * 16; }

bool conv2d_winograd_takes(const conv_desc *d) {
    return d->groups == 1 && d->kh == 3 && d->kw == 3 && d->sh == 1 && d->sw == 1 && d->oh > 0 && d->ow > 0;
}

int conv2d_winograd_tile(const conv_desc *d) {
    const int s = d->oh < d->ow ? d->oh : d->ow;
    return s >= 20 ? 4 : s >= 4 ? 2 : 0;
}

int conv2d_winograd_train_tile(const conv_desc *d) {
    const int s = d->oh < d->ow ? d->oh : d->ow;
    return s >= 16 ? 4 : s >= 8 ? 2 : 0;
}

size_t conv2d_winograd_weights_size(const conv_desc *d, int m) {
    return (size_t)(m + 2) * (size_t)(m + 2) * (size_t)d->cin * (size_t)round8(d->cout);
}

/* input channels whose weights are transformed together (loops over them vectorise) */
#define PB 8

/* the weights transformed for tile m into u: d's own (w OHWI for d), or with flip the rotated
 * and transposed ones of a backward-data convolution (d = its descriptor, w the forward
 * convolution's OHWI weights [d->cin][3][3][d->cout]) */
static void pack_weights(const conv_desc *d, int m, const float *w, bool flip, float *u) {
    const int A = m + 2, C = d->cin;
    const long N8 = round8(d->cout);
    const double *G = m == 4 ? G4 : G2;
#pragma omp parallel for schedule(static)
    for (long o = 0; o < N8; o++) {
        const long n0 = o / 24 * 24, nw = imin(24, N8 - n0); /* o's panel (conv2d_dwpw_pack_1x1's layout) */
        for (int c0 = 0; c0 < C; c0 += PB) {
            const int cw = (int)imin(PB, C - c0);
            /* the kernels of channels c0.. (zero past cout and past C), G k, G k G^T */
            double k[3][3][PB] = {{{0}}}, gk[6][3][PB], v[6][6][PB];
            for (int ky = 0; ky < 3 && o < d->cout; ky++)
                for (int kx = 0; kx < 3; kx++)
                    for (int j = 0; j < cw; j++)
                        k[ky][kx][j] = flip ? w[(((c0 + j) * 3L + 2 - ky) * 3 + 2 - kx) * d->cout + o]
                                            : w[((o * 3 + ky) * 3 + kx) * C + c0 + j];
            for (int a = 0; a < A; a++)
                for (int kx = 0; kx < 3; kx++)
                    for (int j = 0; j < PB; j++)
                        gk[a][kx][j] = G[a * 3] * k[0][kx][j] + G[a * 3 + 1] * k[1][kx][j] + G[a * 3 + 2] * k[2][kx][j];
            for (int a = 0; a < A; a++)
                for (int b = 0; b < A; b++)
                    for (int j = 0; j < PB; j++)
                        v[a][b][j] = gk[a][0][j] * G[b * 3] + gk[a][1][j] * G[b * 3 + 1] + gk[a][2][j] * G[b * 3 + 2];
            for (int g = 0; g < A * A; g++)
                for (int j = 0; j < cw; j++)
                    u[g * N8 * C + n0 * C + (c0 + j) * nw + (o - n0)] = (float)v[g / A][g % A][j];
        }
    }
}

void conv2d_winograd_pack(const conv_desc *d, int m, const float *w, float *u) { pack_weights(d, m, w, false, u); }

bool conv2d_winograd_backward_data_desc(const conv_desc *d, conv_desc *bd) {
    if (!conv2d_winograd_takes(d) || d->pt > 2 || d->pb > 2 || d->pl > 2 || d->pr > 2) return false;
    *bd = (conv_desc){.h = d->oh, .w = d->ow, .cin = d->cout, .cout = d->cin, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
                      .pt = 2 - d->pt, .pb = 2 - d->pb, .pl = 2 - d->pl, .pr = 2 - d->pr, .groups = 1,
                      .algo = d->algo};
    return conv_desc_init(bd) == 0 && bd->oh == d->h && bd->ow == d->w;
}

void conv2d_winograd_pack_backward_data(const conv_desc *bd, int m, const float *w, float *u) {
    pack_weights(bd, m, w, true, u);
}

/* how a call is cut: tiles th x tw per image, T in all, nb blocks of TB; N8 output channels in
 * the GEMMs, in P panels of 24 split into G groups; the work items are (block, group), each run
 * by one thread on vfl + mfl floats of its own (transformed input and output of a block) */
typedef struct {
    int m, A, th, tw, threads;
    long N8, P, G, T, TB, nb, vfl, mfl;
} wg_plan;

static wg_plan plan_of(const conv_desc *d, int m, int n) {
    wg_plan p = {.m = m, .A = m + 2, .th = (d->oh + m - 1) / m, .tw = (d->ow + m - 1) / m};
    p.threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (p.threads < 1) p.threads = 1;
    p.N8 = round8(d->cout);
    p.P = (p.N8 + 23) / 24;
    p.T = (long)n * p.th * p.tw;
    const long per = (long)p.A * p.A * (d->cin + p.N8);
    long tb = WG_FLOATS / per;
    tb = tb < 4 ? 4 : tb > WG_TILES ? WG_TILES : tb;
    p.nb = p.T > 0 ? (p.T + tb - 1) / tb : 1;
    /* fewer blocks than threads: as many more as the threads need, while each keeps 16 tiles */
    while (p.nb < p.threads && (p.T + p.nb) / (p.nb + 1) >= 16) p.nb++;
    p.TB = (p.T + p.nb - 1) / p.nb;
    /* then the output channels split until every thread has as many items (or 4 at least) */
    p.G = 1;
    while ((p.nb * p.G) % p.threads && p.nb * p.G < 4 * p.threads && p.G < p.P) p.G++;
    p.vfl = round16((long)p.A * p.A * p.TB * d->cin);
    p.mfl = round16((long)p.A * p.A * p.TB * p.N8);
    return p;
}

size_t conv2d_winograd_scratch(const conv_desc *d, int m, int n) {
    if (!conv2d_winograd_takes(d) || (m != 2 && m != 4)) return 0;
    const wg_plan p = plan_of(d, m, n);
    return (size_t)(p.vfl + p.mfl) * (size_t)p.threads;
}

/* 8 channels in one vector (GCC/clang vector extensions: one ymm register with AVX) */
typedef float v8 __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

static inline v8 load8(const float *p) {
    v8 v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void store8(float *p, v8 v) { memcpy(p, &v, sizeof v); }
static inline v8 splat(float f) { return (v8){f, f, f, f, f, f, f, f}; }

/* B^T applied to A vectors d[0], d[s], ..., written to r[0], r[q], ... */
AI void bt_1d(const int A, const v8 *d, int s, v8 *r, int q) {
    if (A == 4) {
        r[0] = d[0] - d[2 * s], r[q] = d[s] + d[2 * s], r[2 * q] = d[2 * s] - d[s], r[3 * q] = d[s] - d[3 * s];
        return;
    }
    const v8 four = splat(4.0f), five = splat(5.0f), two = splat(2.0f);
    const v8 t1 = d[4 * s] - four * d[2 * s], t2 = d[3 * s] - four * d[s];
    const v8 t3 = d[4 * s] - d[2 * s], t4 = two * (d[3 * s] - d[s]);
    r[0] = four * d[0] - five * d[2 * s] + d[4 * s];
    r[q] = t1 + t2, r[2 * q] = t1 - t2, r[3 * q] = t3 + t4, r[4 * q] = t3 - t4;
    r[5 * q] = four * d[s] - five * d[3 * s] + d[5 * s];
}

/* A^T applied to A vectors t[0], t[s], ..., written to r[0], r[q], ... (m of them) */
AI void at_1d(const int A, const v8 *t, int s, v8 *r, int q) {
    if (A == 4) {
        r[0] = t[0] + t[s] + t[2 * s], r[q] = t[s] - t[2 * s] - t[3 * s];
        return;
    }
    const v8 a = t[s] + t[2 * s], b = t[s] - t[2 * s], c = t[3 * s] + t[4 * s], e = t[3 * s] - t[4 * s];
    r[0] = t[0] + a + c, r[q] = b + splat(2.0f) * e, r[2 * q] = a + splat(4.0f) * c;
    r[3 * q] = b + splat(8.0f) * e + t[5 * s];
}

/* the input transform of tile t of the block (its origin iy0, ix0 in image xi[h, w, C]):
 * v[g][t][c] = (B^T d B)[g] for every channel c, d zero outside the image */
AI void input_tile(const int A, const conv_desc *d, const float *xi, int iy0, int ix0, long TB, long t, float *v) {
    const int C = d->cin;
    const bool inside = iy0 >= 0 && ix0 >= 0 && iy0 + A <= d->h && ix0 + A <= d->w;
    v8 in[36], tmp[36];
    for (int c0 = 0; c0 < C; c0 += VL) {
        const int cw = (int)imin(VL, C - c0);
        if (inside && cw == VL) {
#pragma GCC unroll 6
            for (int i = 0; i < A; i++)
#pragma GCC unroll 6
                for (int j = 0; j < A; j++) in[i * A + j] = load8(xi + ((long)(iy0 + i) * d->w + ix0 + j) * C + c0);
        } else { /* a tile over the border (zero outside), or the last channels (cw < 8) */
#pragma GCC unroll 6
            for (int i = 0; i < A; i++)
#pragma GCC unroll 6
                for (int j = 0; j < A; j++) {
                    const int iy = iy0 + i, ix = ix0 + j;
                    const float *src = xi + ((long)iy * d->w + ix) * C + c0;
                    in[i * A + j] = splat(0.0f);
                    if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w) continue;
                    if (cw == VL) {
                        in[i * A + j] = load8(src);
                    } else {
                        float f[VL] = {0};
                        memcpy(f, src, sizeof(float) * (size_t)cw);
                        in[i * A + j] = load8(f);
                    }
                }
        }
#pragma GCC unroll 6
        for (int j = 0; j < A; j++) bt_1d(A, in + j, A, tmp + j, A); /* columns: B^T d */
#pragma GCC unroll 6
        for (int i = 0; i < A; i++) bt_1d(A, tmp + i * A, 1, in + i * A, 1); /* rows: (B^T d) B */
        float *dst = v + t * C + c0;
        const long gs = TB * C; /* from one matrix g to the next */
        if (cw == VL) {
#pragma GCC unroll 6
            for (int g = 0; g < A * A; g++) store8(dst + g * gs, in[g]);
        } else {
            for (int g = 0; g < A * A; g++) {
                float f[VL];
                store8(f, in[g]);
                memcpy(dst + g * gs, f, sizeof(float) * (size_t)cw);
            }
        }
    }
}

/* act(r) of 8 lanes: ReLU max(r, 0) (0 for NaN, as act_value), ReLU6 min of that and 6 */
static inline v8 act8(sn_act act, v8 r) {
    if (act == ACT_NONE) return r;
    const v8i pos = r > splat(0.0f);
    r = (v8)((v8i)r & pos);
    if (act == ACT_RELU6) {
        const v8i lo = r < splat(6.0f);
        r = (v8)(((v8i)r & lo) | ((v8i)splat(6.0f) & ~lo));
    }
    return r;
}

/* the output transform of tile t of the block (its origin oy0, ox0 in image output yi, residual
 * ri or NULL): y = act(A^T M A + b + res), the m x m outputs inside the map, channels [o_lo, o_hi) */
AI void output_tile(const int m, const int A, const conv_desc *d, const float *mt, long TB, long N8, long t,
                    int o_lo, int o_hi, const float *b, const float *ri, int oy0, int ox0, float *yi) {
    const int O = d->cout;
    v8 in[36], tmp[24], out[16];
    const int hy = (int)imin(m, d->oh - oy0), hx = (int)imin(m, d->ow - ox0);
    for (int o0 = o_lo; o0 < o_hi; o0 += VL) {
        const int ow8 = (int)imin(VL, o_hi - o0);
        const float *src = mt + t * N8 + o0;
#pragma GCC unroll 6
        for (int g = 0; g < A * A; g++) in[g] = load8(src + g * TB * N8);
#pragma GCC unroll 6
        for (int j = 0; j < A; j++) at_1d(A, in + j, A, tmp + j, A); /* columns: A^T M, m rows of A */
#pragma GCC unroll 4
        for (int i = 0; i < m; i++) at_1d(A, tmp + i * A, 1, out + i * m, 1); /* rows: (A^T M) A */
        v8 bias = splat(0.0f);
        if (b && ow8 == VL) {
            bias = load8(b + o0);
        } else if (b) {
            float f[VL] = {0};
            memcpy(f, b + o0, sizeof(float) * (size_t)ow8);
            bias = load8(f);
        }
        for (int i = 0; i < hy; i++)
            for (int j = 0; j < hx; j++) {
                const long off = ((long)(oy0 + i) * d->ow + ox0 + j) * O + o0;
                v8 r = out[i * m + j];
                if (b) r += bias;
                if (ow8 == VL) {
                    if (ri) r += load8(ri + off);
                    store8(yi + off, act8(d->act, r));
                } else {
                    float q[VL] = {0};
                    if (ri) memcpy(q, ri + off, sizeof(float) * (size_t)ow8);
                    if (ri) r += load8(q);
                    store8(q, act8(d->act, r));
                    memcpy(yi + off, q, sizeof(float) * (size_t)ow8);
                }
            }
    }
}

/* the GEMMs of a block of tb tiles for matrix g and panel pj: mt[g][t][n0..] = v[g][t] * u[g];
 * next: the panel read after this one (prefetched), or NULL */
static void block_gemm(const wg_plan *p, int C, long tb, int g, long pj, const float *v, const float *u,
                       const float *next, float *mt) {
    const long n0 = pj * 24, nw = imin(24, p->N8 - n0);
    const float *a = v + (long)g * p->TB * C, *panel = u + (long)g * p->N8 * C + n0 * C;
    float *c = mt + (long)g * p->TB * p->N8 + n0;
#ifdef GEMM_TILE
    gemm_panel_rows((int)(nw / 8), tb, C, a, panel, NULL, NULL, p->N8, ACT_NONE, c, next);
#else
    (void)next;
    for (long r = 0; r < tb; r++)
        for (long j = 0; j < nw; j++) {
            float s = 0;
            for (int k = 0; k < C; k++) s += a[r * C + k] * panel[k * nw + j];
            c[r * p->N8 + j] = s;
        }
#endif
}

/* the tile's image, and its origin in tiles */
static void tile_at(const wg_plan *p, long gt, long *img, int *ty, int *tx) {
    const long per = (long)p->th * p->tw, r = gt % per;
    *img = gt / per, *ty = (int)(r / p->tw), *tx = (int)(r % p->tw);
}

/* work item (blk, grp): the tiles of block blk (their input transform unless the thread's last
 * item had the same block) and the output channels of panel group grp */
AI void run_item(const int m, const int A, const wg_plan *p, const conv_desc *d, const float *x, const float *u,
                 const float *b, const float *res, float *y, long blk, long grp, bool transformed, float *v,
                 float *mt) {
    const long isz = (long)d->h * d->w * d->cin, osz = (long)d->oh * d->ow * d->cout;
    const long t0 = blk * p->TB, tb = imin(p->TB, p->T - t0);
    const long pa = p->P * grp / p->G, pb = p->P * (grp + 1) / p->G;
    long img;
    int ty, tx;
    for (long t = 0; t < tb && !transformed; t++) {
        tile_at(p, t0 + t, &img, &ty, &tx);
        input_tile(A, d, x + img * isz, ty * m - d->pt, tx * m - d->pl, p->TB, t, v);
    }
    for (int g = 0; g < A * A; g++)
        for (long pj = pa; pj < pb; pj++) { /* the next panel: this matrix's, else the next one's first */
            const long ng = pj + 1 < pb ? g : g + 1, np = pj + 1 < pb ? pj + 1 : pa;
            const float *next = ng < A * A ? u + ng * p->N8 * d->cin + np * 24 * d->cin : NULL;
            block_gemm(p, d->cin, tb, g, pj, v, u, next, mt);
        }
    const int o_lo = (int)(pa * 24), o_hi = (int)imin(d->cout, pb * 24);
    for (long t = 0; t < tb; t++) {
        tile_at(p, t0 + t, &img, &ty, &tx);
        output_tile(m, A, d, mt, p->TB, p->N8, t, o_lo, o_hi, b, res ? res + img * osz : NULL, ty * m, tx * m,
                    y + img * osz);
    }
}

int conv2d_winograd_forward(const conv_desc *d, int m, int n, const float *x, const float *u, const float *b,
                            const float *res, float *y, float *scratch) {
    if (!conv2d_winograd_takes(d)) return sn_error("Winograd convolution: not a dense 3x3 stride-1 shape");
    if (m != 2 && m != 4) return sn_error("Winograd convolution: output tile %d (2 or 4 only)", m);
    if (n <= 0) return 0;
    const wg_plan p = plan_of(d, m, n);
    const long items = p.nb * p.G;
#pragma omp parallel num_threads(p.threads) if (p.threads > 1)
    {
        float *v = scratch + (p.vfl + p.mfl) * omp_get_thread_num(), *mt = v + p.vfl;
        long last = -1; /* the block whose input transform v holds */
#pragma omp for schedule(static)
        for (long it = 0; it < items; it++) {
            const long blk = it / p.G, grp = it % p.G;
            if (m == 4) run_item(4, 6, &p, d, x, u, b, res, y, blk, grp, blk == last, v, mt);
            else run_item(2, 4, &p, d, x, u, b, res, y, blk, grp, blk == last, v, mt);
            last = blk;
        }
    }
    return 0;
}
