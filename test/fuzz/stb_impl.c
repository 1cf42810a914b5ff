/* stb_impl.c - stb_image, stb_image_resize and stb_image_write compiled into the fuzz targets with the fuzzer's
 * instrumentation (Debian's libstb is not instrumented, so coverage would stop at its door). */
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image.h>
#include <stb_image_resize.h>
#include <stb_image_write.h>
