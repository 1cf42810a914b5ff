/* bench/gemm.c - cfgnet's gemm against OpenBLAS's cblas_sgemm, side by side in one run.
 *
 * Shapes: the 2048^2 square and the GEMMs of the convolutions of ResNet-50 and VGG-16 at batch 1,
 * 224x224 input, as im2col + GEMM computes them: C[M x N] = W[M x K] * col[K x N] with
 * M = filters, K = channels * kh * kw, N = output positions (row-major, no transposes, beta 0).
 * Each distinct shape is listed once, with the number of layers that share it.
 *
 * For each thread count and shape, the two libraries run alternately (cfgnet, OpenBLAS, cfgnet,
 * ...) so a change in the machine's load hits both alike; each figure is the best and the median
 * of the repeats, in GFLOP/s (2*M*N*K / seconds). With several threads, both libraries keep
 * their pools spinning after a call (OpenBLAS's for about 2^28 cycles, libgomp's for a while):
 * a call right after the other library's would share the cores with its spinning threads. So
 * each repeat is an untimed call of the same library (its pool awake, as in a network), then
 * the median of BURST timed calls back to back (burst), and, with threads, follows a pause of
 * QUIET_US after the other library's last call (its pool asleep). Wall-clock time
 * (CLOCK_MONOTONIC); the process CPU time is printed too (cpu: best of cfgnet, OpenBLAS,
 * ratio), which a busy machine disturbs less: 2*M*N*K / CPU seconds, i.e. GFLOP/s per busy
 * thread (with several threads a thread spinning at a barrier counts as busy, so it shows
 * efficiency, not speed). The ratio is cfgnet / OpenBLAS of the best figures (>= 1: cfgnet
 * faster).
 *
 * usage: bench_gemm [-threads 1,2] [-reps N] [-only square|resnet50|vgg16] [-shape NAME] [-check]
 * Threads: omp_set_num_threads for cfgnet, openblas_set_num_threads for OpenBLAS. -shape runs
 * only the shapes whose layer name is NAME (e.g. "l1 3x3 64").
 * -check also compares the two results (max relative difference) on each shape.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
#include <omp.h>

#include "kernels/gemm.h"

struct shape {
    const char *net, *name;
    int M, N, K, layers;
};

static const struct shape shapes[] = {
    {"square", "2048^2", 2048, 2048, 2048, 1},
    {"resnet50", "conv1 7x7/2", 64, 12544, 147, 1},
    {"resnet50", "l1 1x1 64>64", 64, 3136, 64, 1},
    {"resnet50", "l1 3x3 64", 64, 3136, 576, 3},
    {"resnet50", "l1 1x1 64>256", 256, 3136, 64, 4},
    {"resnet50", "l1 1x1 256>64", 64, 3136, 256, 2},
    {"resnet50", "l2 1x1 256>128", 128, 3136, 256, 1},
    {"resnet50", "l2 3x3 128", 128, 784, 1152, 4},
    {"resnet50", "l2 1x1 128>512", 512, 784, 128, 4},
    {"resnet50", "l2 down 256>512", 512, 784, 256, 1},
    {"resnet50", "l2 1x1 512>128", 128, 784, 512, 3},
    {"resnet50", "l3 1x1 512>256", 256, 784, 512, 1},
    {"resnet50", "l3 3x3 256", 256, 196, 2304, 6},
    {"resnet50", "l3 1x1 256>1024", 1024, 196, 256, 6},
    {"resnet50", "l3 down 512>1024", 1024, 196, 512, 1},
    {"resnet50", "l3 1x1 1024>256", 256, 196, 1024, 5},
    {"resnet50", "l4 1x1 1024>512", 512, 196, 1024, 1},
    {"resnet50", "l4 3x3 512", 512, 49, 4608, 3},
    {"resnet50", "l4 1x1 512>2048", 2048, 49, 512, 3},
    {"resnet50", "l4 down 1024>2048", 2048, 49, 1024, 1},
    {"resnet50", "l4 1x1 2048>512", 512, 49, 2048, 2},
    {"vgg16", "conv1_1", 64, 50176, 27, 1},
    {"vgg16", "conv1_2", 64, 50176, 576, 1},
    {"vgg16", "conv2_1", 128, 12544, 576, 1},
    {"vgg16", "conv2_2", 128, 12544, 1152, 1},
    {"vgg16", "conv3_1", 256, 3136, 1152, 1},
    {"vgg16", "conv3_2-3", 256, 3136, 2304, 2},
    {"vgg16", "conv4_1", 512, 784, 2304, 1},
    {"vgg16", "conv4_2-3", 512, 784, 4608, 2},
    {"vgg16", "conv5_1-3", 512, 196, 4608, 3},
};

static double now(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define BURST 5         /* timed calls per repeat (burst) */
#define QUIET_US 250000 /* longer than OpenBLAS's spin (2^28 cycles) on a 2+ GHz machine */

/* Sleep until the thread pool of the library that ran last has gone to sleep. */
static void quiet(void)
{
    struct timespec d = {0, QUIET_US * 1000L};
    while (nanosleep(&d, &d) != 0)
        ;
}

struct timing {
    double wall[64], cpu[64];
};

/* One run of library lib (0 cfgnet, 1 OpenBLAS), recorded as repeat r. */
static void run_once(int lib, const struct shape *s, float *C, const float *A, const float *B,
                     struct timing *t, int r)
{
    double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    if (lib == 0)
        gemm(C, s->N, A, s->K, 0, B, s->N, 0, s->M, s->N, s->K, 1, 0);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->M, s->N, s->K, 1, A, s->K, B,
                    s->N, 0, C, s->N);
    t->wall[r] = now(CLOCK_MONOTONIC) - w0;
    t->cpu[r] = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
}

