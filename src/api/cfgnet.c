/* cfgnet.c - the public API of include/cfgnet.h, part 1: versions, handles, loading and saving,
 * shape queries, and the argument checks every part shares. run.c holds inference, train.c the
 * training step. Everything here calls the internal net, weights and optimiser code; nothing is
 * computed twice.
 *
 * Every entry point checks its handle first (a NULL handle returns CFGNET_ERROR, with no handle
 * to hold a message) and its arguments next, before it changes anything.
 */
#include "cfgnet.h"

#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/fileio.h"
#include "net/weights.h"

#define STR2(x) #x
#define STR(x) STR2(x)

#define API_CFG_MAX ((size_t)64 << 20) /* as cfg_read_file: a cfg larger than this is not one */

const char *cfgnet_version(void)
{
    return STR(CFGNET_VERSION_MAJOR) "." STR(CFGNET_VERSION_MINOR) "." STR(CFGNET_VERSION_PATCH);
}

int cfgnet_version_number(void)
{
    return CFGNET_VERSION_NUMBER;
}

cfgnet_net *cfgnet_create(void)
{
    return calloc(1, sizeof(cfgnet_net));
}

/* Frees what a handle holds, leaving it empty. */
static void release(cfgnet_net *h)
{
    optimizer_destroy(h->opt);
    net_destroy(h->n);
    free(h->text);
    free(h->name);
    free(h->pixels);
    h->opt = NULL;
    h->n = NULL;
    h->text = h->name = NULL;
    h->pixels = NULL;
    h->last_n = 0;
}

void cfgnet_free(cfgnet_net *net)
{
    if (!net)
        return;
    release(net);
    free(net);
}

const char *cfgnet_error(const cfgnet_net *net)
{
    return net ? net->err.msg
               : "cfgnet: the handle is NULL (cfgnet_create failed or was not called)";
}

int api_need_net(cfgnet_net *h, const char *fn)
{
    return h->n ? 0 : cn_fail(&h->err, "%s: no network loaded (call cfgnet_load first)", fn);
}

int api_layer_index(cfgnet_net *h, const char *fn, int layer, int *out)
{
    if (api_need_net(h, fn))
        return -1;
    int count = h->n->n;
    long i = layer < 0 ? (long)layer + count : layer;
    if (i < 0 || i >= count)
        return cn_fail(&h->err,
                       "%s: layer %d is out of range: the network has %d layers (0..%d, or %d..-1 "
                       "from the end)",
                       fn, layer, count, count - 1, -count);
    *out = (int)i;
    return 0;
}

int api_check_images(cfgnet_net *h, const char *fn, const void *data, int n, int c, int hh, int w,
                     int training)
{
    if (api_need_net(h, fn))
        return -1;
    struct net *net = h->n;
    if (!data)
        return cn_fail(&h->err, "%s: the input is NULL", fn);
    if (c != net->in.c || hh != net->in.h || w != net->in.w)
        return cn_fail(&h->err,
                       "%s: the images are %dx%dx%d (channels x height x width), but the network "
                       "takes %dx%dx%d",
                       fn, c, hh, w, net->in.c, net->in.h, net->in.w);
    if (training && (n < 1 || n % net->batch))
        return cn_fail(&h->err,
                       "%s: %d images is not a positive multiple of the batch size %d (one pass "
                       "per batch; cfgnet_set_batch changes it)",
                       fn, n, net->batch);
    if (!training && (n < 1 || n > net->batch))
        return cn_fail(&h->err,
                       "%s: %d images, but a pass takes 1 to %d (the batch size; cfgnet_set_batch "
                       "changes it)",
                       fn, n, net->batch);
    return 0;
}

int api_check_output(cfgnet_net *h, const char *fn, const float *out, size_t len, int n)
{
    size_t need = net_outputs(h->n) * (size_t)n;
    if (out && len < need)
        return cn_fail(&h->err,
                       "%s: the output holds %zu floats, but %d images need %zu (%zu each)", fn,
                       len, n, need, net_outputs(h->n));
    return 0;
}

