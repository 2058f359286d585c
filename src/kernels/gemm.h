/* gemm.h - the one place stylenet calls a GEMM library.
 *
 * Row-major single-precision GEMM: C[M,N] = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T.
 * gemm_sgemm() calls oneDNN's dnnl_sgemm, which picks its AVX-512 / AVX2 / NEON kernel from the CPU
 * at run time with no environment variable (Debian's OpenBLAS 0.3.21 does not recognise this
 * CPU and would fall back to a generic kernel).  Called from inside an OpenMP parallel region it
 * runs on the calling thread only; outside one it uses all threads.
 * gemm_sgemm_ref() is the plain triple loop, for tests.
 */
#ifndef STYLENET_GEMM_H
#define STYLENET_GEMM_H
#include <stdbool.h>

void gemm_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
           const float *B, int ldb, float beta, float *C, int ldc);
void gemm_sgemm_ref(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);
#endif
