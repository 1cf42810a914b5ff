/* inspect.c - features, class activation maps and filters of a built net (inspect.h).
 *
 * Layer internals are private to each layer file, so what is needed here is read from what every
 * layer exposes: shapes, the declared parameter tensors (n->params, by name) and the describe()
 * text, whose formats the layer files document ("global" for a global [avgpool]; "F KHxKW/..."
 * for a [convolutional]).
 */
#include "net/inspect.h"

#include <stdio.h>
#include <string.h>

size_t inspect_feature_count(const struct layer *l)
{
    return l->out.h * l->out.w > 1 ? (size_t)l->out.c : shape_size(l->out);
}

void inspect_features(const struct layer *l, int b, float *out)
{
    size_t plane = (size_t)l->out.h * (size_t)l->out.w;
    const float *y = l->output + (size_t)b * shape_size(l->out);
    if (plane == 1) {
        memcpy(out, y, sizeof(float) * shape_size(l->out));
        return;
    }
    for (int c = 0; c < l->out.c; c++) {
        double s = 0;
        for (size_t j = 0; j < plane; j++)
            s += y[(size_t)c * plane + j];
        out[c] = (float)(s / (double)plane);
    }
}

/* The parameter called name of layer i, or NULL. */
static const struct param *layer_param(const struct net *n, int i, const char *name)
{
    for (int k = 0; k < n->nparams; k++)
        if (n->params[k].layer == i && !strcmp(n->params[k].name, name))
            return &n->params[k];
    return NULL;
}

/* A global average pooling: Darknet's (no window keys) or a window as large as its input. */
static int is_global_pool(const struct layer *l)
{
    if (l->ops->type != LAYER_AVGPOOL || l->out.h != 1 || l->out.w != 1)
        return 0;
    char d[128];
    int size, stride;
    l->ops->describe(l, d, sizeof d);
    if (!strcmp(d, "global"))
        return 1;
    return sscanf(d, "%dx%*d/%d", &size, &stride) == 2 && size == l->in.h && size == l->in.w &&
           !strstr(d, "padding");
}

static int below_dropouts(const struct net *n, int i)
{
    while (i >= 0 && n->layers[i].ops->type == LAYER_DROPOUT)
        i--;
    return i;
}

static int no_head(const struct net *n, int last, cn_error *e)
{
    return cn_fail(e,
                   "%s: a class activation map needs the net to end in global average pooling "
                   "and a linear classifier ([avgpool] -> [connected] -> [softmax], or a 1x1 "
                   "[convolutional] with one filter per class -> [avgpool] -> [softmax]); this "
                   "one has no global average pooling there (layer %d is [%s])",
                   n->cfg_path, last, n->layers[last].ops->name);
}

/* The [connected] classifier above the pool: linear in its input (batch norm would rescale per
 * class; an activation after it keeps the order of the scores, so it is allowed). */
static int connected_head(const struct net *n, int top, struct cam_head *h, cn_error *e)
{
    const struct param *w = layer_param(n, top, "weights");
    if (layer_param(n, top, "scales"))
        return cn_fail(e,
                       "%s: layer %d [connected] has batch_normalize=1; a class activation map "
                       "needs a plain linear classifier after the pooling",
                       n->cfg_path, top);
    CN_ASSERT(w && w->n == (size_t)n->layers[top].out.c * (size_t)h->channels);
    h->classifier = top;
    h->weights = w->data;
    return 0;
}

int cam_find_head(const struct net *n, struct cam_head *h, cn_error *e)
{
    int last = n->n - 1;
    while (last > 0 && n->layers[last].ops->is_loss)
        last--;
    int top = below_dropouts(n, last);
    int pool =
        top >= 0 && n->layers[top].ops->type == LAYER_CONNECTED ? below_dropouts(n, top - 1) : top;
    if (pool < 1 || !is_global_pool(&n->layers[pool]))
        return no_head(n, last, e);
    const struct layer *maps = &n->layers[pool - 1];
    *h = (struct cam_head){pool - 1,    pool,        -1,          NULL,
                           maps->out.c, maps->out.c, maps->out.h, maps->out.w};
    if (pool != top) {
        if (connected_head(n, top, h, e))
            return -1;
        h->classes = n->layers[top].out.c;
    }
    return 0;
}

void cam_compute(const struct net *n, const struct cam_head *h, int b, int k, float *map)
{
    const struct layer *l = &n->layers[h->maps];
    size_t plane = (size_t)h->h * (size_t)h->w;
    const float *a = l->output + (size_t)b * shape_size(l->out);
    if (!h->weights) {
        memcpy(map, a + (size_t)k * plane, sizeof(float) * plane);
        return;
    }
    const float *w = h->weights + (size_t)k * (size_t)h->channels;
    for (size_t j = 0; j < plane; j++)
        map[j] = 0;
    for (int c = 0; c < h->channels; c++)
        for (size_t j = 0; j < plane; j++)
            map[j] += w[c] * a[(size_t)c * plane + j];
}

int inspect_first_conv(const struct net *n, int from)
{
    for (int i = from < 0 ? 0 : from; i < n->n; i++)
        if (n->layers[i].ops->type == LAYER_CONV)
            return i;
    return -1;
}

int inspect_conv_filters(const struct net *n, int i, struct conv_filters *f, cn_error *e)
{
    const struct layer *l = &n->layers[i];
    if (l->ops->type != LAYER_CONV)
        return cn_fail(e, "%s: layer %d is [%s], not [convolutional]: it has no filters to show",
                       n->cfg_path, i, l->ops->name);
    const struct param *w = layer_param(n, i, "weights");
    char d[256];
    int filters, kh, kw;
    l->ops->describe(l, d, sizeof d);
    CN_ASSERT(w && sscanf(d, "%d %dx%d", &filters, &kh, &kw) == 3 && filters == l->out.c);
    size_t per = w->n / (size_t)filters;
    CN_ASSERT(per % ((size_t)kh * (size_t)kw) == 0);
    *f = (struct conv_filters){w->data, filters, (int)(per / ((size_t)kh * (size_t)kw)), kh, kw};
    return 0;
}
