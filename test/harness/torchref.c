/* torchref.c - the PyTorch comparison of torchref.h. Values go to the script through a temporary
 * file and come back on its stdout, printed with 9 significant digits. */
#include "torchref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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
    n->layers[0].dinput = n->input_grad;
    net_backward(n, &p);
    n->layers[0].dinput = NULL;
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

/* Runs the script on path and compares its rows with ours; returns mismatches, -1, or skipped. */
static int run_script(const char *path, const struct ours *o, const char *const *specs, int count,
                      float tol, const char *what)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, TORCHREF_PY " " TORCHREF_SCRIPT " %s", path);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    int bad = 0;
    for (int k = 0; k < count && bad >= 0; k++) {
        int a = compare_row(p, "y", o[k].y, o[k].ny, tol, specs[k]);
        int b = a < 0 ? -1 : compare_row(p, "dx", o[k].dx, o[k].nx, tol, specs[k]);
        bad = a < 0 || b < 0 ? -1 : bad + a + b;
    }
    int st = pclose(p);
    if (WIFEXITED(st) && WEXITSTATUS(st) == TORCHREF_NO_TORCH) {
        printf("SKIPPED: %s: " TORCHREF_PY " cannot import torch (python3-torch)\n", what);
        return TORCHREF_SKIPPED;
    }
    if (st != 0 || bad < 0) {
        fprintf(stderr, "torchref: %s failed (status %d) or printed too few values\n", cmd, st);
        return -1;
    }
    return bad;
}

int torchref_compare(struct net *const *nets, const char *const *specs, int count, uint64_t seed,
                     float tol, const char *what)
{
    if (access(TORCHREF_PY, X_OK) != 0 || access(TORCHREF_SCRIPT, R_OK) != 0) {
        printf("SKIPPED: %s: no " TORCHREF_PY " or no " TORCHREF_SCRIPT "\n", what);
        return TORCHREF_SKIPPED;
    }
    char path[] = "/tmp/cfgnet-torchref-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f)
        return -1;
    struct ours *o = xcalloc((size_t)count, sizeof *o);
    cn_rng r;
    cn_rng_seed(&r, seed);
    for (int k = 0; k < count; k++) {
        run_ours(&o[k], nets[k], &r);
        fprintf(f, "%s\n", specs[k]);
        write_row(f, o[k].x, o[k].nx);
        write_row(f, o[k].dy, o[k].ny);
    }
    int rc = fclose(f) ? -1 : run_script(path, o, specs, count, tol, what);
    unlink(path);
    for (int k = 0; k < count; k++)
        free(o[k].dy), free(o[k].y), free(o[k].dx);
    free(o);
    return rc;
}
