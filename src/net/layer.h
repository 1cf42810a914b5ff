/* layer.h - the common layer record, the per-type operations table, and the build-time API through
 * which a layer declares its parameters and buffers.
 *
 * Layout: activations are NCHW float32, batch-major: image b of a layer's output starts at
 * output + b * shape_size(out). Gradients: d<x> is dL/dx with the ordinary sign.
 *
 * Life of a layer: the net sets index, line, in and batch, then calls ops->build, which parses the
 * cfg section, sets out, and declares every parameter (build_param, in Darknet's .weights order) and
 * every buffer it needs (build_buffer) plus its scratch need (build_workspace). The net then
 * allocates a few slabs and points all declared pointers into them: nothing is allocated in forward
 * or backward. The net also gives each layer its output and doutput (batch x out) and wires input /
 * dinput to the previous layer's output / doutput (dinput is NULL when nothing below needs a
 * gradient: layers must then skip computing it; a layer below a frozen cut, whose backward never
 * runs, may have no doutput either: net.h plan_cut).
 *
 * Accumulation: backward ADDS into dinput and into parameter gradients (the net zeroes doutputs
 * before a backward pass; the optimiser zeroes parameter gradients after an update). This is what
 * lets subdivisions accumulate and [route]/[shortcut] fan gradients in.
 */
#ifndef CN_LAYER_H
#define CN_LAYER_H

#include <stddef.h>

#include "cfg/cfg.h"
#include "core/common.h"
#include "core/rng.h"

struct shape {
    int c, h, w;
};

static inline size_t shape_size(struct shape s)
{
    return (size_t)s.c * (size_t)s.h * (size_t)s.w;
}

enum layer_type {
    LAYER_CONV,
    LAYER_CONNECTED,
    LAYER_MAXPOOL,
    LAYER_AVGPOOL,
    LAYER_DROPOUT,
    LAYER_SOFTMAX,
    LAYER_BATCHNORM,
    LAYER_ROUTE,
    LAYER_SHORTCUT,
    LAYER_SCALE_CHANNELS,
    LAYER_LRN,
    LAYER_CROP,
    LAYER_COST,
    LAYER_ACTIVATION,
    LAYER_TYPE_COUNT
};

enum param_flag {
    PARAM_TRAIN = 1u, /* updated by the optimiser; has a gradient */
    PARAM_DECAY = 2u, /* receives weight decay (weights, not biases or BN parameters) */
};

struct param {
    float *data; /* points into the net's parameter slab */
    float *grad; /* points into the gradient slab; NULL unless PARAM_TRAIN and built for training */
    size_t n;
    const char *name; /* "biases", "weights", "scales", "rolling_mean", "rolling_variance" */
    unsigned flags;
    int layer;
};

struct bn_sync; /* kernels/batchnorm.h */

/* State of one forward/backward pass, shared by all layers of the pass. */
struct pass {
    int train;           /* training mode: batch statistics, dropout */
    const float *truth;  /* batch x classes targets, or NULL when no loss is wanted */
    float *workspace;    /* scratch shared by all layers, at least the largest request */
    cn_rng *rng;         /* for dropout */
    float loss_scale;    /* dL/dlogit scale: 1 / images per optimiser step */
    double loss;         /* loss layers add their summed loss over the batch here */
    /* Called by net_backward after each layer's backward (data-parallel training starts the
     * gradient sums of the layers done: net/ddp.h); NULL for none. */
    void (*layer_done)(void *ctx, int layer);
    void *layer_done_ctx;
    /* Batch norms of a training pass take their statistics over every rank's batch through it
     * ([net] sync_bn=1 on several ranks: net/ddp.h; kernels/batchnorm.h); NULL: this batch. */
    const struct bn_sync *bn_sync;
    /* The last layer this pass runs (net_pass_init: the last of the net; net_forward_upto sets
     * it): a layer that took a [shortcut]'s work (layer_ops.take_residual) does it only when
     * that layer runs too, so that its own output is right when it is the last. */
    int upto;
};

