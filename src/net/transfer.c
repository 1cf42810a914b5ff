/* transfer.c - `partial` and loading weights into a cfg that differs in part (transfer.h).
 *
 * Parameters of one layer are contiguous in n->params (layers declare them in order while they are
 * built), so "the layers 0..N-1" is a prefix of the parameter list and of the file. The header is
 * read as weights.c reads it (three int32, then seen as uint64 from version 0.2 on, else int32);
 * the values are checked as weights.c checks them. Left out: Darknet's transposed [connected]
 * files (major or minor > 1000), which weights.c rejects too.
 */
#include "net/transfer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "net/weights.h"

#define NOTICE_LEN 512 /* one notice line; a reason is at most REASON_LEN */
#define REASON_LEN 384

int transfer_save_partial(const struct net *n, int layers, const char *path, cn_error *e)
{
    if (layers < 0 || layers > n->n)
        return cn_fail(e, "%s: %d layers asked for, but %s has %d (0 to %d)", path, layers,
                       n->cfg_path, n->n, n->n);
    struct net head = *n; /* a shallow view: weights_save reads params, nparams and seen only */
    head.nparams = 0;
    while (head.nparams < n->nparams && n->params[head.nparams].layer < layers)
        head.nparams++;
    head.seen = 0;
    return weights_save(&head, path, e);
}

/* The parameters of layer i: params[*first .. *first + count). */
static int layer_params(const struct net *n, int i, int *first)
{
    int k = 0;
    while (k < n->nparams && n->params[k].layer < i)
        k++;
    *first = k;
    int count = 0;
    while (k + count < n->nparams && n->params[k + count].layer == i)
        count++;
    return count;
}

static size_t layer_floats(const struct net *n, int i)
{
    int first, count = layer_params(n, i, &first);
    size_t total = 0;
    for (int k = first; k < first + count; k++)
        total += n->params[k].n;
    return total;
}

static void notify(transfer_notice_fn fn, void *ctx, const struct layer *l, const char *why)
{
    char line[NOTICE_LEN];
    snprintf(line, sizeof line, "layer %d [%s] (line %d): %.*s: re-initialised", l->index,
             l->ops->name, l->line, REASON_LEN, why);
    if (fn)
        fn(ctx, line);
}

/* The values of one layer as the file holds them: finite, variances not negative. */
static int check_layer_values(const struct net *n, int i, const float *v, const char *path,
                              cn_error *e)
{
    int first, count = layer_params(n, i, &first);
    for (int k = first; k < first + count; k++) {
        const struct param *p = &n->params[k];
        int variance = !strcmp(p->name, "rolling_variance");
        for (size_t j = 0; j < p->n; j++)
            if (!isfinite(v[j]) || (variance && v[j] < 0))
                return cn_fail(e, "%s: layer %d (%s) %s[%zu] is %g: the file is damaged", path, i,
                               n->layers[i].ops->name, p->name, j, (double)v[j]);
        v += p->n;
    }
    return 0;
}

/* Layer i's parameters from v, laid out as in the file (one tensor after another). */
static void copy_layer(struct net *n, int i, const float *v)
{
    int first, count = layer_params(n, i, &first);
    for (int k = first; k < first + count; k++) {
        memcpy(n->params[k].data, v, sizeof(float) * n->params[k].n);
        v += n->params[k].n;
    }
    net_params_changed(n);
}

/* Layer i's parameters from layer i of src, tensor by tensor (slabs pad between tensors). */
static void copy_from(struct net *n, const struct net *src, int i)
{
    int fa, fb, count = layer_params(n, i, &fb);
    layer_params(src, i, &fa);
    for (int k = 0; k < count; k++)
        memcpy(n->params[fb + k].data, src->params[fa + k].data,
               sizeof(float) * n->params[fb + k].n);
    net_params_changed(n);
}

/* Reads the header of f: *floats is what follows it, in floats. */
static int read_header(FILE *f, const char *path, uint64_t size, size_t *floats, cn_error *e)
{
    int32_t v[3];
    if (size < 12 || fread(v, sizeof v, 1, f) != 1)
        return cn_fail(e, "%s: too short for a .weights header", path);
    if (v[0] != 0 || v[1] < 0 || v[1] > 2)
        return cn_fail(e,
                       "%s: unknown .weights version %d.%d.%d; expected Darknet's 0.0, 0.1 "
                       "or 0.2.x",
                       path, v[0], v[1], v[2]);
    uint64_t header = v[1] >= 2 ? 20 : 16;
    if (size < header || (size - header) % 4)
        return cn_fail(e, "%s: %llu bytes is not a header of %llu and whole floats", path,
                       (unsigned long long)size, (unsigned long long)header);
    if (fseek(f, (long)header, SEEK_SET))
        return cn_fail(e, "%s: cannot seek: %s", path, strerror(errno));
    *floats = (size_t)((size - header) / 4);
    return 0;
}

