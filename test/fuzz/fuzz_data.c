/* fuzz_data.c - libFuzzer target: any bytes as a .data file, a label file, or an image list
 * (first byte mod 3 chooses; the rest is the file). A .data file naming
 * /tmp/cfgnet_fuzz_labels as labels= gets a valid two-label file there, so the fuzzer can reach
 * past it (the seed corpus does). Must end in a parsed result or an error.
 * Build and run: make fuzz-data. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "data/datafile.h"
#include "data/list.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[256];
    if (!path[0]) {
        fuzz_path(path, sizeof path, "input");
        fuzz_write("/tmp/cfgnet_fuzz_labels", (const uint8_t *)"cat\ndog\n", 8);
    }
    if (size < 1 || size > 1 << 16)
        return 0;
    fuzz_write(path, data + 1, size - 1);
    cn_error e;
    if (data[0] % 3 == 0) {
        struct data_cfg *d;
        if (data_cfg_load(&d, path, &e) == 0)
            data_cfg_destroy(d);
    } else if (data[0] % 3 == 1) {
        char **labels;
        int nl;
        if (data_labels_read(path, &labels, &nl, &e) == 0)
            data_strings_free(labels, nl);
    } else {
        char *labels[] = {"cat", "dog", "catfish"};
        struct image_list *l;
        if (image_list_load(&l, path, labels, 3, &e) == 0)
            image_list_destroy(l);
    }
    return 0;
}
