/* stbcheck.h - scans of image files for inputs that stb_image 2.27 (Debian's libstb-dev)
 * mishandles, found by test/fuzz/fuzz_image.c; run before stb sees a file:
 *   JPEG: a DHT segment declaring more than 256 Huffman codes makes stbi__build_huffman write
 *         past a 257-byte array (stb 2.28 rejects it as "bad DHT header");
 *   PNM:  a header number of 10 or more digits overflows a signed int in stbi__pnm_getinteger
 *         (undefined behaviour); stb may parse a PNM header found anywhere in a file;
 *   PNG:  a chunk declaring more bytes than the file holds makes stb allocate that much first.
 * Valid files pass; the cost is one read of the file. */
#ifndef CN_DATA_STBCHECK_H
#define CN_DATA_STBCHECK_H

#include <stdio.h>

#include "core/common.h"

/* Reads f from its current position (which it restores). Returns 0, or -1 with
 * "path: corrupt JPEG: ..." or "path: corrupt PNM header: ...". */
int stb_check(FILE *f, const char *path, cn_error *e);

#endif