/* Repeat r of library lib: the median of BURST calls back to back, as a network makes them.
 * With threads, a single call after a pause may find the kernel has put libgomp's worker on
 * the vCPU of the thread that woke it (seen in a Firecracker guest: every call of any size then
 * took one 4 ms scheduler tick); a burst's median is the speed once the team is spread. */
static void burst(int lib, const struct shape *s, float *C, const float *A, const float *B,
                  struct timing *t, int r)
{
    double w[BURST], c[BURST];
    for (int i = 0; i < BURST; i++) {
        run_once(lib, s, C, A, B, t, r);
        w[i] = t->wall[r], c[i] = t->cpu[r];
    }
    qsort(w, BURST, sizeof(double), cmp_double);
    qsort(c, BURST, sizeof(double), cmp_double);
    t->wall[r] = w[BURST / 2], t->cpu[r] = c[BURST / 2];
}

static double max_rel_diff(const float *x, const float *y, size_t n)
{
    double d = 0, m = 1e-30;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)x[i] - (double)y[i]));
        m = fmax(m, fabs((double)y[i]));
    }
    return d / m;
}

/* Best and median GFLOP/s of reps timings. */
static void rates(const double *sec, int reps, double flop, double *best, double *median)
{
    double s[64];
    memcpy(s, sec, sizeof(double) * (size_t)reps);
    qsort(s, (size_t)reps, sizeof(double), cmp_double);
    *best = flop / s[0] * 1e-9;
    *median = flop / s[reps / 2] * 1e-9;
}

static void bench_shape(const struct shape *s, int threads, int reps, int check)
{
    size_t na = (size_t)s->M * s->K, nb = (size_t)s->K * s->N, nc = (size_t)s->M * s->N;
    float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb);
    float *C0 = malloc(sizeof(float) * nc), *C1 = malloc(sizeof(float) * nc);
    if (!A || !B || !C0 || !C1) {
        fprintf(stderr, "bench_gemm: out of memory\n");
        exit(1);
    }
    unsigned x = 12345;
    for (size_t i = 0; i < na; i++)
        A[i] = (float)((x = x * 1103515245u + 12345u) >> 8) / 16777216.f - 0.5f;
    for (size_t i = 0; i < nb; i++)
        B[i] = (float)((x = x * 1103515245u + 12345u) >> 8) / 16777216.f - 0.5f;
    struct timing t[2];
    run_once(0, s, C0, A, B, &t[0], 0); /* warm-up: pages, caches, thread pools */
    run_once(1, s, C1, A, B, &t[1], 0);
    double diff = check ? max_rel_diff(C0, C1, nc) : 0;
    for (int r = 0; r < reps; r++)
        for (int lib = 0; lib < 2; lib++) {
            if (threads > 1)
                quiet();
            run_once(lib, s, lib ? C1 : C0, A, B, &t[lib], r); /* wakes lib's pool */
            burst(lib, s, lib ? C1 : C0, A, B, &t[lib], r);
        }
    double flop = 2.0 * s->M * s->N * s->K, b[2], m[2], cb[2], cm[2];
    for (int lib = 0; lib < 2; lib++) {
        rates(t[lib].wall, reps, flop, &b[lib], &m[lib]);
        rates(t[lib].cpu, reps, flop, &cb[lib], &cm[lib]);
    }
    printf("%-8s %-18s %5d %6d %5d %2d %d | %7.1f %7.1f | %7.1f %7.1f | %5.2f %5.2f", s->net,
           s->name, s->M, s->N, s->K, s->layers, threads, b[0], m[0], b[1], m[1], b[0] / b[1],
           m[0] / m[1]);
    printf(" | cpu %6.1f %6.1f %5.2f", cb[0], cb[1], cb[0] / cb[1]);
    if (check)
        printf(" | diff %.1e", diff);
    printf("\n");
    fflush(stdout);
    free(A);
    free(B);
    free(C0);
    free(C1);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_gemm [-threads 1,2] [-reps N] [-only square|resnet50|vgg16] "
                    "[-shape NAME] [-check]\n");
    exit(1);
}

int main(int argc, char **argv)
{
    const char *threads = "1,2", *only = NULL, *shape = NULL;
    int reps = 5, check = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-threads") && i + 1 < argc)
            threads = argv[++i];
        else if (!strcmp(argv[i], "-reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-only") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "-shape") && i + 1 < argc)
            shape = argv[++i];
        else if (!strcmp(argv[i], "-check"))
            check = 1;
        else
            usage();
    }
    if (reps < 1 || reps > 64)
        usage();
    double load[3] = {0};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
            load[0] = -1;
        fclose(f);
    }
    printf("# cfgnet gemm vs OpenBLAS %s (%s), %d repeats, load average %.2f %.2f %.2f\n",
           openblas_get_config(), openblas_get_corename(), reps, load[0], load[1], load[2]);
    printf("# GFLOP/s: best, median; ratio = cfgnet / OpenBLAS (best, median)\n");
    printf("%-8s %-18s %5s %6s %5s %2s %s | %15s | %15s | %11s\n", "net", "layer", "M", "N", "K",
           "#", "t", "cfgnet", "OpenBLAS", "ratio");
    for (const char *p = threads; *p;) {
        int nt = atoi(p);
        if (nt < 1)
            usage();
        omp_set_num_threads(nt);
        openblas_set_num_threads(nt);
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            if ((!only || !strcmp(only, shapes[i].net)) &&
                (!shape || !strcmp(shape, shapes[i].name)))
                bench_shape(&shapes[i], nt, reps, check);
        p = strchr(p, ',');
        if (!p)
            break;
        p++;
    }
    return 0;
}
