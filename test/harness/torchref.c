/* torchref.c - the PyTorch comparisons of torchref.h. Values go to the script through a temporary
 * file and come back on its stdout, one tagged line per tensor, printed with 9 significant digits,
 * each case closed by a line "end". */
#include "torchref.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "gradcheck.h"

#define TORCHREF_PY "/usr/bin/python3"
#define TORCHREF_SCRIPT "test/ref/torch_layer.py"
#define TORCHREF_NO_TORCH 2 /* the script's exit status when torch cannot be imported */

/* Our numbers for one case: input, dL/doutput, output, input gradient. */
struct ours {
    size_t nx, ny;
    float *x, *dy, *y, *dx;
};

static void run_ours(struct ours *o, struct net *n, cn_rng *r)
{
    o->nx = net_inputs(n) * (size_t)n->batch;
    o->ny = net_outputs(n) * (size_t)n->batch;
    o->x = n->input;
    o->dy = xmalloc(sizeof(float) * o->ny);
    o->y = xmalloc(sizeof(float) * o->ny);
    o->dx = xmalloc(sizeof(float) * o->nx);
    for (size_t i = 0; i < o->nx; i++)
        n->input[i] = (float)(4 * cn_rng_uniform(r) - 2);
    for (size_t i = 0; i < o->ny; i++)
        o->dy[i] = (float)(4 * cn_rng_uniform(r) - 2);
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    memcpy(o->y, net_output(n), sizeof(float) * o->ny);
    memcpy(net_last(n)->doutput, o->dy, sizeof(float) * o->ny);
    memset(n->input_grad, 0, sizeof(float) * o->nx);
    net_backward(n, &p);
    memcpy(o->dx, n->input_grad, sizeof(float) * o->nx);
}

static void write_row(FILE *f, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%.9g ", (double)v[i]);
    fputc('\n', f);
}

/* Reads "tag v1 ... vn" from f and counts the values off from want by more than tol. */
static int compare_row(FILE *f, const char *tag, const float *want, size_t n, float tol,
                       const char *spec)
{
    char got[16];
    if (fscanf(f, "%15s", got) != 1 || strcmp(got, tag))
        return -1;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float v;
        if (fscanf(f, "%f", &v) != 1)
            return -1;
        if (!(fabsf(want[i] - v) <= tol * (1 + fabsf(v))) && bad++ < 3)
            fprintf(stderr, "torchref: '%s' %s[%zu]: ours %.7g, torch %.7g\n", spec, tag, i,
                    (double)want[i], (double)v);
    }
    return bad;
}

/* Reads the script's stdout for all cases; returns the mismatches or -1 (too little printed). */
typedef int (*script_reader)(FILE *p, void *ctx);

/* Checks that PyTorch's python and the script are there (else says so, naming what) and opens
 * path, a "/tmp/cfgnet-torchref-XXXXXX" buffer, as a new temporary file for the script's input.
 * Returns 0, -1 or TORCHREF_SKIPPED. */
static int script_input(FILE **f, char *path, const char *what)
{
    if (access(TORCHREF_PY, X_OK) != 0 || access(TORCHREF_SCRIPT, R_OK) != 0) {
        printf("SKIPPED: %s: no " TORCHREF_PY " or no " TORCHREF_SCRIPT "\n", what);
        return TORCHREF_SKIPPED;
    }
    int fd = mkstemp(path);
    *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    return *f ? 0 : -1;
}

/* Runs the script on path and has reader take its output; returns its count, -1, or
 * TORCHREF_SKIPPED (saying so, naming what) when the script cannot import torch. */
static int script_run(const char *path, const char *what, script_reader reader, void *ctx)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, TORCHREF_PY " " TORCHREF_SCRIPT " %s", path);
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    int bad = reader(p, ctx);
    int st = pclose(p);
    if (WIFEXITED(st) && WEXITSTATUS(st) == TORCHREF_NO_TORCH) {
        printf("SKIPPED: %s: " TORCHREF_PY " cannot import torch (python3-torch)\n", what);
        return TORCHREF_SKIPPED;
    }
    if (st != 0 || bad < 0) {
        fprintf(stderr, "torchref: %s failed (status %d) or printed too little\n", cmd, st);
        return -1;
    }
    return bad;
}