struct layer {
    const struct layer_ops *ops;
    int index, line;  /* position in the net and the cfg line of its section */
    struct shape in, out;
    int batch;
    const float *input;
    float *dinput;
    float *output, *doutput;
    void *priv;       /* the type's own record, owned by the layer */
    /* Keys of every section, parsed by the net (net.c): freeze=1 (or -freeze N) leaves the
     * layer's parameters as they are and runs it in inference mode (batch norm on its rolling
     * statistics, which stay fixed); set only on layers with trainable parameters. lr_mult
     * (learning_rate= as Darknet, or lr_mult=) multiplies the step's learning rate for them. */
    int frozen;
    float lr_mult;
    /* Bumped by net_params_changed (net.h) after every write to the net's parameters from
     * outside the layers' passes: initialisation, loading, copies, the optimiser's step. A layer
     * keeping something made from its parameters (conv: packed weights, Winograd filters)
     * remakes it when the version is not the one it was made at. The rolling statistics a
     * training pass updates do not bump it: nothing may be cached from them. */
    unsigned long params_version;
};

struct build; /* opaque: collects declarations while a net is built */

int build_batch(const struct build *b);
int build_training(const struct build *b);
/* The net's batch-norm convention ([net] bn_style, bn_eps, bn_momentum; kernels/batchnorm.h):
 * layers with a batch norm copy it at build time. */
struct bn_conf;
const struct bn_conf *build_bn(const struct build *b);
/* Declares a parameter tensor of n floats. data always gets storage; grad gets storage when
 * PARAM_TRAIN is set and the net is built for training, else stays NULL. */
void build_param(struct build *b, float **data, float **grad, size_t n, const char *name,
                 unsigned flags);

enum buf_kind {
    BUF_ALWAYS, /* needed for inference too */
    BUF_TRAIN,  /* only allocated when built for training (caches for backward, masks) */
    /* As BUF_TRAIN, for what only backward reads (batch norm's x_hat): a layer below the
     * backward cut, whose backward never runs, gets NULL, and its forward then skips it. */
    BUF_BACKWARD
};
void build_buffer(struct build *b, float **ptr, size_t n, enum buf_kind kind);
/* Declares that forward/backward needs n floats of pass->workspace. */
void build_workspace(struct build *b, size_t n);

/* References to earlier layers ([route], [shortcut], [scale_channels]). Every layer below the
 * one being built is built (ops, shapes, priv set), but outputs and doutputs are assigned only
 * after all layers are: keep the struct layer pointer and read ->output / ->doutput in forward /
 * backward. Backward ADDS into the referenced layers' doutput; they run later (lower index). */
int build_index(const struct build *b);       /* the layer being built */
int build_layer_count(const struct build *b); /* layers in the net */
/* Layer index, 0 <= index < build_index(b). */
struct layer *build_layer_ref(struct build *b, int index);
/* The ops of the layer after the one being built: NULL when this is the last layer or the next
 * section is unknown (which fails when it is built). */
const struct layer_ops *build_next_ops(const struct build *b);
/* Resolves Darknet's layer reference v, read from key kv of s (v < 0: relative, index + v; else
 * absolute, as parse_route / parse_shortcut), to an earlier layer. Fails with "path:line:
 * [section] key=value: ..." when it lies before layer 0, points at this layer or a later one, or
 * at a loss layer (whose output nothing may read: an auxiliary head's only way on is a route). */
int build_resolve_ref(struct build *b, const struct cfg_section *s, const struct cfg_kv *kv, int v,
                      struct layer **out, cn_error *e);

/* Memory. The net places layer outputs by liveness: an output lives from its layer to the last
 * layer that reads it (the next one, and every layer holding a reference from build_layer_ref or
 * build_resolve_ref), and outputs never live at the same time may share memory (inference nets).
 * A layer that reads the layer below only when it references it ([route]) says so with
 * build_input_unused, so the layer below may die earlier.
 * In-place outputs: a layer whose forward only copies src's output (per image) may offer to
 * skip the copy. build_output_view: this layer's output is src's output from float `at` on, so it
 * may live in src's memory; build_output_slot: this layer's output holds all of src's output at
 * `at`, so src may write there directly. The net takes an offer or not (batch, layouts: see
 * net/memplan.h); forward must then skip each copy whose source already is its destination
 * (compare the pointers), and backward is unchanged: output gradients never share this way. */
