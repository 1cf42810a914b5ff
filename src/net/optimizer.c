/* optimizer.c - one optimiser over every parameter the layers declared (llm.c's gpt2_update),
 * instead of an update function per layer.
 *
 * Notation, per element: w a parameter, g = dL/dw for the MEAN loss over the images of the step
 * (the loss layer has already divided by them), lr the rate of this step, decay the [net] decay=,
 * applied only to PARAM_DECAY tensors (weights; not biases or batchnorm scales). Parameters
 * without PARAM_TRAIN (batchnorm rolling statistics) are not touched. After the update every
 * gradient is zero, ready for the next step's accumulation.
 *
 * SGD with momentum (the default):
 *     u = momentum * u + g + decay * w;   w = w - lr * u
 *   This is PyTorch's SGD(momentum, weight_decay, dampening=0, nesterov=False), and it is
 *   Darknet's update (update_connected_layer): Darknet keeps U = -(sum over the batch of the
 *   per-image gradients) + momentum * U_prev, then U -= decay * batch * w, w += lr / batch * U,
 *   U *= momentum; with u = -U / batch that is exactly the two lines above.
 * Adam (adam=1; B1, B2, eps from [net]), step t counted here from 1:
 *     g' = g + decay * w;   m = B1 m + (1 - B1) g';   v = B2 v + (1 - B2) g'^2
 *     w = w - lr * mhat / (sqrt(vhat) + eps),  mhat = m / (1 - B1^t), vhat = v / (1 - B2^t)
 *   which is PyTorch's Adam(weight_decay=decay); Adam follows PyTorch's definitions, not
 *   Darknet's GPU-only variant.
 * AdamW (adamw=1): decay decoupled from the moments (Loshchilov and Hutter), as PyTorch's AdamW:
 *     the Adam step on g itself, plus w = w - lr * decay * w.
 *
 * Per layer (net.c): a frozen layer's parameters are skipped (no update, no decay, their state
 * untouched; the gradient is cleared), and lr is multiplied by the layer's lr_mult (Darknet's
 * learning_rate= on a layer, learning_rate_scale: the whole step scales, decay included).
 *
 * State lives in slabs parallel to n->param_slab (the element at p->data - n->param_slab), so a
 * parameter's state sits at the same offset as its data. OpenMP splits each tensor's elements.
 */
#include "net/optimizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define OMP_MIN 8192 /* tensors smaller than this update on one thread */

enum opt_kind { OPT_SGD = OPTIMIZER_SGD, OPT_ADAM = OPTIMIZER_ADAM, OPT_ADAMW = OPTIMIZER_ADAMW };

struct optimizer {
    enum opt_kind kind;
    const float *param_slab; /* the net this state belongs to */
    size_t n;                /* floats in param_slab */
    float *state;            /* SGD: u[n]; Adam: m[n] then v[n] */
    size_t nstate;
    uint64_t t; /* steps taken */
};

int optimizer_create(struct optimizer **o, const struct net *n, cn_error *e)
{
    *o = NULL;
    if (!n->training)
        return cn_fail(e, "%s: the net was not built for training; no gradients to optimise",
                       n->cfg_path);
    enum opt_kind kind = n->cfg.adamw ? OPT_ADAMW : n->cfg.adam ? OPT_ADAM : OPT_SGD;
    size_t nstate;
    if (cn_mul(&nstate, n->nparam_floats, kind == OPT_SGD ? 1 : 2))
        return cn_fail(e, "%s: optimiser state too large", n->cfg_path);
    float *state = cn_alloc_floats(nstate, "optimiser state", e);
    if (!state)
        return cn_wrap(e, "%s", n->cfg_path);
    struct optimizer *opt = xcalloc(1, sizeof *opt);
    *opt = (struct optimizer){kind, n->param_slab, n->nparam_floats, state, nstate, 0};
    *o = opt;
    return 0;
}

void optimizer_destroy(struct optimizer *o)
{
    if (!o)
        return;
    cn_free_floats(o->state);
    free(o);
}

