/* cfgnet.c - the public API of include/cfgnet.h over the internal net, weights and image code. */
#include "cfgnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "net/net.h"
#include "net/weights.h"

#define STR2(x) #x
#define STR(x) STR2(x)

struct cfgnet_net {
    struct net *n;
    cn_error err;
};

const char *cfgnet_version(void)
{
    return STR(CFGNET_VERSION_MAJOR) "." STR(CFGNET_VERSION_MINOR) "." STR(CFGNET_VERSION_PATCH);
}

static void copy_error(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

cfgnet_net *cfgnet_load(const char *cfg_path, const char *weights_path, int batch, char *err,
                        size_t errlen)
{
    cn_error e;
    if (!cfg_path || batch < 1) {
        copy_error(err, errlen, !cfg_path ? "cfgnet_load: cfg_path is NULL"
                                          : "cfgnet_load: batch must be >= 1");
        return NULL;
    }
    struct net *n;
    if (net_create(&n, cfg_path, batch, 0, &e) ||
        (weights_path && weights_load(n, weights_path, &e))) {
        net_destroy(n);
        copy_error(err, errlen, e.msg);
        return NULL;
    }
    cfgnet_net *h = xcalloc(1, sizeof *h);
    h->n = n;
    return h;
}

void cfgnet_free(cfgnet_net *net)
{
    if (!net)
        return;
    net_destroy(net->n);
    free(net);
}

const char *cfgnet_error(const cfgnet_net *net)
{
    return net ? net->err.msg : "NULL handle";
}

int cfgnet_input_shape(const cfgnet_net *net, int *c, int *h, int *w)
{
    if (!net)
        return -1;
    if (c)
        *c = net->n->in.c;
    if (h)
        *h = net->n->in.h;
    if (w)
        *w = net->n->in.w;
    return 0;
}

int cfgnet_batch(const cfgnet_net *net)
{
    return net ? net->n->batch : -1;
}

int cfgnet_outputs(const cfgnet_net *net)
{
    return net ? (int)net_outputs(net->n) : -1;
}

static void run(cfgnet_net *net, int count, float *output)
{
    struct pass p;
    net_pass_init(net->n, &p, 0, 0);
    net_forward(net->n, &p);
    memcpy(output, net_output(net->n), sizeof(float) * net_outputs(net->n) * (size_t)count);
}

int cfgnet_predict(cfgnet_net *net, const float *input, int n, float *output)
{
    if (!net)
        return -1;
    if (!input || !output)
        return cn_fail(&net->err, "cfgnet_predict: input or output is NULL");
    if (n < 1 || n > net->n->batch)
        return cn_fail(&net->err, "cfgnet_predict: %d images, but the batch holds 1..%d", n,
                       net->n->batch);
    memcpy(net->n->input, input, sizeof(float) * net_inputs(net->n) * (size_t)n);
    run(net, n, output);
    return 0;
}

int cfgnet_predict_image(cfgnet_net *net, const char *path, float *output)
{
    if (!net)
        return -1;
    if (!path || !output)
        return cn_fail(&net->err, "cfgnet_predict_image: path or output is NULL");
    struct net *n = net->n;
    if (image_load(n->input, path, n->in.w, n->in.h, n->in.c, &net->err))
        return -1;
    run(net, 1, output);
    return 0;
}
