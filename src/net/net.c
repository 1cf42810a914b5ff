/* net.c - building a net from a cfg (shape inference, declarations, slab allocation), and the
 * forward and backward passes over its layers. */
#include "net/net.h"

#include <string.h>

#include "net/memplan.h"
#include "net/netcfg.h"

#define MAX_LAYER_FLOATS ((size_t)1 << 31) /* per image: a cap far above any real network */
#define NET_MAX_LAYERS 4096                /* layers of one cfg (Darknet's largest: ~400) */
#define SLAB_ALIGN 16                      /* floats: every buffer starts on a 64-byte line */

enum slab { SLAB_PARAM, SLAB_GRAD, SLAB_ACT, SLAB_TRAIN, SLAB_COUNT };

struct buf_req {
    float **ptr;
    size_t n;
    enum slab slab;
    int layer; /* the layer that declared it; -1: the net's own */
    size_t at;    /* its place (place_requests): in its slab, or in the region below the cut */
    int backward; /* BUF_BACKWARD: only the layer's backward reads it */
};

/* Layer outputs and output gradients are not buf_reqs: they are placed by net/memplan.h, by
 * liveness (outputs of inference nets built without NET_KEEP_OUTPUTS; output gradients of
 * training nets), and outputs in place where a [route] offers it. */

struct build {
    int batch, training, layer;
    const struct bn_conf *bn;
    struct layer *layers; /* the net's: those below `layer` are built */
    int nlayers;
    const struct cfg_file *file; /* section i + 1 is layer i */
    struct buf_req *req;
    int nreq, capreq;
    struct param *params;
    float ***param_data; /* where each param's data and grad pointers live in its layer */
    float ***param_grad;
    int nparams, capparams;
    size_t workspace;
    int *last_use;  /* per layer: the last layer that reads its output (NULL: not tracked) */
    int skip_input; /* the layer being built reads the layer below only through a reference */
    int freeze;     /* NET_FREEZE's prefix */
    struct memplan_offer *offers;
    int noffers, capoffers;
    struct memplan_read *reads; /* the reader graph, for dead layers (net/memplan.h) */
    int nreads, capreads;
    unsigned char *skips; /* per layer: what its backward leaves unread (BWD_SKIP_*; NULL: not
                             tracked) */
};

enum { BWD_SKIP_OUTPUT = 1, BWD_SKIP_INPUTS = 2 }; /* layer.h: build_backward_skips_* */

int build_batch(const struct build *b)
{
    return b->batch;
}

int build_training(const struct build *b)
{
    return b->training;
}

const struct bn_conf *build_bn(const struct build *b)
{
    return b->bn;
}

static void add_req(struct build *b, float **ptr, size_t n, enum slab slab)
{
    if (b->nreq == b->capreq) {
        b->capreq = b->capreq ? 2 * b->capreq : 64;
        b->req = xrealloc(b->req, sizeof *b->req * (size_t)b->capreq);
    }
    *ptr = NULL;
    b->req[b->nreq++] = (struct buf_req){.ptr = ptr, .n = n, .slab = slab, .layer = b->layer};
}

void build_param(struct build *b, float **data, float **grad, size_t n, const char *name,
                 unsigned flags)
{
    if (b->nparams == b->capparams) {
        b->capparams = b->capparams ? 2 * b->capparams : 32;
        b->params = xrealloc(b->params, sizeof *b->params * (size_t)b->capparams);
        b->param_data = xrealloc(b->param_data, sizeof *b->param_data * (size_t)b->capparams);
        b->param_grad = xrealloc(b->param_grad, sizeof *b->param_grad * (size_t)b->capparams);
    }
    b->params[b->nparams] = (struct param){NULL, NULL, n, name, flags, b->layer};
    b->param_data[b->nparams] = data;
    b->param_grad[b->nparams++] = grad;
    add_req(b, data, n, SLAB_PARAM);
    if (grad) {
        *grad = NULL;
        if ((flags & PARAM_TRAIN) && b->training)
            add_req(b, grad, n, SLAB_GRAD);
    }
}

void build_buffer(struct build *b, float **ptr, size_t n, enum buf_kind kind)
{
    if (kind != BUF_ALWAYS && !b->training) {
        *ptr = NULL;
        return;
    }
    add_req(b, ptr, n, kind == BUF_ALWAYS ? SLAB_ACT : SLAB_TRAIN);
    b->req[b->nreq - 1].backward = kind == BUF_BACKWARD;
}

void build_workspace(struct build *b, size_t n)
{
    b->workspace = CN_MAX(b->workspace, n);
}

int build_index(const struct build *b)
{
    return b->layer;
}

