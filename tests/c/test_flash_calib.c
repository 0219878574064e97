/* test_flash_calib.c - firmware bootload and calibration backup/restore
 * against the virtual Batlab, in virtual time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bl.h"
#include "core/loop.h"
#include "core/regs.h"
#include "device/calib.h"
#include "device/device.h"
#include "device/flash.h"
#include "sim/simdev.h"
#include "tap.h"

#define S(x) ((uint64_t)((x) * 1e6))

struct rig {
	struct bl_vclock vc;
	struct bl_loop *loop;
	struct bl_simdev *sim;
	struct bl_device *dev;
};

static void rig_open(struct rig *r)
{
	struct bl_simdev_config cfg;
	struct bl_link *link;

	bl_vclock_init(&r->vc, S(50));
	r->loop = bl_loop_new(&r->vc.clock);
	bl_simdev_config_default(&cfg, 0);
	r->sim = bl_simdev_new(&cfg, bl_loop_now(r->loop));
	bl_link_open_sim(r->sim, false, &r->vc.clock, "sim0", &link);
	r->dev = bl_device_new(r->loop, link, NULL);
}

static void rig_close(struct rig *r)
{
	bl_device_free(r->dev);
	bl_simdev_free(r->sim);
	bl_loop_free(r->loop);
}

static int rd(struct rig *r, uint8_t ns, uint8_t addr, uint16_t *v)
{
	return bl_device_wait(r->dev, bl_op_read(r->dev, ns, addr, NULL, NULL), v, NULL);
}

static void make_image(uint8_t *img, unsigned seed)
{
	for (int i = 0; i < BL_FLASH_IMAGE_SIZE - 1; i++)
		img[i] = (uint8_t)((i * 31 + seed * 7 + (i >> 8)) & 0xFF);
	img[BL_FLASH_IMAGE_SIZE - 1] = bl_firmware_checksum(img, BL_FLASH_IMAGE_SIZE - 1);
}

static size_t progress_calls, progress_last;

static void on_progress(struct bl_device *d, size_t done, size_t total, void *ud)
{
	(void)d;
	(void)ud;
	(void)total;
	progress_calls++;
	progress_last = done;
}

static void test_images(void)
{
	static uint8_t img[BL_FLASH_IMAGE_SIZE + 10];
	char err[256];
	uint8_t *loaded = NULL;
	size_t len = 0;
	char path[] = "/tmp/batlab-test-fwXXXXXX";
	int fd;
	FILE *f;

	make_image(img, 1);
	is_int(bl_firmware_check(img, BL_FLASH_IMAGE_SIZE, err, sizeof err), BL_OK, "a good image passes");
	is_int(bl_firmware_check(img, BL_FLASH_IMAGE_SIZE - 1, err, sizeof err), BL_ERR_ARG, "a short image is refused");
	ok(strstr(err, "15360") != NULL, "the message gives the size (%s)", err);
	img[100] ^= 0x55;
	is_int(bl_firmware_check(img, BL_FLASH_IMAGE_SIZE, err, sizeof err), BL_ERR_ARG, "a corrupted image is refused");
	ok(strstr(err, "checksum") != NULL, "the message says checksum (%s)", err);
	img[100] ^= 0x55;

	is_int(bl_firmware_read_file("/nonexistent/fw.bin", &loaded, &len, err, sizeof err), BL_ERR_NOTFOUND,
	       "a missing file");
	fd = mkstemp(path);
	f = fdopen(fd, "wb");
	fwrite(img, 1, BL_FLASH_IMAGE_SIZE + 10, f);
	fclose(f);
	is_int(bl_firmware_read_file(path, &loaded, &len, err, sizeof err), BL_ERR_ARG, "a file that is too long");
	ok(strstr(err, path) && strstr(err, "15370"), "names the file and its size (%s)", err);
	f = fopen(path, "wb");
	fwrite(img, 1, BL_FLASH_IMAGE_SIZE, f);
	fclose(f);
	ok(bl_firmware_read_file(path, &loaded, &len, err, sizeof err) == BL_OK && len == BL_FLASH_IMAGE_SIZE &&
	   memcmp(loaded, img, len) == 0, "a good file loads");
	free(loaded);
	unlink(path);
}

static void test_flash(void)
{
	struct rig r;
	static uint8_t img[BL_FLASH_IMAGE_SIZE];
	uint16_t v = 0;
	int rc;

	rig_open(&r);
	bl_device_wait(r.dev, bl_op_connect(r.dev, NULL, NULL), NULL, NULL);

	/* a bad image is refused before anything is sent */
	make_image(img, 2);
	img[5] ^= 1;
	struct bl_device_stats before, after;
	bl_device_stats(r.dev, &before);
	ok(bl_op_firmware_load(r.dev, img, sizeof img, NULL, NULL, NULL, NULL) == NULL, "a bad image never starts");
	bl_device_stats(r.dev, &after);
	is_int((long long)(after.sent - before.sent), 0, "and nothing was sent");
	ok(rd(&r, BL_NS_BOOTLOADER, BL_BOOT_ADDR, &v) == BL_OK && v == BL_COMMAND_ERROR, "the application still runs");

	/* a good image, from the application */
	img[5] ^= 1;
	progress_calls = 0;
	rc = bl_device_wait(r.dev, bl_op_firmware_load(r.dev, img, sizeof img, on_progress, NULL, NULL, NULL), NULL, NULL);
	is_int(rc, BL_OK, "flashing a good image succeeds");
	is_int((long long)progress_calls, BL_FLASH_IMAGE_SIZE, "progress for every byte");
	is_int((long long)progress_last, BL_FLASH_IMAGE_SIZE, "up to the last");
	ok(rd(&r, BL_NS_BOOTLOADER, BL_BOOT_ADDR, &v) == BL_OK && v == BL_COMMAND_ERROR, "the new application runs");
	is_int(bl_device_wait(r.dev, bl_op_connect(r.dev, NULL, NULL), NULL, NULL), BL_OK, "and connects again");
	ok(bl_device_identity(r.dev)->settings & BL_SET_WATCHDOG_TIMER, "with the watchdog back on");

	/* a unit found in its bootloader (an interrupted flash) */
	bl_device_wait(r.dev, bl_op_write(r.dev, BL_NS_UNIT, BL_UNIT_BOOTLOAD, 0, NULL, NULL), NULL, NULL);
	bl_loop_run_until(r.loop, NULL, NULL, bl_loop_now(r.loop) + S(3));
	is_int(bl_device_wait(r.dev, bl_op_connect(r.dev, NULL, NULL), NULL, NULL), BL_OK, "connect to a unit in its bootloader");
	ok(bl_device_identity(r.dev)->bootloader, "it is reported as in the bootloader");
	ok(rd(&r, BL_NS_COMMS, BL_COMMS_PSU, &v) == BL_OK, "COMMS still answers there");
	make_image(img, 3);
	rc = bl_device_wait(r.dev, bl_op_firmware_load(r.dev, img, sizeof img, NULL, NULL, NULL, NULL), NULL, NULL);
	is_int(rc, BL_OK, "flashing from the bootloader succeeds");
	ok(rd(&r, BL_NS_BOOTLOADER, BL_BOOT_ADDR, &v) == BL_OK && v == BL_COMMAND_ERROR, "the application runs again");
	rig_close(&r);
}

