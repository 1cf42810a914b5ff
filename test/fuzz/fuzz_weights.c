/* fuzz_weights.c - libFuzzer target: any bytes as the .weights file of a fixed cfg (conv with
 * batch norm, standalone batch norm, connected), or as the .state file beside a valid .weights
 * (first byte even: .weights; odd: .state, the rest being the file). Loading must succeed or
 * return an error with nothing changed, never crash, leak or hit undefined behaviour.
 * Build and run: make fuzz-weights. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "net/checkpoint.h"
#include "net/net.h"
#include "net/optimizer.h"
#include "net/weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char cfg[] = "[net]\nbatch=2\nheight=5\nwidth=5\nchannels=2\n"
                          "[convolutional]\nfilters=3\nsize=3\npad=1\nbatch_normalize=1\n"
                          "[batchnorm]\n[connected]\noutput=4\nactivation=linear\n[softmax]\n";

static struct net *n;
static struct optimizer *opt;
static char wpath[256], good[256];

static void init(void)
{
    cn_error e;
    if (net_create_from_string(&n, cfg, "fuzz.cfg", 0, 1, &e) || optimizer_create(&opt, n, &e))
        abort();
    fuzz_path(wpath, sizeof wpath, "x.weights");
    fuzz_path(good, sizeof good, "good.weights");
    if (checkpoint_save(n, opt, 1, good, &e))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!n)
        init();
    if (size < 1 || size > 1 << 16)
        return 0;
    cn_error e;
    if (data[0] % 2 == 0) {
        fuzz_write(wpath, data + 1, size - 1);
        weights_load(n, wpath, &e);
        return 0;
    }
    char *sp = checkpoint_state_path(good);
    fuzz_write(sp, data + 1, size - 1);
    int restored;
    if (weights_load(n, good, &e) == 0)
        checkpoint_load_state(n, opt, 1, good, &restored, &e);
    free(sp);
    return 0;
}
