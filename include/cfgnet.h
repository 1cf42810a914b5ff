/* cfgnet.h - the public interface of libcfgnet: build a network from a Darknet-style cfg (a file or
 * text in memory) and its .weights, run it on float tensors, 8-bit pixel buffers or image files,
 * read any layer's output, train it one optimiser step at a time, and save its weights. This is
 * the only header a program using the library includes; `pkg-config --cflags --libs cfgnet` gives
 * the flags (see docs/library.md for a walk-through, examples/ for whole programs).
 *
 * Conventions:
 *   - Tensors are NCHW float32, batch-major: image b starts at b * c*h*w. Network input from images
 *     is pixel / 255 in [0, 1], planar (all of channel 0, then channel 1...), as the net command
 *     feeds it.
 *   - A cfgnet_net is an opaque handle made by cfgnet_create(). Every call that can fail returns
 *     CFGNET_OK (0) or a non-negative count on success and CFGNET_ERROR (-1) on failure; then
 *     cfgnet_error(net) gives a one-line message naming the problem (a cfg error reads
 *     "path:line: [section] key=value: problem"). A failed call leaves the handle as it was, unless
 *     its comment says otherwise.
 *   - No call prints or exits. The library aborts only on a broken internal invariant (a bug,
 *     reported with file:line) or when a small bookkeeping allocation fails; large buffers (sized
 *     from a cfg) fail with a message instead.
 *   - Layer indices count from 0 at the first layer after [net]; a negative index counts from the
 *     end (-1 is the last layer), as in Python.
 *
 * Thread safety: the library has no global state.
 *   - Safe from any thread at any time: cfgnet_version, cfgnet_version_number, cfgnet_create,
 *     cfgnet_error(NULL).
 *   - Every other call takes a handle, and calls on one handle must not overlap: use a handle
 *     from one thread at a time (serialise with your own lock), including the read-only queries,
 *     since any failing call writes the handle's message. cfgnet_free is the last call on its
 *     handle. The string cfgnet_error(net) returns stays valid until the next call on net.
 *   - Separate handles are independent and may be used from separate threads at the same time.
 *     A handle is not tied to the thread that made it.
 * Inside a call, work is split over OpenMP threads (OMP_NUM_THREADS); handles busy in several
 * threads at once each start their own OpenMP team.
 *
 * Versioning: the library follows semantic versioning. CFGNET_VERSION_* are the header's version;
 * cfgnet_version_number() is the linked library's. The shared library's soname carries the major
 * version (libcfgnet.so.1); a program built against MAJOR.MINOR runs with any later MINOR.
 */
#ifndef CFGNET_H
#define CFGNET_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CFGNET_VERSION_MAJOR 1
#define CFGNET_VERSION_MINOR 1
#define CFGNET_VERSION_PATCH 0
/* MAJOR * 10000 + MINOR * 100 + PATCH, to compare with cfgnet_version_number(). */
#define CFGNET_VERSION_NUMBER                                                                      \
    (CFGNET_VERSION_MAJOR * 10000 + CFGNET_VERSION_MINOR * 100 + CFGNET_VERSION_PATCH)

/* Only these symbols are exported from the shared library; the rest is hidden. */
#if defined(__GNUC__)
#define CFGNET_API __attribute__((visibility("default")))
#else
#define CFGNET_API
#endif

#define CFGNET_OK 0
#define CFGNET_ERROR (-1)

/* cfgnet_load flag: also allocate gradients and training buffers (cfgnet_train_* need them). */
#define CFGNET_TRAIN 1u
/* cfgnet_load flag (since 1.1), for inference handles: layer outputs share memory by liveness
 * (an output's memory is reused once no later layer reads it), so a pass needs a fraction of the
 * activation memory, and layers whose output cannot reach the last one (auxiliary heads) are not
 * run. Only the last layer's output is kept: cfgnet_layer_output reads layer -1 only. Without it,
 * every layer's output stays readable. Not with CFGNET_TRAIN (training keeps every output). */
#define CFGNET_SHARE_OUTPUTS 2u

/* cfgnet_forward_u8 layouts: HWC is interleaved pixels, rows top to bottom (what image decoders
 * and numpy image arrays hold); CHW is planar (all of channel 0, then channel 1...). */
#define CFGNET_LAYOUT_HWC 0
#define CFGNET_LAYOUT_CHW 1

