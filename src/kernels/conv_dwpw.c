/* conv_dwpw.c - depthwise + 1x1 convolution in one pass (see conv_dwpw.h). */
#include "kernels/conv_dwpw.h"
#include <omp.h>
#include <string.h>
#include "core/error.h"
#include "kernels/conv_backend.h"
#include "kernels/gemm.h"

/* a row block aims at DWPW_M output pixels (the GEMM's M; fewer wastes the kernel's register
 * blocking) and holds at most DWPW_FLOATS floats of the depthwise output (256 KB, half of L2) */
#define DWPW_M 256
#define DWPW_FLOATS 65536

bool conv2d_dwpw_takes(const conv_desc *dw, const conv_desc *pw) {
    return conv_is_depthwise(dw) && pw->groups == 1 && pw->kh == 1 && pw->kw == 1 && pw->sh == 1 && pw->sw == 1 &&
           !pw->pt && !pw->pb && !pw->pl && !pw->pr && pw->cin == dw->cout && pw->h == dw->oh && pw->w == dw->ow;
}

/* rows per block: about DWPW_M pixels within DWPW_FLOATS, and at least one block per thread */
static int block_rows(const conv_desc *dw, int n, int threads) {
    const int OH = dw->oh, OW = dw->ow;
    int R = (DWPW_M + OW - 1) / OW;
    while (R > 1 && (long)R * OW * dw->cout > DWPW_FLOATS) R--;
    if (R > OH) R = OH;
    while (R > 1 && (long)n * ((OH + R - 1) / R) < threads) R = (R + 1) / 2;
    return R;
}

int conv2d_dwpw_forward(const conv_desc *dw, const conv_desc *pw, int n, const float *x, const float *wd,
                        const float *bd, const float *wp, const float *bp, const float *res, float *y) {
    if (!conv2d_dwpw_takes(dw, pw)) return sn_error("depthwise + 1x1 convolution: the shapes do not chain");
    if (n <= 0) return 0;
    const int OH = dw->oh, OW = dw->ow, C = dw->cout, CO = pw->cout;
    const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    const int R = block_rows(dw, n, threads), blocks = (OH + R - 1) / R;
    const long isz = (long)dw->h * dw->w * dw->cin, tile = (long)R * OW * C;
    float *wr = conv2d_depthwise_repack(dw, wd);
    float *buf = wr ? sn_alloc(sizeof(float) * (size_t)tile * threads, "depthwise + 1x1 convolution rows") : NULL;
    if (!buf) {
        sn_free(wr);
        return -1;
    }
    const long items = (long)n * blocks;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (long it = 0; it < items; it++) {
        const int i = (int)(it / blocks), oy0 = (int)(it % blocks) * R, rows = OH - oy0 < R ? OH - oy0 : R;
        float *t = buf + tile * omp_get_thread_num();
        for (int r = 0; r < rows; r++) conv2d_depthwise_forward_row(dw, x + i * isz, wr, bd, oy0 + r, t + (long)r * OW * C);
        const long M = (long)rows * OW, off = ((long)i * OH + oy0) * OW * CO;
        float *yt = y + off;
        const float *rt = res ? res + off : NULL;
        for (long p = 0; p < M; p++)
            for (int o = 0; o < CO; o++) yt[p * CO + o] = (bp ? bp[o] : 0.0f) + (rt ? rt[p * CO + o] : 0.0f);
        gemm_sgemm(false, true, (int)M, CO, C, 1.0f, t, C, wp, C, 1.0f, yt, CO);
        act_apply(pw->act, M * CO, yt);
    }
    sn_free(buf);
    sn_free(wr);
    return 0;
}

int conv2d_dwpw_forward_ref(const conv_desc *dw, const conv_desc *pw, int n, const float *x, const float *wd,
                            const float *bd, const float *wp, const float *bp, const float *res, float *y) {
    if (!conv2d_dwpw_takes(dw, pw)) return sn_error("depthwise + 1x1 convolution: the shapes do not chain");
    const long tn = (long)n * dw->oh * dw->ow * dw->cout, yn = (long)n * pw->oh * pw->ow * pw->cout;
    float *t = sn_alloc(sizeof(float) * (size_t)(tn > 0 ? tn : 1), "depthwise output");
    if (!t) return -1;
    conv2d_ref_forward(dw, n, x, wd, bd, t);
    conv_desc p = *pw;
    p.act = ACT_NONE;
    conv2d_ref_forward(&p, n, t, wp, bp, y);
    for (long k = 0; k < yn; k++) y[k] = act_value(pw->act, y[k] + (res ? res[k] : 0.0f));
    sn_free(t);
    return 0;
}
