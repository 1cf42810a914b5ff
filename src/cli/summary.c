/* summary.c - `net summary CFG`: per layer index, type, input -> output shape, parameters and
 * FLOPs (a multiply-add counts as two), then totals. Layers dead in inference (net/memplan.h)
 * are marked; the totals count them, and a last line gives the FLOPs inference runs. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "net/net.h"

static size_t layer_params(const struct net *n, int layer)
{
    size_t total = 0;
    for (int i = 0; i < n->nparams; i++)
        if (n->params[i].layer == layer && (n->params[i].flags & PARAM_TRAIN))
            total += n->params[i].n;
    return total;
}

static void print_shape(char *buf, size_t len, struct shape s)
{
    snprintf(buf, len, "%dx%dx%d", s.w, s.h, s.c);
}

static void print_count(char *buf, size_t len, size_t v)
{
    /* Thousands separators: 61706 -> 61,706 (as the course notes print parameter counts). */
    char digits[32];
    snprintf(digits, sizeof digits, "%zu", v);
    size_t nd = strlen(digits), k = 0;
    for (size_t i = 0; i < nd && k + 2 < len; i++) {
        if (i && (nd - i) % 3 == 0)
            buf[k++] = ',';
        buf[k++] = digits[i];
    }
    buf[k] = '\0';
}

static void print_layer(const struct net *n, int i, size_t params, double flops)
{
    const struct layer *l = &n->layers[i];
    char in[48], out[48], desc[96] = "", pc[32];
    print_shape(in, sizeof in, l->in);
    print_shape(out, sizeof out, l->out);
    if (l->ops->describe)
        l->ops->describe(l, desc, sizeof desc);
    print_count(pc, sizeof pc, params);
    printf("%5d  %-14s %-28s %12s -> %-12s %12s %12.3f%s\n", i, l->ops->name, desc, in, out, pc,
           flops / 1e6, n->dead[i] ? "  skipped (dead in inference)" : "");
}

int cli_summary(int argc, char **argv)
{
    if (argc != 2) {
        fputs("usage: net summary CFG\n", stderr);
        return 1;
    }
    struct net *n;
    cn_error e;
    if (net_create(&n, argv[1], 1, 0, &e))
        return cli_error(e.msg);
    printf("%s: input %dx%dx%d (width x height x channels)\n", argv[1], n->in.w, n->in.h,
           n->in.c);
    printf("%5s  %-14s %-28s %12s    %-12s %12s %12s\n", "layer", "type", "", "input", "output",
           "params", "MFLOPs");
    double total_flops = 0, dead_flops = 0;
    for (int i = 0; i < n->n; i++) {
        const struct layer *l = &n->layers[i];
        double f = l->ops->flops ? l->ops->flops(l) : 0;
        total_flops += f;
        dead_flops += n->dead[i] ? f : 0;
        print_layer(n, i, layer_params(n, i), f);
    }
    char pc[32];
    print_count(pc, sizeof pc, net_param_count(n));
    printf("total: %s parameters, %.3f MFLOPs per image (forward), %.2f MiB of parameters\n", pc,
           total_flops / 1e6, (double)net_param_count(n) * 4 / (1 << 20));
    if (n->ndead)
        printf("inference skips %d dead layer%s (outputs that cannot reach the last layer's: "
               "auxiliary heads): %.3f MFLOPs per image run\n",
               n->ndead, n->ndead == 1 ? "" : "s", (total_flops - dead_flops) / 1e6);
    net_destroy(n);
    return 0;
}