int build_layer_count(const struct build *b)
{
    return b->nlayers;
}

/* Layer j's output is read by the layer being built. */
static void mark_read(struct build *b, int j)
{
    if (b->nreads == b->capreads) {
        b->capreads = b->capreads ? 2 * b->capreads : 64;
        b->reads = xrealloc(b->reads, sizeof *b->reads * (size_t)b->capreads);
    }
    b->reads[b->nreads++] = (struct memplan_read){b->layer, j};
    if (b->last_use)
        b->last_use[j] = CN_MAX(b->last_use[j], b->layer);
}

struct layer *build_layer_ref(struct build *b, int index)
{
    CN_ASSERT(index >= 0 && index < b->layer);
    mark_read(b, index);
    return &b->layers[index];
}

void build_input_unused(struct build *b)
{
    b->skip_input = 1;
}

static void add_offer(struct build *b, enum memplan_kind kind, const struct layer *src, size_t at)
{
    CN_ASSERT(src->index >= 0 && src->index < b->layer);
    if (b->noffers == b->capoffers) {
        b->capoffers = b->capoffers ? 2 * b->capoffers : 32;
        b->offers = xrealloc(b->offers, sizeof *b->offers * (size_t)b->capoffers);
    }
    b->offers[b->noffers++] = (struct memplan_offer){kind, b->layer, src->index, at};
}

void build_output_view(struct build *b, const struct layer *src, size_t at)
{
    add_offer(b, MEMPLAN_VIEW, src, at);
}

void build_output_slot(struct build *b, const struct layer *src, size_t at)
{
    add_offer(b, MEMPLAN_SLOT, src, at);
}

void build_backward_skips_output(struct build *b)
{
    if (b->skips)
        b->skips[b->layer] |= BWD_SKIP_OUTPUT;
}

void build_backward_skips_inputs(struct build *b)
{
    if (b->skips)
        b->skips[b->layer] |= BWD_SKIP_INPUTS;
}

const struct layer_ops *build_next_ops(const struct build *b)
{
    return b->layer + 1 < b->nlayers ? layer_lookup(b->file->sec[b->layer + 2].name) : NULL;
}

int build_resolve_ref(struct build *b, const struct cfg_section *s, const struct cfg_kv *kv, int v,
                      struct layer **out, cn_error *e)
{
    int i = b->layer;
    long j = v < 0 ? (long)i + v : v;
    *out = NULL;
    if (j < 0)
        return cfg_fail_kv(s, kv, e, "%d lies before the first layer (this is layer %d)", v, i);
    if (j == i)
        return cfg_fail_kv(s, kv, e, "%d is this layer itself (layer %d); it must be earlier", v,
                           i);
    if (j > i)
        return cfg_fail_kv(s, kv, e, "%d is not an earlier layer (this is layer %d)", v, i);
    struct layer *l = &b->layers[j];
    if (l->ops->is_loss)
        return cfg_fail_kv(s, kv, e,
                           "%d is layer %ld, the loss layer [%s] of line %d, which no layer may "
                           "read (an auxiliary head without a route back to the trunk)",
                           v, j, l->ops->name, l->line);
    mark_read(b, (int)j);
    *out = l;
    return 0;
}

static size_t aligned(size_t n)
{
    return (n + SLAB_ALIGN - 1) / SLAB_ALIGN * SLAB_ALIGN;
}

/* Training nets: whether a backward reads (or adds into) each output gradient. Below the
 * backward cut (net.h plan_cut) no backward runs and the cut layer has no dinput, so layer j's
 * is read only when j is at or above the cut, or a layer above the cut reads j's output (through
 * its input or a reference), or the cut layer references it (no layer with parameters takes a
 * reference yet). The last layer's is the caller's. */
static unsigned char *gradients_read(const struct net *n, const struct build *b)
{
    unsigned char *r = xcalloc((size_t)n->n, 1);
    int cut = n->plan_cut;
    for (int j = 0; j < n->n; j++)
        r[j] = j >= cut || j == n->n - 1;
    for (int k = 0; k < b->nreads; k++) {
        const struct memplan_read *q = &b->reads[k];
        if (q->reader > cut || (q->reader == cut && q->src != cut - 1))
            r[q->src] = 1;
    }
    return r;
}

/* Plans the outputs, o[0..n), and the output gradients of a training net, o[n..2n)
 * (net/memplan.h): a training net keeps every output that a backward reads (the others,
 * fwd_only, share by liveness) and shares gradients by liveness, which are live over the same
 * steps in reverse; an inference net shares outputs unless built with NET_KEEP_OUTPUTS.
 * region[] gets the floats of each; -1 on size overflow. */
