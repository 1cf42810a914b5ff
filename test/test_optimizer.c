/* test_optimizer.c - SGD with momentum and decay, Adam and AdamW on small hand-built nets (params
 * laid out in slabs as net.c lays them out: padded parameter slab, separate compact gradient
 * slab), against numbers worked out by hand and against a double-precision reimplementation of
 * each rule; decay only on PARAM_DECAY tensors; untouched non-trainable tensors; zeroed gradients.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/rng.h"
#include "net/optimizer.h"

#define PAD 16 /* floats between tensors in the parameter slab, as net.c aligns them */

struct spec {
    const char *name;
    size_t n;
    unsigned flags;
};

static const struct layer_ops fake_ops = {.name = "convolutional"};

/* A one-layer net holding the given tensors, built for training. */
static struct net *fake_net(const struct spec *s, int np)
{
    struct net *n = calloc(1, sizeof *n);
    cn_error e;
    n->cfg_path = strdup("fake.cfg");
    n->training = 1;
    n->n = 1;
    n->layers = calloc(1, sizeof *n->layers);
    n->layers[0].ops = &fake_ops;
    n->layers[0].lr_mult = 1.f; /* what net.c parses when a section has no learning_rate= */
    n->params = calloc((size_t)np, sizeof *n->params);
    n->nparams = np;
    size_t total = 0, ngrad = 0;
    for (int i = 0; i < np; i++) {
        total += s[i].n + PAD;
        ngrad += s[i].flags & PARAM_TRAIN ? s[i].n : 0;
    }
    n->param_slab = cn_alloc_floats(total, "params", &e);
    n->grad_slab = cn_alloc_floats(ngrad, "grads", &e);
    n->nparam_floats = total;
    size_t off = PAD, goff = 0; /* a leading gap, so state offsets cannot start at 0 by luck */
    for (int i = 0; i < np; i++) {
        n->params[i] = (struct param){n->param_slab + off, NULL, s[i].n, s[i].name, s[i].flags, 0};
        if (s[i].flags & PARAM_TRAIN) {
            n->params[i].grad = n->grad_slab + goff;
            goff += s[i].n;
        }
        off += s[i].n + PAD;
    }
    n->cfg = (struct net_config){
        .momentum = 0.9f, .decay = 0.1f, .b1 = 0.9f, .b2 = 0.999f, .eps = 1e-8f};
    return n;
}

static void fake_free(struct net *n)
{
    cn_free_floats(n->param_slab);
    cn_free_floats(n->grad_slab);
    free(n->params);
    free(n->layers);
    free(n->cfg_path);
    free(n);
}

static struct optimizer *make_opt(struct net *n)
{
    struct optimizer *o;
    cn_error e;
    if (optimizer_create(&o, n, &e))
        fail_msg("%s", e.msg);
    return o;
}

static void set(float *dst, const float *src, size_t n)
{
    memcpy(dst, src, sizeof *dst * n);
}

#define assert_close(got, want) assert_float_equal((got), (want), 1e-6)

static const struct spec wb[] = {
    {"weights", 2, PARAM_TRAIN | PARAM_DECAY},
    {"biases", 1, PARAM_TRAIN},
    {"rolling_mean", 3, 0},
};

/* momentum 0.9, decay 0.1. Step 1, lr 0.5, g_w = (0.2, -0.4), g_b = 0.3:
 *   u_w = (0.2 + 0.1*1, -0.4 + 0.1*-2) = (0.3, -0.6);  w = (1 - 0.15, -2 + 0.3) = (0.85, -1.7)
 *   u_b = 0.3 (no decay on biases);                      b = 0.5 - 0.15 = 0.35
 * Step 2, lr 0.25, g_w = (0.1, 0), g_b = -0.2:
 *   u_w = (0.27 + 0.1 + 0.085, -0.54 + 0 - 0.17) = (0.455, -0.71);  w = (0.73625, -1.5225)
 *   u_b = 0.27 - 0.2 = 0.07;                                          b = 0.35 - 0.0175 = 0.3325 */