/* cfgnet_train_* learning rate: take it from the [net] policy (learning_rate=, policy=, burn_in=
 * ...) at the current iteration, images seen / [net] batch= as the net command counts it. */
#define CFGNET_LR_FROM_CFG (-1.0f)

typedef struct cfgnet_net cfgnet_net;

/* "MAJOR.MINOR.PATCH" of the library actually linked. Thread safe. */
CFGNET_API const char *cfgnet_version(void);
/* MAJOR * 10000 + MINOR * 100 + PATCH of the library actually linked. Thread safe. */
CFGNET_API int cfgnet_version_number(void);

/* ---- Handles ---------------------------------------------------------------------------------*/

/* An empty handle, to load a network into. Returns NULL only when out of memory. */
CFGNET_API cfgnet_net *cfgnet_create(void);
/* Frees the handle and everything it holds. cfgnet_free(NULL) does nothing. */
CFGNET_API void cfgnet_free(cfgnet_net *net);
/* The message of the last failed call on net, "" if none has failed. The string belongs to the
 * handle and is overwritten by the next failing call. For net == NULL, a fixed message saying the
 * handle is NULL (every call given a NULL handle returns CFGNET_ERROR). */
CFGNET_API const char *cfgnet_error(const cfgnet_net *net);

/* ---- Loading and saving ----------------------------------------------------------------------*/

/* Builds the network described by the cfg file at cfg_path into net, replacing what it held, then
 * loads weights_path into it unless that is NULL (otherwise parameters are initialised from
 * [net] seed=). batch is the number of images per forward pass: >= 1, or 0 for [net]
 * batch/subdivisions. flags: 0 for inference, CFGNET_TRAIN to be able to train, or
 * CFGNET_SHARE_OUTPUTS for an inference net with shared layer outputs. With CFGNET_TRAIN, a cfg
 * whose freeze=1 keys leave no layer with parameters to train is an error, as in `net classifier
 * train`. All or nothing: on failure the handle keeps its previous network (or stays empty).
 * Reads the cfg file once. */
CFGNET_API int cfgnet_load(cfgnet_net *net, const char *cfg_path, const char *weights_path,
                           int batch, unsigned flags);
/* cfgnet_load from cfg text in memory (NUL-terminated). name is what error messages call it (NULL:
 * "<string>"). */
CFGNET_API int cfgnet_load_string(cfgnet_net *net, const char *cfg_text, const char *name,
                                  const char *weights_path, int batch, unsigned flags);
/* Reads a Darknet .weights file into the loaded network, and resets the optimiser's state
 * (momentum, Adam's moments and step count). All or nothing: the file's size must be exactly what
 * the cfg needs and every value finite, else nothing changes. */
CFGNET_API int cfgnet_load_weights(cfgnet_net *net, const char *path);
/* Writes the parameters and the images-seen count as a Darknet .weights file, atomically (a
 * temporary file renamed over path: a failure leaves the old file). */
CFGNET_API int cfgnet_save_weights(cfgnet_net *net, const char *path);

/* ---- Shapes ----------------------------------------------------------------------------------*/

/* Images per forward pass, or -1. */
CFGNET_API int cfgnet_batch(cfgnet_net *net);
/* Rebuilds the network for batch images per pass (>= 1), keeping parameters, optimiser state and
 * images seen. Layer outputs of earlier passes are gone afterwards. */
CFGNET_API int cfgnet_set_batch(cfgnet_net *net, int batch);
/* The input shape per image: channels, height, width (any pointer may be NULL). */
CFGNET_API int cfgnet_input_shape(cfgnet_net *net, int *c, int *h, int *w);
/* Values per image out of the last layer (class probabilities of a [softmax] classifier), or -1. */
CFGNET_API int cfgnet_outputs(cfgnet_net *net);
/* Layers after [net], or -1. */
CFGNET_API int cfgnet_layer_count(cfgnet_net *net);
/* Output shape per image of a layer (any pointer may be NULL). */
CFGNET_API int cfgnet_layer_shape(cfgnet_net *net, int layer, int *c, int *h, int *w);
/* The layer's canonical section name ("convolutional", "softmax"...): a static string. */
CFGNET_API int cfgnet_layer_type(cfgnet_net *net, int layer, const char **type);
/* Images trained on so far (as stored in .weights). */
CFGNET_API int cfgnet_images_seen(cfgnet_net *net, unsigned long long *seen);