static int plan_outputs(const struct net *n, const struct build *b, struct memplan_out *o,
                        size_t region[2])
{
    size_t *per = xmalloc(sizeof *per * (size_t)n->n), bound = 0;
    int bad = 0, noffers = 0;
    unsigned char *grad_read = gradients_read(n, b);
    for (int i = 0; i < n->n; i++) {
        per[i] = shape_size(n->layers[i].out);
        size_t size = n->dead[i] ? 0 : per[i] * (size_t)n->batch;
        o[i] = (struct memplan_out){size, b->last_use[i], -1, 0, 0};
        o[n->n + i] = o[i];
        o[n->n + i].size = grad_read[i] ? size : 0; /* none below the backward cut */
        if (n->training && !n->fwd_only[i])
            o[i].last = n->n; /* backward reads it: kept to the end of the pass */
        bad |= cn_add(&bound, bound, aligned(o[i].size));
    }
    free(grad_read);
    int share = !n->separate_outputs;
    for (int k = 0; k < b->noffers; k++) /* a dead layer takes and gives no storage */
        if (!n->dead[b->offers[k].layer] && !n->dead[b->offers[k].src])
            b->offers[noffers++] = b->offers[k];
    if (!bad && share)
        memplan_offer(o, per, n->batch, b->offers, noffers);
    free(per);
    if (bad)
        return -1;
    region[0] = memplan_outputs(o, n->n, share && !n->keep_outputs);
    region[1] = n->training ? memplan_outputs(o + n->n, n->n, share) : 0;
    return 0;
}

/* Points every layer's output and output gradient into the regions planned at act, train. */
static void point_outputs(struct net *n, const struct memplan_out *o, float *act, float *train)
{
    for (int i = 0; i < n->n; i++) {
        n->layers[i].output = n->dead[i] ? NULL : act + o[i].offset;
        n->layers[i].doutput = n->training && o[n->n + i].size ? train + o[n->n + i].offset : NULL;
    }
}

/* Below the backward cut (plan_cut) no backward runs: the parameter gradients of those (frozen)
 * layers and their BUF_BACKWARD buffers (batch norm's x_hat) get no storage (NULL: the optimiser,
 * net_zero_grads and ddp skip the gradients, forward skips x_hat), and their other training
 * buffers, which forward may still write (maxpool's argmax, dropout's mask, a pre-activation z)
 * but which only the layer's own forward reads, share one region: the buffers of each such layer
 * lie side by side from its start (a layer's own never overlap), and it holds the largest
 * layer's. The region starts at `at` of the training slab. */
static int below_cut(const struct net *n, const struct buf_req *r)
{
    return r->layer >= 0 && r->layer < n->plan_cut &&
           (r->slab == SLAB_GRAD || r->slab == SLAB_TRAIN);
}

static int unplaced(const struct net *n, const struct buf_req *r)
{
    return below_cut(n, r) && (r->slab == SLAB_GRAD || r->backward);
}

/* Gives every request its place, r->at, in one walk: in its slab after the requests before it,
 * or, for a training buffer below the cut, from the region's start after its layer's others (a
 * gradient or BUF_BACKWARD buffer below the cut gets none: unplaced). total[] gets each slab's
 * floats without the region, *region the region's; -1 on size overflow. */
static int place_requests(const struct net *n, struct build *b, size_t total[SLAB_COUNT],
                          size_t *region)
{
    size_t in_region = 0;
    int layer = -1, bad = 0;
    *region = 0;
    for (int i = 0; i < b->nreq; i++) { /* one layer's requests are consecutive */
        struct buf_req *r = &b->req[i];
        size_t *end = &total[r->slab];
        if (unplaced(n, r))
            continue;
        if (below_cut(n, r)) {
            in_region = r->layer == layer ? in_region : 0;
            layer = r->layer;
            end = &in_region;
        }
        r->at = *end;
        bad |= cn_add(end, *end, aligned(r->n));
        *region = CN_MAX(*region, in_region);
    }
    return bad;
}

/* Points every request at its place; the region below the cut starts at `at` of the training
 * slab. */
static void point_requests(struct net *n, const struct build *b, float **slab[SLAB_COUNT],
                           size_t at)
{
    for (int i = 0; i < b->nreq; i++) {
        const struct buf_req *r = &b->req[i];
        if (!below_cut(n, r))
            *r->ptr = *slab[r->slab] + r->at;
        else
            *r->ptr = unplaced(n, r) ? NULL : n->train_slab + at + r->at;
    }
}

/* Sums the requests per slab, allocates each slab once, and points every request into it; the
 * outputs planned in o come last in their slabs, after the region below the cut. */