int api_make_net(struct net **out, struct optimizer **opt, const char *text, const char *name,
                 int batch, unsigned flags, int freeze, cn_error *e)
{
    int train = (flags & CFGNET_TRAIN) != 0;
    /* Every layer's output stays readable (cfgnet_layer_output) unless the caller opted into
     * sharing; a training net keeps them all anyway. */
    int keep = train || !(flags & CFGNET_SHARE_OUTPUTS);
    struct net *n;
    *opt = NULL;
    if (net_create_from_string(
            &n, text, name, batch,
            (train ? NET_TRAIN | NET_FREEZE(freeze) : 0) | (keep ? NET_KEEP_OUTPUTS : 0), e))
        return -1;
    /* as `net classifier train`: the cfg's freeze=1 keys and the frozen prefix, checked */
    if (train && (net_freeze(n, freeze, e) || optimizer_create(opt, n, e))) {
        net_destroy(n);
        return -1;
    }
    *out = n;
    return 0;
}

#define API_FLAGS (CFGNET_TRAIN | CFGNET_SHARE_OUTPUTS)

/* Builds a net (and optimiser) from cfg text; only on success does it replace what h holds. */
static int build(cfgnet_net *h, const char *text, const char *name, const char *weights, int batch,
                 unsigned flags)
{
    if (flags & ~API_FLAGS)
        return cn_fail(&h->err,
                       "%s: unknown flags 0x%x (only CFGNET_TRAIN and CFGNET_SHARE_OUTPUTS are "
                       "defined)",
                       name, flags & ~API_FLAGS);
    if ((flags & CFGNET_TRAIN) && (flags & CFGNET_SHARE_OUTPUTS))
        return cn_fail(&h->err,
                       "%s: CFGNET_SHARE_OUTPUTS is for inference: training keeps every layer's "
                       "output",
                       name);
    if (batch < 0)
        return cn_fail(&h->err, "%s: batch %d: must be >= 1, or 0 for the cfg's", name, batch);
    struct net *n;
    struct optimizer *o;
    if (api_make_net(&n, &o, text, name, batch, flags, 0, &h->err))
        return -1;
    if (weights && weights_load(n, weights, &h->err)) {
        optimizer_destroy(o);
        net_destroy(n);
        return -1;
    }
    uint8_t *pixels = malloc(net_inputs(n));
    if (!pixels) {
        optimizer_destroy(o);
        net_destroy(n);
        return cn_fail(&h->err, "%s: out of memory", name);
    }
    release(h);
    h->n = n;
    h->text = xstrdup(text);
    h->name = xstrdup(name);
    h->flags = flags;
    h->freeze = 0;
    h->opt = o;
    h->pixels = pixels;
    return 0;
}

int cfgnet_load_string(cfgnet_net *net, const char *cfg_text, const char *name,
                       const char *weights_path, int batch, unsigned flags)
{
    if (!net)
        return CFGNET_ERROR;
    if (!cfg_text)
        return cn_fail(&net->err, "cfgnet_load_string: the cfg text is NULL");
    return build(net, cfg_text, name ? name : "<string>", weights_path, batch, flags);
}

int cfgnet_load(cfgnet_net *net, const char *cfg_path, const char *weights_path, int batch,
                unsigned flags)
{
    if (!net)
        return CFGNET_ERROR;
    if (!cfg_path)
        return cn_fail(&net->err, "cfgnet_load: the cfg path is NULL");
    char *text;
    size_t len;
    if (fileio_read_all(cfg_path, API_CFG_MAX, &text, &len, &net->err))
        return -1;
    int rc = strlen(text) != len
                 ? cn_fail(&net->err, "%s: contains a NUL byte, not a text file", cfg_path)
                 : build(net, text, cfg_path, weights_path, batch, flags);
    free(text);
    return rc;
}

int cfgnet_load_weights(cfgnet_net *net, const char *path)
{
    if (!net || api_need_net(net, "cfgnet_load_weights"))
        return CFGNET_ERROR;
    if (!path)
        return cn_fail(&net->err, "cfgnet_load_weights: the path is NULL");
    if (weights_load(net->n, path, &net->err))
        return -1;
    if (net->opt) {
        size_t len;
        float *state = optimizer_state(net->opt, &len);
        memset(state, 0, sizeof(float) * len);
        optimizer_set_steps(net->opt, 0);
    }
    return 0;
}

