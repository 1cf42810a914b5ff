/* ensemble.h - class probabilities of images under one or more trained nets and several views of
 * each image: what `classifier valid` and `classifier predict` compute.
 *
 * Each member net sees every view of the image (views.h, cut for its own input size) and the
 * member's probability vector is the mean of its outputs over the views; the ensemble's is the
 * weighted mean over members, weights normalised to sum to 1:
 *     p(image) = sum_m (w_m / sum w) * (1/V) sum_v net_m(view_v(image))
 * The outputs are probabilities when the cfg ends in [softmax] (averaging softmax outputs, not
 * logits, as the ten-crop protocol does); other nets' outputs are averaged as they are.
 * Views are normalised with each member's own [net] mean=/std= (data/augment.h), like
 * validation in training. Every member must have the same number of outputs. Views go through each
 * net n->batch at a time; a call handles up to ensemble_group images.
 *
 * Left out: per-class weights, geometric means, views cached across members (each member decodes
 * the images again: cheap next to its forward pass).
 */
#ifndef CN_ENSEMBLE_H
#define CN_ENSEMBLE_H

#include "core/common.h"
#include "data/views.h"
#include "net/net.h"

struct ensemble_member {
    struct net *n;  /* built for inference with batch = views per pass */
    double weight;  /* as given, > 0 */
    float *views;   /* group * nviews * inputs */
    float *out;     /* group * nviews * classes */
    cn_error *errs; /* group: one per image loaded in parallel */
};

struct ensemble {
    struct ensemble_member *m;
    int n;
    int classes;           /* outputs every member must have (0 until known) */
    char classes_src[600]; /* where that number comes from, for messages */
    struct view_spec views;
    int nviews; /* views per image */
    int batch;  /* views per forward pass */
    int group;  /* images per ensemble_predict call, max(1, batch / nviews) */
};

/* An ensemble without members, for the given views (checked later, per net) and views per
 * forward pass (batch >= 1). */
void ensemble_init(struct ensemble *en, const struct view_spec *views, int batch);

/* Requires every member to have `classes` outputs; `what` says where the number comes from
 * ("data/x.data has classes=10"). Without it the first member sets the number. */
void ensemble_require_classes(struct ensemble *en, int classes, const char *what);

/* Builds cfg with weights as a member of weight w (finite, > 0). Fails, naming the files, when
 * the cfg, the weights or the views do not suit it, or when its outputs differ from the required
 * classes (checked before the weights are read). */
int ensemble_add(struct ensemble *en, const char *cfg, const char *weights, double w, cn_error *e);

/* Frees the members; the ensemble is empty again. */
void ensemble_free(struct ensemble *en);

/* The images of one call: count files, or (gray non-NULL) count gray images of gw x gh bytes in
 * memory, one after another (an IDX set). paths name the images in messages either way. */
struct ensemble_images {
    char *const *paths;
    const uint8_t *gray;
    int gw, gh;
};

/* probs (count * classes floats) = the ensemble's probabilities for the images, count <=
 * en->group. Each member's views get its [net] mean=/std= normalisation, as in training. On a
 * file that fails to decode returns -1 with "path: problem" (the first failing image in order). */
int ensemble_predict_images(struct ensemble *en, float *probs, const struct ensemble_images *im,
                            int count, cn_error *e);

/* ensemble_predict_images on the files paths[0..count). */
int ensemble_predict(struct ensemble *en, float *probs, char *const *paths, int count, cn_error *e);

#endif
