/* conv_ref.c - convolution descriptor helpers and the direct (seven-loop) reference
 * convolutions the fast kernels are tested against.  Accumulation is in double. */
#include "kernels/conv.h"
#include "core/error.h"
#include <string.h>

int conv_desc_init(conv_desc *d) {
    if (d->h <= 0 || d->w <= 0 || d->cin <= 0 || d->cout <= 0 || d->kh <= 0 || d->kw <= 0)
        return sn_error("conv: sizes must be positive (h %d w %d cin %d cout %d kernel %dx%d)", d->h, d->w,
                        d->cin, d->cout, d->kh, d->kw);
    if (d->sh <= 0 || d->sw <= 0) return sn_error("conv: stride %dx%d must be positive", d->sh, d->sw);
    if (d->pt < 0 || d->pb < 0 || d->pl < 0 || d->pr < 0)
        return sn_error("conv: negative padding (%d %d %d %d)", d->pt, d->pb, d->pl, d->pr);
    if (d->algo < CONV_ALGO_AUTO || d->algo > CONV_ALGO_WINOGRAD) return sn_error("conv: unknown algorithm %d", d->algo);
    if (d->groups <= 0 || d->cin % d->groups || d->cout % d->groups)
        return sn_error("conv: groups %d must divide cin %d and cout %d", d->groups, d->cin, d->cout);
    int eh = d->h + d->pt + d->pb - d->kh, ew = d->w + d->pl + d->pr - d->kw;
    if (eh < 0 || ew < 0)
        return sn_error("conv: kernel %dx%d larger than padded input %dx%d", d->kh, d->kw, d->h + d->pt + d->pb,
                        d->w + d->pl + d->pr);
    d->oh = eh / d->sh + 1;
    d->ow = ew / d->sw + 1;
    return 0;
}

void conv_same_padding(int in, int k, int stride, int *pad_lo, int *pad_hi) {
    int out = (in + stride - 1) / stride;
    int total = (out - 1) * stride + k - in;
    if (total < 0) total = 0;
    *pad_lo = total / 2;
    *pad_hi = total - *pad_lo;
}

double conv2d_macs(const conv_desc *d, int n) {
    return (double)n * d->oh * d->ow * d->cout * d->kh * d->kw * (d->cin / d->groups);
}

void conv2d_forward_ref(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y) {
    int cig = d->cin / d->groups, cog = d->cout / d->groups;
    for (int i = 0; i < n; i++)
        for (int oy = 0; oy < d->oh; oy++)
            for (int ox = 0; ox < d->ow; ox++)
                for (int co = 0; co < d->cout; co++) {
                    int g = co / cog;
                    double s = b ? b[co] : 0.0;
                    for (int ky = 0; ky < d->kh; ky++) {
                        int iy = oy * d->sh - d->pt + ky;
                        if (iy < 0 || iy >= d->h) continue;
                        for (int kx = 0; kx < d->kw; kx++) {
                            int ix = ox * d->sw - d->pl + kx;
                            if (ix < 0 || ix >= d->w) continue;
                            const float *xp = x + (((long)i * d->h + iy) * d->w + ix) * d->cin + g * cig;
                            const float *wp = w + (((long)co * d->kh + ky) * d->kw + kx) * cig;
                            for (int c = 0; c < cig; c++) s += (double)xp[c] * wp[c];
                        }
                    }
                    float v = (float)s;
                    if (d->act) v = v > 0.0f ? (d->act == CONV_ACT_RELU6 && v > 6.0f ? 6.0f : v) : 0.0f;
                    y[(((long)i * d->oh + oy) * d->ow + ox) * d->cout + co] = v;
                }
}

/* dx[i,iy,ix,ci] += sum over (oy,ox,ky,kx,co in ci's group) dy * w: gathered per input element */
void conv2d_backward_data_ref(const conv_desc *d, int n, const float *dy, const float *w, float *dx) {
    int cig = d->cin / d->groups, cog = d->cout / d->groups;
    for (int i = 0; i < n; i++)
        for (int iy = 0; iy < d->h; iy++)
            for (int ix = 0; ix < d->w; ix++)
                for (int ci = 0; ci < d->cin; ci++) {
                    int g = ci / cig, c = ci % cig;
                    double s = 0;
                    for (int ky = 0; ky < d->kh; ky++) {
                        int t = iy + d->pt - ky;
                        if (t < 0 || t % d->sh) continue;
                        int oy = t / d->sh;
                        if (oy >= d->oh) continue;
                        for (int kx = 0; kx < d->kw; kx++) {
                            int u = ix + d->pl - kx;
                            if (u < 0 || u % d->sw) continue;
                            int ox = u / d->sw;
                            if (ox >= d->ow) continue;
                            const float *dyp = dy + (((long)i * d->oh + oy) * d->ow + ox) * d->cout;
                            for (int co = g * cog; co < (g + 1) * cog; co++)
                                s += (double)dyp[co] * w[(((long)co * d->kh + ky) * d->kw + kx) * cig + c];
                        }
                    }
                    dx[(((long)i * d->h + iy) * d->w + ix) * d->cin + ci] += (float)s;
                }
}

void conv2d_backward_weights_ref(const conv_desc *d, int n, const float *x, const float *dy, float *dw, float *db) {
    int cig = d->cin / d->groups, cog = d->cout / d->groups;
    if (dw)
        for (int co = 0; co < d->cout; co++) {
            int g = co / cog;
            for (int ky = 0; ky < d->kh; ky++)
                for (int kx = 0; kx < d->kw; kx++)
                    for (int c = 0; c < cig; c++) {
                        double s = 0;
                        for (int i = 0; i < n; i++)
                            for (int oy = 0; oy < d->oh; oy++) {
                                int iy = oy * d->sh - d->pt + ky;
                                if (iy < 0 || iy >= d->h) continue;
                                for (int ox = 0; ox < d->ow; ox++) {
                                    int ix = ox * d->sw - d->pl + kx;
                                    if (ix < 0 || ix >= d->w) continue;
                                    s += (double)x[(((long)i * d->h + iy) * d->w + ix) * d->cin + g * cig + c] *
                                         dy[(((long)i * d->oh + oy) * d->ow + ox) * d->cout + co];
                                }
                            }
                        dw[(((long)co * d->kh + ky) * d->kw + kx) * cig + c] += (float)s;
                    }
        }
    if (db)
        for (int co = 0; co < d->cout; co++) {
            double s = 0;
            for (long r = 0; r < (long)n * d->oh * d->ow; r++) s += dy[r * d->cout + co];
            db[co] += (float)s;
        }
}
