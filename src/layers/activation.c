/* activation.c - [activation]: an element-wise activation on its own (pjreddie Darknet's
 * activation_layer.c and its section name), for a non-linearity that does not follow a
 * convolution directly: torchvision's VGG-BN is conv (with bias) -> [batchnorm] -> ReLU.
 *
 * Key: activation= (default linear, Darknet's parse_activation). Output shape = input shape,
 * y = f(x) element-wise (kernels/activations.h). Backward (ADDS): dx += dy * f'(x), computed
 * into the workspace (batch x in floats) from y, or from x itself when the function needs it
 * (swish, mish, stair): x is the layer below's output, which stays valid for the whole pass.
 * Not in place: the layer has its own output (Darknet's copies too).
 */
#include <stdio.h>

#include "kernels/activations.h"
#include "net/layer.h"

struct act_layer {
    int act;
};

static int activation_build(struct layer *l, struct cfg_section *s, struct build *b, cn_error *e)
{
    struct act_layer *a = xcalloc(1, sizeof *a);
    l->priv = a;
    if (layer_get_activation(s, ACT_LINEAR, &a->act, e))
        return -1;
    l->out = l->in;
    if (build_training(b))
        build_workspace(b, shape_size(l->in) * (size_t)build_batch(b));
    return 0;
}

static void activation_forward(struct layer *l, struct pass *p)
{
    (void)p;
    const struct act_layer *a = l->priv;
    act_forward(l->output, l->input, shape_size(l->in) * (size_t)l->batch, a->act);
}

static void activation_backward(struct layer *l, struct pass *p)
{
    const struct act_layer *a = l->priv;
    if (!l->dinput)
        return;
    size_t n = shape_size(l->in) * (size_t)l->batch;
    float *dz = p->workspace;
    act_backward(dz, l->doutput, act_needs_input(a->act) ? l->input : NULL, l->output, n,
                 a->act);
    for (size_t i = 0; i < n; i++)
        l->dinput[i] += dz[i];
}

static void activation_describe(const struct layer *l, char *buf, size_t n)
{
    const struct act_layer *a = l->priv;
    snprintf(buf, n, "%s", act_names[a->act]);
}

/* One operation per value (the exponentials of logistic or swish count as one, as in conv). */
static double activation_flops(const struct layer *l)
{
    return (double)shape_size(l->in);
}

const struct layer_ops activation_ops = {
    .name = "activation",
    .type = LAYER_ACTIVATION,
    .build = activation_build,
    .forward = activation_forward,
    .backward = activation_backward,
    .describe = activation_describe,
    .flops = activation_flops,
};
