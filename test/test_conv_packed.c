/* test_conv_packed.c - [convolutional]'s GEMM path in nets built for inference, which pack the
 * weights once (gemm_pack_a_all) and run the folded batch norm's scale and shift in the GEMM's
 * epilogue: against the same layer in a net built for training, run in inference mode (weights
 * packed by every GEMM, batch norm applied unfolded afterwards), over 1x1, strided 1x1, 3x3/2,
 * grouped and 7x7/2 kernels, with and without batch norm, over three rounds of new weights (the
 * last changing one weight only: the packed copy must notice and be remade).
 * Tolerance: 1e-5 * (taps + 1) * max|x| * max|w| * the largest batch-norm gain. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/rng.h"
#include "gradcheck.h"
#include "kernels/gemm.h"
#include "kernels/im2col.h"
#include "net/net.h"

struct pcase {
    int c, hw, f, size, stride, pad, groups, bn;
    const char *act;
};

/* The same random parameters in a and b (variances positive); returns the largest gain
 * |scale| / sqrt(var) with batch norm, else 1. */
static double fill_params(struct net *a, struct net *b, cn_rng *r, int round)
{
    double gain = 1;
    for (int i = 0; i < a->nparams; i++) {
        struct param *p = &a->params[i];
        int var = !strcmp(p->name, "rolling_variance");
        test_fill_normal(p->data, p->n, r, var ? 0.2 : 0.5, var ? 1.0 : 0.0);
        for (size_t j = 0; var && j < p->n; j++)
            p->data[j] = fabsf(p->data[j]) + 0.05f;
        if (round == 2 && !strcmp(p->name, "weights")) /* round 2: one weight changes */
            p->data[p->n / 2] += 2.f;
        memcpy(b->params[i].data, p->data, sizeof(float) * p->n);
    }
    net_params_changed(a);
    net_params_changed(b);
    for (int i = 0; i < a->nparams; i++)
        if (!strcmp(a->params[i].name, "scales"))
            for (size_t j = 0; j < a->params[i].n; j++)
                gain = fmax(gain, fabs(a->params[i].data[j]) / sqrt(a->params[i + 2].data[j]));
    return gain;
}

static void run_case(const struct pcase *k, uint64_t seed)
{
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "[net]\nbatch=2\nheight=%d\nwidth=%d\nchannels=%d\n[convolutional]\nfilters=%d\n"
             "size=%d\nstride=%d\npadding=%d\ngroups=%d\nbatch_normalize=%d\nactivation=%s\n"
             "algorithm=gemm\n",
             k->hw, k->hw, k->c, k->f, k->size, k->stride, k->pad, k->groups, k->bn, k->act);
    struct net *inf = test_net(cfg, 0, 0), *trn = test_net(cfg, 0, NET_TRAIN);
    struct layer *l = net_last(inf);
    size_t nin = shape_size(l->in) * 2, nout = shape_size(l->out) * 2;
    size_t taps = (size_t)k->c / (size_t)k->groups * (size_t)(k->size * k->size);
    cn_rng r;
    cn_rng_seed(&r, seed);
    for (int round = 0; round < 3; round++) {
        test_fill_normal(inf->input, nin, &r, 1, 0);
        memcpy(trn->input, inf->input, sizeof(float) * nin);
        double gain = fill_params(inf, trn, &r, round);
        struct pass p;
        net_pass_init(inf, &p, 0, 0);
        net_forward(inf, &p);
        net_pass_init(trn, &p, 0, 0);
        net_forward(trn, &p);
        const struct param *w = &inf->params[inf->nparams - 1];
        double tol = 1e-5 * (double)(taps + 1) * test_max_abs(inf->input, nin) *
                         test_max_abs(w->data, w->n) * gain +
                     1e-5;
        const float *y = net_output(inf), *want = net_output(trn);
        for (size_t i = 0; i < nout; i++)
            if (!(fabs((double)y[i] - want[i]) <= tol))
                fail_msg("c=%d %dx%d f=%d size=%d/%d groups=%d bn=%d round %d: output[%zu] = "
                         "%.7g, training net %.7g (tol %.3g)",
                         k->c, k->hw, k->hw, k->f, k->size, k->stride, k->groups, k->bn, round, i,
                         (double)y[i], (double)want[i], tol);
    }
    net_destroy(inf);
    net_destroy(trn);
}

static void test_packed_matches_training_net(void **state)
{
    (void)state;
    static const struct pcase cases[] = {
        {16, 7, 37, 1, 1, 0, 1, 1, "relu"},   {13, 9, 20, 1, 2, 0, 1, 1, "linear"},
        {8, 11, 19, 3, 2, 1, 1, 1, "leaky"},  {12, 6, 8, 3, 1, 1, 4, 1, "relu"},
        {3, 15, 10, 7, 2, 3, 1, 1, "relu"},   {20, 5, 33, 3, 1, 1, 1, 0, "logistic"},
        {7, 8, 300, 1, 1, 0, 1, 1, "linear"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i], 100 + i);
}

