/* stb_impl.c - the stb libraries cfgnet uses, compiled from Debian's headers (libstb-dev,
 * /usr/include/stb) with our flags, instead of linking Debian's libstb.
 *
 * Why: decoding is most of a loader worker's time, and Debian builds libstb with its packaging
 * flags (the library calls __stack_chk_fail and __memcpy_chk: stack protector, _FORTIFY_SOURCE);
 * at our -O3 a 28x28 Fashion-MNIST PNG takes 8 % fewer instructions to decode (valgrind) and
 * about 0.9 us less (of ~9 us in memory, ~17 us with the file read).
 *
 * The code is the headers' own, unchanged: stb_image 2.27 with the formats image.h promises
 * (PNG, JPEG, BMP, GIF, TGA, PSD, PNM; the zlib decoder idx.c uses comes with PNG), no HDR or PIC,
 * and its assertions off: Debian's build keeps them, so a corrupt file that trips one (a JPEG
 * scan on undefined Huffman tables did, before stbcheck.c rejected it) aborted the whole training
 * run; without them stb returns an error or a wrong image, and the fuzz targets, built from this
 * same file under ASan and UBSan (Makefile), check that nothing then reads or writes out of
 * bounds. stb_image_write (picture.c, fashion.c, the CLI) and
 * stb_image_resize (views.c) too, so nothing links libstb and the program holds one copy of each.
 * libcfgnet.a therefore defines the stbi_, stbi_write_ and stbir_ functions: a program linking
 * it statically must not link other copies of them (libcfgnet.so keeps them hidden).
 */

/* stb defines a few functions with external linkage and no prototype in its header. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"

#define STBI_ASSERT(x) ((void)0)
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_ONLY_TGA
#define STBI_ONLY_PSD
#define STBI_ONLY_PNM
#include <stb_image.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb_image_resize.h>