int cfgnet_save_weights(cfgnet_net *net, const char *path)
{
    if (!net || api_need_net(net, "cfgnet_save_weights"))
        return CFGNET_ERROR;
    if (!path)
        return cn_fail(&net->err, "cfgnet_save_weights: the path is NULL");
    return weights_save(net->n, path, &net->err);
}

/* Copies parameters, images seen, the dropout stream and the optimiser state of `from` into the
 * same cfg built at another batch size: parameter and state slabs have the same layout. */
static void carry_over(struct net *to, struct optimizer *to_opt, const struct net *from,
                       struct optimizer *from_opt)
{
    CN_ASSERT(to->nparams == from->nparams && to->nparam_floats == from->nparam_floats);
    for (int i = 0; i < to->nparams; i++)
        memcpy(to->params[i].data, from->params[i].data, sizeof(float) * to->params[i].n);
    net_params_changed(to);
    to->seen = from->seen;
    to->rng = from->rng;
    if (to_opt) {
        size_t a, b;
        float *dst = optimizer_state(to_opt, &a);
        const float *src = optimizer_state(from_opt, &b);
        CN_ASSERT(a == b);
        memcpy(dst, src, sizeof(float) * a);
        optimizer_set_steps(to_opt, optimizer_steps(from_opt));
    }
}

int cfgnet_set_batch(cfgnet_net *net, int batch)
{
    if (!net || api_need_net(net, "cfgnet_set_batch"))
        return CFGNET_ERROR;
    if (batch < 1)
        return cn_fail(&net->err, "cfgnet_set_batch: batch %d: must be >= 1", batch);
    if (batch == net->n->batch)
        return 0;
    struct net *n;
    struct optimizer *o;
    if (api_make_net(&n, &o, net->text, net->name, batch, net->flags, net->freeze, &net->err))
        return -1;
    carry_over(n, o, net->n, net->opt);
    optimizer_destroy(net->opt);
    net_destroy(net->n);
    net->n = n;
    net->opt = o;
    net->last_n = 0;
    return 0;
}

int cfgnet_batch(cfgnet_net *net)
{
    if (!net || api_need_net(net, "cfgnet_batch"))
        return CFGNET_ERROR;
    return net->n->batch;
}

int cfgnet_input_shape(cfgnet_net *net, int *c, int *h, int *w)
{
    if (!net || api_need_net(net, "cfgnet_input_shape"))
        return CFGNET_ERROR;
    if (c)
        *c = net->n->in.c;
    if (h)
        *h = net->n->in.h;
    if (w)
        *w = net->n->in.w;
    return 0;
}

int cfgnet_outputs(cfgnet_net *net)
{
    if (!net || api_need_net(net, "cfgnet_outputs"))
        return CFGNET_ERROR;
    return (int)net_outputs(net->n);
}

int cfgnet_layer_count(cfgnet_net *net)
{
    if (!net || api_need_net(net, "cfgnet_layer_count"))
        return CFGNET_ERROR;
    return net->n->n;
}

int cfgnet_layer_shape(cfgnet_net *net, int layer, int *c, int *h, int *w)
{
    int i = 0;
    if (!net || api_layer_index(net, "cfgnet_layer_shape", layer, &i))
        return CFGNET_ERROR;
    struct shape s = net->n->layers[i].out;
    if (c)
        *c = s.c;
    if (h)
        *h = s.h;
    if (w)
        *w = s.w;
    return 0;
}

int cfgnet_layer_type(cfgnet_net *net, int layer, const char **type)
{
    int i = 0;
    if (!net || api_layer_index(net, "cfgnet_layer_type", layer, &i))
        return CFGNET_ERROR;
    if (!type)
        return cn_fail(&net->err, "cfgnet_layer_type: type is NULL");
    *type = net->n->layers[i].ops->name;
    return 0;
}

int cfgnet_images_seen(cfgnet_net *net, unsigned long long *seen)
{
    if (!net || api_need_net(net, "cfgnet_images_seen"))
        return CFGNET_ERROR;
    if (!seen)
        return cn_fail(&net->err, "cfgnet_images_seen: seen is NULL");
    *seen = (unsigned long long)net->n->seen;
    return 0;
}
