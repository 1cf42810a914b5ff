/* speed.c - `net speed CFG [-batch N] [-train] [-iters N] [-warmup N] [-threads N]`: where the
 * time of a pass goes, layer by layer (Darknet's `speed`, with GFLOP/s and each layer's kernel).
 *
 * The net is built with its initial (random) weights, on random inputs and, with -train, random
 * one-hot targets. -warmup passes go through net_forward (and net_backward and the optimiser step
 * with -train), which faults the buffers in and lets anything prepared on first use settle. Then
 * -iters timed passes call each layer's forward between two readings of the monotonic clock, as
 * net_forward does (frozen layers in inference mode: keep in step with net.c), then with -train
 * run net_backward itself, reading the clock in its per-layer callback (pass->layer_done): a
 * layer's backward time is from the previous layer's end to its own, which includes zeroing the
 * output gradients it is the first to add into. The optimiser step has a row of its own.
 *
 * Every figure is a median over the timed passes: a layer's time (with -train, of its forward plus
 * backward in the same pass) and the pass total (the sum of a pass's rows). A row's share is of
 * the sum of the rows' medians, so that the shares add up to 100 %. GFLOP/s is the layer's
 * flops() per image times the batch over its time; with -train a forward plus backward counts as
 * 3x the forward's FLOPs (dX and dW each cost about a forward; the first trained layer computes
 * no dX, which this does not subtract).
 * Inference skips dead layers as net_forward does (an auxiliary head: net/memplan.h); their rows
 * say so and their FLOPs are left out of the total.
 * Leaves out: the data loader (inputs stay fixed) and subdivisions (one pass per step).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli/cli.h"
#include "net/net.h"
#include "net/optimizer.h"

static const char speed_usage[] =
    "usage: net speed CFG [-batch N] [-train] [-iters N] [-warmup N] [-threads N]\n"
    "  per layer: time (median of the timed passes), GFLOP/s, share of the pass, algorithm\n"
    "  -batch N    images per pass (default 1)\n"
    "  -train      forward, backward and the optimiser step (default: inference)\n"
    "  -iters N    timed passes (default 10)\n"
    "  -warmup N   untimed passes first (default 1)\n"
    "  -threads N  OpenMP threads (default: OMP_NUM_THREADS or all cores)\n";

struct speed_opts {
    const char *cfg;
    long batch, iters, warmup, threads;
    int train;
};

/* Row r of timed pass k is t[k * rows + r], in ms. Rows: forward of layer i at i; with -train,
 * backward of layer i at n + i (0 below the lowest trained layer), the optimiser step at 2n. */
struct speed {
    struct net *n;
    struct optimizer *opt;
    int train, rows, iters;
    double *t;
    double *done; /* per layer: when its backward ended, in the pass being timed */
};

static double now_ms(void)
{
    return 1e3 * cli_now_seconds();
}

static int parse_opts(int argc, char **argv, struct speed_opts *o)
{
    o->train = cli_take_flag(&argc, argv, "-train");
    if (cli_take_int(&argc, argv, "-batch", 1, 1 << 16, 1, &o->batch) ||
        cli_take_int(&argc, argv, "-iters", 1, 1000000, 10, &o->iters) ||
        cli_take_int(&argc, argv, "-warmup", 0, 1000000, 1, &o->warmup) ||
        cli_take_int(&argc, argv, "-threads", 0, 4096, 0, &o->threads))
        return 1;
    if (cli_no_flags_left(argc, argv))
        return 1;
    if (argc != 2) {
        fputs(speed_usage, stderr);
        return 1;
    }
    o->cfg = argv[1];
    return 0;
}

/* Random inputs in [0, 1), one random class per image, and (without a loss layer at the end) a
 * fixed gradient at the output, so that backward has something to carry. */
static void fill_inputs(struct net *n)
{
    cn_rng r;
    cn_rng_seed(&r, 1);
    size_t in = net_inputs(n) * (size_t)n->batch, k = net_outputs(n);
    for (size_t i = 0; i < in; i++)
        n->input[i] = (float)cn_rng_uniform(&r);
    memset(n->truth, 0, sizeof(float) * k * (size_t)n->batch);
    for (int b = 0; b < n->batch; b++)
        n->truth[(size_t)b * k + cn_rng_below(&r, k)] = 1.f;
    struct layer *last = net_last(n);
    if (n->training && !last->ops->is_loss)
        for (size_t i = 0; i < k * (size_t)n->batch; i++)
            last->doutput[i] = 1.f / (float)(k * (size_t)n->batch);
}

