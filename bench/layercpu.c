/* bench/layercpu.c - per-layer forward time of a net by CPU time, for a machine shared with other
 * jobs (where `net speed`'s wall clock is noise): each layer's forward between two readings of
 * CLOCK_PROCESS_CPUTIME_ID (all threads' CPU time; with one thread, that thread's), best of -reps
 * passes, after one warm-up pass. Inference only; random inputs in [0, 1) and initial weights.
 *
 * Build and run (from the top of the tree, after `make BUILD=build/x`):
 *   gcc -std=c11 -O2 -fopenmp -D_POSIX_C_SOURCE=200809L -Isrc bench/layercpu.c \
 *       build/x/libcfgnet.a -lstb -lm -lpthread -o build/x/bench_layercpu
 *   OMP_NUM_THREADS=1 build/x/bench_layercpu CFG [batch] [reps] [substring]
 * Prints layers whose description contains `substring` (all when absent), then the sum of every
 * layer's best time and the sum over the printed ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/rng.h"
#include "net/net.h"

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs("usage: bench_layercpu CFG [batch] [reps] [substring]\n", stderr);
        return 1;
    }
    int batch = argc > 2 ? atoi(argv[2]) : 1, reps = argc > 3 ? atoi(argv[3]) : 5;
    const char *only = argc > 4 ? argv[4] : NULL;
    struct net *n;
    cn_error e;
    if (net_create(&n, argv[1], batch, 0, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    net_init_params(n, 1);
    cn_rng r;
    cn_rng_seed(&r, 1);
    for (size_t i = 0; i < net_inputs(n) * (size_t)batch; i++)
        n->input[i] = (float)cn_rng_uniform(&r);
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    double *best = malloc(sizeof(double) * (size_t)n->n);
    for (int i = 0; i < n->n; i++)
        best[i] = 1e30;
    for (int k = 0; k < reps; k++) {
        net_pass_init(n, &p, 0, 0);
        for (int i = 0; i < n->n; i++) {
            double t0 = cpu_ms();
            n->layers[i].ops->forward(&n->layers[i], &p);
            double t = cpu_ms() - t0;
            best[i] = t < best[i] ? t : best[i];
        }
    }
    double all = 0, shown = 0;
    for (int i = 0; i < n->n; i++) {
        struct layer *l = &n->layers[i];
        char d[160] = "", a[96] = "";
        if (l->ops->describe)
            l->ops->describe(l, d, sizeof d);
        if (l->ops->algorithm)
            l->ops->algorithm(l, a, sizeof a);
        all += best[i];
        if (only && !strstr(d, only))
            continue;
        shown += best[i];
        double gf = l->ops->flops ? l->ops->flops(l) * batch / (best[i] * 1e6) : 0;
        printf("%4d %-48s %4dx%-4dx%-5d %9.3f ms %6.1f GFLOP/s  %s\n", i, d, l->out.h, l->out.w,
               l->out.c, best[i], gf, a);
    }
    printf("sum of best: all layers %.3f ms, shown %.3f ms\n", all, shown);
    free(best);
    net_destroy(n);
    return 0;
}