/* What compare_rows checks the script's rows against. */
struct compare_ctx {
    const struct ours *o;
    const char *const *specs;
    int count;
    float tol;
};

/* Each case's y and dx rows against ours, then "end"; mismatches or -1. */
static int compare_rows(FILE *p, void *ctx)
{
    const struct compare_ctx *c = ctx;
    int bad = 0;
    for (int k = 0; k < c->count && bad >= 0; k++) {
        const struct ours *o = &c->o[k];
        int a = compare_row(p, "y", o->y, o->ny, c->tol, c->specs[k]);
        int b = a < 0 ? -1 : compare_row(p, "dx", o->dx, o->nx, c->tol, c->specs[k]);
        char end[8];
        if (b >= 0 && (fscanf(p, "%7s", end) != 1 || strcmp(end, "end")))
            b = -1;
        bad = a < 0 || b < 0 ? -1 : bad + a + b;
    }
    return bad;
}

int torchref_compare(struct net *const *nets, const char *const *specs, int count, uint64_t seed,
                     float tol, const char *what)
{
    char path[] = "/tmp/cfgnet-torchref-XXXXXX";
    FILE *f;
    int rc = script_input(&f, path, what);
    if (rc)
        return rc;
    struct ours *o = xcalloc((size_t)count, sizeof *o);
    cn_rng r;
    cn_rng_seed(&r, seed);
    for (int k = 0; k < count; k++) {
        run_ours(&o[k], nets[k], &r);
        fprintf(f, "%s\n", specs[k]);
        write_row(f, o[k].x, o[k].nx);
        write_row(f, o[k].dy, o[k].ny);
    }
    struct compare_ctx ctx = {o, specs, count, tol};
    rc = fclose(f) ? -1 : script_run(path, what, compare_rows, &ctx);
    unlink(path);
    for (int k = 0; k < count; k++)
        free(o[k].dy), free(o[k].y), free(o[k].dx);
    free(o);
    return rc;
}

void torchref_check(const struct torchref_pair *cases, int count, uint64_t seed, float tol,
                    const char *what)
{
    struct net **nets = xcalloc((size_t)count, sizeof *nets);
    const char **specs = xcalloc((size_t)count, sizeof *specs);
    for (int k = 0; k < count; k++) {
        nets[k] = test_net(cases[k].cfg, 0, NET_TRAIN | NET_INPUT_GRAD);
        specs[k] = cases[k].spec;
    }
    int rc = torchref_compare(nets, specs, count, seed, tol, what);
    for (int k = 0; k < count; k++)
        net_destroy(nets[k]);
    free(nets);
    free(specs);
    if (rc == TORCHREF_SKIPPED)
        skip();
    assert_int_equal(rc, 0);
}

/* ---- torchref_parity: whole tensors, parameters included, max relative error per tensor ---- */

/* Our side of one parity case: the net after its pass, its output, input gradient and loss. */
struct pcase {
    struct net *n;
    size_t nx, ny;
    float *y, *dx;
    float loss;
};

static void fill_uniform(float *v, size_t n, cn_rng *r, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(lo + (hi - lo) * cn_rng_uniform(r));
}

static void write_tagged(FILE *f, const char *tag, const float *v, size_t n)
{
    fprintf(f, "%s ", tag);
    write_row(f, v, n);
}

/* Targets of kind c->truth for the ny outputs, in t. */
static void fill_truth(float *t, size_t ny, const struct torchref_case *c, cn_rng *r)
{
    if (c->truth != TORCHREF_ONE_HOT) {
        fill_uniform(t, ny, r, -2, 2);
        for (size_t i = 0; c->truth == TORCHREF_MASKED && i < ny; i += 4)
            t[i] = -1234.f;
        return;
    }
    size_t k = (size_t)c->classes;
    CN_ASSERT(k > 0 && ny % k == 0);
    for (size_t row = 0; row < ny / k; row++) {
        size_t hot = (size_t)cn_rng_below(r, k);
        for (size_t i = 0; i < k; i++)
            t[row * k + i] = c->smooth / (float)k + (i == hot ? 1.f - c->smooth : 0.f);
    }
}