static void sgd_update(float *w, float *g, float *u, size_t count, float lr, float momentum,
                       float decay)
{
#pragma omp parallel for schedule(static) if (count >= OMP_MIN)
    for (size_t j = 0; j < count; j++) {
        u[j] = momentum * u[j] + g[j] + decay * w[j];
        w[j] -= lr * u[j];
        g[j] = 0.f;
    }
}

/* The constants of one Adam step. l2 is decay folded into the gradient (Adam), decoupled the
 * decay applied to w directly (AdamW); one of them is zero. */
struct adam_step {
    float lr, b1, b2, eps, bc1, bc2, l2, decoupled;
};

static void adam_update(float *w, float *g, float *m, float *v, size_t count,
                        const struct adam_step *s)
{
#pragma omp parallel for schedule(static) if (count >= OMP_MIN)
    for (size_t j = 0; j < count; j++) {
        float gj = g[j] + s->l2 * w[j];
        m[j] = s->b1 * m[j] + (1.f - s->b1) * gj;
        v[j] = s->b2 * v[j] + (1.f - s->b2) * gj * gj;
        float mhat = m[j] / s->bc1, vhat = v[j] / s->bc2;
        w[j] -= s->lr * (mhat / (sqrtf(vhat) + s->eps) + s->decoupled * w[j]);
        g[j] = 0.f;
    }
}

static struct adam_step adam_constants(const struct optimizer *o, const struct net_config *c,
                                       float lr, float decay)
{
    double t = (double)o->t;
    return (struct adam_step){
        .lr = lr,
        .b1 = c->b1,
        .b2 = c->b2,
        .eps = c->eps,
        .bc1 = (float)(1.0 - pow(c->b1, t)),
        .bc2 = (float)(1.0 - pow(c->b2, t)),
        .l2 = o->kind == OPT_ADAM ? decay : 0.f,
        .decoupled = o->kind == OPT_ADAMW ? decay : 0.f,
    };
}

void optimizer_step(struct optimizer *o, struct net *n, float lr)
{
    CN_ASSERT(o->param_slab == n->param_slab && o->n == n->nparam_floats);
    o->t++;
    for (int i = 0; i < n->nparams; i++) {
        const struct param *p = &n->params[i];
        if (!(p->flags & PARAM_TRAIN) || !p->grad)
            continue;
        const struct layer *l = &n->layers[p->layer];
        if (l->frozen) { /* no update, no decay, no momentum: only the gradient is cleared */
            memset(p->grad, 0, sizeof(float) * p->n);
            continue;
        }
        size_t off = (size_t)(p->data - n->param_slab);
        CN_ASSERT(off + p->n <= o->n);
        float decay = (p->flags & PARAM_DECAY) ? n->cfg.decay : 0.f, rate = lr * l->lr_mult;
        if (o->kind == OPT_SGD) {
            sgd_update(p->data, p->grad, o->state + off, p->n, rate, n->cfg.momentum, decay);
        } else {
            struct adam_step s = adam_constants(o, &n->cfg, rate, decay);
            adam_update(p->data, p->grad, o->state + off, o->state + o->n + off, p->n, &s);
        }
    }
    net_params_changed(n);
}

float *optimizer_state(struct optimizer *o, size_t *len)
{
    *len = o->nstate;
    return o->state;
}

uint64_t optimizer_steps(const struct optimizer *o)
{
    return o->t;
}

void optimizer_set_steps(struct optimizer *o, uint64_t steps)
{
    o->t = steps;
}

enum optimizer_kind optimizer_kind(const struct optimizer *o)
{
    return (enum optimizer_kind)o->kind;
}

const char *optimizer_kind_name(enum optimizer_kind k)
{
    return k == OPTIMIZER_SGD     ? "SGD"
           : k == OPTIMIZER_ADAM  ? "Adam"
           : k == OPTIMIZER_ADAMW ? "AdamW"
                                  : "unknown";
}
