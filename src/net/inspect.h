/* inspect.h - what a trained network computes, for people to look at: a layer's activations as
 * features, class activation maps, and convolution filters.
 *
 * Class activation maps (Zhou et al. 2016, "Learning Deep Features for Discriminative
 * Localization"): for a net that ends in global average pooling of maps A (C x H x W) and a linear
 * classifier W (classes x C), the score of class k is sum_c W[k][c] mean(A_c) + b_k, so
 *     CAM_k(x, y) = sum_c W[k][c] A_c(x, y)
 * is where class k's evidence lies, and its mean is the score less the bias. Two endings qualify:
 *     maps -> [avgpool] (global) -> [dropout]* -> [connected] (no batch norm) -> [softmax]/[cost]
 *     maps with one channel per class (a 1x1 [convolutional] classifier, as Darknet's darknet19 or
 *     NIN) -> [avgpool] (global) -> [dropout]* -> [softmax]/[cost]: CAM_k = A_k.
 * A global [avgpool] is the one without size=/stride=, or one whose window is the whole input.
 * Left out: Grad-CAM (gradients of any layer), which needs no such ending.
 */
#ifndef CN_INSPECT_H
#define CN_INSPECT_H

#include <stddef.h>

#include "core/common.h"
#include "net/net.h"

/* Values per image inspect_features writes for layer l: its channels when it is spatial (global
 * average pooled), else its whole output. */
size_t inspect_feature_count(const struct layer *l);

/* Layer l's activations of image b of the last forward pass into out: the mean of each channel
 * over its H x W positions when H * W > 1, else the output as it is. */
void inspect_features(const struct layer *l, int b, float *out);

struct cam_head {
    int maps;             /* the layer whose output the global average pooling reads */
    int pool;             /* that [avgpool] */
    int classifier;       /* the [connected] layer, or -1 when the maps are per class */
    const float *weights; /* classes x C of that [connected], or NULL */
    int classes, channels, h, w;
};

/* Finds the ending described above. Fails with a message naming what the net ends in instead
 * ("... has no global average pooling ..."). */
int cam_find_head(const struct net *n, struct cam_head *h, cn_error *e);

/* map[h*w] = CAM of class k for image b of the last forward pass (raw, not normalised). */
void cam_compute(const struct net *n, const struct cam_head *h, int b, int k, float *map);

/* The first [convolutional] layer at index >= from, or -1. */
int inspect_first_conv(const struct net *n, int from);

/* The filters of [convolutional] layer i: F filters of cg x kh x kw values at *weights. */
struct conv_filters {
    const float *weights;
    int filters, cg, kh, kw;
};
int inspect_conv_filters(const struct net *n, int i, struct conv_filters *f, cn_error *e);

#endif