static int allocate_planned(struct net *n, struct build *b, struct memplan_out *o, cn_error *e)
{
    static const char *const names[SLAB_COUNT] = {"parameters", "gradients", "activations",
                                                  "training buffers"};
    size_t total[SLAB_COUNT] = {0}, region[2], cut_region = 0;
    int rc = plan_outputs(n, b, o, region) || place_requests(n, b, total, &cut_region);
    size_t cut_at = total[SLAB_TRAIN];
    rc = rc || cn_add(&total[SLAB_TRAIN], total[SLAB_TRAIN], cut_region);
    size_t base_act = total[SLAB_ACT], base_train = total[SLAB_TRAIN];
    if (rc || cn_add(&total[SLAB_ACT], total[SLAB_ACT], region[0]) ||
        cn_add(&total[SLAB_TRAIN], total[SLAB_TRAIN], region[1]))
        return cn_fail(e, "%s: network too large to allocate", n->cfg_path);
    size_t sum = aligned(b->workspace);
    for (int s = 0; s < SLAB_COUNT; s++)
        if (cn_add(&sum, sum, total[s]) || sum > n->max_bytes / sizeof(float))
            return cn_fail(e, "%s: the network needs more than the limit of %zu MiB of buffers",
                           n->cfg_path, n->max_bytes >> 20);
    float **slab[SLAB_COUNT] = {&n->param_slab, &n->grad_slab, &n->act_slab, &n->train_slab};
    for (int s = 0; s < SLAB_COUNT; s++) {
        *slab[s] = cn_alloc_floats(total[s], names[s], e);
        if (!*slab[s])
            return cn_wrap(e, "%s", n->cfg_path);
    }
    point_outputs(n, o, n->act_slab + base_act, n->train_slab + base_train);
    n->nparam_floats = total[SLAB_PARAM];
    n->nact_floats = total[SLAB_ACT];
    n->ntrain_floats = total[SLAB_TRAIN];
    n->nout_floats = region[0];
    n->ndout_floats = region[1];
    point_requests(n, b, slab, cut_at);
    n->nworkspace = b->workspace;
    n->workspace = cn_alloc_floats(b->workspace, "workspace", e);
    if (!n->workspace)
        return cn_wrap(e, "%s", n->cfg_path);
    return 0;
}

static int allocate_slabs(struct net *n, struct build *b, cn_error *e)
{
    struct memplan_out *o = xmalloc(sizeof *o * 2 * (size_t)n->n);
    int rc = allocate_planned(n, b, o, e);
    free(o);
    return rc;
}

static int unknown_section(struct cfg_section *s, cn_error *e)
{
    const char *names[2 * 32 + 2];
    int k = 0;
    for (int i = 0; i < layer_registry_count && k < 64; i++) {
        names[k++] = layer_registry[i]->name;
        if (layer_registry[i]->alias)
            names[k++] = layer_registry[i]->alias;
    }
    if (!strcmp(s->name, "net") || !strcmp(s->name, "network"))
        return cn_fail(e, "%s:%d: [%s] may only be the first section", s->path, s->line, s->name);
    const char *near = cn_closest(s->name, names, k);
    if (near)
        return cn_fail(e, "%s:%d: unknown section [%s] (did you mean [%s]?)", s->path, s->line,
                       s->name, near);
    return cn_fail(e, "%s:%d: unknown section [%s]", s->path, s->line, s->name);
}

/* The keys every layer section takes (Darknet's parse_network_cfg reads learning_rate= on every
 * section as a multiplier, learning_rate_scale): freeze=0|1, learning_rate= or lr_mult=. */
static int parse_common_keys(struct layer *l, struct cfg_section *s, cn_error *e)
{
    float lr, mult;
    if (cfg_get_bool(s, "freeze", 0, &l->frozen, e) ||
        cfg_get_float(s, "learning_rate", 1.f, 0.f, 1e6f, &lr, e) ||
        cfg_get_float(s, "lr_mult", 1.f, 0.f, 1e6f, &mult, e))
        return -1;
    if (cfg_find(s, "learning_rate") && cfg_find(s, "lr_mult"))
        return cfg_fail_kv(s, cfg_find(s, "lr_mult"), e,
                           "learning_rate= is set too; they are the same multiplier");
    l->lr_mult = cfg_find(s, "lr_mult") ? mult : lr;
    return 0;
}

