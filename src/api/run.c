/* run.c - the public API, part 2: inference passes over float tensors, 8-bit pixels and image
 * files, layer outputs, and top-k.
 *
 * A pass runs the whole batch (layers are built for it); only the first n images are the caller's,
 * and in inference mode images do not influence each other (dropout is off and batch norm uses its
 * rolling statistics), so the rest of the batch is harmless. Pixels become floats through the same
 * image_u8_to_float as image files, so a decoded image and its file give the same outputs.
 */
#include "cfgnet.h"

#include <string.h>

#include "api/api.h"
#include "data/image.h"
#include "net/metrics.h"

/* The forward pass itself, after the caller filled n images of net->input. */
static int run(cfgnet_net *h, int n, float *output)
{
    struct net *net = h->n;
    struct pass p;
    net_pass_init(net, &p, 0, 0);
    net_forward(net, &p);
    h->last_n = n;
    if (output)
        memcpy(output, net_output(net), sizeof(float) * net_outputs(net) * (size_t)n);
    return 0;
}

int cfgnet_forward(cfgnet_net *net, const float *input, int n, int c, int h, int w, float *output,
                   size_t output_len)
{
    const char *fn = "cfgnet_forward";
    if (!net || api_check_images(net, fn, input, n, c, h, w, 0) ||
        api_check_output(net, fn, output, output_len, n))
        return CFGNET_ERROR;
    memcpy(net->n->input, input, sizeof(float) * net_inputs(net->n) * (size_t)n);
    return run(net, n, output);
}

/* One HWC image of c channels to planar order. */
static void hwc_to_chw(uint8_t *dst, const uint8_t *src, size_t pixels, int c)
{
    for (size_t p = 0; p < pixels; p++)
        for (int k = 0; k < c; k++)
            dst[(size_t)k * pixels + p] = src[p * (size_t)c + (size_t)k];
}

int cfgnet_forward_u8(cfgnet_net *net, const unsigned char *pixels, int n, int c, int h, int w,
                      int layout, float *output, size_t output_len)
{
    const char *fn = "cfgnet_forward_u8";
    if (!net || api_check_images(net, fn, pixels, n, c, h, w, 0) ||
        api_check_output(net, fn, output, output_len, n))
        return CFGNET_ERROR;
    if (layout != CFGNET_LAYOUT_HWC && layout != CFGNET_LAYOUT_CHW)
        return cn_fail(&net->err,
                       "%s: layout %d: must be CFGNET_LAYOUT_HWC (%d) or "
                       "CFGNET_LAYOUT_CHW (%d)",
                       fn, layout, CFGNET_LAYOUT_HWC, CFGNET_LAYOUT_CHW);
    size_t in = net_inputs(net->n);
    for (int b = 0; b < n; b++) {
        const uint8_t *src = pixels + (size_t)b * in;
        if (layout == CFGNET_LAYOUT_HWC) {
            hwc_to_chw(net->pixels, src, (size_t)h * (size_t)w, c);
            src = net->pixels;
        }
        image_u8_to_float(net->n->input + (size_t)b * in, src, in);
    }
    return run(net, n, output);
}

int cfgnet_forward_files(cfgnet_net *net, const char *const *paths, int n, float *output,
                         size_t output_len)
{
    const char *fn = "cfgnet_forward_files";
    if (!net || api_need_net(net, fn))
        return CFGNET_ERROR;
    struct net *nn = net->n;
    if (api_check_images(net, fn, paths, n, nn->in.c, nn->in.h, nn->in.w, 0) ||
        api_check_output(net, fn, output, output_len, n))
        return CFGNET_ERROR;
    if (nn->in.c > 4)
        return cn_fail(&net->err, "%s: the network takes %d channels; image files give 1 to 4", fn,
                       nn->in.c);
    for (int b = 0; b < n; b++) {
        if (!paths[b])
            return cn_fail(&net->err, "%s: path %d of %d is NULL", fn, b, n);
        if (image_load(nn->input + (size_t)b * net_inputs(nn), paths[b], nn->in.w, nn->in.h,
                       nn->in.c, &net->err))
            return CFGNET_ERROR;
    }
    return run(net, n, output);
}

int cfgnet_layer_output(cfgnet_net *net, int layer, float *out, size_t out_len)
{
    const char *fn = "cfgnet_layer_output";
    int i = 0;
    if (!net || api_layer_index(net, fn, layer, &i))
        return CFGNET_ERROR;
    if (!net->last_n)
        return cn_fail(&net->err, "%s: no pass has run since the network was built", fn);
    if (!out)
        return cn_fail(&net->err, "%s: the output is NULL", fn);
    if ((net->flags & CFGNET_SHARE_OUTPUTS) && i != net->n->n - 1)
        return cn_fail(&net->err,
                       "%s: layer %d: the handle was loaded with CFGNET_SHARE_OUTPUTS, so only "
                       "the last layer's output (layer %d, or -1) is kept after a pass",
                       fn, i, net->n->n - 1);
    const struct layer *l = &net->n->layers[i];
    size_t need = shape_size(l->out) * (size_t)net->last_n;
    if (out_len < need)
        return cn_fail(&net->err,
                       "%s: the output holds %zu floats, but layer %d [%s] has %zu for the %d "
                       "images of the last pass",
                       fn, out_len, i, l->ops->name, need, net->last_n);
    memcpy(out, l->output, sizeof(float) * need);
    return net->last_n;
}

int cfgnet_top_k(cfgnet_net *net, int image, int k, int *index, float *value)
{
    const char *fn = "cfgnet_top_k";
    if (!net || api_need_net(net, fn))
        return CFGNET_ERROR;
    if (!net->last_n)
        return cn_fail(&net->err, "%s: no pass has run since the network was built", fn);
    if (image < 0 || image >= net->last_n)
        return cn_fail(&net->err, "%s: image %d is out of range: the last pass had %d (0..%d)", fn,
                       image, net->last_n, net->last_n - 1);
    if (k < 1 || !index)
        return cn_fail(&net->err, "%s: %s", fn, !index ? "index is NULL" : "k must be >= 1");
    int outs = (int)net_outputs(net->n);
    k = CN_MIN(k, outs);
    const float *y = net_output(net->n) + (size_t)image * (size_t)outs;
    metrics_top_k(index, y, outs, k); /* ties: the lower index first, as the CLI ranks */
    for (int j = 0; value && j < k; j++)
        value[j] = y[index[j]];
    return k;
}
