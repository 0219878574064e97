/* flash.c - firmware images and the bootload operation. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "device/flash.h"
#include "device/op.h"

#define MOD "flash"
#define RESET_WAIT_US 2000000     /* the unit restarts: hosts wait 2 s */
#define ERASE_TIMEOUT_US 3000000  /* the first data write erases 240 rows */
#define PROBES 5
#define BYTE_TRIES 3

uint8_t bl_firmware_checksum(const uint8_t *image, size_t len)
{
	unsigned sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += image[i];
	return (uint8_t)sum;
}

int bl_firmware_check(const uint8_t *image, size_t len, char *err, size_t errlen)
{
	if (len != BL_FLASH_IMAGE_SIZE) {
		snprintf(err, errlen, "an image must be exactly %d bytes, this one has %zu",
		         BL_FLASH_IMAGE_SIZE, len);
		return BL_ERR_ARG;
	}
	if (bl_firmware_checksum(image, len - 1) != image[len - 1]) {
		snprintf(err, errlen, "checksum mismatch: the last byte is 0x%02X, the sum of the others 0x%02X",
		         image[len - 1], bl_firmware_checksum(image, len - 1));
		return BL_ERR_ARG;
	}
	return BL_OK;
}

int bl_firmware_read_file(const char *path, uint8_t **image, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	size_t n;
	int rc;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? BL_ERR_NOTFOUND : BL_ERR_IO;
	}
	/* One byte more than a valid image, to notice a file that is too long. */
	buf = malloc(BL_FLASH_IMAGE_SIZE + 1);
	if (!buf) {
		fclose(f);
		return BL_ERR_MEM;
	}
	n = fread(buf, 1, BL_FLASH_IMAGE_SIZE + 1, f);
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		fclose(f);
		free(buf);
		return BL_ERR_IO;
	}
	if (n > BL_FLASH_IMAGE_SIZE) {
		fseek(f, 0, SEEK_END);
		n = (size_t)ftell(f);
	}
	fclose(f);
	rc = bl_firmware_check(buf, n, err + 0, errlen);
	if (rc != BL_OK) {
		char why[200];
		snprintf(why, sizeof why, "%s", err);
		snprintf(err, errlen, "%s: %s", path, why);
		free(buf);
		return rc;
	}
	*image = buf;
	*len = n;
	return BL_OK;
}

struct flash_state {
	uint8_t image[BL_FLASH_IMAGE_SIZE];
	bl_flash_progress_fn progress;
	void *pud;
	bool erased;
};

enum {
	FL_ENTER, FL_WAIT_RESET, FL_PROBE, FL_ADDR, FL_DATA, FL_VERIFY, FL_REBOOT,
	FL_WAIT_APP, FL_PROBE_APP,
};

static void flash_byte(struct bl_op *op)
{
	op->state = FL_ADDR;
	bl_opi_write(op, BL_NS_BOOTLOADER, BL_BOOT_ADDR, (uint16_t)(BL_FLASH_BASE + op->index), 0);
}

static void step_flash_restart(struct bl_op *op, int status, uint16_t value);

/* A byte read back: again (BYTE_TRIES in all) if it differs, else the
 * next byte, or the restart after the last one. */
static void byte_read_back(struct bl_op *op, uint16_t value)
{
	struct flash_state *fs = op->ext;

	if ((value & 0xFF) != fs->image[op->index]) {
		if (++op->tries >= BYTE_TRIES) {
			BL_ERROR(MOD, "%s: byte %d reads 0x%02X, wrote 0x%02X", bl_device_port(op->d),
			         op->index, value & 0xFF, fs->image[op->index]);
			bl_opi_finish(op, BL_ERR_VERIFY);
			return;
		}
		flash_byte(op);
		return;
	}
	op->tries = 0;
	if (fs->progress)
		fs->progress(op->d, (size_t)op->index + 1, BL_FLASH_IMAGE_SIZE, fs->pud);
	if (++op->index < BL_FLASH_IMAGE_SIZE) {
		flash_byte(op);
		return;
	}
	op->step = step_flash_restart;
	op->state = FL_REBOOT;
	bl_opi_write(op, BL_NS_BOOTLOADER, BL_BOOT_BOOTLOAD, 0, BL_REQ_NO_RETRY);
}