/* Builds layer i from its section: input shape from the layer below, declarations, checks. */
static int build_layer(struct net *n, struct build *b, struct cfg_section *s, int i, cn_error *e)
{
    struct layer *l = &n->layers[i];
    l->ops = layer_lookup(s->name);
    if (!l->ops)
        return unknown_section(s, e);
    l->index = i;
    l->line = s->line;
    l->batch = n->batch;
    l->in = i ? n->layers[i - 1].out : n->in;
    b->layer = i;
    b->skip_input = 0;
    if (b->last_use)
        b->last_use[i] = i;
    if (parse_common_keys(l, s, e) || l->ops->build(l, s, b, e) || cfg_check_unused(s, e))
        return -1;
    if (i > 0 && !b->skip_input)
        mark_read(b, i - 1);
    size_t out = shape_size(l->out);
    if (l->out.c < 1 || l->out.h < 1 || l->out.w < 1 || out > MAX_LAYER_FLOATS)
        return cfg_fail_section(s, e, "output shape %dx%dx%d is not usable", l->out.c, l->out.h,
                                l->out.w);
    return 0;
}

static void wire_layers(struct net *n)
{
    for (int i = 0; i < n->n; i++) {
        struct layer *l = &n->layers[i];
        l->input = i ? n->layers[i - 1].output : n->input;
        l->dinput = i ? n->layers[i - 1].doutput : NULL;
    }
}

/* Whether layer i declared a parameter the optimiser updates (params: np of them). */
static int has_trainable(const struct param *params, int np, int i)
{
    for (int k = 0; k < np; k++)
        if (params[k].layer == i && (params[k].flags & PARAM_TRAIN))
            return 1;
    return 0;
}

/* The backward cut: the lowest layer with trainable parameters that are not frozen (nl when
 * there is none), or 0 when no layer with trainable parameters is frozen. */
static int backward_cut(const struct layer *layers, int nl, const struct param *params, int np)
{
    int any = 0, cut = nl;
    for (int i = nl - 1; i >= 0; i--) {
        int trainable = has_trainable(params, np, i);
        any |= layers[i].frozen && trainable;
        if (!layers[i].frozen && trainable)
            cut = i;
    }
    return any ? cut : 0;
}

/* Drops freeze from layers without trainable parameters (nothing to freeze: they keep their
 * training behaviour, e.g. dropout), then, when a layer is frozen, places the backward cut:
 * layers below the lowest trainable one need no gradient, so it gets no dinput and net_backward
 * stops there. Without frozen layers there is no cut: layer 0's dinput is input_grad (NULL unless
 * NET_INPUT_GRAD). Freezing only adds frozen layers, so the cut never falls below the one the
 * memory plan was made for (plan_cut), whose layers below may have no doutput. */
static void place_cut(struct net *n)
{
    for (int i = 0; i < n->n; i++)
        n->layers[i].frozen = n->layers[i].frozen && has_trainable(n->params, n->nparams, i);
    n->lowest_trainable = backward_cut(n->layers, n->n, n->params, n->nparams);
    CN_ASSERT(n->lowest_trainable >= n->plan_cut);
    n->layers[0].dinput = n->input_grad; /* NULL without NET_INPUT_GRAD */
    for (int i = 1; i < n->n; i++)
        n->layers[i].dinput = n->training ? n->layers[i - 1].doutput : NULL;
    if (n->lowest_trainable > 0 && n->lowest_trainable < n->n)
        n->layers[n->lowest_trainable].dinput = NULL;
}

int net_freeze(struct net *n, int prefix, cn_error *e)
{
    CN_ASSERT(prefix >= 0 && prefix <= n->n);
    for (int i = 0; i < prefix; i++)
        n->layers[i].frozen = 1;
    place_cut(n);
    if (n->lowest_trainable < n->n)
        return 0;
    int last = n->n - 1;
    while (last > 0 && !has_trainable(n->params, n->nparams, last))
        last--;
    return cn_fail(e,
                   "%s: every layer with parameters is frozen (-freeze %d, freeze=1 keys): "
                   "nothing would train; the last layer with parameters is layer %d [%s]",
                   n->cfg_path, prefix, last, n->layers[last].ops->name);
}

static void build_free(struct build *b)
{
    free(b->req);
    free(b->params);
    free(b->param_data);
    free(b->param_grad);
    free(b->offers);
    free(b->reads);
    free(b->skips);
}

/* Every loss layer reads pass->truth, which holds the last layer's output size per image: a loss
 * layer in the middle of the net (an auxiliary head) must have that size too. */
static int check_loss_layers(const struct net *n, struct cfg_file *f, cn_error *e)
{
    const struct layer *last = &n->layers[n->n - 1];
    for (int i = 0; i < n->n - 1; i++) {
        const struct layer *l = &n->layers[i];
        if (l->ops->is_loss && shape_size(l->out) != shape_size(last->out))
            return cfg_fail_section(&f->sec[i + 1], e,
                                    "this loss layer has %zu outputs, but the labels it reads "
                                    "have %zu, the size of the last layer (layer %d [%s], line %d)",
                                    shape_size(l->out), shape_size(last->out), n->n - 1,
                                    last->ops->name, last->line);
    }
    return 0;
}