/* Draws the net's parameters and writes them as p<layer>.<name> lines. */
static void draw_params(FILE *f, struct net *n, cn_rng *r)
{
    for (int i = 0; i < n->nparams; i++) {
        struct param *q = &n->params[i];
        int var = !strcmp(q->name, "rolling_variance");
        fill_uniform(q->data, q->n, r, var ? 0.5 : -1, var ? 2 : 1);
        char tag[64];
        snprintf(tag, sizeof tag, "p%d.%s", q->layer, q->name);
        write_tagged(f, tag, q->data, q->n);
    }
}

/* Builds case c, writes its spec, runs our forward and backward, records the results in o. */
static void parity_run(FILE *f, struct pcase *o, const struct torchref_case *c, cn_rng *r)
{
    struct net *n = o->n = test_net(c->cfg, 0, NET_TRAIN | NET_INPUT_GRAD);
    o->nx = net_inputs(n) * (size_t)n->batch;
    o->ny = net_outputs(n) * (size_t)n->batch;
    float range = c->range > 0 ? c->range : 2.f;
    fill_uniform(n->input, o->nx, r, -range, range);
    float *dy = c->truth == TORCHREF_NO_TRUTH ? xmalloc(sizeof(float) * o->ny) : n->truth;
    if (c->truth == TORCHREF_NO_TRUTH)
        fill_uniform(dy, o->ny, r, -2, 2);
    else
        fill_truth(n->truth, o->ny, c, r);
    fprintf(f, "%s\n", c->spec);
    write_row(f, n->input, o->nx);
    write_row(f, dy, o->ny);
    draw_params(f, n, r);
    struct pass p;
    net_zero_grads(n);
    net_pass_init(n, &p, c->train, c->truth != TORCHREF_NO_TRUTH);
    net_forward(n, &p);
    o->y = xmalloc(sizeof(float) * o->ny);
    memcpy(o->y, net_output(n), sizeof(float) * o->ny);
    o->loss = (float)p.loss;
    if (c->truth == TORCHREF_NO_TRUTH)
        memcpy(net_last(n)->doutput, dy, sizeof(float) * o->ny);
    memset(n->input_grad, 0, sizeof(float) * o->nx);
    net_backward(n, &p);
    o->dx = xmalloc(sizeof(float) * o->nx);
    memcpy(o->dx, n->input_grad, sizeof(float) * o->nx);
    if (c->send_mask) {
        float *mask = xmalloc(sizeof(float) * o->ny);
        for (size_t i = 0; i < o->ny; i++)
            mask[i] = o->y[i] != 0.f;
        write_tagged(f, "mask", mask, o->ny);
        free(mask);
    }
    if (c->truth == TORCHREF_NO_TRUTH)
        free(dy);
}

/* Our tensor for the script's tag: y, dx, loss, d<layer>.<name> (gradient), p<layer>.<name>
 * (value after the pass); NULL when there is none. */
static const float *parity_tensor(const struct pcase *o, const char *tag, size_t *len)
{
    if (!strcmp(tag, "y") || !strcmp(tag, "dx") || !strcmp(tag, "loss")) {
        *len = tag[0] == 'y' ? o->ny : tag[0] == 'd' ? o->nx : 1;
        return tag[0] == 'y' ? o->y : tag[0] == 'd' ? o->dx : &o->loss;
    }
    int layer, at = 0;
    if ((tag[0] != 'd' && tag[0] != 'p') || sscanf(tag + 1, "%d.%n", &layer, &at) != 1 || !at)
        return NULL;
    for (int i = 0; i < o->n->nparams; i++) {
        const struct param *q = &o->n->params[i];
        if (q->layer == layer && !strcmp(q->name, tag + 1 + at)) {
            *len = q->n;
            return tag[0] == 'd' ? q->grad : q->data;
        }
    }
    return NULL;
}

/* max |ours - theirs| / max |theirs| over the values on line (after its tag); -1 when the count
 * is wrong. An all-zero reference gives the plain max |ours - theirs|. */
