/* Reading a guest image (kernel, initrd, module) from the host, whole. */
#ifndef BT86_IMAGE_FILE_H
#define BT86_IMAGE_FILE_H

#include <stddef.h>
#include <stdint.h>

/* The file's bytes in a malloc'd buffer (the caller frees it), its size in
 * *len; or NULL with a line naming the file and the failure in err. */
uint8_t *image_file_read(const char *path, size_t *len, char *err, size_t errlen);

#endif
