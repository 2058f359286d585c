/* bench_bf16.c - is a bfloat16 mode worth having on this CPU?  One thread, two measurements:
 *
 *  1. instruction throughput: 12 independent accumulator chains of AVX-512 FMA (vfmadd231ps,
 *     32 flops per instruction) against the same of AVX512-BF16's dot product (vdpbf16ps, 64 flops
 *     per instruction: 32 bf16 pairs multiplied and added into 16 floats).  Where vdpbf16ps issues
 *     as often as an FMA, bf16 doubles the peak; where it issues half as often, it gives nothing.
 *  2. oneDNN's GEMMs on resnet-like im2col shapes: dnnl_sgemm (f32) against
 *     dnnl_gemm_bf16bf16f32 (bf16 inputs, f32 accumulation and output), median of 7 runs each.
 *     dnnl_gemm_bf16bf16f32 is exported by libdnnl but declared only in oneDNN's internal headers:
 *     declared here with its documented signature (row-major, like dnnl_sgemm).
 *
 * Usage: bench_bf16 (prints a table; exit status 0).  Without AVX512-BF16 it says so and skips (1).
 */
#include <immintrin.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

dnnl_status_t dnnl_gemm_bf16bf16f32(char transa, char transb, dnnl_dim_t M, dnnl_dim_t N, dnnl_dim_t K, float alpha,
                                    const uint16_t *A, dnnl_dim_t lda, const uint16_t *B, dnnl_dim_t ldb, float beta,
                                    float *C, dnnl_dim_t ldc);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

/* GFLOPS of 12 chains of FMA; the chains start from different values so none can be merged */
__attribute__((target("avx512f"))) static double fma_gflops(long iters, float seed) {
    __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
#define DECL(j) __m512 c##j = _mm512_set1_ps(seed + (float)(j));
    CHAINS(DECL)
    double t = now();
    for (long i = 0; i < iters; i++) {
#define STEP(j) c##j = _mm512_fmadd_ps(c##j, a, b);
        CHAINS(STEP)
    }
    t = now() - t;
    float s = 0;
#define SUM(j) s += _mm512_reduce_add_ps(c##j);
    CHAINS(SUM)
    if (s == 12345.0f) printf(" ");
    return iters * 12.0 * 32 / t / 1e9;
}

__attribute__((target("avx512f,avx512bf16"))) static double dpbf16_gflops(long iters, float seed) {
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380); /* 1, ~6e-8 */
    CHAINS(DECL)
    double t = now();
    for (long i = 0; i < iters; i++) {
#define STEPB(j) c##j = _mm512_dpbf16_ps(c##j, a, b);
        CHAINS(STEPB)
    }
    t = now() - t;
    float s = 0;
    CHAINS(SUM)
    if (s == 12345.0f) printf(" ");
    return iters * 12.0 * 64 / t / 1e9;
}

static double median_ms(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmpd);
    return t[n / 2] * 1e3;
}

int main(void) {
    if (!__builtin_cpu_supports("avx512bf16")) {
        printf("bench_bf16: this CPU has no AVX512-BF16; nothing to compare\n");
        return 1;
    }
    omp_set_num_threads(1);
    const long iters = 50000000;
    double f = 0, g = 0;
    for (int r = 0; r < 3; r++) { /* best of 3 */
        double a = fma_gflops(iters, 1.0f + r), b = dpbf16_gflops(iters, 1.0f + r);
        if (a > f) f = a;
        if (b > g) g = b;
    }
    printf("one core, 12 independent chains:\n");
    printf("  vfmadd231ps (f32 FMA)        %7.1f GFLOPS\n", f);
    printf("  vdpbf16ps   (bf16 dot, f32)  %7.1f GFLOPS  (%.2fx the f32 FMA)\n\n", g, g / f);

    /* oneDNN GEMMs: C[M,N] = A[M,K] * B[N,K]^T, the forward im2col GEMM of a 3x3 conv */
    static const int shapes[][3] = {{2048, 64, 576}, {512, 128, 1152}, {128, 256, 2304}, {512, 256, 2304}, {32, 512, 4608}};
    printf("oneDNN GEMM, one thread, median of 7 (M x N x K; the im2col GEMM of resnet 3x3 layers):\n");
    printf("  %-20s %10s %10s %8s\n", "shape", "f32 GF/s", "bf16 GF/s", "bf16/f32");
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * N * K), *C = malloc(sizeof(float) * M * N);
        uint16_t *Ah = malloc(2L * M * K), *Bh = malloc(2L * N * K);
        if (!A || !B || !C || !Ah || !Bh) return 1;
        for (long i = 0; i < (long)M * K; i++) {
            A[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
            uint32_t u;
            memcpy(&u, &A[i], 4);
            Ah[i] = (uint16_t)(u >> 16);
        }
        for (long i = 0; i < (long)N * K; i++) {
            B[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
            uint32_t u;
            memcpy(&u, &B[i], 4);
            Bh[i] = (uint16_t)(u >> 16);
        }
        double tf[7], tb[7];
        int bad = 0;
        for (int r = 0; r < 7; r++) {
            double t = now();
            bad |= dnnl_sgemm('N', 'T', M, N, K, 1.0f, A, K, B, K, 0.0f, C, N) != dnnl_success;
            tf[r] = now() - t;
            t = now();
            bad |= dnnl_gemm_bf16bf16f32('N', 'T', M, N, K, 1.0f, Ah, K, Bh, K, 0.0f, C, N) != dnnl_success;
            tb[r] = now() - t;
        }
        double flop = 2.0 * M * N * K, mf = median_ms(tf, 7), mb = median_ms(tb, 7);
        char nm[32];
        snprintf(nm, sizeof nm, "%dx%dx%d", M, N, K);
        printf("  %-20s %10.1f %10.1f %8.2f%s\n", nm, flop / mf / 1e6, flop / mb / 1e6, mf / mb, bad ? "  (a GEMM failed)" : "");
        free(A), free(B), free(C), free(Ah), free(Bh);
    }
    return 0;
}
