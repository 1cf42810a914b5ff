/* test_rng.c - the explicit random state (core/rng.h): one seed, one stream; streams that differ;
 * cn_rng_below's range; cn_rng_normal using both deviates of each Box-Muller pair (two uniforms
 * per two normals), worked by hand from the uniforms, with the state a plain value (a copy
 * continues the same stream); the moments of a large sample. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/rng.h"

/* splitmix64 seeding is deterministic: the same seed, the same stream; another seed differs. */
static void test_seed_and_streams(void **state)
{
    (void)state;
    cn_rng a, b, c;
    cn_rng_seed(&a, 42);
    cn_rng_seed(&b, 42);
    cn_rng_seed_stream(&c, 42, 1);
    int same_c = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = cn_rng_next(&a);
        assert_true(x == cn_rng_next(&b));
        same_c += x == cn_rng_next(&c);
    }
    assert_int_equal(same_c, 0);
    for (int i = 0; i < 1000; i++)
        assert_true(cn_rng_below(&a, 7) < 7);
}

/* The pair by hand: u1, u2 from a copy of the state; z0 = rho cos(theta), z1 = rho sin(theta). */
static void test_normal_uses_both_of_a_pair(void **state)
{
    (void)state;
    cn_rng r, u;
    cn_rng_seed(&r, 2024);
    for (int pair = 0; pair < 50; pair++) {
        u = r; /* a plain value: the copy continues the same stream */
        double u1 = 1.0 - cn_rng_uniform(&u), u2 = cn_rng_uniform(&u);
        double rho = sqrt(-2.0 * log(u1)), theta = 2.0 * M_PI * u2;
        assert_true(cn_rng_normal(&r) == rho * cos(theta));
        assert_true(cn_rng_normal(&r) == rho * sin(theta));
        /* the pair consumed exactly two 64-bit draws: r and u are at the same point again */
        assert_true(cn_rng_next(&r) == cn_rng_next(&u));
    }
    /* seeding drops a pending spare */
    cn_rng_normal(&r);
    cn_rng_seed(&r, 2024);
    cn_rng_seed(&u, 2024);
    assert_true(cn_rng_normal(&r) == cn_rng_normal(&u));
}

/* 200,000 deviates: mean 0 and variance 1 within 4 standard errors; the pairs' members are
 * uncorrelated (their product averages 0). */
static void test_normal_moments(void **state)
{
    (void)state;
    cn_rng r;
    cn_rng_seed(&r, 7);
    enum { N = 200000 };
    double sum = 0, sq = 0, cross = 0;
    for (int i = 0; i < N / 2; i++) {
        double a = cn_rng_normal(&r), b = cn_rng_normal(&r);
        sum += a + b;
        sq += a * a + b * b;
        cross += a * b;
    }
    double mean = sum / N, var = sq / N - mean * mean;
    assert_true(fabs(mean) < 4 / sqrt(N));
    assert_true(fabs(var - 1) < 4 * sqrt(2.0 / N));
    assert_true(fabs(cross / (N / 2)) < 4 / sqrt(N / 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_and_streams),
        cmocka_unit_test(test_normal_uses_both_of_a_pair),
        cmocka_unit_test(test_normal_moments),
    };
    return cmocka_run_group_tests_name("rng", tests, NULL, NULL);
}
