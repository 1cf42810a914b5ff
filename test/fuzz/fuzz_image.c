/* fuzz_image.c - libFuzzer target: any bytes as an image file through the path the loader
 * takes (image_info, then image_load_u8 decoding, channel conversion and resizing to the net's
 * input). The first byte picks the output shape. Must end in an image or an error.
 * Build and run: make fuzz-image. */
#include <stdint.h>
#include <stdlib.h>

#include "data/image.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[256];
    static uint8_t out[32 * 32 * 4];
    if (!path[0])
        fuzz_path(path, sizeof path, "img");
    if (size < 1 || size > 1 << 18)
        return 0;
    int w = 1 + data[0] % 32, h = 1 + (data[0] / 32) % 8 * 4, c = 1 + (data[0] >> 6);
    fuzz_write(path, data + 1, size - 1);
    cn_error e;
    int iw, ih;
    /* Decoding a header-valid 8192x8192 image (a few hundred compressed bytes) takes seconds;
     * within IMAGE_MAX_PIXELS it is legitimate, so the harness decodes up to 2^20 pixels only. */
    if (image_info(path, &iw, &ih, &e) == 0 && (size_t)iw * (size_t)ih <= (size_t)1 << 20)
        image_load_u8(out, path, w, h, c, &e);
    return 0;
}
