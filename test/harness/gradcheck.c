/* gradcheck.c - central-difference gradient checks over a whole net (see gradcheck.h).
 * The objective is computed in double from the float forward pass; the dropout stream is
 * reseeded before every forward so each evaluation sees the same mask. */
#include "gradcheck.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

struct gc {
    struct net *n;
    float *dx; /* dL/dinput: the net's input_grad (NET_INPUT_GRAD), else the check's own */
    struct gradcheck_opts o;
    const float *r; /* dL/doutput when the last layer is not a loss layer */
    int is_loss;
};

static double objective(struct gc *g)
{
    struct pass p;
    net_params_changed(g->n); /* a parameter may have been nudged */
    cn_rng_seed_stream(&g->n->rng, g->o.seed, 77);
    net_pass_init(g->n, &p, !g->o.eval, g->is_loss);
    net_forward(g->n, &p);
    if (g->is_loss)
        return p.loss * (double)p.loss_scale;
    const float *y = net_output(g->n);
    size_t m = net_outputs(g->n) * (size_t)g->n->batch;
    double L = 0;
    for (size_t i = 0; i < m; i++)
        L += (double)y[i] * (double)g->r[i];
    return L;
}

static void analytic(struct gc *g)
{
    struct pass p;
    struct net *n = g->n;
    net_zero_grads(n);
    memset(g->dx, 0, sizeof(float) * net_inputs(n) * (size_t)n->batch);
    cn_rng_seed_stream(&n->rng, g->o.seed, 77);
    net_pass_init(n, &p, !g->o.eval, g->is_loss);
    net_forward(n, &p);
    if (!g->is_loss)
        memcpy(net_last(n)->doutput, g->r, sizeof(float) * net_outputs(n) * (size_t)n->batch);
    net_backward(n, &p);
}

/* Compares grad[i] with the central difference of the objective in x[i] for sampled i. */
static int check_tensor(struct gc *g, float *x, const float *grad, size_t count, const char *what)
{
    int bad = 0, checked = 0;
    size_t stride = count > (size_t)g->o.max_points ? count / (size_t)g->o.max_points : 1;
    double eps = g->o.eps;
    for (size_t i = 0; i < count; i += stride) {
        float v = x[i];
        double L0 = objective(g);
        x[i] = (float)(v + eps);
        double Lp = objective(g);
        x[i] = (float)(v - eps);
        double Lm = objective(g);
        x[i] = v;
        double dp = (Lp - L0) / eps, dm = (L0 - Lm) / eps;
        if (fabs(dp - dm) > 0.1 * fmax(fmax(fabs(dp), fabs(dm)), 1e-2))
            continue; /* a kink (relu at 0, max-pool tie, stair step) lies within eps */
        double num = (Lp - Lm) / (2 * eps), a = grad[i];
        checked++;
        if (fabs(a - num) > g->o.abs_tol + g->o.rel_tol * fmax(fabs(a), fabs(num))) {
            if (bad < 5)
                fprintf(stderr, "gradcheck: %s[%zu]: analytic %.6g, numeric %.6g\n", what, i, a,
                        num);
            bad++;
        }
    }
    if (checked == 0 && count > 0) {
        fprintf(stderr, "gradcheck: %s: every sampled point was at a kink\n", what);
        bad++;
    }
    return bad;
}

static void defaults(struct gradcheck_opts *o, const struct gradcheck_opts *given)
{
    *o = given ? *given : (struct gradcheck_opts){0};
    if (o->eps == 0)
        o->eps = 1e-3f;
    if (o->rel_tol == 0)
        o->rel_tol = 2e-2f;
    if (o->abs_tol == 0)
        o->abs_tol = 5e-4f;
    if (o->max_points == 0)
        o->max_points = 200;
}

