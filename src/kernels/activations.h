/* activations.h - element-wise activation functions and their derivatives.
 *
 * Darknet's set with Darknet's formulas (activations.h of pjreddie/darknet), plus relu6, swish and
 * mish. Gradients are taken with respect to the pre-activation z. For most functions the output y
 * determines the slope (as Darknet computes it); swish, mish and stair need z itself, and
 * act_needs_input() says so, so layers keep z only when it is needed.
 */
#ifndef CN_ACTIVATIONS_H
#define CN_ACTIVATIONS_H

#include <stddef.h>

enum activation {
    ACT_LINEAR,
    ACT_RELU,
    ACT_LEAKY,
    ACT_LOGISTIC,
    ACT_TANH,
    ACT_ELU,
    ACT_SELU,
    ACT_RELIE,
    ACT_RAMP,
    ACT_PLSE,
    ACT_STAIR,
    ACT_HARDTAN,
    ACT_LHTAN,
    ACT_LOGGY,
    ACT_RELU6,
    ACT_SWISH,
    ACT_MISH,
    ACT_COUNT
};

extern const char *const act_names[ACT_COUNT];

int act_needs_input(enum activation a);

float act_apply(enum activation a, float z);
/* dy/dz at a point, given z and y = act_apply(a, z). */
float act_slope(enum activation a, float z, float y);

/* y[i] = f(z[i]); y may equal z (in place) unless act_needs_input(a) and z must be kept. */
void act_forward(float *y, const float *z, size_t n, enum activation a);
/* dz[i] = dy[i] * f'(z[i]), computed from y alone when z is NULL (then !act_needs_input(a)).
 * y may be NULL when act_needs_input(a) (the slope is z's alone) or a is ACT_LINEAR: a layer
 * then need not keep its output for backward. dz may alias dy. */
void act_backward(float *dz, const float *dy, const float *z, const float *y, size_t n,
                  enum activation a);

/* The fused epilogue of a convolution (or any per-channel affine map then an activation): for
 * rows r in [0, rows), y[r*n + i] = f(scale[r] * z[r*n + i] + shift[r]), i < n. scale NULL means
 * 1 (a bias alone). y may equal z. Single-threaded: callers split the rows. */
void act_forward_affine(float *y, const float *z, int rows, size_t n, const float *scale,
                        const float *shift, enum activation a);

#endif
