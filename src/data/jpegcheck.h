/* jpegcheck.h - a scan of a JPEG file's marker segments for what stb_image 2.27 (Debian's
 * libstb-dev) mishandles: a DHT segment declaring more than 256 Huffman codes makes its
 * stbi__build_huffman write past a 257-byte array (found by test/fuzz/fuzz_image.c; stb 2.28
 * rejects it as "bad DHT header"). Run before stb decodes a file. */
#ifndef CN_DATA_JPEGCHECK_H
#define CN_DATA_JPEGCHECK_H

#include <stdio.h>

#include "core/common.h"

/* Reads f from its current position (which it restores). A file not starting with a JPEG SOI
 * marker passes untouched. Returns 0, or -1 with "path: corrupt JPEG: ..." */
int jpeg_check(FILE *f, const char *path, cn_error *e);

#endif
