/* bench/conv_layers.c - each convolutional layer of a network as a fraction of the machine's FP32
 * peak, on one thread, timed by that thread's CPU time (so other work on a shared machine costs
 * less than in wall clock; cache sharing still shows, and the figures stay somewhat noisy).
 *
 * bench/run.sh runs it on ResNet-50 (its `layers` part). By hand, from the top of the tree, after
 * `make BUILD=build/x`:
 *   gcc -std=c11 -O2 -fopenmp -D_POSIX_C_SOURCE=200809L -Isrc bench/conv_layers.c \
 *       build/x/libcfgnet.a -lz -lm -lpthread -o build/x/bench_conv_layers
 *   OMP_NUM_THREADS=1 build/x/bench_conv_layers cfg/mobilenet_v2.cfg [-batch N] [-reps N]
 *       [-peak GFLOPS] [-unfused]
 * Any cfg: depthwise and grouped layers are rows too (their algorithm says which kernel).
 * The net is built for inference with its random initial weights on random inputs. Each of -reps
 * passes runs every layer's forward in order (as net_forward does); a layer's time is its best
 * over the passes; dead layers (auxiliary heads) are skipped as inference skips them. -peak is the
 * 1-thread FMA peak from bench/peak.c (default 98.5, this Zen 3). GFLOP/s count a convolution's
 * direct FLOPs (2 * F * R * OH * OW per image) whatever its algorithm, so a Winograd layer's figure
 * is an effective rate and may pass the peak. Prints one row per conv layer, then per kind (1x1,
 * 3x3, other) the fraction of peak of the kind's total FLOPs over its total time, and the whole
 * pass. In the inference net a [shortcut] is fused into the convolution below it (conv.c), whose
 * time then includes the residual addition (ResNet-50: the last 1x1 of each bottleneck);
 * -unfused builds with NET_SEPARATE_OUTPUTS instead, timing each convolution alone. Leaves
 * out: more than one thread (use `net speed` on a quiet machine for that).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/net.h"

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* best[i] = min(best[i], time of layer i's forward) over reps passes. */
static void time_layers(struct net *n, int reps, double *best)
{
    for (int i = 0; i < n->n; i++)
        best[i] = 1e30;
    for (int r = 0; r < reps; r++) {
        struct pass p;
        net_pass_init(n, &p, 0, 0);
        for (int i = 0; i < n->n; i++) {
            if (n->dead[i]) /* skipped by inference (an auxiliary head): no output to write */
                continue;
            double t0 = cpu_now();
            n->layers[i].ops->forward(&n->layers[i], &p);
            double t = cpu_now() - t0;
            best[i] = t < best[i] ? t : best[i];
        }
    }
}

/* 0: 1x1, 1: 3x3, 2: other conv, -1: not a conv (read from describe: "F KHxKW/..."). */
static int conv_kind(const struct layer *l, char *desc, size_t n)
{
    if (l->ops->type != LAYER_CONV)
        return -1;
    l->ops->describe(l, desc, n);
    const char *k = strchr(desc, ' ');
    if (k && !strncmp(k, " 1x1/", 5))
        return 0;
    if (k && !strncmp(k, " 3x3/", 5))
        return 1;
    return 2;
}

static void report(const struct net *n, const double *best, double peak)
{
    static const char *const kinds[3] = {"1x1", "3x3", "other"};
    double kf[3] = {0}, kt[3] = {0}, all = 0;
    printf("%5s  %-34s %-6s %-13s %9s %8s %6s  %s\n", "layer", "conv", "in", "output", "ms",
           "GFLOP/s", "peak", "algorithm");
    for (int i = 0; i < n->n; i++) {
        const struct layer *l = &n->layers[i];
        char desc[96] = "", alg[64] = "-";
        int k = conv_kind(l, desc, sizeof desc);
        if (n->dead[i])
            continue;
        all += best[i];
        if (k < 0)
            continue;
        l->ops->algorithm(l, alg, sizeof alg);
        double fl = l->ops->flops(l) * n->batch, g = fl / best[i] * 1e-9;
        kf[k] += fl;
        kt[k] += best[i];
        printf("%5d  %-34s %-6d %4dx%-4dx%-4d %9.3f %8.1f %5.1f%%  %s\n", i, desc, l->in.c,
               l->out.w, l->out.h, l->out.c, 1e3 * best[i], g, 100 * g / peak, alg);
    }
    for (int k = 0; k < 3; k++)
        if (kt[k] > 0)
            printf("%s layers: %.3f ms, %.1f GFLOP/s, %.1f%% of peak %.1f\n", kinds[k], 1e3 * kt[k],
                   kf[k] / kt[k] * 1e-9, 100 * kf[k] / kt[k] * 1e-9 / peak, peak);
    printf("all layers: %.3f ms per pass (sum of per-layer bests)\n", 1e3 * all);
}

int main(int argc, char **argv)
{
    long batch = 1, reps = 5;
    double peak = 98.5;
    int flags = 0;
    const char *cfg = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-batch") && i + 1 < argc)
            batch = atol(argv[++i]);
        else if (!strcmp(argv[i], "-reps") && i + 1 < argc)
            reps = atol(argv[++i]);
        else if (!strcmp(argv[i], "-peak") && i + 1 < argc)
            peak = atof(argv[++i]);
        else if (!strcmp(argv[i], "-unfused"))
            flags = NET_SEPARATE_OUTPUTS;
        else if (!cfg && argv[i][0] != '-')
            cfg = argv[i];
        else
            cfg = NULL, i = argc;
    }
    if (!cfg || batch < 1 || batch > 4096 || reps < 1 || reps > 1000 || peak <= 0) {
        fprintf(stderr, "usage: bench_conv_layers CFG [-batch N] [-reps N] [-peak GFLOPS] [-unfused]\n");
        return 1;
    }
    cn_error e;
    struct net *n;
    if (net_create(&n, cfg, (int)batch, flags, &e)) {
        fprintf(stderr, "bench_conv_layers: %s\n", e.msg);
        return 1;
    }
    for (size_t i = 0; i < net_inputs(n) * (size_t)n->batch; i++)
        n->input[i] = (float)((i * 2654435761u) % 1000u) / 1000.f;
    double *best = xcalloc((size_t)n->n, sizeof *best);
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p); /* warm-up: pages, first-use preparation */
    time_layers(n, (int)reps, best);
    printf("%s: batch %d, 1 thread, CPU time, best of %ld passes\n", cfg, n->batch, reps);
    report(n, best, peak);
    free(best);
    net_destroy(n);
    return 0;
}