static void test_sgd_two_steps(void **state)
{
    (void)state;
    struct net *n = fake_net(wb, 3);
    struct param *w = &n->params[0], *b = &n->params[1], *rm = &n->params[2];
    set(w->data, (float[]){1.f, -2.f}, 2);
    b->data[0] = 0.5f;
    set(rm->data, (float[]){7.f, 8.f, 9.f}, 3);
    struct optimizer *o = make_opt(n);
    set(w->grad, (float[]){0.2f, -0.4f}, 2);
    b->grad[0] = 0.3f;
    optimizer_step(o, n, 0.5f);
    assert_close(w->data[0], 0.85f);
    assert_close(w->data[1], -1.7f);
    assert_close(b->data[0], 0.35f);
    set(w->grad, (float[]){0.1f, 0.f}, 2);
    b->grad[0] = -0.2f;
    optimizer_step(o, n, 0.25f);
    assert_close(w->data[0], 0.73625f);
    assert_close(w->data[1], -1.5225f);
    assert_close(b->data[0], 0.3325f);
    /* The momentum state, parallel to the parameter slab. */
    size_t len;
    float *u = optimizer_state(o, &len);
    assert_int_equal(len, n->nparam_floats);
    assert_close(u[w->data - n->param_slab], 0.455f);
    assert_close(u[w->data - n->param_slab + 1], -0.71f);
    assert_close(u[b->data - n->param_slab], 0.07f);
    assert_int_equal(optimizer_steps(o), 2);
    /* Gradients zeroed, the non-trainable tensor untouched. */
    assert_true(w->grad[0] == 0.f && w->grad[1] == 0.f && b->grad[0] == 0.f);
    assert_true(rm->data[0] == 7.f && rm->data[1] == 8.f && rm->data[2] == 9.f);
    optimizer_destroy(o);
    fake_free(n);
}

/* With zero gradients only decay moves anything, and only the weights: w = 1 - 0.5 * 0.1 * 1. */
static void test_decay_only_on_decay_params(void **state)
{
    (void)state;
    struct net *n = fake_net(wb, 3);
    n->cfg.momentum = 0.f;
    n->params[0].data[0] = 1.f;
    n->params[1].data[0] = 1.f;
    struct optimizer *o = make_opt(n);
    optimizer_step(o, n, 0.5f);
    assert_close(n->params[0].data[0], 0.95f);
    assert_true(n->params[1].data[0] == 1.f);
    optimizer_destroy(o);
    fake_free(n);
}

static const struct spec one[] = {{"weights", 1, PARAM_TRAIN | PARAM_DECAY}};

/* Adam, lr 0.1, decay 0.1, w = 1, g = 0.2 twice (B1 0.9, B2 0.999, eps 1e-8):
 *   t=1: g' = 0.3, m = 0.03, v = 9e-5, mhat = 0.3, vhat = 0.09: w = 1 - 0.1 * 0.3/0.3 = 0.9
 *   t=2: g' = 0.29, m = 0.056, v = 1.7401e-4, mhat = 0.056/0.19, vhat = 1.7401e-4/0.001999:
 *        w = 0.9 - 0.1 * 0.294737/0.295040 = 0.800103 */
static void test_adam_two_steps(void **state)
{
    (void)state;
    struct net *n = fake_net(one, 1);
    n->cfg.adam = 1;
    struct param *w = &n->params[0];
    w->data[0] = 1.f;
    struct optimizer *o = make_opt(n);
    size_t len;
    optimizer_state(o, &len);
    assert_int_equal(len, 2 * n->nparam_floats);
    w->grad[0] = 0.2f;
    optimizer_step(o, n, 0.1f);
    assert_close(w->data[0], 0.9000000033f);
    assert_true(w->grad[0] == 0.f);
    w->grad[0] = 0.2f;
    optimizer_step(o, n, 0.1f);
    assert_close(w->data[0], 0.8001027138f);
    optimizer_destroy(o);
    fake_free(n);
}

/* AdamW, same numbers, decay decoupled: the Adam step is 1 (g/|g|) on both steps, so
 *   t=1: w = 1 - 0.1 * (1 + 0.1 * 1) = 0.89;  t=2: w = 0.89 - 0.1 * (1 + 0.1 * 0.89) = 0.7811 */
static void test_adamw_two_steps(void **state)
{
    (void)state;
    struct net *n = fake_net(one, 1);
    n->cfg.adamw = 1;
    struct param *w = &n->params[0];
    w->data[0] = 1.f;
    struct optimizer *o = make_opt(n);
    w->grad[0] = 0.2f;
    optimizer_step(o, n, 0.1f);
    assert_close(w->data[0], 0.89f);
    w->grad[0] = 0.2f;
    optimizer_step(o, n, 0.1f);
    assert_close(w->data[0], 0.7811f);
    optimizer_destroy(o);
    fake_free(n);
}

/* The rules again, in double, one tensor at a time. */
struct ref {
    double *w, *s1, *s2;
};

