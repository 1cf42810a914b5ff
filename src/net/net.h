/* net.h - a network built from a cfg: layers, parameters, per-pass buffers, and the [net] settings.
 *
 * Memory: parameters live in one slab (in declaration order, which is Darknet's .weights order),
 * their gradients in a parallel slab, activations in another, training-only buffers in a fourth, and
 * one workspace sized for the hungriest layer. All of it is allocated in net_create. Layer outputs
 * and output gradients are placed by liveness (net/memplan.h; see NET_KEEP_OUTPUTS below).
 */
#ifndef CN_NET_H
#define CN_NET_H

#include <stdint.h>

#include "core/common.h"
#include "core/rng.h"
#include "data/augment.h"
#include "kernels/batchnorm.h"
#include "net/layer.h"

enum lr_policy {
    LR_CONSTANT,
    LR_STEP,
    LR_STEPS,
    LR_EXP,
    LR_POLY,
    LR_SIGMOID,
    LR_COSINE,
    LR_POLICY_COUNT
};

/* The [net] section: input shape and training settings (Darknet's keys and defaults). */
struct net_config {
    int batch, subdivisions; /* images per optimiser step; passes it is split into */
    int height, width, channels;
    int max_batches, burn_in;
    float learning_rate, momentum, decay;
    enum lr_policy policy;
    int step;            /* policy=step, sigmoid */
    float scale, gamma, power, learning_rate_min;
    int *steps;          /* policy=steps */
    float *scales;
    int nsteps;
    int adam, adamw;     /* adam=1 (L2 decay in the gradient) or adamw=1 (decoupled decay) */
    float b1, b2, eps;
    uint64_t seed;
    int valid_every;     /* validate every N iterations; 0 never; NET_VALID_EPOCH per epoch */
    struct bn_conf bn;   /* bn_style, bn_eps, bn_momentum: every batch norm of the net */
    int sync_bn;         /* batch statistics over every rank's batch (data-parallel; net/ddp.h) */
    struct input_config input; /* workers, sampling, augmentation (data/augment.h) */
};

#define NET_VALID_EPOCH (-1) /* valid_every=epoch */

struct net {
    char *cfg_path;
    struct net_config cfg;
    struct layer *layers;
    int n;
    struct shape in;
    int batch;     /* images per forward pass (batch/subdivisions when training, unless overridden) */
    int training;  /* built with gradient and training buffers */
    int keep_outputs; /* every layer output stays valid after a pass (NET_KEEP_OUTPUTS) */
    int separate_outputs; /* NET_SEPARATE_OUTPUTS: nothing shared or in place */
    int with_input_grad;  /* NET_INPUT_GRAD: input_grad allocated and wired to layer 0 */
    int *last_use; /* per layer: the last layer that reads its output (net/memplan.h) */
    unsigned char *dead; /* per layer: 1 when skipped, dead in inference (net/memplan.h) */
    int ndead;           /* how many; 0 in training and NET_KEEP_OUTPUTS nets */
    /* per layer: 1 when a training net keeps its output through forward only, as no backward
     * reads it (layer.h: build_backward_skips_*): later layers of the pass may overwrite it */
    unsigned char *fwd_only;
    struct param *params;
    int nparams;
    size_t nparam_floats, nact_floats, ntrain_floats, nworkspace;
    size_t nout_floats, ndout_floats; /* of the act and train slabs: the layer outputs and output
                                         gradients, as placed by liveness (net/memplan.h) */
    float *param_slab, *grad_slab, *act_slab, *train_slab, *workspace;
    float *input;  /* batch x in: the caller fills it before net_forward */
    float *truth;  /* batch x outputs: one-hot (or soft) targets for the loss */
    float *input_grad; /* batch x in: dL/dinput, only in nets built with NET_INPUT_GRAD (gradient
                          checks, parity tests), wired to layers[0].dinput; NULL otherwise */
    uint64_t seen; /* images trained on, as stored in .weights */
    cn_rng rng;    /* dropout stream of this net */
    size_t max_bytes; /* cap on all its buffers together, checked before allocating them */
    int lowest_trainable; /* first layer with parameters that are not frozen (n when none):
                             net_backward skips the layers below it, and its dinput is NULL */
    int plan_cut; /* the lowest_trainable the memory plan was made for (NET_FREEZE, the cfg's
                     freeze=1 keys; 0 when none): the layers below it keep no output for
                     backward, and have no doutput (NULL) unless a layer above reads them */
};

#define NET_MAX_BYTES ((size_t)16 << 30) /* every buffer of one net: 16 GiB */