/* By hand: one 1x1 filter of weight 2 over a 1-channel 2x2 image {1, -2, 3, 0.5}, batch norm
 * with scale 3, mean 1, a variance whose divisor is 2, bias 0.5: y = relu(3 * (2x - 1) / 2 + 0.5) =
 * relu(3x - 1) = {2, 0, 8, 0.5}. */
static void test_by_hand(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=1\nheight=2\nwidth=2\nchannels=1\n[convolutional]\n"
                             "filters=1\nsize=1\nbatch_normalize=1\nactivation=relu\n",
                             0, 0);
    const struct bn_conf *bc = &n->cfg.bn; /* a variance whose divisor is 2 in either style */
    float var = bc->style == BN_STYLE_TORCH ? 4.f - bc->eps : (2.f - bc->eps) * (2.f - bc->eps);
    for (int i = 0; i < n->nparams; i++) {
        struct param *p = &n->params[i];
        p->data[0] = !strcmp(p->name, "biases")             ? 0.5f
                     : !strcmp(p->name, "scales")           ? 3.f
                     : !strcmp(p->name, "rolling_mean")     ? 1.f
                     : !strcmp(p->name, "rolling_variance") ? var
                                                            : 2.f;
    }
    const float x[4] = {1, -2, 3, 0.5f}, want[4] = {2, 0, 8, 0.5f};
    net_params_changed(n);
    test_forward_expect(n, x, want, 1e-5f);
    net_destroy(n);
}

/* The implicit GEMM's packing of B from the image (gemm_pack_conv: whole-panel runs, stride-2
 * shuffles, runs cut at the padding, prefetching the next channel): gemm_conv_packed bit for
 * bit against im2col + gemm_packed, for every variant, on maps wide enough for whole panel rows
 * of 16 and 32 at strides 2 and 3, with padding on both sides, a dilation, and a 7x7/2. */
static void test_packing_wide_strided(void **state)
{
    (void)state;
    /* M, c, h, w, kernel, stride, pad, dilation */
    static const int geo[][8] = {{9, 3, 21, 134, 7, 2, 3, 1}, {5, 4, 9, 67, 3, 2, 1, 1},
                                 {6, 2, 11, 101, 3, 3, 2, 1}, {4, 3, 12, 70, 3, 2, 2, 2},
                                 {8, 5, 8, 66, 1, 2, 0, 1},   {7, 2, 6, 64, 3, 2, 0, 1}};
    for (int isa = GEMM_ISA_PORTABLE; isa <= GEMM_ISA_AVX512; isa++)
        for (size_t g = 0; g < sizeof geo / sizeof geo[0]; g++) {
            const int *x = geo[g];
            struct im2col_geom q;
            assert_int_equal(im2col_geom_init(&q, x[1], x[2], x[3], x[4], x[4], x[5], x[5], x[6],
                                              x[6], x[7], x[7]),
                             0);
            int M = x[0], R = (int)im2col_rows(&q), P = (int)im2col_cols(&q);
            cn_rng r;
            cn_rng_seed(&r, 70 + g);
            float *im = xmalloc(sizeof(float) * (size_t)x[1] * x[2] * x[3]);
            float *A = xmalloc(sizeof(float) * (size_t)M * R), *bias = xmalloc(sizeof(float) * M);
            float *col = xmalloc(sizeof(float) * (size_t)R * P);
            float *Ap = xmalloc(sizeof(float) * gemm_packed_a_floats(M, R));
            float *want = xmalloc(sizeof(float) * (size_t)M * P);
            float *got = xmalloc(sizeof(float) * (size_t)M * P);
            test_fill_normal(im, (size_t)x[1] * x[2] * x[3], &r, 1, 0);
            test_fill_normal(A, (size_t)M * R, &r, 1, 0);
            test_fill_normal(bias, (size_t)M, &r, 1, 0);
            gemm_pack_a_all(Ap, A, R, 0, M, R);
            im2col(col, im, &q);
            if (gemm_packed_isa((enum gemm_isa)isa, want, P, Ap, col, P, 0, M, P, R, 1, 0, NULL,
                                bias, ACT_LEAKY) == 0) {
                assert_int_equal(gemm_conv_packed_isa((enum gemm_isa)isa, got, P, Ap, im, &q, M,
                                                      1, 0, NULL, bias, ACT_LEAKY),
                                 0);
                if (memcmp(want, got, sizeof(float) * (size_t)M * P))
                    fail_msg("isa %d geometry %zu: implicit packing differs from im2col", isa, g);
            }
            free(im), free(A), free(bias), free(col), free(Ap), free(want), free(got);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packed_matches_training_net),
        cmocka_unit_test(test_packing_wide_strided),
        cmocka_unit_test(test_by_hand),
    };
    return cmocka_run_group_tests_name("conv_packed", tests, NULL, NULL);
}
