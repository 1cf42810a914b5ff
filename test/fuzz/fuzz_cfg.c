/* fuzz_cfg.c - libFuzzer target: any bytes through the cfg reader and the net builder must end in
 * success or a returned error, never a crash, a leak or undefined behaviour.
 * Build and run: make fuzz-cfg (clang, -fsanitize=fuzzer,address,undefined). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    struct net *n = NULL;
    cn_error e;
    /* Batch 1, no training buffers and a 256 MiB cap keep absurd-but-valid cfgs within the
     * fuzzer's memory limit; the cap is the same check as NET_MAX_BYTES, only lower. */
    if (net_create_from_string_capped(&n, text, "fuzz.cfg", 1, 0, (size_t)256 << 20, &e) == 0)
        net_destroy(n);
    free(text);
    return 0;
}
