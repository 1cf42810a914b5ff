/* stb_impl.c - stb_image, stb_image_resize and stb_image_write compiled into the fuzz targets with the fuzzer's
 * instrumentation (Debian's libstb is not instrumented, so coverage would stop at its door). */
/* As Debian builds libstb: without assertions (NDEBUG). stb 2.27 asserts on some corrupt
 * progressive JPEGs (stbi__jpeg_huff_decode) where the library the net links returns an error;
 * with the asserts gone, ASan checks what the production code then does. */
#define STBI_ASSERT(x) ((void)0)
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image.h>
#include <stb_image_resize.h>
#include <stb_image_write.h>
