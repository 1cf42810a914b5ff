/* features.c - extract features: run images through a network and print one layer's output per
 * image, e.g. the last hidden [connected] layer as an embedding for another model.
 *
 *   features CFG WEIGHTS LAYER IMAGE...
 *
 * LAYER counts from 0 at the first layer after [net]; a negative LAYER counts from the end (-1 is
 * the last layer, -2 the one before...). Prints a header line per image, "PATH: layer L [type]
 * CxHxW", then its c*h*w values on one line (NCHW order, %.6g). All images run in one batch.
 * Uses nothing but the installed <cfgnet.h>.
 */
#include <stdio.h>
#include <stdlib.h>

#include <cfgnet.h>

static int fail(cfgnet_net *net)
{
    fprintf(stderr, "features: %s\n", cfgnet_error(net));
    cfgnet_free(net);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: features CFG WEIGHTS LAYER IMAGE...\n");
        return 1;
    }
    int layer = atoi(argv[3]), n = argc - 4, c, h, w;
    const char *type;
    cfgnet_net *net = cfgnet_create();
    if (!net || cfgnet_load(net, argv[1], argv[2], n, 0) ||
        cfgnet_layer_shape(net, layer, &c, &h, &w) || cfgnet_layer_type(net, layer, &type))
        return fail(net);
    size_t per = (size_t)c * h * w;
    float *out = malloc(sizeof *out * per * (size_t)n);
    if (!out)
        return fail(net);
    if (cfgnet_forward_files(net, (const char *const *)argv + 4, n, NULL, 0) ||
        cfgnet_layer_output(net, layer, out, per * (size_t)n) < 0) {
        free(out);
        return fail(net);
    }
    for (int b = 0; b < n; b++) {
        printf("%s: layer %d [%s] %dx%dx%d\n", argv[4 + b], layer, type, c, h, w);
        for (size_t i = 0; i < per; i++)
            printf("%s%.6g", i ? " " : "", out[(size_t)b * per + i]);
        printf("\n");
    }
    free(out);
    cfgnet_free(net);
    return 0;
}
