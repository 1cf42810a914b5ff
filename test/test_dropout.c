/* test_dropout.c - the [dropout] layer: mask statistics (dropped fraction near p), inverted
 * scaling of kept values, the identity at inference, gradient = mask * scale, reproducibility from
 * the pass's stream, gradient checks in both modes, and the cfg errors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "net/net.h"

/* 2 images of 4 x 50 x 50: 20,000 values. */
#define BIG "[net]\nbatch=2\nheight=50\nwidth=50\nchannels=4\n"

static struct net *big_net(const char *prob)
{
    char cfg[256];
    snprintf(cfg, sizeof cfg, BIG "[dropout]\nprobability=%s\n", prob);
    struct net *n = test_net(cfg, 0, 1);
    size_t m = net_inputs(n) * (size_t)n->batch;
    for (size_t i = 0; i < m; i++)
        n->input[i] = 0.5f + (float)(i % 7); /* nonzero: a zero output means dropped */
    return n;
}

static void forward(struct net *n, int train)
{
    struct pass p;
    net_pass_init(n, &p, train, 0);
    net_forward(n, &p);
}

static void test_mask_statistics_and_scaling(void **state)
{
    (void)state;
    static const char *const probs[] = {"0.3", "0.5", "0.9", "0"};
    static const double p[] = {0.3, 0.5, 0.9, 0};
    for (int k = 0; k < 4; k++) {
        struct net *n = big_net(probs[k]);
        size_t m = net_inputs(n) * (size_t)n->batch, dropped = 0;
        float scale = 1.f / (1.f - (float)p[k]);
        forward(n, 1);
        const float *y = net_output(n);
        double sum_in = 0, sum_out = 0;
        for (size_t i = 0; i < m; i++) {
            if (y[i] == 0)
                dropped++;
            else
                assert_float_equal(y[i], n->input[i] * scale, 0); /* kept: exactly x / (1-p) */
            sum_in += n->input[i];
            sum_out += y[i];
        }
        /* Binomial(20000, p): 5 standard deviations are at most 0.018. */
        assert_float_equal((double)dropped / (double)m, p[k], 0.018);
        /* The expectation is preserved (inverted dropout). */
        assert_float_equal(sum_out / sum_in, 1.0, p[k] > 0.8 ? 0.1 : 0.03);
        net_destroy(n);
    }
}

static void test_identity_at_inference(void **state)
{
    (void)state;
    struct net *n = big_net("0.5");
    forward(n, 0);
    assert_memory_equal(net_output(n), n->input, sizeof(float) * net_inputs(n) * 2);
    net_destroy(n);
    /* An inference-only net has no mask and still passes values through. */
    n = test_net(BIG "[dropout]\n", 0, 0);
    n->input[7] = 3.25f;
    forward(n, 0);
    assert_float_equal(net_output(n)[7], 3.25f, 0);
    net_destroy(n);
}

/* p = 0.5 on all-ones input: every output is 0 or 2 exactly; the gradient is dy * mask. */
static void test_gradient_is_mask_times_scale(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=3\nheight=5\nwidth=7\nchannels=2\n[dropout]\n", 0, 1);
    size_t m = net_inputs(n) * (size_t)n->batch;
    for (size_t i = 0; i < m; i++)
        n->input[i] = 1.f;
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    struct layer *l = net_last(n);
    float *dx = xcalloc(m, sizeof(float));
    for (size_t i = 0; i < m; i++) {
        assert_true(l->output[i] == 0.f || l->output[i] == 2.f);
        l->doutput[i] = (float)i - 20.f;
        dx[i] = 1.f; /* backward adds */
    }
    l->dinput = dx;
    net_backward(n, &p);
    for (size_t i = 0; i < m; i++)
        assert_float_equal(dx[i], 1.f + l->output[i] * ((float)i - 20.f), 0);
    /* At inference backward is the identity. */
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    memset(dx, 0, sizeof(float) * m);
    net_backward(n, &p);
    for (size_t i = 0; i < m; i++)
        assert_float_equal(dx[i], (float)i - 20.f, 0);
    l->dinput = NULL;
    free(dx);
    net_destroy(n);
}

/* Same stream, same mask; the next pass draws a fresh one. */
static void test_mask_follows_the_stream(void **state)
{
    (void)state;
    struct net *a = big_net("0.5"), *b = big_net("0.5");
    size_t bytes = sizeof(float) * net_inputs(a) * 2;
    forward(a, 1);
    forward(b, 1);
    assert_memory_equal(net_output(a), net_output(b), bytes);
    float *first = xmalloc(bytes);
    memcpy(first, net_output(a), bytes);
    forward(a, 1);
    assert_memory_not_equal(net_output(a), first, bytes);
    free(first);
    net_destroy(a);
    net_destroy(b);
}

static void test_gradcheck(void **state)
{
    (void)state;
    static const char *const cfgs[] = {
        "[net]\nbatch=2\nheight=3\nwidth=5\nchannels=3\n[dropout]\nprobability=0.3\n",
        "[net]\nbatch=1\nheight=1\nwidth=1\nchannels=13\n[dropout]\n[dropout]\nprobability=0.7\n",
    };
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        struct net *n = test_net(cfgs[k], 0, 1);
        assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 41 + k}), 0);
        assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 4, .eval = 1}), 0);
        net_destroy(n);
    }
}

static void test_describe_and_errors(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=2\nheight=2\nwidth=3\nchannels=1\n[dropout]\n"
                             "probability=0.25\n",
                             0, 0);
    char buf[32];
    net_last(n)->ops->describe(net_last(n), buf, sizeof buf);
    assert_string_equal(buf, "p=0.25");
    assert_float_equal(net_last(n)->ops->flops(net_last(n)), 6, 0);
    net_destroy(n);
#define NET "[net]\nbatch=2\nheight=2\nwidth=3\nchannels=1\n"
    test_net_fails(NET "[dropout]\nprobability=1.5\n",
                   "test.cfg:7: [dropout] probability=1.5: out of range [0, 1]");
    test_net_fails(NET "[dropout]\nprobability=1\n", "[dropout] probability=1: must be < 1");
    test_net_fails(NET "[dropout]\nprobability=-0.1\n", "probability=-0.1: out of range");
    test_net_fails(NET "[dropout]\nprobability=half\n", "probability=half: not a finite number");
    test_net_fails(NET "[dropout]\nprob=0.5\n", "unknown key 'prob'");
#undef NET
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_statistics_and_scaling),
        cmocka_unit_test(test_identity_at_inference),
        cmocka_unit_test(test_gradient_is_mask_times_scale),
        cmocka_unit_test(test_mask_follows_the_stream),
        cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_describe_and_errors),
    };
    return cmocka_run_group_tests_name("dropout", tests, NULL, NULL);
}
