/* registry.c - the table of layer types. Adding a type: one file in src/layers/, one row here. */
#include <string.h>

#include "kernels/activations.h"
#include "net/layer.h"

extern const struct layer_ops conv_ops, connected_ops, maxpool_ops, avgpool_ops, dropout_ops,
    softmax_ops, batchnorm_ops;
extern const struct layer_ops route_ops, shortcut_ops, scale_channels_ops;
extern const struct layer_ops lrn_ops, crop_ops, cost_ops;
extern const struct layer_ops activation_ops;

const struct layer_ops *const layer_registry[] = {
    &conv_ops, &connected_ops, &maxpool_ops, &avgpool_ops, &dropout_ops, &softmax_ops,
    &batchnorm_ops,
    &route_ops,
    &shortcut_ops,
    &scale_channels_ops,
    &lrn_ops,
    &crop_ops,
    &cost_ops,
    &activation_ops,
};
const int layer_registry_count = (int)(sizeof layer_registry / sizeof layer_registry[0]);

const struct layer_ops *layer_lookup(const char *section)
{
    for (int i = 0; i < layer_registry_count; i++) {
        const struct layer_ops *o = layer_registry[i];
        if (!strcmp(o->name, section) || (o->alias && !strcmp(o->alias, section)))
            return o;
    }
    return NULL;
}

int layer_get_activation(struct cfg_section *s, int def, int *out, cn_error *e)
{
    return cfg_get_choice(s, "activation", act_names, ACT_COUNT, def, out, e);
}
