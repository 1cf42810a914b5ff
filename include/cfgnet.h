/* cfgnet.h - the public interface of libcfgnet: load a network described by a Darknet-style cfg
 * (and its .weights), and classify float tensors or image files with it.
 *
 * Conventions: images are NCHW float32 in [0, 1]. Every call that can fail returns 0 on success and
 * -1 on failure; cfgnet_error() then returns a one-line message for that handle. No call prints or
 * exits. A handle is not safe to use from two threads at once; separate handles are independent.
 */
#ifndef CFGNET_H
#define CFGNET_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CFGNET_VERSION_MAJOR 0
#define CFGNET_VERSION_MINOR 1
#define CFGNET_VERSION_PATCH 0

/* "MAJOR.MINOR.PATCH" of the library actually linked. */
const char *cfgnet_version(void);

typedef struct cfgnet_net cfgnet_net;

/* Builds the network in cfg_path for inference, `batch` images per forward pass (>= 1), and loads
 * weights_path unless it is NULL. On failure returns NULL and writes the message to err (errlen
 * bytes, may be NULL/0). */
cfgnet_net *cfgnet_load(const char *cfg_path, const char *weights_path, int batch, char *err,
                        size_t errlen);
void cfgnet_free(cfgnet_net *net);

/* The message of the last failed call on net ("" if none; "NULL handle" for net == NULL). */
const char *cfgnet_error(const cfgnet_net *net);

/* Input shape (channels, height, width), batch size, and outputs per image. */
int cfgnet_input_shape(const cfgnet_net *net, int *c, int *h, int *w);
int cfgnet_batch(const cfgnet_net *net);
int cfgnet_outputs(const cfgnet_net *net);

/* Runs n images (1 <= n <= batch; n * c*h*w floats at input) through the net and copies
 * n * outputs floats into output. */
int cfgnet_predict(cfgnet_net *net, const float *input, int n, float *output);

/* Loads an image file (PNG, JPEG, BMP, GIF, TGA, PNM), converts and resizes it to the input shape,
 * and writes the outputs (class probabilities for a softmax net) to output. */
int cfgnet_predict_image(cfgnet_net *net, const char *path, float *output);

#ifdef __cplusplus
}
#endif

#endif
