/* rng.h - counter-based random numbers: the same seed gives the same numbers on every machine
 * and for any number of threads, because value i depends only on (seed, stream, i).
 */
#ifndef STYLENET_RNG_H
#define STYLENET_RNG_H
#include <stdint.h>
#include <math.h>

static inline uint64_t rng_mix(uint64_t z) { /* splitmix64 finaliser */
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* 64 random bits for element i of stream `stream` under `seed` */
static inline uint64_t rng_u64(uint64_t seed, uint64_t stream, uint64_t i) {
    return rng_mix(rng_mix(seed ^ rng_mix(stream)) + i);
}
/* uniform in [0, 1) with 24 bits */
static inline float rng_uniform(uint64_t seed, uint64_t stream, uint64_t i) {
    return (float)(rng_u64(seed, stream, i) >> 40) * (1.0f / 16777216.0f);
}
/* standard normal (Box-Muller on two uniforms of the same counter) */
static inline float rng_normal(uint64_t seed, uint64_t stream, uint64_t i) {
    uint64_t r = rng_u64(seed, stream, i);
    double u1 = ((double)(r >> 40) + 1.0) / 16777217.0, u2 = (double)((r >> 16) & 0xFFFFFF) / 16777216.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
#endif
