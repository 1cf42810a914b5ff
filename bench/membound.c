/* membound.c - the memory-bound kernels on the zoo's shapes, GB/s moved against the copy
 * bandwidth of the same run: pooling (kernels/pool.h), the fully connected layers' GEMV at batch
 * 1 (kernels/gemv.h), and the element-wise activation and per-channel affine + activation
 * (kernels/activations.h: an [activation] layer, a batch norm or bias applied outside a GEMM).
 *
 *   make BUILD=build/x lib && cc -O2 -fopenmp -Isrc bench/membound.c build/x/libcfgnet.a -lm \
 *       -o bench_membound && ./bench_membound [-batch 16] [-reps 9] [-threads 1]
 *
 * Bytes count as STREAM's do: each operand read once plus the output written once (pooling:
 * batch x C x h x w in, batch x C x oh x ow out; GEMV: the O x I weights, x and y; element-wise:
 * n in, n out, in place). Each case runs -reps times on the same buffers (the input
 * of the large ones far exceeds the caches; the small ones' stays in L2/L3, so they may beat
 * memory bandwidth); prints the best. With 1 thread the time is the thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID: robust to other processes on a loaded machine); with more, the
 * monotonic clock. A plain copy of 256 MiB, timed alike, comes first: each case's share of it
 * is the figure to read on a loaded machine. The affine kernel is single-threaded by contract
 * (its callers split rows), so at more threads this bench splits the channels as they do.
 * Leaves out: backward, max pooling with argmax (training), and [shortcut]/[route], which
 * inference fuses into the convolution below or writes in place.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/activations.h"
#include "kernels/gemv.h"
#include "kernels/pool.h"

enum kind { MAX, AVG, GLOBAL, GEMV, ACT, AFFINE };

/* GEMV: c outputs of h inputs, at batch 1 whatever -batch says. */
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
    {"vgg16 fc6 gemv 25088>4096", GEMV, 4096, 25088, 1, 0, 0, 0, 0},
    {"vgg16 fc7 gemv 4096>4096", GEMV, 4096, 4096, 1, 0, 0, 0, 0},
    {"vgg16 fc8 gemv 4096>1000", GEMV, 1000, 4096, 1, 0, 0, 0, 0},
    {"alexnet fc6 gemv 9216>4096", GEMV, 4096, 9216, 1, 0, 0, 0, 0},
    {"resnet leaky 64x112x112", ACT, 64, 112, 112, 0, 0, 0, 0},
    {"resnet bn+relu 256x56x56", AFFINE, 256, 56, 56, 0, 0, 0, 0},
};

static double now(int threads)
{
    struct timespec ts;
    clock_gettime(threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* scale and shift: P per-channel values (AFFINE). */
static void run(const struct pcase *k, float *out, const float *in, int P,
                const struct pool_geom *g, const float *scale, const float *shift)
{
    size_t hw = (size_t)k->h * (size_t)k->w;
    if (k->kind == GEMV)
        gemv(out, in, in + (size_t)k->c * (size_t)k->h, k->c, k->h, 0);
    else if (k->kind == ACT)
        act_forward(out, out, (size_t)P * hw, ACT_LEAKY);
    else if (k->kind == AFFINE) {
#pragma omp parallel for schedule(static)
        for (int p = 0; p < P; p++)
            act_forward_affine(out + (size_t)p * hw, out + (size_t)p * hw, 1, hw, scale + p,
                               shift + p, ACT_RELU);
    } else if (k->kind == MAX)
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
        fprintf(stderr, "bench_membound: cannot allocate 2 x %zu floats\n", n);
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

/* Floats a case reads (ni, into in) and writes (no); element-wise cases run in place on out. */
static void case_sizes(const struct pcase *k, int P, const struct pool_geom *g, size_t *ni,
                       size_t *no)
{
    size_t hw = (size_t)k->h * (size_t)k->w;
    if (k->kind == GEMV)
        *ni = (size_t)k->c * (size_t)k->h + (size_t)k->h, *no = (size_t)k->c;
    else if (k->kind == ACT || k->kind == AFFINE)
        *ni = 0, *no = (size_t)P * hw;
    else
        *ni = (size_t)P * hw, *no = (size_t)P * (size_t)(g->oh * g->ow);
}

static void *alloc_or_die(size_t floats)
{
    void *p = malloc(sizeof(float) * (floats ? floats : 1));
    if (!p) {
        fprintf(stderr, "bench_membound: cannot allocate %zu floats\n", floats);
        exit(1);
    }
    return p;
}

static void fill(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.25f;
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
        fprintf(stderr, "bench_membound: bad case %s\n", k->name);
        exit(1);
    }
    int P = k->kind == GEMV ? 1 : batch * k->c;
    size_t ni, no;
    case_sizes(k, P, &g, &ni, &no);
    float *in = alloc_or_die(ni), *out = alloc_or_die(no);
    float *scale = alloc_or_die((size_t)P), *shift = alloc_or_die((size_t)P);
    fill(in, ni), fill(out, no), fill(scale, (size_t)P), fill(shift, (size_t)P);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now(threads);
        run(k, out, in, P, &g, scale, shift);
        double t = now(threads) - t0;
        best = t < best ? t : best;
    }
    /* in place: the output is read and written */
    double bytes = sizeof(float) * (double)(ni + no + (ni ? 0 : no));
    printf("%-30s %6.1f MB  %8.3f ms  %6.1f GB/s  %4.0f%% of copy\n", k->name, bytes / 1e6,
           best * 1e3, bytes / best / 1e9, 100 * bytes / best / 1e9 / copy);
    free(in), free(out), free(scale), free(shift);
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
        fprintf(stderr, "usage: bench_membound [-batch 16] [-reps 9] [-threads 1]\n");
        return 1;
    }
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    printf("# memory-bound kernels, batch %d (GEMV: 1), %d thread%s, best of %d (%s)\n", batch, threads,
           threads == 1 ? "" : "s", reps, threads == 1 ? "thread CPU time" : "wall clock");
    double copy = copy_gbs((size_t)64 << 20, reps, threads);
    printf("copy of 256 MiB: %.1f GB/s\n", copy);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        bench(&cases[i], batch, reps, threads, copy);
    return 0;
}
