/* peak.c - the machine's FP32 peak: a fused multiply-add microbenchmark, GFLOP/s on 1 and 2
 * threads (or those given).
 *
 *   cc -O2 -fopenmp bench/peak.c -o peak && ./peak [-threads 1,2] [-seconds S]
 *
 * Each thread runs a loop of FMAs on ACC independent vector accumulators, held in registers: an
 * FMA's latency (4 cycles on Zen 3 and Skylake-X) times the FMA units per core (2) is the number
 * of independent chains a core needs to retire one FMA per unit per cycle, so ACC = 12 (AVX2:
 * 16 ymm registers; AVX-512: 32 zmm, also 12) covers it with room. The inputs are chosen so the
 * values stay finite and normal (x = x * a + b with a just below 1: no denormals). FLOPs count an
 * FMA as 2 per lane. The ISA is picked at run time (cpuid via __builtin_cpu_supports): AVX-512F
 * when the CPU has it, else AVX2+FMA, else plain scalar C (a lower bound, said so).
 * Prints lines "peak ISA threads T gflops G", the best of 5 timed runs of about S/5 seconds each.
 * Leaves out: frequency changes under load (what it measures is the sustained rate it sees).
 */
#define _POSIX_C_SOURCE 200809L
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define ACC 12
#define INNER 1000 /* FMA rounds per loop trip, per accumulator */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Each returns the sum of its accumulators (kept so the compiler cannot drop the loop). */
__attribute__((target("avx512f"))) static float run_avx512(long trips)
{
    __m512 acc[ACC], a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
    for (int k = 0; k < ACC; k++)
        acc[k] = _mm512_set1_ps(1.f + 0.01f * (float)k);
    for (long t = 0; t < trips; t++)
        for (int i = 0; i < INNER; i++)
#pragma GCC unroll 12
            for (int k = 0; k < ACC; k++)
                acc[k] = _mm512_fmadd_ps(acc[k], a, b);
    float s = 0;
    for (int k = 0; k < ACC; k++)
        s += _mm512_reduce_add_ps(acc[k]);
    return s;
}

__attribute__((target("avx2,fma"))) static float run_avx2(long trips)
{
    __m256 acc[ACC], a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
    for (int k = 0; k < ACC; k++)
        acc[k] = _mm256_set1_ps(1.f + 0.01f * (float)k);
    for (long t = 0; t < trips; t++)
        for (int i = 0; i < INNER; i++)
#pragma GCC unroll 12
            for (int k = 0; k < ACC; k++)
                acc[k] = _mm256_fmadd_ps(acc[k], a, b);
    float out[8], s = 0;
    for (int k = 0; k < ACC; k++) {
        _mm256_storeu_ps(out, acc[k]);
        for (int j = 0; j < 8; j++)
            s += out[j];
    }
    return s;
}

static float run_scalar(long trips)
{
    float acc[ACC], a = 0.999999f, b = 1e-6f;
    for (int k = 0; k < ACC; k++)
        acc[k] = 1.f + 0.01f * (float)k;
    for (long t = 0; t < trips; t++)
        for (int i = 0; i < INNER; i++)
#pragma GCC unroll 12
            for (int k = 0; k < ACC; k++)
                acc[k] = acc[k] * a + b;
    float s = 0;
    for (int k = 0; k < ACC; k++)
        s += acc[k];
    return s;
}

struct isa {
    const char *name;
    int lanes;
    float (*run)(long trips);
};

static struct isa pick_isa(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return (struct isa){"avx512", 16, run_avx512};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return (struct isa){"avx2-fma", 8, run_avx2};
    return (struct isa){"scalar", 1, run_scalar};
}

/* GFLOP/s of `threads` threads each running `trips` trips at once. */
static double measure(const struct isa *isa, int threads, long trips, float *sink)
{
    double t0 = now();
    float s = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(+ : s)
#endif
    s += isa->run(trips);
    double dt = now() - t0;
    *sink += s;
    return 2.0 * isa->lanes * ACC * INNER * (double)trips * threads / dt / 1e9;
}

static void bench(const struct isa *isa, int threads, double seconds, float *sink)
{
    long trips = 1;
    double t0 = now();
    measure(isa, threads, trips, sink);
    while (now() - t0 < 0.05) { /* size a run: about seconds/5 of work */
        trips *= 2;
        t0 = now();
        measure(isa, threads, trips, sink);
    }
    trips = (long)((double)trips * (seconds / 5) / (now() - t0)) + 1;
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double g = measure(isa, threads, trips, sink);
        best = g > best ? g : best;
    }
    printf("peak %s threads %d gflops %.1f\n", isa->name, threads, best);
}

int main(int argc, char **argv)
{
    const char *list = "1,2";
    double seconds = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-threads"))
            list = argv[i + 1];
        else if (!strcmp(argv[i], "-seconds"))
            seconds = atof(argv[i + 1]);
        else
            return fprintf(stderr, "usage: peak [-threads 1,2] [-seconds S]\n"), 1;
    }
    if (argc % 2 == 0 || seconds <= 0)
        return fprintf(stderr, "usage: peak [-threads 1,2] [-seconds S]\n"), 1;
    struct isa isa = pick_isa();
    float sink = 0;
    char *copy = strdup(list);
    for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ","))
        if (atoi(tok) > 0)
            bench(&isa, atoi(tok), seconds, &sink);
    free(copy);
    if (isa.lanes == 1)
        printf("# no AVX2+FMA or AVX-512 on this CPU: the scalar figure is a lower bound\n");
    return sink == 12345.f; /* never: keeps the results live */
}
