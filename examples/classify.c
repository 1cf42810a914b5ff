/* classify.c - the shortest complete use of libcfgnet: classify one image with a trained network.
 *
 *   classify CFG WEIGHTS IMAGE [NAMES]
 *
 * Prints the (up to) five most probable classes, best first, as `net classifier predict` prints
 * them: "%6.2f%%: name". NAMES is a file with one class name per line (a .data file's names=);
 * without it a class prints as its index. Uses nothing but the installed <cfgnet.h>.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cfgnet.h>

#define MAX_CLASSES 1024

/* Reads up to max lines of path into names (malloc'd, newline stripped); returns the count. */
static int read_names(const char *path, char **names, int max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[512];
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        names[n] = malloc(strlen(line) + 1);
        if (!names[n])
            break;
        strcpy(names[n++], line);
    }
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: classify CFG WEIGHTS IMAGE [NAMES]\n");
        return 1;
    }
    cfgnet_net *net = cfgnet_create();
    if (!net || cfgnet_load(net, argv[1], argv[2], 1, 0)) {
        fprintf(stderr, "classify: %s\n", cfgnet_error(net));
        cfgnet_free(net);
        return 1;
    }
    const char *image = argv[3];
    int index[5];
    float prob[5];
    int k = 0;
    if (cfgnet_forward_files(net, &image, 1, NULL, 0) ||
        (k = cfgnet_top_k(net, 0, 5, index, prob)) < 0) {
        fprintf(stderr, "classify: %s\n", cfgnet_error(net));
        cfgnet_free(net);
        return 1;
    }
    char *names[MAX_CLASSES] = {0};
    int nnames = argc == 5 ? read_names(argv[4], names, MAX_CLASSES) : 0;
    if (nnames < 0)
        fprintf(stderr, "classify: cannot read %s; printing class indices\n", argv[4]);
    for (int j = 0; j < k; j++) {
        if (index[j] < nnames)
            printf("%6.2f%%: %s\n", 100. * prob[j], names[index[j]]);
        else
            printf("%6.2f%%: %d\n", 100. * prob[j], index[j]);
    }
    for (int i = 0; i < nnames; i++)
        free(names[i]);
    cfgnet_free(net);
    return 0;
}