/* Flags of net_create's `training` argument. NET_TRAIN allocates gradient and training buffers;
 * a training net keeps every layer output that a backward reads (fwd_only, layer.h). Without it
 * (0, inference) layer outputs share memory by liveness: after a pass only the last layer's
 * output is sure to hold its values (and, after net_forward_upto(last), layer last's), unless
 * NET_KEEP_OUTPUTS keeps every one of them valid, for callers that read inner layers (features,
 * class activation maps, the C API). Either way a [route] may take its inputs' outputs in place
 * (layer.h). NET_SEPARATE_OUTPUTS gives every output and output gradient its own memory, nothing
 * shared or in place (for tests comparing the plans, and for debugging). Inference nets without
 * NET_KEEP_OUTPUTS skip the layers whose output cannot reach the last layer's (dead: an
 * auxiliary head; net/memplan.h): they are not run and their output is NULL. */
#define NET_TRAIN 1
#define NET_KEEP_OUTPUTS 2
#define NET_SEPARATE_OUTPUTS 4
/* With NET_TRAIN: also allocate input_grad and wire it to layers[0].dinput, so that backward
 * computes dL/dinput (unless a frozen prefix cuts backward off above layer 0). Without it layer 0
 * has no dinput and skips that work. */
#define NET_INPUT_GRAD 8
/* With NET_TRAIN: NET_FREEZE(k) freezes layers 0..k-1 at build time (0 <= k <= NET_FREEZE_MAX;
 * past the last layer: all), as net_freeze(n, k) does after it, so that the memory plan knows the
 * backward cut (plan_cut). Call net_freeze(n, k) still: it checks that something trains. Without
 * it net_freeze moves the cut, and the plan made at build time stays as it was. */
#define NET_FREEZE_SHIFT 8
#define NET_FREEZE_MAX 65535
#define NET_FREEZE(k) ((int)(k) << NET_FREEZE_SHIFT)

/* Builds a net from a cfg file. batch > 0 overrides the images per forward pass (1 for predict);
 * batch == 0 takes batch/subdivisions from [net]. training: 0 or NET_TRAIN, or'ed with
 * NET_KEEP_OUTPUTS. Parameters are initialised from [net] seed= (or seed_override when
 * nonzero). */
int net_create(struct net **out, const char *cfg_path, int batch, int training, cn_error *e);
int net_create_from_string(struct net **out, const char *text, const char *name, int batch,
                           int training, cn_error *e);
/* net_create_from_string with a cap of max_bytes on all buffers together (parameters,
 * gradients, activations, workspace) instead of NET_MAX_BYTES: for untrusted cfgs (fuzzing). */
int net_create_from_string_capped(struct net **out, const char *text, const char *name,
                                  int batch, int training, size_t max_bytes, cn_error *e);
void net_destroy(struct net *n);

/* Re-draws all parameters from seed (He/Xavier per layer; BN scales 1, rolling variance 1). */
void net_init_params(struct net *n, uint64_t seed);
/* Says that parameters were written (n->params[k].data, the slab): every writer outside the
 * layers' own passes calls it after writing (weights loading, transfer, the optimiser, the C
 * API's copies, tests writing parameters), before the next pass, or layers that keep something
 * made from their parameters (layer.h: params_version) would go on with the old one. Cheap: one
 * increment per layer. */
void net_params_changed(struct net *n);

/* Prepares a pass over this net's buffers; truth is net->truth when with_loss. */
void net_pass_init(struct net *n, struct pass *p, int train, int with_loss);
void net_forward(struct net *n, struct pass *p);
/* Runs backward from the last layer. A loss layer starts the chain itself; otherwise the caller
 * has filled the last layer's doutput. Adds into parameter gradients. */
void net_backward(struct net *n, struct pass *p);
void net_zero_grads(struct net *n);
/* net_forward of layers 0..last only (feature extraction); 0 <= last < n->n, layer last not dead
 * (n->dead[last] == 0: callers check it: net_check_live). Dead layers are skipped. */
void net_forward_upto(struct net *n, struct pass *p, int last);
/* 0 when layer i runs; -1 with a message when it is dead (skipped in inference). i < n->n. */
int net_check_live(const struct net *n, int i, cn_error *e);

/* Freezes the parameters of layers 0..prefix-1 (those with any; -freeze N) on top of the cfg's
 * freeze=1 keys, and moves the backward cut to the new lowest trainable layer. Fails when no
 * trainable parameter is left ("freezing every layer"). 0 <= prefix <= n->n. */
int net_freeze(struct net *n, int prefix, cn_error *e);

const float *net_output(const struct net *n);
struct layer *net_last(const struct net *n);
size_t net_outputs(const struct net *n); /* per image */
size_t net_inputs(const struct net *n);  /* per image */
size_t net_param_count(const struct net *n); /* trainable and stored floats, as in the .weights */
/* What net_param_count would return for net_create(cfg_path, 1, 0, e), from shape inference
 * alone: nothing is allocated or initialised (drawing VGG-16's 138M weights takes seconds). */
int net_count_params(const char *cfg_path, size_t *count, cn_error *e);

#endif
