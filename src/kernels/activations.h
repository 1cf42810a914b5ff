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
 * dz may alias dy. */
void act_backward(float *dz, const float *dy, const float *z, const float *y, size_t n,
                  enum activation a);

#endif
