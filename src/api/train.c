/* train.c - the public API, part 3: one optimiser step on a caller's batch of images with labels
 * or targets.
 *
 * n images run in n / batch forward/backward passes (training mode) whose parameter gradients add
 * up, then the net's optimiser (src/net/optimizer.c: SGD, Adam or AdamW as [net] says) takes one
 * step; gradients are those of the MEAN loss over the n images (the loss layer scales by 1/n).
 * This is `net classifier train`'s step with the caller in place of the loader. Every argument is
 * checked before the first pass, so a rejected call changes nothing. Frozen layers (the cfg's
 * freeze=1 keys, cfgnet_freeze's prefix) are as the net command's -freeze leaves them: no update,
 * inference mode within the step, no backward below the lowest trainable layer (net_freeze).
 */
#include "cfgnet.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "net/lr.h"

/* Where one pass's targets come from: exactly one of labels / truth is set. */
struct targets {
    const int *labels;
    const float *truth;
};

static void fill_truth(float *dst, const struct targets *t, int first, int count, size_t outs)
{
    if (t->truth) {
        memcpy(dst, t->truth + (size_t)first * outs, sizeof(float) * outs * (size_t)count);
        return;
    }
    memset(dst, 0, sizeof(float) * outs * (size_t)count);
    for (int b = 0; b < count; b++)
        dst[(size_t)b * outs + (size_t)t->labels[first + b]] = 1.f;
}

static int check_training(cfgnet_net *h, const char *fn, const float *input, int n, int c, int hh,
                          int w, float lr)
{
    if (api_need_net(h, fn))
        return -1;
    if (!(h->flags & CFGNET_TRAIN))
        return cn_fail(&h->err,
                       "%s: the network was loaded for inference; load it with "
                       "CFGNET_TRAIN to train",
                       fn);
    const struct layer *last = net_last(h->n);
    if (!last->ops->is_loss)
        return cn_fail(&h->err,
                       "%s: the last layer is [%s] (layer %d, line %d), not a loss layer "
                       "such as [softmax]: nothing to train against",
                       fn, last->ops->name, last->index, last->line);
    if (api_check_images(h, fn, input, n, c, hh, w, 1))
        return -1;
    if (lr != CFGNET_LR_FROM_CFG && !(lr >= 0 && isfinite(lr)))
        return cn_fail(&h->err, "%s: learning rate %g: must be >= 0, or CFGNET_LR_FROM_CFG", fn,
                       (double)lr);
    return 0;
}

static int step(cfgnet_net *h, const char *fn, const float *input, int n, const struct targets *t,
                float lr, float *loss)
{
    struct net *net = h->n;
    size_t in = net_inputs(net), outs = net_outputs(net);
    double sum = 0;
    for (int first = 0; first < n; first += net->batch) {
        memcpy(net->input, input + (size_t)first * in, sizeof(float) * in * (size_t)net->batch);
        fill_truth(net->truth, t, first, net->batch, outs);
        struct pass p;
        net_pass_init(net, &p, 1, 1);
        p.loss_scale = 1.f / (float)n;
        net_forward(net, &p);
        net_backward(net, &p);
        sum += p.loss;
    }
    float rate =
        lr == CFGNET_LR_FROM_CFG ? lr_at(&net->cfg, net->seen / (uint64_t)net->cfg.batch) : lr;
    optimizer_step(h->opt, net, rate);
    net->seen += (uint64_t)n;
    h->last_n = net->batch;
    double mean = sum / n;
    if (loss)
        *loss = (float)mean;
    if (!isfinite(mean))
        return cn_fail(&h->err, "%s: the loss became %g at learning rate %g; lower it", fn, mean,
                       (double)rate);
    return 0;
}

int cfgnet_train_labels(cfgnet_net *net, const float *input, int n, int c, int h, int w,
                        const int *labels, float lr, float *loss)
{
    const char *fn = "cfgnet_train_labels";
    if (!net || check_training(net, fn, input, n, c, h, w, lr))
        return CFGNET_ERROR;
    if (!labels)
        return cn_fail(&net->err, "%s: labels is NULL", fn);
    int outs = (int)net_outputs(net->n);
    for (int b = 0; b < n; b++)
        if (labels[b] < 0 || labels[b] >= outs)
            return cn_fail(&net->err,
                           "%s: label %d of image %d is out of range: the network has "
                           "%d outputs (0..%d)",
                           fn, labels[b], b, outs, outs - 1);
    struct targets t = {labels, NULL};
    return step(net, fn, input, n, &t, lr, loss);
}

int cfgnet_train_truth(cfgnet_net *net, const float *input, int n, int c, int h, int w,
                       const float *truth, size_t truth_len, float lr, float *loss)
{
    const char *fn = "cfgnet_train_truth";
    if (!net || check_training(net, fn, input, n, c, h, w, lr))
        return CFGNET_ERROR;
    size_t need = net_outputs(net->n) * (size_t)n;
    if (!truth)
        return cn_fail(&net->err, "%s: truth is NULL", fn);
    if (truth_len != need)
        return cn_fail(&net->err,
                       "%s: truth holds %zu floats, but %d images of %zu outputs need "
                       "%zu",
                       fn, truth_len, n, net_outputs(net->n), need);
    struct targets t = {NULL, truth};
    return step(net, fn, input, n, &t, lr, loss);
}

int cfgnet_freeze(cfgnet_net *net, int layers)
{
    const char *fn = "cfgnet_freeze";
    if (!net || api_need_net(net, fn))
        return CFGNET_ERROR;
    struct net *n = net->n;
    if (!(net->flags & CFGNET_TRAIN))
        return cn_fail(&net->err,
                       "%s: the network was loaded for inference; freezing is for handles "
                       "loaded with CFGNET_TRAIN",
                       fn);
    if (layers < 0 || layers > n->n)
        return cn_fail(&net->err, "%s: %d layers: must be 0 to %d (the network's layers)", fn,
                       layers, n->n);
    /* net_freeze marks the layers before it finds that nothing would train: undo that */
    unsigned char *was = xmalloc((size_t)n->n);
    for (int i = 0; i < n->n; i++)
        was[i] = (unsigned char)n->layers[i].frozen;
    int rc = net_freeze(n, layers, &net->err);
    if (rc) {
        for (int i = 0; i < n->n; i++)
            n->layers[i].frozen = was[i];
        cn_error ignored;
        int again = net_freeze(n, 0, &ignored); /* the backward cut as it was */
        CN_ASSERT(again == 0);
    } else {
        net->freeze = CN_MAX(net->freeze, layers);
    }
    free(was);
    return rc ? CFGNET_ERROR : CFGNET_OK;
}
