/* test_api_memory.c - what the public load flags build underneath (src/api/api.h, not the public
 * header): a CFGNET_SHARE_OUTPUTS handle's net is planned by liveness (net/memplan.h) and needs
 * less output memory than a default handle's, which keeps every layer's output; a training handle
 * keeps them all; the plan holds after cfgnet_set_batch. test_api.c checks the behaviour through
 * the header alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "api/api.h"

/* conv 8x8x8 -> conv 8x8x8 -> conv 8x8x8 -> connected 3 -> softmax: outputs of 512, 512, 512,
 * 3, 3 floats per image; by liveness conv 3 can reuse conv 1's memory. */
static const char cfg[] = "[net]\nbatch=2\nheight=8\nwidth=8\nchannels=1\n"
                          "[convolutional]\nfilters=8\nsize=3\npad=1\nactivation=relu\n"
                          "[convolutional]\nfilters=8\nsize=3\npad=1\nactivation=relu\n"
                          "[convolutional]\nfilters=8\nsize=3\npad=1\nactivation=relu\n"
                          "[connected]\noutput=3\nactivation=linear\n[softmax]\n";

static size_t out_floats(unsigned flags, int batch)
{
    cfgnet_net *h = cfgnet_create();
    if (cfgnet_load_string(h, cfg, NULL, NULL, 2, flags) || cfgnet_set_batch(h, batch))
        fail_msg("%s", cfgnet_error(h));
    assert_int_equal(h->n->keep_outputs, !(flags & CFGNET_SHARE_OUTPUTS));
    size_t n = h->n->nout_floats;
    cfgnet_free(h);
    return n;
}

/* Offsets in the slab are aligned (a few floats of padding per output): bounds, not equalities. */
static void test_shared_outputs_take_less(void **state)
{
    (void)state;
    for (int batch = 2; batch <= 5; batch += 3) {
        size_t conv = 512 * (size_t)batch, keep = out_floats(0, batch);
        size_t share = out_floats(CFGNET_SHARE_OUTPUTS, batch);
        assert_true(keep >= 3 * conv + 6 * (size_t)batch && keep < 3 * conv + 64);
        assert_int_equal(out_floats(CFGNET_TRAIN, batch), keep);
        assert_true(share < 2 * conv + 64); /* at least one conv output's memory reused */
        printf("batch %d: layer outputs %zu floats kept, %zu shared\n", batch, keep, share);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_outputs_take_less),
    };
    return cmocka_run_group_tests_name("api_memory", tests, NULL, NULL);
}