static void test_calibration(void)
{
	struct rig r;
	struct bl_calibration c, c2, c3;
	char err[256];
	char *text;
	uint16_t v = 0;

	rig_open(&r);
	bl_device_wait(r.dev, bl_op_connect(r.dev, NULL, NULL), NULL, NULL);
	is_int(bl_device_wait(r.dev, bl_op_calib_backup(r.dev, &c, NULL, NULL), NULL, NULL), BL_OK, "backup reads 49 values");
	is_int(c.serial, 1000, "the serial number first");
	is_int(c.reg[1], 16384, "cell 0 CURRENT_CALIB_SCA");
	is_int(c.reg[5], 1500, "cell 0 TEMP_CALIB_R");
	is_int(c.reg[11 + 6], 3380, "cell 1 TEMP_CALIB_B");
	is_int(c.reg[44 + 1], 16384, "UNIT VOLT_CH_CALIB_SCA");

	text = bl_calib_format(&c);
	int lines = 0;
	for (char *p = text; *p; p++)
		lines += *p == '\n';
	is_int(lines, 49, "the file has 49 lines");
	ok(bl_calib_parse(text, "backup.txt", &c2, err, sizeof err) == BL_OK && memcmp(&c, &c2, sizeof c) == 0,
	   "format and parse round-trip");
	free(text);

	/* restore a changed calibration and a new serial number */
	c2.reg[22 + 5] = 1510;          /* cell 2 TEMP_CALIB_R */
	c2.reg[0] = (uint16_t)-12;      /* cell 0 CURRENT_CALIB_OFF, signed */
	c2.serial = 0x00020005;
	is_int(bl_device_wait(r.dev, bl_op_calib_restore(r.dev, &c2, NULL, NULL), NULL, NULL), BL_OK, "restore");
	ok(rd(&r, 2, BL_CELL_TEMP_CALIB_R, &v) == BL_OK && v == 1510, "cell 2 R is 1510");
	ok(rd(&r, 0, BL_CELL_CURRENT_CALIB_OFF, &v) == BL_OK && v == (uint16_t)-12, "a negative offset");
	ok(rd(&r, BL_NS_UNIT, BL_UNIT_SERIAL_NUM, &v) == BL_OK && v == 5, "SERIAL_NUM rewritten");
	ok(rd(&r, BL_NS_UNIT, BL_UNIT_DEVICE_ID, &v) == BL_OK && v == 2, "DEVICE_ID rewritten");
	ok(rd(&r, BL_NS_UNIT, BL_UNIT_SETTINGS, &v) == BL_OK && !(v & BL_SET_DEBUG) && (v & BL_SET_WATCHDOG_TIMER),
	   "DEBUG is cleared again and the other settings kept");
	is_int(bl_device_wait(r.dev, bl_op_calib_backup(r.dev, &c3, NULL, NULL), NULL, NULL), BL_OK, "backup again");
	ok(memcmp(&c2, &c3, sizeof c2) == 0, "it reads what was restored");

	/* EEPROM: the values survive a reset */
	struct bl_fault f = {.kind = BL_FAULT_RESET, .slot = -1};
	bl_simdev_fault(r.sim, bl_loop_now(r.loop), &f);
	bl_loop_run_until(r.loop, NULL, NULL, bl_loop_now(r.loop) + S(3));
	ok(rd(&r, 2, BL_CELL_TEMP_CALIB_R, &v) == BL_OK && v == 1510, "the calibration survives a reset");

	/* parse errors name the line */
	text = bl_calib_format(&c);
	char *cut = strrchr(text, '\n');
	*cut = '\0';
	cut = strrchr(text, '\n');
	*cut = '\0';
	is_int(bl_calib_parse(text, "short.txt", &c2, err, sizeof err), BL_ERR_ARG, "48 values are refused");
	ok(strstr(err, "short.txt") && strstr(err, "48"), "(%s)", err);
	free(text);
	is_int(bl_calib_parse("1000\nabc\n", "bad.txt", &c2, err, sizeof err), BL_ERR_ARG, "a word is refused");
	ok(strstr(err, "bad.txt:2") != NULL, "with its line (%s)", err);
	text = bl_calib_format(&c);
	char *second = strchr(text, '\n') + 1;
	char *rest = strchr(second, '\n');
	char buf[1024];
	snprintf(buf, sizeof buf, "%.*s0\n0%s", (int)(second - text), text, rest);
	is_int(bl_calib_parse(buf, "zero.txt", &c2, err, sizeof err), BL_ERR_ARG, "a zero scale is refused");
	ok(strstr(err, "CURRENT_CALIB_SCA") && strstr(err, "zero.txt:3"), "naming the register and line (%s)", err);
	snprintf(buf, sizeof buf, "%.*s70000%s", (int)(second - text), text, rest);
	is_int(bl_calib_parse(buf, "big.txt", &c2, err, sizeof err), BL_ERR_ARG, "70000 is out of range");
	free(text);
	rig_close(&r);
}

int main(void)
{
	plan_lazy();
	bl_log_set_level(BL_LOG_ERROR);
	test_images();
	test_flash();
	test_calibration();
	return done_testing();
}
