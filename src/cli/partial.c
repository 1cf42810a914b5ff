/* partial.c - `net partial CFG WEIGHTS OUT N` (Darknet's partial: the first N layers' weights,
 * seen reset), and what `classifier train` uses to start from another network's weights
 * (net/transfer.h) and to freeze layers (-freeze N). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/fileio.h"
#include "net/transfer.h"
#include "net/weights.h"

static const char partial_usage[] =
    "usage: net partial CFG WEIGHTS OUT.weights N\n"
    "  writes the parameters of the first N layers of CFG (0 <= N <= its layers) from WEIGHTS\n"
    "  to OUT.weights with the image count reset to 0 (Darknet's partial); train a cfg that\n"
    "  shares those layers from it: the layers after them start from their initial values\n";

int cli_partial(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(partial_usage, stdout);
            return 0;
        }
    if (argc != 5 || cli_no_flags_left(argc, argv)) {
        fputs(partial_usage, stderr);
        return 1;
    }
    char *end;
    long count = strtol(argv[4], &end, 10);
    if (end == argv[4] || *end || count < 0 || count > 1000000)
        return fprintf(stderr, "net: partial: N=%s: expected a number of layers >= 0\n", argv[4]),
               1;
    cn_error e;
    struct net *n;
    if (net_create(&n, argv[1], 1, 0, &e))
        return cli_error(e.msg);
    int rc = 0;
    if (count > n->n)
        rc = cn_fail(&e, "partial: N=%ld, but %s has %d layers", count, argv[1], n->n);
    if (!rc)
        rc = weights_load(n, argv[2], &e) || transfer_save_partial(n, (int)count, argv[3], &e);
    if (!rc)
        printf("%s: layers 0..%ld of %s (%d layers), seen 0\n", argv[3], count - 1, argv[1], n->n);
    net_destroy(n);
    return rc ? cli_error(e.msg) : 0;
}

static void print_notice(void *ctx, const char *line)
{
    printf("%s: %s\n", (const char *)ctx, line);
}

int cli_train_weights(struct net *n, const char *path, const char *src_cfg, int *transferred,
                      cn_error *e)
{
    uint64_t size;
    size_t floats = 0;
    for (int i = 0; i < n->nparams; i++)
        floats += n->params[i].n;
    *transferred = 0;
    /* The same cfg's file (a checkpoint) loads as it is: every byte checked against the cfg. */
    if (!src_cfg && (fileio_size(path, &size, e) || size == 20 + 4 * (uint64_t)floats ||
                     size == 16 + 4 * (uint64_t)floats))
        return weights_load(n, path, e);
    int reinit;
    if (transfer_load(n, path, src_cfg, print_notice, (void *)path, &reinit, e))
        return -1;
    printf("%s: loaded into %s, %d layer%s re-initialised; starting from iteration 0\n", path,
           n->cfg_path, reinit, reinit == 1 ? "" : "s");
    *transferred = 1;
    return 0;
}

int cli_train_freeze(struct net *n, long prefix, cn_error *e)
{
    if (prefix > n->n)
        return cn_fail(e, "-freeze %ld: %s has %d layers", prefix, n->cfg_path, n->n);
    if (net_freeze(n, (int)prefix, e))
        return -1;
    int frozen = 0;
    for (int i = 0; i < n->n; i++)
        frozen += n->layers[i].frozen;
    if (frozen)
        printf("%s: %d layer%s frozen; backward stops at layer %d\n", n->cfg_path, frozen,
               frozen == 1 ? "" : "s", n->lowest_trainable);
    return 0;
}
