/* rng.h - explicit, seedable random state (xoshiro256**, seeded through splitmix64).
 *
 * Every consumer of randomness owns a cn_rng; there is no global generator. The same seed gives the
 * same stream on every platform (no libm-dependent state, normal deviates by Box-Muller in double).
 * The state is a plain value: copying a cn_rng forks the stream, and it holds, besides the
 * generator's four words, the second deviate of the last Box-Muller pair until it is used.
 */
#ifndef CN_RNG_H
#define CN_RNG_H

#include <stdint.h>

typedef struct cn_rng {
    uint64_t s[4];
    double spare;  /* cn_rng_normal: the pair's second deviate, when has_spare */
    int has_spare; /* 0 after seeding */
} cn_rng;

void cn_rng_seed(cn_rng *r, uint64_t seed);
/* Derives an independent stream from a parent seed and a stream number (per worker, per sample). */
void cn_rng_seed_stream(cn_rng *r, uint64_t seed, uint64_t stream);
uint64_t cn_rng_next(cn_rng *r);
/* Uniform in [0, 1). */
double cn_rng_uniform(cn_rng *r);
/* Uniform integer in [0, n), n >= 1, without modulo bias. */
uint64_t cn_rng_below(cn_rng *r, uint64_t n);
/* Standard normal deviate. Box-Muller gives two per pair of uniforms: odd calls draw the pair
 * (two cn_rng_next) and return the cosine one, even calls return the sine one, drawing nothing. */
double cn_rng_normal(cn_rng *r);
/* Fisher-Yates shuffle of an int array. */
void cn_rng_shuffle(cn_rng *r, int *a, int n);

#endif
