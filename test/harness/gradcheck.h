/* gradcheck.h - finite-difference gradient checks and small helpers for layer tests.
 *
 * gradcheck_net builds nothing itself: give it a net built for training from cfg text
 * (net_create_from_string(..., training=1)). It fills the input with seeded values, takes
 * L = sum(output_last * r) for a fixed random r (so dL/doutput = r) unless the last layer is a
 * loss layer (then L is the loss against net->truth, which the caller fills), runs backward, and
 * compares every input gradient and every trainable parameter gradient with central differences
 * computed in double, skipping points where the forward pass is not smooth (a kink within eps).
 */
#ifndef CN_TEST_GRADCHECK_H
#define CN_TEST_GRADCHECK_H

#include "core/rng.h"
#include "net/net.h"

struct gradcheck_opts {
    float eps;      /* finite-difference step (default 1e-3) */
    float rel_tol;  /* relative tolerance (default 2e-2) */
    float abs_tol;  /* absolute floor below which differences pass (default 5e-4) */
    int eval;       /* run the passes in inference mode (default 0: training mode) */
    uint64_t seed;  /* input, r and dropout seed */
    int max_points; /* checked points per tensor, sampled (default 200) */
};

/* Checks dL/dinput too (by wiring n->input_grad, or a buffer of its own when the net was built
 * without NET_INPUT_GRAD, to the first layer for the duration), every trainable parameter, and
 * restores the wiring afterwards.
 * Returns the number of mismatches (0 = pass); prints each mismatch to stderr. A zeroed opts
 * struct (or NULL) takes the defaults. */
int gradcheck_net(struct net *n, const struct gradcheck_opts *o);

/* The driver of the layer tests: builds each of the count cfgs for training and checks it with
 * *train (its seed plus the cfg's index) and, when eval is not NULL, again with *eval; fails the
 * current cmocka test, naming the cfg's index, on a mismatch. */
void gradcheck_cfgs(const char *const *cfgs, size_t count, const struct gradcheck_opts *train,
                    const struct gradcheck_opts *eval);

/* Builds a net from cfg text, failing the current cmocka test with the message on error. */
struct net *test_net(const char *cfg_text, int batch, int training);

/* The forward case worked by hand: copies x (inputs x batch floats) into n->input, runs an
 * inference-mode pass without loss (net_pass_init(n, &p, 0, 0), net_forward) and fails the
 * current cmocka test, naming the first index, unless every output (outputs x batch floats) is
 * within tol of want. */
void test_forward_expect(struct net *n, const float *x, const float *want, float tol);

/* Asserts that building cfg_text fails with a message containing want. */
void test_net_fails(const char *cfg_text, const char *want);

/* p[i] = shift + scale * a standard normal draw of r, for i in [0, n). */
void test_fill_normal(float *p, size_t n, cn_rng *r, double scale, double shift);

/* max |p[i]| over [0, n); 0 for n = 0. */
double test_max_abs(const float *p, size_t n);

/* Asserts that every p[i] lies in [-bound, bound] and that both ends are reached within a
 * factor reach (the largest above reach * bound, the smallest below -reach * bound): a uniform
 * draw over that interval, as weight initialisations are. */
void test_assert_uniform(const float *p, size_t n, double bound, double reach);

/* The parameter `name` that layer declared; fails the current cmocka test when it has none. */
struct param *test_param(struct net *n, int layer, const char *name);

/* Asserts that l's describe text (layer_ops.describe) is want. */
void test_assert_describe(const struct layer *l, const char *want);

/* Builds cfg_text for inference and asserts that its last layer's output is c x h x w, that its
 * describe text is desc and, unless flops < 0, that layer_ops.flops gives flops exactly. */
void test_assert_out(const char *cfg_text, int c, int h, int w, const char *desc, double flops);

#endif
