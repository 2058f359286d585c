/* conv_ref.c - the reference backend (conv_backend.h): direct seven-loop convolutions of any
 * shape, accumulating in double, with no work buffers.  The dispatcher's last fallback, and the
 * oracle the fast backends are tested against. */
#include "kernels/conv_backend.h"

void conv2d_ref_forward(const conv_desc *d, int n, const float *x, const float *w, const float *b, float *y) {
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
                    y[(((long)i * d->oh + oy) * d->ow + ox) * d->cout + co] = act_value(d->act, (float)s);
                }
}

/* dx[i,iy,ix,ci] += sum over (oy,ox,ky,kx,co in ci's group) dy * w: gathered per input element */
void conv2d_ref_backward_data(const conv_desc *d, int n, const float *dy, const float *w, float *dx) {
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

void conv2d_ref_backward_weights(const conv_desc *d, int n, const float *x, const float *dy, float *dw, float *db) {
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