static void step_flash(struct bl_op *op, int status, uint16_t value)
{
	struct flash_state *fs = op->ext;
	struct bl_identity *id = bl_opi_identity(op->d);

	switch (op->state) {
	case FL_ENTER:
		/* The unit resets right after this write; whether the answer
		 * gets out first is not known, so any outcome is fine. */
		op->state = FL_WAIT_RESET;
		bl_opi_sleep(op, RESET_WAIT_US);
		return;
	case FL_WAIT_RESET:
		op->state = FL_PROBE;
		bl_opi_read(op, BL_NS_BOOTLOADER, BL_BOOT_ADDR);
		return;
	case FL_PROBE:
		if (bl_opi_probe_again(op, status, PROBES))
			return;
		if (bl_opi_failed(op, status))
			return;
		if (value == BL_COMMAND_ERROR) {
			id->bootloader = false;
			BL_ERROR(MOD, "%s: the unit did not enter its bootloader", bl_device_port(op->d));
			bl_opi_finish(op, BL_ERR_STATE);
			return;
		}
		id->bootloader = true;
		op->index = 0;
		op->tries = 0;
		flash_byte(op);
		return;
	case FL_ADDR:
		if (bl_opi_failed(op, status))
			return;
		op->state = FL_DATA;
		bl_opi_req_timeout(op, bl_packet_write(BL_NS_BOOTLOADER, BL_BOOT_DATA, fs->image[op->index]),
		                   0, fs->erased ? 0 : ERASE_TIMEOUT_US);
		return;
	case FL_DATA:
		if (bl_opi_failed(op, status))
			return;
		fs->erased = true;
		op->state = FL_VERIFY;
		bl_opi_read(op, BL_NS_BOOTLOADER, BL_BOOT_DATA);
		return;
	case FL_VERIFY:
		if (!bl_opi_failed(op, status))
			byte_read_back(op, value);
		return;
	}
}

/* After the last byte: the bootloader checks the image and starts it. */
static void step_flash_restart(struct bl_op *op, int status, uint16_t value)
{
	struct bl_identity *id = bl_opi_identity(op->d);

	switch (op->state) {
	case FL_REBOOT:
		if (status == BL_ERR_DEVICE) {
			BL_ERROR(MOD, "%s: the bootloader refused the image's checksum", bl_device_port(op->d));
			bl_opi_finish(op, BL_ERR_VERIFY);
			return;
		}
		if (bl_opi_failed(op, status))
			return;
		op->state = FL_WAIT_APP;
		bl_opi_sleep(op, RESET_WAIT_US);
		return;
	case FL_WAIT_APP:
		op->state = FL_PROBE_APP;
		op->tries = 0;
		bl_opi_read(op, BL_NS_BOOTLOADER, BL_BOOT_ADDR);
		return;
	case FL_PROBE_APP:
		if (bl_opi_probe_again(op, status, PROBES))
			return;
		if (bl_opi_failed(op, status))
			return;
		if (value != BL_COMMAND_ERROR) {
			bl_opi_finish(op, BL_ERR_STATE);
			return;
		}
		id->bootloader = false;
		id->connected = false; /* identity and watchdog need a fresh connect */
		bl_opi_finish(op, BL_OK);
		return;
	}
}

struct bl_op *bl_op_firmware_load(struct bl_device *d, const uint8_t *image, size_t len,
                                  bl_flash_progress_fn progress, void *pud,
                                  bl_op_fn fn, void *ud)
{
	char err[160];
	struct flash_state *fs;
	struct bl_op *op;

	if (bl_firmware_check(image, len, err, sizeof err) != BL_OK) {
		BL_ERROR(MOD, "%s", err);
		return NULL;
	}
	fs = calloc(1, sizeof *fs);
	if (!fs)
		return NULL;
	memcpy(fs->image, image, len);
	fs->progress = progress;
	fs->pud = pud;
	op = bl_opi_new(d, step_flash, fn, ud);
	if (!op) {
		free(fs);
		return NULL;
	}
	op->ext = fs;
	if (bl_device_identity(d)->bootloader) {
		op->state = FL_WAIT_RESET;
		step_flash(op, BL_OK, 0);
	} else {
		/* From here on the unit is (about to be) in its bootloader:
		 * the watchdog and health checks must leave it alone. */
		bl_opi_identity(d)->bootloader = true;
		op->state = FL_ENTER;
		bl_opi_write(op, BL_NS_UNIT, BL_UNIT_BOOTLOAD, 0, BL_REQ_NO_RETRY);
	}
	return op;
}
