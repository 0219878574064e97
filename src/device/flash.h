/* flash.h - firmware images and the bootload operation (docs/cli.md,
 * `firmware load`).
 *
 * An image is checked completely (exact size, checksum byte) before a
 * single byte is sent: a bad file never leaves a unit without firmware.
 * Each byte is written and read back; progress is reported as it goes.
 */
#ifndef BL_FLASH_H
#define BL_FLASH_H

#include <stddef.h>
#include <stdint.h>

#include "device/device.h"

/* BL_OK if `image` is a valid application image: exactly 15360 bytes whose
 * last byte is the 8-bit sum of the others. Otherwise BL_ERR_ARG and the
 * reason in err. */
int bl_firmware_check(const uint8_t *image, size_t len, char *err, size_t errlen);
/* Read and check an image file. *image is malloc'd on success. */
int bl_firmware_read_file(const char *path, uint8_t **image, size_t *len, char *err, size_t errlen);
/* The checksum byte an image of `len - 1` bytes needs. */
uint8_t bl_firmware_checksum(const uint8_t *image, size_t len);

typedef void (*bl_flash_progress_fn)(struct bl_device *d, size_t done, size_t total, void *ud);

/* Flash `image` (already checked; copied) into the device: into its
 * bootloader (unless it is there already), every byte written and
 * verified, then the bootloader's checksum check and a restart into the
 * new application. Ends with BL_OK once the application answers again;
 * BL_ERR_VERIFY if the bootloader refused the checksum (the unit stays in
 * its bootloader: flash again). The device must be connected again
 * afterwards (bl_op_connect). */
struct bl_op *bl_op_firmware_load(struct bl_device *d, const uint8_t *image, size_t len,
                                  bl_flash_progress_fn progress, void *pud,
                                  bl_op_fn fn, void *ud);

#endif