/* Inference nets: layer i hands its work to the layer below when it alone reads that output and
 * both agree (layer_ops.fuse), its output then a view of the layer below's. The view goes first
 * among the offers, so that none taken before it could give i's output another place. */
static void fuse_layers(struct net *n, struct build *b)
{
    if (n->training || n->keep_outputs || n->separate_outputs)
        return;
    int built = b->layer;
    for (int i = 1; i < n->n; i++) {
        struct layer *l = &n->layers[i];
        if (!l->ops->fuse || n->dead[i] || b->last_use[i - 1] != i ||
            !l->ops->fuse(l, &n->layers[i - 1]))
            continue;
        b->layer = i;
        add_offer(b, MEMPLAN_VIEW, &n->layers[i - 1], 0);
        struct memplan_offer f = b->offers[b->noffers - 1];
        memmove(b->offers + 1, b->offers, sizeof *b->offers * (size_t)(b->noffers - 1));
        b->offers[0] = f;
    }
    b->layer = built;
}

/* Training nets: the outputs that no backward reads (layer.h: build_backward_skips_*), neither
 * their own layer's nor any reader's; the backward of a layer below the cut (plan_cut) never
 * runs. The last layer's output is the caller's: always kept. */
static void mark_forward_only(struct net *n, const struct build *b)
{
    if (!n->training || n->keep_outputs || n->separate_outputs)
        return;
    for (int i = 0; i < n->n - 1; i++)
        n->fwd_only[i] = (b->skips[i] & BWD_SKIP_OUTPUT) != 0 || i < n->plan_cut;
    for (int k = 0; k < b->nreads; k++)
        if (!(b->skips[b->reads[k].reader] & BWD_SKIP_INPUTS) && b->reads[k].reader >= n->plan_cut)
            n->fwd_only[b->reads[k].src] = 0;
}

static int build_all(struct net *n, struct cfg_file *f, struct build *b, cn_error *e)
{
    for (int i = 0; i < n->n; i++)
        if (build_layer(n, b, &f->sec[i + 1], i, e))
            return -1;
    if (check_loss_layers(n, f, e))
        return -1;
    if (!n->training && !n->keep_outputs)
        n->ndead = memplan_dead(n->dead, n->n, b->reads, b->nreads);
    fuse_layers(n, b);
    for (int i = 0; i < CN_MIN(b->freeze, n->n); i++) /* NET_FREEZE: as net_freeze will */
        n->layers[i].frozen = 1;
    n->plan_cut = n->training ? backward_cut(n->layers, n->n, b->params, b->nparams) : 0;
    mark_forward_only(n, b);
    size_t in = shape_size(n->in) * (size_t)n->batch;
    size_t outs = shape_size(n->layers[n->n - 1].out) * (size_t)n->batch;
    b->layer = -1; /* the net's own requests */
    add_req(b, &n->input, in, SLAB_ACT);
    add_req(b, &n->truth, outs, SLAB_ACT);
    if (n->training && n->with_input_grad) /* NET_INPUT_GRAD: most training wants no dL/dx */
        add_req(b, &n->input_grad, in, SLAB_TRAIN);
    if (allocate_slabs(n, b, e))
        return -1;
    n->params = b->params;
    n->nparams = b->nparams;
    for (int i = 0; i < n->nparams; i++) {
        n->params[i].data = *b->param_data[i];
        n->params[i].grad = b->param_grad[i] ? *b->param_grad[i] : NULL;
    }
    b->params = NULL;
    return 0;
}

static int net_build(struct net *n, struct cfg_file *f, int batch, int freeze, cn_error *e)
{
    if (f->nsec == 0)
        return cn_fail(e, "%s: no sections; a cfg starts with [net]", f->path);
    if (net_config_parse(&n->cfg, &f->sec[0], e))
        return -1;
    n->in = (struct shape){n->cfg.channels, n->cfg.height, n->cfg.width};
    n->batch = batch > 0 ? batch : n->cfg.batch / n->cfg.subdivisions;
    n->n = f->nsec - 1;
    if (n->n == 0)
        return cn_fail(e, "%s: no layers after [%s]", f->path, f->sec[0].name);
    if (n->n > NET_MAX_LAYERS)
        return cn_fail(e, "%s: %d layers, more than the limit of %d", f->path, n->n,
                       NET_MAX_LAYERS);
    n->layers = xcalloc((size_t)n->n, sizeof *n->layers);
    n->last_use = xcalloc((size_t)n->n, sizeof *n->last_use);
    n->dead = xcalloc((size_t)n->n, sizeof *n->dead);
    n->fwd_only = xcalloc((size_t)n->n, sizeof *n->fwd_only);
    struct build b = {.batch = n->batch, .training = n->training, .layers = n->layers,
                      .nlayers = n->n, .file = f, .bn = &n->cfg.bn, .last_use = n->last_use,
                      .skips = xcalloc((size_t)n->n, 1), .freeze = freeze};
    int rc = build_all(n, f, &b, e);
    build_free(&b);
    if (rc)
        return -1;
    wire_layers(n);
    place_cut(n);
    net_init_params(n, n->cfg.seed);
    return 0;
}

