/* test_lr.c - every learning-rate policy and the burn-in ramp against literal values worked out
 * by hand (the comments show the arithmetic). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "net/lr.h"

/* Relative tolerance of float against a double literal. */
#define assert_rate(got, want) assert_float_equal((got), (want), 1e-6 * (want) + 1e-12)

static struct net_config base(enum lr_policy p)
{
    return (struct net_config){.learning_rate = 0.1f,
                               .policy = p,
                               .step = 1,
                               .scale = 1.f,
                               .gamma = 1.f,
                               .power = 4.f,
                               .max_batches = 1000};
}

static void test_constant(void **state)
{
    (void)state;
    struct net_config c = base(LR_CONSTANT);
    assert_rate(lr_at(&c, 0), 0.1);
    assert_rate(lr_at(&c, 123456789), 0.1);
}

static void test_step(void **state)
{
    (void)state;
    struct net_config c = base(LR_STEP);
    c.scale = 0.5f;
    c.step = 100;
    assert_rate(lr_at(&c, 0), 0.1);
    assert_rate(lr_at(&c, 99), 0.1);
    assert_rate(lr_at(&c, 100), 0.05);  /* 0.1 * 0.5^1 */
    assert_rate(lr_at(&c, 250), 0.025); /* 0.1 * 0.5^2: floor(250 / 100) = 2 */
}

static void test_steps(void **state)
{
    (void)state;
    int steps[] = {100, 200, 200};
    float scales[] = {0.1f, 0.5f, 2.f};
    struct net_config c = base(LR_STEPS);
    c.steps = steps;
    c.scales = scales;
    c.nsteps = 3;
    assert_rate(lr_at(&c, 99), 0.1);
    assert_rate(lr_at(&c, 100), 0.01); /* 0.1 * 0.1 */
    assert_rate(lr_at(&c, 199), 0.01);
    assert_rate(lr_at(&c, 200), 0.01); /* 0.1 * 0.1 * 0.5 * 2: both steps at 200 apply */
    c.scales[2] = 0.2f;
    assert_rate(lr_at(&c, 5000), 0.001); /* 0.1 * 0.1 * 0.5 * 0.2 */
}

static void test_exp(void **state)
{
    (void)state;
    struct net_config c = base(LR_EXP);
    c.gamma = 0.99f;
    assert_rate(lr_at(&c, 0), 0.1);
    assert_rate(lr_at(&c, 10), 0.0904382075008804); /* 0.1 * 0.99^10 */
}

static void test_poly(void **state)
{
    (void)state;
    struct net_config c = base(LR_POLY);
    c.power = 2.f;
    assert_rate(lr_at(&c, 0), 0.1);
    assert_rate(lr_at(&c, 250), 0.05625); /* 0.1 * (1 - 250/1000)^2 */
    assert_float_equal(lr_at(&c, 1000), 0.f, 0.f);
    assert_float_equal(lr_at(&c, 2000), 0.f, 0.f); /* clamped past max_batches */
}

static void test_sigmoid(void **state)
{
    (void)state;
    struct net_config c = base(LR_SIGMOID);
    c.gamma = 0.01f;
    c.step = 500;
    assert_rate(lr_at(&c, 500), 0.05);               /* 0.1 / (1 + e^0) */
    assert_rate(lr_at(&c, 600), 0.0268941421369995); /* 0.1 / (1 + e^1) */
    assert_rate(lr_at(&c, 400), 0.0731058578630005); /* 0.1 / (1 + e^-1): no unsigned wrap */
}

static void test_cosine(void **state)
{
    (void)state;
    struct net_config c = base(LR_COSINE);
    c.learning_rate = 0.05f;
    c.learning_rate_min = 0.001f;
    c.max_batches = 6000;
    assert_rate(lr_at(&c, 0), 0.05);
    assert_rate(lr_at(&c, 1500), 0.0428241161390704); /* 0.001 + 0.0245 * (1 + cos(pi/4)) */
    assert_rate(lr_at(&c, 3000), 0.0255);             /* 0.001 + 0.0245 * (1 + 0) */
    assert_rate(lr_at(&c, 6000), 0.001);
    assert_rate(lr_at(&c, 9000), 0.001);
}

static void test_burn_in(void **state)
{
    (void)state;
    struct net_config c = base(LR_STEP);
    c.burn_in = 100;
    c.scale = 0.5f;
    c.step = 100;
    assert_float_equal(lr_at(&c, 0), 0.f, 0.f);
    assert_rate(lr_at(&c, 50), 0.00625);     /* 0.1 * (50/100)^4 */
    assert_rate(lr_at(&c, 75), 0.031640625); /* 0.1 * 0.75^4 */
    assert_rate(lr_at(&c, 100), 0.05);       /* the policy takes over: 0.1 * 0.5^1 */
    c.power = 1.f;
    assert_rate(lr_at(&c, 30), 0.03); /* power is the exponent of the ramp */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constant), cmocka_unit_test(test_step),
        cmocka_unit_test(test_steps),    cmocka_unit_test(test_exp),
        cmocka_unit_test(test_poly),     cmocka_unit_test(test_sigmoid),
        cmocka_unit_test(test_cosine),   cmocka_unit_test(test_burn_in),
    };
    return cmocka_run_group_tests_name("lr", tests, NULL, NULL);
}