void build_input_unused(struct build *b);
void build_output_view(struct build *b, const struct layer *src, size_t at);
void build_output_slot(struct build *b, const struct layer *src, size_t at);
/* Training memory. A net built for training keeps a layer's output to the end of backward
 * unless no backward reads it, neither the layer's own nor any reader's: then the output lives
 * through forward only (to its last reader) and may share memory with other such outputs, as in
 * an inference net (a bottleneck's last, linear convolution, read by a [shortcut] alone). A layer
 * says what its backward leaves unread: build_backward_skips_output, its own output (a linear
 * activation); build_backward_skips_inputs, every output it reads (the layer below and its
 * references). Without either, backward may read both. NET_KEEP_OUTPUTS keeps every output. */
void build_backward_skips_output(struct build *b);
void build_backward_skips_inputs(struct build *b);

/* A [shortcut]'s work handed to the layer below it (layer_ops.take_residual), Darknet's rule
 * with from at least as large as the layer's own output y (shortcut.c): z = alpha * y + beta *
 * from[k][j*stride][i*stride] on channels k < minc, rows j < minh, columns i < minw, z = y
 * elsewhere, then y = act(z). full: from has y's shape, alpha = beta = 1 (z = y + from). */
struct residual {
    const struct layer *from;
    int act;
    float alpha, beta;
    int stride, minc, minh, minw, full;
};

struct layer_ops {
    const char *name;  /* canonical section name, e.g. "convolutional" */
    const char *alias; /* Darknet's short name, e.g. "conv", or NULL */
    enum layer_type type;
    int is_loss;       /* consumes pass->truth and starts backward itself */
    /* Parses the section (every key through cfg getters), sets l->out, declares params/buffers. */
    int (*build)(struct layer *l, struct cfg_section *s, struct build *b, cn_error *e);
    /* Fills parameters with their initial values (NULL when the layer has none). */
    void (*init)(struct layer *l, cn_rng *rng);
    void (*forward)(struct layer *l, struct pass *p);
    void (*backward)(struct layer *l, struct pass *p);
    /* One short description for `net summary`, e.g. "6 5x5/1 pad 2, relu". */
    void (*describe)(const struct layer *l, char *buf, size_t n);
    /* The kernel chosen at build time, for `net speed`, e.g. "im2col+gemm" or "winograd
     * F(4x4,3x3)"; NULL when the type has one way of computing. */
    void (*algorithm)(const struct layer *l, char *buf, size_t n);
    /* Floating-point operations per image in forward (a multiply-add counts as 2). */
    double (*flops)(const struct layer *l);
    void (*destroy)(struct layer *l); /* frees priv; NULL if priv needs no more than free() */
    /* Inference nets, once every layer is built (net.c): l alone reads the output of `below`
     * (the layer under it). fuse may hand l's work to below (through below's take_residual) and
     * return 1: l's output then is below's own memory (an output view), below writes l's result
     * there whenever l runs in the pass too (pass.upto), and l's forward does nothing. NULL or 0:
     * not fused. */
    int (*fuse)(struct layer *l, struct layer *below);
    /* below's side: from then on its forward also adds r's from= output after its epilogue and
     * applies r's act, bit for bit the [shortcut] after it (struct residual). Returns 1 when
     * taken, 0 when it cannot. NULL: never. */
    int (*take_residual)(struct layer *l, const struct residual *r);
};

/* The registry: every layer type, looked up by section name or alias. */
const struct layer_ops *layer_lookup(const char *section);
extern const struct layer_ops *const layer_registry[];
extern const int layer_registry_count;

/* Shared option table for the activation= key (Darknet's default is logistic). */
int layer_get_activation(struct cfg_section *s, int def, int *out, cn_error *e);

#endif
