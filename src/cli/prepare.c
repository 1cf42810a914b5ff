/* prepare.c - `net prepare fashion-mnist [SRC] [DST]`: turns the IDX files of Debian's
 * dataset-fashion-mnist into PNG images, list files and labels that a .data file can name. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "data/fashion.h"

int cli_prepare(int argc, char **argv)
{
    if (argc < 2 || argc > 4 || strcmp(argv[1], "fashion-mnist")) {
        fputs("usage: net prepare fashion-mnist [SRC (default /usr/share/datasets/fashion-mnist)]"
              " [DST (default data/fashion)]\n",
              stderr);
        return 1;
    }
    const char *src = argc > 2 ? argv[2] : "/usr/share/datasets/fashion-mnist";
    const char *dst = argc > 3 ? argv[3] : "data/fashion";
    cn_error e;
    printf("preparing Fashion-MNIST from %s into %s\n", src, dst);
    fflush(stdout);
    if (fashion_prepare(src, dst, &e))
        return cli_error(e.msg);
    printf("wrote %s/train.list (60000 images) and %s/test.list (10000 images)\n", dst, dst);
    return 0;
}
