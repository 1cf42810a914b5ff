/* membw.c - main-memory bandwidth, STREAM's way: copy (b = a) and triad (a = b + s * c) over
 * arrays far larger than the caches, GB/s on 1 and 2 threads (or those given).
 *
 *   cc -O2 -fopenmp bench/membw.c -o membw && ./membw [-threads 1,2] [-mb 1024] [-reps 5]
 *
 * Three float arrays of -mb/3 MiB each (about 1 GiB in all by default), first touched by the
 * threads that use them (OpenMP static schedule on the same loop bounds throughout). Bytes count
 * as STREAM does: copy reads and writes one array (2 x size), triad reads two and writes one
 * (3 x size); the write-allocate read of the destination is not counted, so these figures are
 * what a kernel that streams its data once can expect. Prints "membw copy|triad threads T gbs G",
 * the best of -reps runs. Leaves out: non-temporal stores (plain loops, as our kernels write).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void init(float *a, float *b, float *c, long n, int threads)
{
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads)
#endif
    for (long i = 0; i < n; i++) {
        a[i] = 1.f;
        b[i] = 2.f;
        c[i] = 0.5f;
    }
    (void)threads;
}

static double copy(float *restrict b, const float *restrict a, long n, int threads)
{
    double t0 = now();
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads)
#endif
    for (long i = 0; i < n; i++)
        b[i] = a[i];
    (void)threads;
    return now() - t0;
}

static double triad(float *restrict a, const float *restrict b, const float *restrict c, float s,
                    long n, int threads)
{
    double t0 = now();
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads)
#endif
    for (long i = 0; i < n; i++)
        a[i] = b[i] + s * c[i];
    (void)threads;
    return now() - t0;
}

static void bench(int threads, long n, int reps)
{
    float *a = aligned_alloc(64, sizeof(float) * (size_t)n);
    float *b = aligned_alloc(64, sizeof(float) * (size_t)n);
    float *c = aligned_alloc(64, sizeof(float) * (size_t)n);
    if (!a || !b || !c) {
        fprintf(stderr, "membw: cannot allocate 3 x %ld floats\n", n);
        exit(1);
    }
    init(a, b, c, n, threads);
    double best_copy = 1e30, best_triad = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = copy(b, a, n, threads);
        best_copy = t < best_copy ? t : best_copy;
        t = triad(a, b, c, 0.5f, n, threads);
        best_triad = t < best_triad ? t : best_triad;
    }
    double bytes = sizeof(float) * (double)n;
    printf("membw copy threads %d gbs %.1f\n", threads, 2 * bytes / best_copy / 1e9);
    printf("membw triad threads %d gbs %.1f\n", threads, 3 * bytes / best_triad / 1e9);
    if (a[n / 2] == 12345.f) /* keeps the stores live */
        printf("#\n");
    free(a), free(b), free(c);
}

int main(int argc, char **argv)
{
    const char *list = "1,2";
    long mb = 1024;
    int reps = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-threads"))
            list = argv[i + 1];
        else if (!strcmp(argv[i], "-mb"))
            mb = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "-reps"))
            reps = atoi(argv[i + 1]);
        else
            mb = 0;
    }
    if (argc % 2 == 0 || mb < 3 || reps < 1) {
        fprintf(stderr, "usage: membw [-threads 1,2] [-mb 1024] [-reps 5]\n");
        return 1;
    }
    long n = mb / 3 * (1L << 20) / (long)sizeof(float);
    char *copy_list = strdup(list);
    for (char *tok = strtok(copy_list, ","); tok; tok = strtok(NULL, ","))
        if (atoi(tok) > 0)
            bench(atoi(tok), n, reps);
    free(copy_list);
    return 0;
}