static void ref_step(const struct net *n, struct ref *r, int t, double lr, const float *const *g)
{
    const struct net_config *c = &n->cfg;
    for (int i = 0; i < n->nparams; i++) {
        const struct param *p = &n->params[i];
        size_t off = (size_t)(p->data - n->param_slab);
        double d = p->flags & PARAM_DECAY ? c->decay : 0;
        for (size_t j = 0; p->flags & PARAM_TRAIN && j < p->n; j++) {
            double *w = &r->w[off + j], *m = &r->s1[off + j], *v = &r->s2[off + j];
            double gj = g[i][j] + (c->adamw ? 0 : d * *w);
            if (!c->adam && !c->adamw) {
                *m = c->momentum * *m + gj;
                *w -= lr * *m;
                continue;
            }
            *m = c->b1 * *m + (1 - c->b1) * gj;
            *v = c->b2 * *v + (1 - c->b2) * gj * gj;
            double mhat = *m / (1 - pow(c->b1, t)), vhat = *v / (1 - pow(c->b2, t));
            *w -= lr * (mhat / (sqrt(vhat) + c->eps) + (c->adamw ? d * *w : 0));
        }
    }
}

/* Awkward sizes (1, a prime, one above the threading threshold), five steps, random gradients. */
static void compare_with_double(int adam, int adamw)
{
    static const struct spec s[] = {{"biases", 1, PARAM_TRAIN},
                                    {"weights", 37, PARAM_TRAIN | PARAM_DECAY},
                                    {"rolling_variance", 5, 0},
                                    {"weights", 8193, PARAM_TRAIN | PARAM_DECAY}};
    struct net *n = fake_net(s, 4);
    n->cfg.adam = adam;
    n->cfg.adamw = adamw;
    cn_rng rng;
    cn_rng_seed(&rng, 42);
    size_t total = n->nparam_floats;
    struct ref r = {calloc(total, sizeof(double)), calloc(total, sizeof(double)),
                    calloc(total, sizeof(double))};
    for (size_t j = 0; j < total; j++)
        r.w[j] = n->param_slab[j] = (float)cn_rng_normal(&rng);
    struct optimizer *o = make_opt(n);
    float *g[4] = {malloc(sizeof(float)), malloc(37 * sizeof(float)), NULL,
                   malloc(8193 * sizeof(float))};
    for (int t = 1; t <= 5; t++) {
        for (int i = 0; i < 4; i++)
            for (size_t j = 0; g[i] && j < n->params[i].n; j++)
                n->params[i].grad[j] = g[i][j] = (float)(0.1 * cn_rng_normal(&rng));
        optimizer_step(o, n, 0.01f * (float)t);
        ref_step(n, &r, t, 0.01 * t, (const float *const *)g);
    }
    for (size_t j = 0; j < total; j++)
        if (fabs(n->param_slab[j] - r.w[j]) > 1e-5 * (1 + fabs(r.w[j])))
            fail_msg("adam=%d adamw=%d: element %zu is %.9g, double gives %.9g", adam, adamw, j,
                     (double)n->param_slab[j], r.w[j]);
    for (size_t j = 0; j < n->params[3].n; j++)
        assert_true(n->params[3].grad[j] == 0.f);
    for (int i = 0; i < 4; i++)
        free(g[i]);
    free(r.w);
    free(r.s1);
    free(r.s2);
    optimizer_destroy(o);
    fake_free(n);
}

static void test_sgd_against_double(void **state)
{
    (void)state;
    compare_with_double(0, 0);
}

static void test_adam_against_double(void **state)
{
    (void)state;
    compare_with_double(1, 0);
}

static void test_adamw_against_double(void **state)
{
    (void)state;
    compare_with_double(0, 1);
}

static void test_needs_training_net(void **state)
{
    (void)state;
    struct net *n = fake_net(one, 1);
    n->training = 0;
    struct optimizer *o = (struct optimizer *)n; /* anything non-NULL: create must clear it */
    cn_error e;
    assert_int_equal(optimizer_create(&o, n, &e), -1);
    assert_null(o);
    assert_non_null(strstr(e.msg, "fake.cfg: the net was not built for training"));
    optimizer_destroy(NULL);
    fake_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_two_steps),
        cmocka_unit_test(test_decay_only_on_decay_params),
        cmocka_unit_test(test_adam_two_steps),
        cmocka_unit_test(test_adamw_two_steps),
        cmocka_unit_test(test_sgd_against_double),
        cmocka_unit_test(test_adam_against_double),
        cmocka_unit_test(test_adamw_against_double),
        cmocka_unit_test(test_needs_training_net),
    };
    return cmocka_run_group_tests_name("optimizer", tests, NULL, NULL);
}