/* ---- Inference -------------------------------------------------------------------------------*/

/* Runs n images (1 <= n <= batch) through the network in inference mode (dropout off, batch norm
 * with its rolling statistics). input holds n images of c x h x w floats, which must be the
 * network's input shape. When output is non-NULL, n * cfgnet_outputs() floats are written to it;
 * output_len is its size in floats and must be at least that. Every layer's output can then be
 * read with cfgnet_layer_output. A pass always computes the whole batch: for speed, set the batch
 * to the number of images you pass. */
CFGNET_API int cfgnet_forward(cfgnet_net *net, const float *input, int n, int c, int h, int w,
                              float *output, size_t output_len);
/* cfgnet_forward on decoded 8-bit pixels: n images of h x w pixels with c channels each, in
 * layout CFGNET_LAYOUT_HWC or CFGNET_LAYOUT_CHW; each byte v becomes v / 255. The shape must be
 * the network's input shape (no resizing or channel conversion: use cfgnet_forward_files or
 * convert first). */
CFGNET_API int cfgnet_forward_u8(cfgnet_net *net, const unsigned char *pixels, int n, int c, int h,
                                 int w, int layout, float *output, size_t output_len);
/* cfgnet_forward on n image files (PNG, JPEG, BMP, GIF, TGA, PNM), each decoded, converted to the
 * network's channels and resized to its width x height exactly as `net classifier predict` does. */
CFGNET_API int cfgnet_forward_files(cfgnet_net *net, const char *const *paths, int n, float *output,
                                    size_t output_len);
/* Copies the given layer's output for the images of the last pass into out: images x c*h*w floats
 * (cfgnet_layer_shape), out_len being out's size in floats. The last pass is the last forward
 * call's n images, or the last batch of a training step. Returns the number of images copied, or
 * -1 (also when no pass has run since the network was built, and for any layer but the last of a
 * handle loaded with CFGNET_SHARE_OUTPUTS). */
CFGNET_API int cfgnet_layer_output(cfgnet_net *net, int layer, float *out, size_t out_len);
/* The k largest outputs of image `image` of the last pass, best first (ties: lower index first),
 * as indices into the outputs and, when value is non-NULL, their values. k is capped at
 * cfgnet_outputs(). Returns the number written, or -1. */
CFGNET_API int cfgnet_top_k(cfgnet_net *net, int image, int k, int *index, float *value);

/* ---- Training --------------------------------------------------------------------------------*/

/* One optimiser step on n images (n a positive multiple of the batch; the images run in n / batch
 * forward/backward passes whose gradients add up, as Darknet's subdivisions), in training mode
 * (dropout on, batch statistics). The network must be loaded with CFGNET_TRAIN and end in a loss
 * layer ([softmax]). The optimiser is the one [net] chooses (SGD with momentum= and decay=, or
 * adam=1 / adamw=1 with B1 B2 eps), at learning rate lr (>= 0), or at the [net] policy's rate for
 * the current iteration when lr is CFGNET_LR_FROM_CFG. Labels are class indices in
 * [0, outputs). Writes the mean loss per image to *loss when loss is non-NULL. Fails without
 * changing anything on bad arguments; fails after the update when the loss is not finite. */
CFGNET_API int cfgnet_train_labels(cfgnet_net *net, const float *input, int n, int c, int h, int w,
                                   const int *labels, float lr, float *loss);
/* cfgnet_train_labels with targets: n * outputs floats (one-hot or soft; truth_len is their
 * number). */
CFGNET_API int cfgnet_train_truth(cfgnet_net *net, const float *input, int n, int c, int h, int w,
                                  const float *truth, size_t truth_len, float lr, float *loss);
/* Freezes layers 0..layers-1 (0 <= layers <= cfgnet_layer_count) of a CFGNET_TRAIN handle, on top
 * of the cfg's freeze=1 keys, as `net classifier train -freeze N` does: their parameters are not
 * updated (no decay, no momentum), they run in inference mode within a training step (dropout
 * off, batch norm on its rolling statistics), and backward stops at the lowest trainable layer.
 * Freezing adds up (a smaller count later unfreezes nothing; reload to start over) and lasts
 * through cfgnet_set_batch. Fails, changing nothing, when no layer with parameters would be left
 * to train. Since 1.1. */
CFGNET_API int cfgnet_freeze(cfgnet_net *net, int layers);

#ifdef __cplusplus
}
#endif

#endif