int gradcheck_net(struct net *n, const struct gradcheck_opts *given)
{
    struct gc g = {.n = n};
    defaults(&g.o, given);
    g.is_loss = net_last(n)->ops->is_loss;
    cn_rng r;
    cn_rng_seed(&r, g.o.seed + 1);
    size_t nin = net_inputs(n) * (size_t)n->batch, nout = net_outputs(n) * (size_t)n->batch;
    for (size_t i = 0; i < nin; i++)
        n->input[i] = (float)(2 * cn_rng_uniform(&r) - 1);
    float *rr = xmalloc(sizeof(float) * nout);
    for (size_t i = 0; i < nout; i++)
        rr[i] = (float)(2 * cn_rng_uniform(&r) - 1);
    g.r = rr;
    float *own = n->input_grad ? NULL : xmalloc(sizeof(float) * nin);
    g.dx = own ? own : n->input_grad;
    float *dinput = n->layers[0].dinput;
    n->layers[0].dinput = g.dx;
    analytic(&g);
    /* Copy the analytic gradients: objective() reruns forward, which must not disturb them. */
    float *gin = xmalloc(sizeof(float) * nin);
    memcpy(gin, g.dx, sizeof(float) * nin);
    int bad = check_tensor(&g, n->input, gin, nin, "input");
    free(gin);
    for (int k = 0; k < n->nparams; k++) {
        struct param *p = &n->params[k];
        if (!p->grad)
            continue;
        char what[96];
        snprintf(what, sizeof what, "layer %d %s", p->layer, p->name);
        float *gp = xmalloc(sizeof(float) * p->n);
        memcpy(gp, p->grad, sizeof(float) * p->n);
        bad += check_tensor(&g, p->data, gp, p->n, what);
        free(gp);
    }
    n->layers[0].dinput = dinput;
    free(own);
    free(rr);
    return bad;
}

struct net *test_net(const char *cfg_text, int batch, int training)
{
    struct net *n = NULL;
    cn_error e;
    if (net_create_from_string(&n, cfg_text, "test.cfg", batch, training, &e))
        fail_msg("building the test net failed: %s", e.msg);
    return n;
}

void test_net_fails(const char *cfg_text, const char *want)
{
    struct net *n = NULL;
    cn_error e = {{0}};
    int rc = net_create_from_string(&n, cfg_text, "test.cfg", 0, 1, &e);
    net_destroy(n);
    if (rc == 0)
        fail_msg("expected the cfg to be rejected with '%s', but it built", want);
    if (!strstr(e.msg, want))
        fail_msg("expected an error containing '%s', got '%s'", want, e.msg);
}

void test_forward_expect(struct net *n, const float *x, const float *want, float tol)
{
    size_t nin = net_inputs(n) * (size_t)n->batch, nout = net_outputs(n) * (size_t)n->batch;
    memcpy(n->input, x, sizeof(float) * nin);
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    const float *y = net_output(n);
    for (size_t i = 0; i < nout; i++)
        if (!(fabs((double)y[i] - (double)want[i]) <= (double)tol)) /* a NaN fails too */
            fail_msg("output[%zu] = %.9g, expected %.9g (tolerance %g)", i, (double)y[i],
                     (double)want[i], (double)tol);
}

void gradcheck_cfgs(const char *const *cfgs, size_t count, const struct gradcheck_opts *train,
                    const struct gradcheck_opts *eval)
{
    for (size_t k = 0; k < count; k++) {
        struct net *n = test_net(cfgs[k], 0, 1);
        struct gradcheck_opts o = *train;
        o.seed += k;
        int bad = gradcheck_net(n, &o), bad_eval = eval ? gradcheck_net(n, eval) : 0;
        net_destroy(n);
        if (bad || bad_eval)
            fail_msg("cfg %zu: %d mismatches in training mode, %d in inference mode", k, bad,
                     bad_eval);
    }
}

void test_fill_normal(float *p, size_t n, cn_rng *r, double scale, double shift)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(shift + scale * cn_rng_normal(r));
}

double test_max_abs(const float *p, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(p[i]));
    return m;
}

void test_assert_uniform(const float *p, size_t n, double bound, double reach)
{
    double lo = 0, hi = 0;
    for (size_t i = 0; i < n; i++) {
        lo = fmin(lo, p[i]);
        hi = fmax(hi, p[i]);
    }
    if (!(hi <= bound && hi > reach * bound && lo >= -bound && lo < -reach * bound))
        fail_msg("values in [%g, %g], expected to fill [-%g, %g] within a factor %g", lo, hi, bound,
                 bound, reach);
}

struct param *test_param(struct net *n, int layer, const char *name)
{
    for (int i = 0; i < n->nparams; i++)
        if (n->params[i].layer == layer && !strcmp(n->params[i].name, name))
            return &n->params[i];
    fail_msg("layer %d has no parameter %s", layer, name);
    return NULL;
}

void test_assert_describe(const struct layer *l, const char *want)
{
    char buf[128];
    l->ops->describe(l, buf, sizeof buf);
    assert_string_equal(buf, want);
}

void test_assert_out(const char *cfg_text, int c, int h, int w, const char *desc, double flops)
{
    struct net *n = test_net(cfg_text, 0, 0);
    const struct layer *l = net_last(n);
    assert_int_equal(l->out.c, c);
    assert_int_equal(l->out.h, h);
    assert_int_equal(l->out.w, w);
    test_assert_describe(l, desc);
    if (flops >= 0)
        assert_float_equal(l->ops->flops(l), flops, 0);
    net_destroy(n);
}