/* Reads the floats of path (all of them) into a malloc'd *buf. */
static int read_floats(const char *path, size_t max, float **buf, size_t *floats, cn_error *e)
{
    uint64_t size;
    *buf = NULL;
    if (fileio_size(path, &size, e))
        return -1;
    FILE *f = fopen(path, "rb");
    if (!f)
        return cn_fail(e, "%s: cannot open: %s", path, strerror(errno));
    int rc = read_header(f, path, size, floats, e);
    if (!rc && *floats > max)
        rc = cn_fail(e,
                     "%s: holds %zu floats, more than the %zu the cfg needs: name the cfg it "
                     "was written for (-weights_cfg) so its layers can be matched",
                     path, *floats, max);
    if (!rc) {
        *buf = cn_alloc_floats(*floats ? *floats : 1, "weights", e);
        if (!*buf)
            rc = -1;
        else if (*floats && fread(*buf, sizeof(float), *floats, f) != *floats)
            rc = cn_fail(e, "%s: cannot read the parameters", path);
    }
    fclose(f);
    return rc;
}

/* Without SRC: layers wholly inside the file load, in order; it must end between two layers. */
static int load_prefix(struct net *n, const char *path, transfer_notice_fn fn, void *ctx,
                       int *reinit, cn_error *e)
{
    size_t need = 0, floats = 0;
    for (int k = 0; k < n->nparams; k++)
        need += n->params[k].n;
    float *buf;
    if (read_floats(path, need, &buf, &floats, e))
        return -1;
    size_t off = 0;
    int loaded = 0, rc = 0;
    for (; !rc && loaded < n->n && off + layer_floats(n, loaded) <= floats; loaded++) {
        rc = check_layer_values(n, loaded, buf + off, path, e);
        off += layer_floats(n, loaded);
    }
    if (!rc && off != floats)
        rc = cn_fail(e,
                     "%s: ends inside the parameters of layer %d [%s] of %s (%zu of its %zu "
                     "floats): it was not written for this cfg; name the cfg it was written "
                     "for with -weights_cfg",
                     path, loaded, n->layers[loaded].ops->name, n->cfg_path, floats - off,
                     layer_floats(n, loaded));
    off = 0;
    for (int i = 0; !rc && i < n->n; off += layer_floats(n, i), i++) {
        if (i < loaded) {
            copy_layer(n, i, buf + off);
        } else if (layer_floats(n, i)) {
            notify(fn, ctx, &n->layers[i], "not in the file");
            (*reinit)++;
        }
    }
    cn_free_floats(buf);
    return rc;
}

/* Why layer i of src cannot load into layer i of n, or NULL when it can. */
static const char *mismatch(const struct net *n, const struct net *src, int i, char *why,
                            size_t len)
{
    const struct layer *a = &src->layers[i], *b = &n->layers[i];
    if (a->ops != b->ops) {
        snprintf(why, len, "the file's layer %d is a [%s]", i, a->ops->name);
        return why;
    }
    int fa, fb, ca = layer_params(src, i, &fa), cb = layer_params(n, i, &fb);
    for (int k = 0; k < ca && k < cb; k++) {
        const struct param *pa = &src->params[fa + k], *pb = &n->params[fb + k];
        if (pa->n != pb->n || strcmp(pa->name, pb->name)) {
            snprintf(why, len, "%s has %zu values in the file's cfg %s, %zu here", pb->name, pa->n,
                     src->cfg_path, pb->n);
            return why;
        }
    }
    if (ca != cb || a->in.c != b->in.c || a->out.c != b->out.c) {
        snprintf(why, len, "%dx%d channels (in x out) in the file's cfg %s, %dx%d here", a->in.c,
                 a->out.c, src->cfg_path, b->in.c, b->out.c);
        return why;
    }
    return NULL;
}

/* With SRC: the file loads into a net of SRC (every check of weights_load), then layer by layer
 * into n where the shapes agree. */
static int load_matched(struct net *n, const char *path, const char *src_cfg, transfer_notice_fn fn,
                        void *ctx, int *reinit, cn_error *e)
{
    struct net *src;
    if (net_create(&src, src_cfg, 1, 0, e))
        return -1;
    if (weights_load(src, path, e)) {
        net_destroy(src);
        return -1;
    }
    char why[REASON_LEN];
    for (int i = 0; i < n->n; i++) {
        if (!layer_floats(n, i))
            continue;
        const char *bad = i < src->n ? mismatch(n, src, i, why, sizeof why) : "not in the file";
        if (bad) {
            notify(fn, ctx, &n->layers[i], bad);
            (*reinit)++;
            continue;
        }
        copy_from(n, src, i);
    }
    net_destroy(src);
    return 0;
}

int transfer_load(struct net *n, const char *path, const char *src_cfg, transfer_notice_fn notice,
                  void *ctx, int *reinit, cn_error *e)
{
    int count = 0;
    int rc = src_cfg ? load_matched(n, path, src_cfg, notice, ctx, &count, e)
                     : load_prefix(n, path, notice, ctx, &count, e);
    if (reinit)
        *reinit = count;
    if (!rc)
        n->seen = 0;
    return rc;
}
