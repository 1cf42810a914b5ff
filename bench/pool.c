/* pool.c - pooling kernels (kernels/pool.h) on the zoo's shapes: GB/s moved, against the copy
 * bandwidth bench/membw.c measures (13.8 GB/s on 1 thread, 18.1 on 2 on this machine).
 *
 *   make BUILD=build/x lib && cc -O2 -fopenmp -Isrc bench/pool.c build/x/libcfgnet.a -lm \
 *       -o bench_pool && ./bench_pool [-batch 16] [-reps 9] [-threads 1]
 *
 * Bytes count as STREAM's do: the input read once plus the output written once (batch x C x h x
 * w and batch x C x oh x ow floats). Each case runs -reps times on the same buffers (the input
 * of the large ones far exceeds the caches; the small ones' stays in L2/L3, so they may beat
 * memory bandwidth); prints the best. With 1 thread the time is the thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID: robust to other processes on a loaded machine); with more, the
 * monotonic clock. A plain copy of 256 MiB, timed alike, comes first: each case's share of it
 * is the figure to read on a loaded machine. Leaves out: backward, and max pooling with argmax
 * (training).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/pool.h"

enum kind { MAX, AVG, GLOBAL };

struct pcase {
    const char *name;
    enum kind kind;
    int c, h, w, size, stride, pad, ceil_mode; /* pad: maxpool's total, avgpool's per side */
};

static const struct pcase cases[] = {
    {"squeezenet maxpool 1", MAX, 64, 111, 111, 3, 2, 0, 1},
    {"squeezenet maxpool 12", MAX, 128, 55, 55, 3, 2, 0, 1},
    {"resnet maxpool 3x3/2 pad", MAX, 64, 112, 112, 3, 2, 2, 0},
    {"vgg16 maxpool 2x2/2", MAX, 64, 224, 224, 2, 2, 0, 0},
    {"googlenet maxpool 3x3/1", MAX, 192, 28, 28, 3, 1, 2, 0},
    {"inception_v3 maxpool 3x3/2", MAX, 64, 147, 147, 3, 2, 0, 0},
    {"inception_v3 avgpool 3x3/1", AVG, 192, 35, 35, 3, 1, 1, 0},
    {"resnet50 global avg 7x7", GLOBAL, 2048, 7, 7, 0, 0, 0, 0},
    {"squeezenet global avg 13x13", GLOBAL, 1000, 13, 13, 0, 0, 0, 0},
};

static double now(int threads)
{
    struct timespec ts;
    clock_gettime(threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void run(const struct pcase *k, float *out, const float *in, int P,
                const struct pool_geom *g)
{
    if (k->kind == MAX)
        pool_max_forward(out, NULL, in, P, g);
    else if (k->kind == AVG)
        pool_avg_forward(out, in, P, g);
    else
        pool_global_avg_forward(out, in, P, k->h * k->w);
}

/* GB/s of a plain copy of n floats (read + write counted, as membw's copy), timed as the cases
 * are: the reference the cases are measured against in the same run. */
static double copy_gbs(size_t n, int reps, int threads)
{
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    if (!a || !b) {
        fprintf(stderr, "bench_pool: cannot allocate 2 x %zu floats\n", n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        a[i] = (float)i, b[i] = 0;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now(threads);
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            b[i] = a[i];
        double t = now(threads) - t0;
        best = t < best ? t : best;
    }
    if (b[n / 2] == 12345.f) /* keeps the stores live */
        printf("#\n");
    free(a), free(b);
    return 2 * sizeof(float) * (double)n / best / 1e9;
}

static void bench(const struct pcase *k, int batch, int reps, int threads, double copy)
{
    struct pool_geom g = {.oh = 1, .ow = 1};
    int bad = k->kind == MAX ? pool_max_geom(&g, k->h, k->w, k->size, k->stride, k->stride,
                                             k->pad, k->ceil_mode)
              : k->kind == AVG ? pool_avg_geom(&g, k->h, k->w, k->size, k->stride, k->stride,
                                               k->pad, k->ceil_mode, 1)
                               : 0;
    if (bad) {
        fprintf(stderr, "bench_pool: bad case %s\n", k->name);
        exit(1);
    }
    int P = batch * k->c;
    size_t ni = (size_t)P * (size_t)(k->h * k->w), no = (size_t)P * (size_t)(g.oh * g.ow);
    float *in = malloc(sizeof(float) * ni), *out = malloc(sizeof(float) * no);
    if (!in || !out) {
        fprintf(stderr, "bench_pool: cannot allocate %zu floats\n", ni + no);
        exit(1);
    }
    for (size_t i = 0; i < ni; i++)
        in[i] = (float)((i * 2654435761u) % 1000) * 1e-3f;
    memset(out, 0, sizeof(float) * no);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now(threads);
        run(k, out, in, P, &g);
        double t = now(threads) - t0;
        best = t < best ? t : best;
    }
    double bytes = sizeof(float) * (double)(ni + no);
    printf("%-30s %6.1f MB  %8.3f ms  %6.1f GB/s  %4.0f%% of copy\n", k->name, bytes / 1e6,
           best * 1e3, bytes / best / 1e9, 100 * bytes / best / 1e9 / copy);
    free(in), free(out);
}

int main(int argc, char **argv)
{
    int batch = 16, reps = 9, threads = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-batch"))
            batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-reps"))
            reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-threads"))
            threads = atoi(argv[i + 1]);
        else
            batch = 0;
    }
    if (argc % 2 == 0 || batch < 1 || reps < 1 || threads < 1) {
        fprintf(stderr, "usage: bench_pool [-batch 16] [-reps 9] [-threads 1]\n");
        return 1;
    }
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    printf("# pooling forward, batch %d, %d thread%s, best of %d (%s)\n", batch, threads,
           threads == 1 ? "" : "s", reps, threads == 1 ? "thread CPU time" : "wall clock");
    double copy = copy_gbs((size_t)64 << 20, reps, threads);
    printf("copy of 256 MiB: %.1f GB/s\n", copy);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        bench(&cases[i], batch, reps, threads, copy);
    return 0;
}