static int create_from_cfg(struct net **out, struct cfg_file *f, int batch, int training,
                           size_t max_bytes, cn_error *e)
{
    struct net *n = xcalloc(1, sizeof *n);
    n->cfg_path = xstrdup(f->path);
    n->training = (training & NET_TRAIN) != 0;
    n->keep_outputs = (training & NET_KEEP_OUTPUTS) != 0;
    n->separate_outputs = (training & NET_SEPARATE_OUTPUTS) != 0;
    n->with_input_grad = (training & NET_INPUT_GRAD) != 0;
    n->max_bytes = max_bytes;
    if (net_build(n, f, batch, (training >> NET_FREEZE_SHIFT) & NET_FREEZE_MAX, e)) {
        net_destroy(n);
        return -1;
    }
    *out = n;
    return 0;
}

int net_create(struct net **out, const char *cfg_path, int batch, int training, cn_error *e)
{
    *out = NULL;
    struct cfg_file *f;
    if (cfg_read_file(&f, cfg_path, CFG_SECTIONS, e))
        return -1;
    int rc = create_from_cfg(out, f, batch, training, NET_MAX_BYTES, e);
    cfg_destroy(f);
    return rc;
}

int net_create_from_string(struct net **out, const char *text, const char *name, int batch,
                           int training, cn_error *e)
{
    return net_create_from_string_capped(out, text, name, batch, training, NET_MAX_BYTES, e);
}

int net_create_from_string_capped(struct net **out, const char *text, const char *name,
                                  int batch, int training, size_t max_bytes, cn_error *e)
{
    *out = NULL;
    struct cfg_file *f;
    if (cfg_read_string(&f, text, name, CFG_SECTIONS, e))
        return -1;
    int rc = create_from_cfg(out, f, batch, training, max_bytes, e);
    cfg_destroy(f);
    return rc;
}

void net_destroy(struct net *n)
{
    if (!n)
        return;
    for (int i = 0; n->layers && i < n->n; i++) {
        struct layer *l = &n->layers[i];
        if (l->ops && l->ops->destroy)
            l->ops->destroy(l);
        else
            free(l->priv);
    }
    free(n->layers);
    free(n->last_use);
    free(n->dead);
    free(n->fwd_only);
    free(n->params);
    cn_free_floats(n->param_slab);
    cn_free_floats(n->grad_slab);
    cn_free_floats(n->act_slab);
    cn_free_floats(n->train_slab);
    cn_free_floats(n->workspace);
    net_config_free(&n->cfg);
    free(n->cfg_path);
    free(n);
}

void net_init_params(struct net *n, uint64_t seed)
{
    for (int i = 0; i < n->n; i++) {
        struct layer *l = &n->layers[i];
        if (!l->ops->init)
            continue;
        cn_rng r; /* one stream per layer: adding a layer leaves the others' draws unchanged */
        cn_rng_seed_stream(&r, seed, (uint64_t)i);
        l->ops->init(l, &r);
    }
    cn_rng_seed_stream(&n->rng, seed, 0xD0D0D0ULL);
    net_params_changed(n);
}

void net_params_changed(struct net *n)
{
    for (int i = 0; i < n->n; i++)
        n->layers[i].params_version++;
}

void net_pass_init(struct net *n, struct pass *p, int train, int with_loss)
{
    int per_step = n->training ? n->batch * n->cfg.subdivisions : n->batch;
    *p = (struct pass){
        .train = train,
        .truth = with_loss ? n->truth : NULL,
        .workspace = n->workspace,
        .rng = &n->rng,
        .loss_scale = 1.f / (float)per_step,
        .loss = 0,
        .upto = n->n - 1, /* a whole pass, unless net_forward_upto says otherwise */
    };
}

/* A frozen layer runs in inference mode within a training pass (PyTorch's eval() on a frozen
 * module): batch norm normalises with its rolling statistics and does not update them. */
