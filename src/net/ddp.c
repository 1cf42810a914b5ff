/* ddp.c - data-parallel gradient buckets (see ddp.h).
 *
 * A bucket is a range [lo, lo + n) of the gradient slab made of whole parameters that are
 * adjacent in the slab (up to alignment padding), taken in decreasing parameter order (the order backward produces them);
 * `ready` is the lowest layer owning one of its parameters: once net_backward has run that layer,
 * every gradient of the bucket is final (a layer writes only its own gradients). Buckets start
 * in the same order on every rank, as MPI requires of collectives.
 */
#include "net/ddp.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Floats of slab padding (net.c aligns every buffer to 16 floats) a bucket may span: summing
 * them is harmless, nothing reads them. */
#define MAX_GAP 64

struct bucket {
    float *lo;
    size_t n;
    int ready;
};

struct ddp {
    struct net *n;
    struct dist *d;
    struct bucket *b;
    int nb, next; /* next: the first bucket not started in this step */
    cn_error err; /* a failure to start inside the hook, reported by ddp_finish */
    int failed;
    struct bn_sync bn; /* sync_bn=1: the batch norms' sums over the ranks */
    cn_error bn_err;   /* the first failed sum, reported by ddp_bn_check */
    int bn_failed;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void plan(struct ddp *g, size_t cap)
{
    const struct net *n = g->n;
    struct bucket cur = {0};
    g->b = xcalloc((size_t)n->nparams + 1, sizeof *g->b);
    for (int i = n->nparams - 1; i >= 0; i--) {
        const struct param *p = &n->params[i];
        if (!p->grad || !p->n)
            continue;
        const float *end = p->grad + p->n;
        int adjacent = cur.n && end <= cur.lo && cur.lo - end < MAX_GAP;
        if (cur.n && (!adjacent || (cur.n + p->n) * sizeof(float) > cap)) {
            g->b[g->nb++] = cur;
            cur.n = 0;
        }
        cur.n = cur.n ? (size_t)(cur.lo + cur.n - p->grad) : p->n;
        cur.lo = p->grad;
        cur.ready = p->layer;
    }
    if (cur.n)
        g->b[g->nb++] = cur;
}

int ddp_create(struct ddp **out, struct net *n, struct dist *d, size_t bucket_bytes, cn_error *e)
{
    struct ddp *g = xcalloc(1, sizeof *g);
    g->n = n;
    g->d = d;
    plan(g, bucket_bytes);
    *out = g;
    if (g->nb > DIST_MAX_PENDING)
        return cn_fail(e, "%s: %d gradient buckets, more than %d", n->cfg_path, g->nb,
                       DIST_MAX_PENDING);
    return 0;
}

void ddp_destroy(struct ddp *g)
{
    if (!g)
        return;
    free(g->b);
    free(g);
}

int ddp_buckets(const struct ddp *g)
{
    return g->nb;
}

/* Starts the buckets whose lowest layer is at or above layer. */
static void start_upto(struct ddp *g, int layer)
{
    while (!g->failed && g->next < g->nb && g->b[g->next].ready >= layer) {
        const struct bucket *b = &g->b[g->next++];
        if (dist_isum_floats(g->d, b->lo, b->n, &g->err))
            g->failed = 1;
    }
}

static void on_layer_done(void *ctx, int layer)
{
    struct ddp *g = ctx;
    start_upto(g, layer);
    dist_poll(g->d);
}

void ddp_attach(struct ddp *g, struct pass *p)
{
    g->next = 0;
    g->failed = 0;
    if (dist_size(g->d) == 1)
        return;
    p->layer_done = on_layer_done;
    p->layer_done_ctx = g;
}

int ddp_finish(struct ddp *g, double *waited, cn_error *e)
{
    if (dist_size(g->d) == 1)
        return 0;
    start_upto(g, -1);
    if (g->failed) {
        *e = g->err;
        return -1;
    }
    double t0 = now_s();
    int rc = dist_wait_all(g->d, "gradient allreduce", e);
    if (waited)
        *waited += now_s() - t0;
    return rc;
}

/* A batch norm's sum over the ranks (kernels/batchnorm.h bn_sync). The kernels cannot fail, so
 * a failure (the watchdog, a lost rank) is kept, and every later sum of the step is skipped
 * (each would wait its own timeout otherwise): the pass then computes with this rank's sums,
 * meaningless but finite work, and ddp_bn_check reports the failure after it. */
static void bn_sum(void *ctx, double *v, int n)
{
    struct ddp *g = ctx;
    if (!g->bn_failed && dist_sum_doubles(g->d, v, n, "batch-norm statistics sum", &g->bn_err))
        g->bn_failed = 1;
}

void ddp_sync_bn(struct ddp *g, struct pass *p)
{
    if (!g->n->cfg.sync_bn || dist_size(g->d) == 1)
        return;
    g->bn = (struct bn_sync){bn_sum, g};
    p->bn_sync = &g->bn;
}

int ddp_bn_check(struct ddp *g, cn_error *e)
{
    if (!g->bn_failed)
        return 0;
    *e = g->bn_err;
    return -1;
}

int ddp_sync_buffers(struct ddp *g, cn_error *e)
{
    const struct net *n = g->n;
    for (int i = 0; i < n->nparams; i++) {
        const struct param *p = &n->params[i];
        if (!(p->flags & PARAM_TRAIN) &&
            dist_broadcast_floats(g->d, p->data, p->n, "batch-norm statistics broadcast", e))
            return -1;
    }
    net_params_changed(g->n);
    return 0;
}

uint64_t ddp_checksum(const struct net *n)
{
    return cn_hash_floats(n->param_slab, n->nparam_floats);
}
