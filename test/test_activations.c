/* test_activations.c - every activation against hand-computed values (Darknet's formulas), and
 * every slope against a central difference in double away from kinks. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kernels/activations.h"

struct point {
    enum activation a;
    float z, y;
};

static void test_values_by_hand(void **state)
{
    (void)state;
    static const struct point pts[] = {
        {ACT_LINEAR, -2.5f, -2.5f},    {ACT_RELU, -1.f, 0.f},         {ACT_RELU, 2.f, 2.f},
        {ACT_LEAKY, -2.f, -.2f},       {ACT_LEAKY, 3.f, 3.f},         {ACT_LOGISTIC, 0.f, .5f},
        {ACT_LOGISTIC, 2.f, 0.880797f}, {ACT_TANH, 1.f, 0.761594f},    {ACT_ELU, -1.f, -0.632121f},
        {ACT_ELU, 2.f, 2.f},           {ACT_SELU, 1.f, 1.0507f},      {ACT_SELU, -1.f, -1.111288f},
        {ACT_RELIE, -3.f, -.03f},      {ACT_RAMP, 2.f, 2.2f},         {ACT_RAMP, -1.f, -.1f},
        {ACT_PLSE, -5.f, -.01f},       {ACT_PLSE, 5.f, 1.01f},        {ACT_PLSE, 2.f, .75f},
        {ACT_STAIR, 2.5f, 1.f},        {ACT_STAIR, 3.5f, 1.5f},        {ACT_STAIR, -0.5f, -0.5f},
        {ACT_HARDTAN, -3.f, -1.f},     {ACT_HARDTAN, .3f, .3f},       {ACT_LHTAN, -1.f, -.001f},
        {ACT_LHTAN, 3.f, 1.002f},      {ACT_LOGGY, 0.f, 0.f},         {ACT_LOGGY, 1.f, 0.462117f},
        {ACT_RELU6, 7.f, 6.f},         {ACT_RELU6, -1.f, 0.f},        {ACT_SWISH, 1.f, 0.731059f},
        {ACT_MISH, 1.f, 0.865098f},    {ACT_MISH, -30.f, -2.8e-12f},
    };
    for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++) {
        float y = act_apply(pts[i].a, pts[i].z);
        if (fabsf(y - pts[i].y) > 1e-5f)
            fail_msg("%s(%g) = %g, expected %g", act_names[pts[i].a], pts[i].z, y, pts[i].y);
    }
}

static void test_slopes_match_differences(void **state)
{
    (void)state;
    static const float zs[] = {-7.3f, -3.1f, -1.7f, -0.6f, -0.2f, 0.15f, 0.7f, 1.3f, 2.6f, 4.4f, 6.6f};
    for (int a = 0; a < ACT_COUNT; a++) {
        for (size_t i = 0; i < sizeof zs / sizeof zs[0]; i++) {
            double z = zs[i], h = 1e-3;
            double num = ((double)act_apply(a, (float)(z + h)) - act_apply(a, (float)(z - h))) / (2 * h);
            float y = act_apply(a, (float)z);
            float s = act_slope(a, (float)z, y);
            if (fabs(s - num) > 2e-3 + 1e-2 * fabs(num))
                fail_msg("%s'(%g) = %g, central difference %g", act_names[a], z, s, num);
        }
    }
}

static void test_vector_forms(void **state)
{
    (void)state;
    float z[5] = {-2.f, -0.5f, 0.f, 0.5f, 3.f}, y[5], dy[5] = {1, 2, 3, 4, 5}, dz[5];
    for (int a = 0; a < ACT_COUNT; a++) {
        act_forward(y, z, 5, a);
        act_backward(dz, dy, act_needs_input(a) ? z : NULL, y, 5, a);
        for (int i = 0; i < 5; i++) {
            assert_float_equal(y[i], act_apply(a, z[i]), 0);
            assert_float_equal(dz[i], dy[i] * act_slope(a, z[i], y[i]), 1e-6);
        }
    }
    /* In place: y may alias z. */
    float w[3] = {-1.f, 0.5f, 2.f};
    act_forward(w, w, 3, ACT_LEAKY);
    assert_float_equal(w[0], -.1f, 1e-7);
    assert_float_equal(w[2], 2.f, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_by_hand),
        cmocka_unit_test(test_slopes_match_differences),
        cmocka_unit_test(test_vector_forms),
    };
    return cmocka_run_group_tests_name("activations", tests, NULL, NULL);
}