static void run_layer(struct layer *l, struct pass *p, int backward)
{
    int train = p->train;
    p->train = train && !l->frozen;
    if (backward)
        l->ops->backward(l, p);
    else
        l->ops->forward(l, p);
    p->train = train;
}

void net_forward_upto(struct net *n, struct pass *p, int last)
{
    CN_ASSERT(last >= 0 && last < n->n && !n->dead[last]);
    p->loss = 0;
    p->upto = last;
    for (int i = 0; i <= last; i++)
        if (!n->dead[i])
            run_layer(&n->layers[i], p, 0);
}

int net_check_live(const struct net *n, int i, cn_error *e)
{
    CN_ASSERT(i >= 0 && i < n->n);
    if (!n->dead[i])
        return 0;
    return cn_fail(e,
                   "%s: layer %d [%s] (line %d) is skipped in inference: its output cannot reach "
                   "the last layer's (an auxiliary head; net/memplan.h)",
                   n->cfg_path, i, n->layers[i].ops->name, n->layers[i].line);
}

void net_forward(struct net *n, struct pass *p)
{
    net_forward_upto(n, p, n->n - 1);
}

/* Output gradients share memory by liveness (plan_outputs): layer j's is zeroed just before the
 * backward of its last reader i, the first to add into it (j itself when nothing reads it); the
 * last layer's is the caller's. */
static void zero_gradients_of(struct net *n, int i)
{
    for (int j = 0; j <= i && j < n->n - 1; j++)
        if (n->last_use[j] == i && n->layers[j].doutput) /* none below the cut */
            memset(n->layers[j].doutput, 0,
                   sizeof(float) * shape_size(n->layers[j].out) * (size_t)n->batch);
}

void net_backward(struct net *n, struct pass *p)
{
    CN_ASSERT(n->training);
    for (int i = n->n - 1; i >= n->lowest_trainable; i--) {
        zero_gradients_of(n, i);
        run_layer(&n->layers[i], p, 1);
        if (p->layer_done)
            p->layer_done(p->layer_done_ctx, i);
    }
}

void net_zero_grads(struct net *n)
{
    for (int i = 0; i < n->nparams; i++)
        if (n->params[i].grad)
            memset(n->params[i].grad, 0, sizeof(float) * n->params[i].n);
}

struct layer *net_last(const struct net *n)
{
    return &n->layers[n->n - 1];
}

const float *net_output(const struct net *n)
{
    return net_last(n)->output;
}

size_t net_outputs(const struct net *n)
{
    return shape_size(net_last(n)->out);
}

size_t net_inputs(const struct net *n)
{
    return shape_size(n->in);
}

size_t net_param_count(const struct net *n)
{
    size_t total = 0;
    for (int i = 0; i < n->nparams; i++)
        if (n->params[i].flags & PARAM_TRAIN)
            total += n->params[i].n;
    return total;
}

/* Parses [net] and builds the layers of f into n (shapes and declarations only, batch 1). */
static int count_build(struct net *n, struct cfg_file *f, size_t *count, cn_error *e)
{
    if (f->nsec < 2 || f->nsec - 1 > NET_MAX_LAYERS)
        return cn_fail(e, "%s: %d sections; a cfg is [net] and 1 to %d layers", f->path, f->nsec,
                       NET_MAX_LAYERS);
    if (net_config_parse(&n->cfg, &f->sec[0], e))
        return -1;
    n->in = (struct shape){n->cfg.channels, n->cfg.height, n->cfg.width};
    n->batch = 1;
    n->n = f->nsec - 1;
    n->layers = xcalloc((size_t)n->n, sizeof *n->layers);
    struct build b = {.batch = 1, .layers = n->layers, .nlayers = n->n, .file = f,
                      .bn = &n->cfg.bn};
    int rc = 0;
    for (int i = 0; !rc && i < n->n; i++)
        rc = build_layer(n, &b, &f->sec[i + 1], i, e);
    if (!rc)
        rc = check_loss_layers(n, f, e);
    for (int i = 0; !rc && i < b.nparams; i++)
        if (b.params[i].flags & PARAM_TRAIN)
            *count += b.params[i].n;
    build_free(&b);
    return rc;
}

int net_count_params(const char *cfg_path, size_t *count, cn_error *e)
{
    *count = 0;
    struct cfg_file *f;
    if (cfg_read_file(&f, cfg_path, CFG_SECTIONS, e))
        return -1;
    struct net *n = xcalloc(1, sizeof *n);
    n->cfg_path = xstrdup(f->path);
    n->max_bytes = NET_MAX_BYTES;
    int rc = count_build(n, f, count, e);
    net_destroy(n);
    cfg_destroy(f);
    return rc;
}