static double parity_error(const float *ours, size_t n, char *line)
{
    double top = 0, diff = 0;
    char *at = line, *end;
    size_t k = 0;
    for (double v = strtod(at, &end); end != at; v = strtod(at, &end), k++) {
        if (k >= n)
            return -1;
        double d = fabs(v - (double)ours[k]);
        top = fmax(top, fabs(v));
        diff = d <= diff ? diff : d; /* a NaN of ours propagates */
        at = end;
    }
    if (k != n)
        return -1;
    return top > 0 ? diff / top : diff;
}

/* Reads case c's lines up to "end" from p, prints each tensor's error; 0 when all are within tol
 * and every expected tensor came back, 1 otherwise, -1 when the output ends early. */
static int parity_check(FILE *p, const struct pcase *o, const struct torchref_case *c, double tol)
{
    int ngrads = 0, got_grads = 0, seen = 0, bad = 0;
    for (int i = 0; i < o->n->nparams; i++)
        ngrads += o->n->params[i].grad != NULL;
    char *line = NULL;
    size_t cap = 0;
    int printed = 0;
    while (getline(&line, &cap, p) > 0 && strcmp(line, "end\n")) {
        char *sp = strchr(line, ' ');
        if (!sp)
            break;
        if (!printed++)
            printf("  %-34s", c->name);
        *sp = '\0';
        size_t len = 0;
        const float *ours = parity_tensor(o, line, &len);
        double err = ours ? parity_error(ours, len, sp + 1) : -1;
        printf(" %s %.1e", line, err);
        if (err < 0)
            fprintf(stderr, "torchref: '%s': no tensor of ours is %s or its size differs\n",
                    c->spec, line);
        bad += !(err >= 0 && err <= tol);
        seen |= (!strcmp(line, "y")) | (!strcmp(line, "dx") << 1) | (!strcmp(line, "loss") << 2);
        got_grads += line[0] == 'd' && line[1] != 'x';
    }
    if (printed)
        printf("\n");
    int ended = line && !strcmp(line, "end\n");
    free(line);
    if (!ended)
        return -1;
    int want = 3 | ((c->truth != TORCHREF_NO_TRUTH) << 2);
    if (seen != want || got_grads != ngrads) {
        fprintf(stderr,
                "torchref: '%s': the script returned %d of %d parameter gradients "
                "(rows seen %#x of %#x)\n",
                c->spec, got_grads, ngrads, seen, want);
        bad++;
    }
    return bad > 0;
}

/* What parity_rows checks the script's output against. */
struct parity_ctx {
    const struct pcase *o;
    const struct torchref_case *cases;
    int count;
    double tol;
    int *verdict; /* may be NULL */
};

/* Checks every case's tensors; the number of bad cases or -1. */
static int parity_rows(FILE *p, void *ctx)
{
    const struct parity_ctx *c = ctx;
    int bad = 0;
    for (int k = 0; k < c->count && bad >= 0; k++) {
        int r = parity_check(p, &c->o[k], &c->cases[k], c->tol);
        bad = r < 0 ? -1 : bad + r;
        if (c->verdict)
            c->verdict[k] = r != 0;
    }
    return bad;
}

int torchref_parity(const struct torchref_case *cases, int count, uint64_t seed, double tol,
                    int *bad)
{
    char path[] = "/tmp/cfgnet-torchref-XXXXXX";
    FILE *f;
    int rc = script_input(&f, path, "layer parity");
    if (rc)
        return rc;
    struct pcase *o = xcalloc((size_t)count, sizeof *o);
    cn_rng r;
    cn_rng_seed(&r, seed);
    for (int k = 0; k < count; k++)
        parity_run(f, &o[k], &cases[k], &r);
    printf("max |ours - torch| / max |torch| per tensor (tolerance %g):\n", tol);
    struct parity_ctx ctx = {o, cases, count, tol, bad};
    rc = fclose(f) ? -1 : script_run(path, "layer parity", parity_rows, &ctx);
    unlink(path);
    for (int k = 0; k < count; k++) {
        free(o[k].y), free(o[k].dx);
        net_destroy(o[k].n);
    }
    free(o);
    return rc;
}
