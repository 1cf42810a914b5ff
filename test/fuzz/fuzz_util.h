/* fuzz_util.h - what the file-based fuzz targets share: the input written to a private
 * temporary file, since the readers under test take paths. */
#ifndef CN_FUZZ_UTIL_H
#define CN_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "<dir>/cfgnet_fuzz_<pid>_<name>" in buf (n bytes). */
static inline void fuzz_path(char *buf, size_t n, const char *name)
{
    /* /dev/shm when there is one: a file per execution costs no disk. */
    const char *d = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(buf, n, "%s/cfgnet_fuzz_%ld_%s", d, (long)getpid(), name);
}

/* Replaces path with size bytes of data; aborts on failure (a broken harness, not a finding). */
static inline void fuzz_write(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f))
        abort();
}

#endif
