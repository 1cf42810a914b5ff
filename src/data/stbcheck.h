/* stbcheck.h - scans of image files for inputs that stb_image 2.27 (Debian's libstb-dev)
 * mishandles, found by test/fuzz/fuzz_image.c; run before stb sees a file:
 *   JPEG: a DHT segment declaring more than 256 Huffman codes makes stbi__build_huffman write
 *         past a 257-byte array (stb 2.28 rejects it as "bad DHT header"); a scan using a
 *         Huffman table that no earlier DHT defined decodes with uninitialised tables and
 *         reads out of bounds (stb 2.28 bounds the index);
 *   PNM:  a header number of 10 or more digits overflows a signed int in stbi__pnm_getinteger
 *         (undefined behaviour); stb may parse a PNM header found anywhere in a file;
 *   PNG:  a chunk declaring more bytes than the file holds makes stb allocate that much first.
 * Valid files pass; the cost is one pass over the file's bytes, already in memory (image.c
 * reads each file with one read() and hands stb the same bytes). */
#ifndef CN_DATA_STBCHECK_H
#define CN_DATA_STBCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

/* Scans the n bytes of a file at p. Returns 0, or -1 with "path: corrupt JPEG: ...",
 * "path: corrupt PNM header: ..." or "path: corrupt PNG: ...". */
int stb_check(const uint8_t *p, size_t n, const char *path, cn_error *e);

#endif