/* As net.c's run_layer: a frozen layer runs in inference mode within a training pass. */
static void run_forward(struct layer *l, struct pass *p)
{
    int train = p->train;
    p->train = train && !l->frozen;
    l->ops->forward(l, p);
    p->train = train;
}

static void untimed_pass(struct speed *s)
{
    struct pass p;
    net_pass_init(s->n, &p, s->train, s->train);
    net_forward(s->n, &p);
    if (s->train) {
        net_backward(s->n, &p);
        optimizer_step(s->opt, s->n, s->n->cfg.learning_rate);
    }
}

static void backward_done(void *ctx, int layer)
{
    ((struct speed *)ctx)->done[layer] = now_ms();
}

/* Timed pass k: net_forward, net_backward and the update, row by row (see the file comment). */
static void timed_pass(struct speed *s, int k)
{
    struct net *n = s->n;
    double *row = s->t + (size_t)k * (size_t)s->rows, t0;
    struct pass p;
    net_pass_init(n, &p, s->train, s->train);
    for (int i = 0; i < n->n; i++) {
        if (n->dead[i])
            continue; /* as net_forward: dead in inference, row[i] stays 0 */
        t0 = now_ms();
        run_forward(&n->layers[i], &p);
        row[i] = now_ms() - t0;
    }
    if (!s->train)
        return;
    p.layer_done = backward_done;
    p.layer_done_ctx = s;
    t0 = now_ms();
    net_backward(n, &p);
    for (int i = n->n - 1; i >= n->lowest_trainable; i--)
        row[n->n + i] = s->done[i] - (i == n->n - 1 ? t0 : s->done[i + 1]);
    t0 = now_ms();
    optimizer_step(s->opt, n, n->cfg.learning_rate);
    row[2 * n->n] = now_ms() - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median over the timed passes of the sum of rows r0 and r1 (r1 < 0: r0 alone; r0 < 0: all). */
static double median_rows(const struct speed *s, int r0, int r1)
{
    double *v = xmalloc(sizeof *v * (size_t)s->iters);
    for (int k = 0; k < s->iters; k++) {
        const double *row = s->t + (size_t)k * (size_t)s->rows;
        v[k] = 0;
        for (int r = 0; r < s->rows; r++)
            v[k] += (r0 < 0 || r == r0 || r == r1) ? row[r] : 0;
    }
    qsort(v, (size_t)s->iters, sizeof *v, cmp_double);
    double m = s->iters % 2 ? v[s->iters / 2] : 0.5 * (v[s->iters / 2 - 1] + v[s->iters / 2]);
    free(v);
    return m;
}

static void print_gflops(double flops, double ms)
{
    if (flops > 0 && ms > 0)
        printf(" %8.1f", flops / ms / 1e6);
    else
        printf(" %8s", "-");
}

static void print_layer(const struct speed *s, int i, double sum)
{
    const struct layer *l = &s->n->layers[i];
    char desc[96] = "", alg[64] = "-", out[48];
    if (l->ops->describe)
        l->ops->describe(l, desc, sizeof desc);
    if (l->ops->algorithm)
        l->ops->algorithm(l, alg, sizeof alg);
    snprintf(out, sizeof out, "%dx%dx%d", l->out.w, l->out.h, l->out.c);
    double ms = median_rows(s, i, s->train ? s->n->n + i : -1);
    double flops = (l->ops->flops ? l->ops->flops(l) : 0) * s->n->batch * (s->train ? 3 : 1);
    printf("%5d  %-14s %-30s %-13s", i, l->ops->name, desc, out);
    if (s->n->dead[i]) {
        printf(" %9s %8s %7s  skipped (dead in inference)\n", "-", "-", "-");
        return;
    }
    if (s->train)
        printf(" %9.3f %9.3f", median_rows(s, i, -1), median_rows(s, s->n->n + i, -1));
    printf(" %9.3f", ms);
    print_gflops(flops, ms);
    printf(" %6.1f%%  %s\n", sum > 0 ? 100 * ms / sum : 0, alg);
}

/* A row that is not a layer (the optimiser step). */
static void print_extra(const struct speed *s, const char *name, int r, double sum)
{
    double ms = median_rows(s, r, -1);
    printf("%5s  %-14s %-30s %-13s %9s %9s %9.3f %8s %6.1f%%  -\n", "-", name, "", "", "", "", ms,
           "-", sum > 0 ? 100 * ms / sum : 0);
}

static void print_header(const struct speed *s, const struct speed_opts *o, int threads)
{
    const struct net *n = s->n;
    printf("%s: batch %d, %s, %d thread%s; %ld warm-up + %d timed passes; times are medians\n",
           o->cfg, n->batch,
           s->train ? "training (forward, backward, optimiser step)" : "inference", threads,
           threads == 1 ? "" : "s", o->warmup, s->iters);
    printf("GFLOP/s = the layer's forward FLOPs x batch%s / its time\n",
           s->train ? " x 3 (forward + backward counted as 3x the forward)" : "");
    printf("%5s  %-14s %-30s %-13s", "layer", "type", "", "output");
    if (s->train)
        printf(" %9s %9s", "fwd ms", "bwd ms");
    printf(" %9s %8s %7s  %s\n", "ms", "GFLOP/s", "share", "algorithm");
}

/* The sum of the rows' medians (layers' forward + backward, the update): 100 % of shares. */
static double sum_of_medians(const struct speed *s)
{
    const struct net *n = s->n;
    double sum = 0;
    for (int i = 0; i < n->n; i++)
        sum += median_rows(s, i, s->train ? n->n + i : -1);
    if (s->train)
        sum += median_rows(s, 2 * n->n, -1);
    return sum;
}

static void report(const struct speed *s, const struct speed_opts *o, int threads)
{
    const struct net *n = s->n;
    double total = median_rows(s, -1, -1), shares = sum_of_medians(s), flops = 0;
    print_header(s, o, threads);
    for (int i = 0; i < n->n; i++) {
        print_layer(s, i, shares);
        if (!n->dead[i] && n->layers[i].ops->flops)
            flops += n->layers[i].ops->flops(&n->layers[i]);
    }
    if (s->train)
        print_extra(s, "(update)", 2 * n->n, shares);
    double work = flops * n->batch * (s->train ? 3 : 1);
    printf("total: %.3f ms per pass, %.2f images/s, %.2f GFLOP/s (%.3f MFLOP per image "
           "forward)\n",
           total, total > 0 ? 1e3 * n->batch / total : 0, total > 0 ? work / total / 1e6 : 0,
           flops / 1e6);
    if (n->ndead)
        printf("%d layer%s skipped (dead in inference: their outputs cannot reach the last "
               "layer's), not counted\n",
               n->ndead, n->ndead == 1 ? "" : "s");
}

static int set_threads(long want)
{
#ifdef _OPENMP
    if (want > 0)
        omp_set_num_threads((int)want);
    return omp_get_max_threads();
#else
    (void)want;
    return 1;
#endif
}

static int measure(const struct speed_opts *o)
{
    cn_error e;
    struct speed s = {.train = o->train, .iters = (int)o->iters};
    int threads = set_threads(o->threads);
    if (net_create(&s.n, o->cfg, (int)o->batch, o->train, &e))
        return cli_error(e.msg);
    if (o->train && optimizer_create(&s.opt, s.n, &e)) {
        net_destroy(s.n);
        return cli_error(e.msg);
    }
    fill_inputs(s.n);
    s.rows = o->train ? 2 * s.n->n + 1 : s.n->n;
    s.t = xcalloc((size_t)s.rows * (size_t)s.iters, sizeof *s.t);
    s.done = xcalloc((size_t)s.n->n, sizeof *s.done);
    for (long k = 0; k < o->warmup; k++)
        untimed_pass(&s);
    for (int k = 0; k < s.iters; k++)
        timed_pass(&s, k);
    report(&s, o, threads);
    free(s.t);
    free(s.done);
    optimizer_destroy(s.opt);
    net_destroy(s.n);
    return 0;
}

int cli_speed(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
        return fputs(speed_usage, stdout), 0;
    if (argc < 2) {
        fputs(speed_usage, stderr);
        return 1;
    }
    struct speed_opts o;
    if (parse_opts(argc, argv, &o))
        return 1;
    return measure(&o);
}
