/* test_sim_fw_boot.c - virtual Batlab: the software watchdog, resets, the
 * bootloader and flashing, two-stage routing while the measure MCU is away
 * (the comms MCU still answers). */
#include "sim_fw_util.h"
#include "tap.h"

static void test_watchdog(void)
{
	struct simh h;
	sh_open_default(&h);
	sh_wait(&h, 1.0);
	/* Off by default: nothing happens in a minute. */
	sh_write(&h, 0, BL_CELL_CURRENT_SETPOINT, 64);
	sh_write(&h, 0, BL_CELL_MODE, BL_MODE_DISCHARGE);
	sh_wait(&h, 60.0);
	is_int(sh_read(&h, 0, BL_CELL_MODE), BL_MODE_DISCHARGE, "watchdog off: still discharging after 60 s");
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_WATCHDOG_TIMER), 255, "WATCHDOG_TIMER not counting");

	sh_write(&h, BL_NS_UNIT, BL_UNIT_SETTINGS, BL_SET_WATCHDOG_TIMER);
	/* Refreshing keeps it alive. */
	for (int i = 0; i < 6; i++) {
		sh_write(&h, BL_NS_UNIT, BL_UNIT_WATCHDOG_TIMER, BL_WDT_RESET);
		sh_wait(&h, 10.0);
	}
	is_int(sh_read(&h, 0, BL_CELL_MODE), BL_MODE_DISCHARGE, "refreshed every 10 s: still discharging");
	long w = sh_read(&h, BL_NS_UNIT, BL_UNIT_WATCHDOG_TIMER);
	ok(w >= 154 && w <= 156, "WATCHDOG_TIMER counts down 10 per second (%ld)", w);

	/* Last refresh, then poll every 20 ms. */
	sh_write(&h, BL_NS_UNIT, BL_UNIT_WATCHDOG_TIMER, BL_WDT_RESET);
	uint64_t t_ref = h.t - 934;   /* when the main loop handled it */
	sh_wait(&h, 25.0);
	is_int(sh_read(&h, 0, BL_CELL_MODE), BL_MODE_DISCHARGE, "not expired 25.0 s after the refresh");
	uint64_t seen = sh_poll_until(&h, 0, BL_CELL_MODE, BL_MODE_STOPPED, 0.02, 2.0);
	double dt = (double)(seen - t_ref) / 1e6;
	ok(seen && fabs(dt - 25.5) <= 0.1, "expired %.3f s after the refresh (25.5 +/- 0.1)", dt);
	is_int(sh_read(&h, 0, BL_CELL_ERROR), 0, "no ERROR bit for the watchdog");
	is_int(sh_read(&h, 1, BL_CELL_MODE), BL_MODE_STOPPED, "IDLE cells are stopped too");
	ok(bl_simdev_cell_current(h.d, 0) == 0.0, "current off at once");
	sh_wait(&h, 0.7);
	is_int(sh_read(&h, 0, BL_CELL_CURRENT), 0, "CURRENT reads 0 from the next latch");

	/* While it stays 0 the stop repeats. */
	sh_write(&h, 1, BL_CELL_MODE, BL_MODE_IDLE);
	sh_wait(&h, 0.15);
	is_int(sh_read(&h, 1, BL_CELL_MODE), BL_MODE_STOPPED, "IDLE written with the timer at 0: STOPPED again");
	sh_write(&h, BL_NS_UNIT, BL_UNIT_WATCHDOG_TIMER, BL_WDT_RESET);
	sh_write(&h, 1, BL_CELL_MODE, BL_MODE_IDLE);
	sh_wait(&h, 1.0);
	is_int(sh_read(&h, 1, BL_CELL_MODE), BL_MODE_IDLE, "refresh then IDLE: recovered");
	sh_close(&h);
}

static void test_reset(void)
{
	struct simh h;
	sh_open_default(&h);
	sh_wait(&h, 20.0);
	sh_write(&h, BL_NS_UNIT, BL_UNIT_SETTINGS, BL_SET_WATCHDOG_TIMER);
	sh_write(&h, 0, BL_CELL_MODE, BL_MODE_DISCHARGE);
	long st0 = sh_read(&h, BL_NS_UNIT, BL_UNIT_SYSTEM_TIMER);
	uint64_t t0 = h.t;
	sh_fault(&h, BL_FAULT_RESET, -1, 0, 0);
	ok(sh_read(&h, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER) < 0, "resetting: no answer");
	is_int(sh_read(&h, BL_NS_COMMS, BL_COMMS_PSU), 1, "COMMS still answers");
	ok(bl_simdev_cell_current(h.d, 0) == 0.0, "the channel's current stopped with the reset");
	uint64_t up = 0;
	while (h.t - t0 < 3 * SH_S) {
		if (sh_read(&h, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER) == 7) {
			up = h.t;
			break;
		}
		sh_wait(&h, 0.05);
	}
	double s = (double)(up - t0) / 1e6;
	ok(up && s >= 1.0 && s <= 2.0, "answers again %.2f s after the reset (1-2 s)", s);
	long st1 = sh_read(&h, BL_NS_UNIT, BL_UNIT_SYSTEM_TIMER);
	ok(st1 < st0, "SYSTEM_TIMER went backwards (%ld -> %ld)", st0, st1);
	is_int(sh_read(&h, BL_NS_UNIT, BL_UNIT_SETTINGS), 0, "SETTINGS 0: watchdog off after a reset");
	sh_wait(&h, 1.0);
	is_int(sh_read(&h, 0, BL_CELL_MODE), BL_MODE_IDLE, "the cell is re-detected: IDLE");
	sh_close(&h);
}

/* Python-style flash: address, data, read back, for every byte. */
static int flash_image(struct simh *h, const uint8_t *img, bool verify)
{
	int errors = 0;
	for (int i = 0; i < BL_FLASH_IMAGE_SIZE; i++) {
		if (sh_write(h, BL_NS_BOOTLOADER, BL_BOOT_ADDR, (uint16_t)(BL_FLASH_BASE + i)) != 0)
			errors++;
		if (sh_write(h, BL_NS_BOOTLOADER, BL_BOOT_DATA, img[i]) != 0)
			errors++;
		if (verify && sh_read(h, BL_NS_BOOTLOADER, BL_BOOT_DATA) != img[i])
			errors++;
	}
	return errors;
}

/* BOOTLOAD: the reset, the bootloader's namespace and its odd answers. */
static void boot_enter(struct simh *h)
{
	is_int(sh_write(h, BL_NS_UNIT, BL_UNIT_BOOTLOAD, 0), 0, "BOOTLOAD answered 00 00");
	is_int(bl_simdev_eeprom(h->d, 0xFF), 0xFE, "EEPROM[0xFF] = 0xFE");
	h->timeout_us = 100 * SH_MS;
	ok(sh_read(h, BL_NS_BOOTLOADER, BL_BOOT_ADDR) < 0, "no answer while it resets");
	is_int(sh_read(h, BL_NS_COMMS, BL_COMMS_LED0 + 2), BL_LED_BLIP, "COMMS answers meanwhile");
	sh_wait(h, 2.0);
	is_int(bl_simdev_mcu_state(h->d), BL_SIMDEV_BOOTLOADER, "in the bootloader");
	is_int(bl_simdev_eeprom(h->d, 0xFF), 0, "the bootloader cleared EEPROM[0xFF]");
	is_int(sh_read(h, BL_NS_BOOTLOADER, BL_BOOT_ADDR), BL_FLASH_BASE, "(5,1) = 0x0400: bootloader detected");
	ok(sh_read(h, 0, BL_CELL_MODE) < 0, "cell namespace: silently dropped");
	ok(sh_read(h, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER) < 0, "unit namespace: dropped");
	ok(sh_read(h, 0x06, 0) < 0, "namespace 6: dropped");
	is_int(sh_read(h, BL_NS_COMMS, BL_COMMS_PSU), 1, "COMMS works in the bootloader");
	is_int(sh_read(h, BL_NS_BOOTLOADER, BL_BOOT_BOOTLOAD), 257, "BL_BOOTLOAD read -> 257");

	/* The odd answers for unknown addresses. */
	is_int(sh_xact_expect(h, BL_NS_BOOTLOADER, 0x03, 0, 0x03), 257, "read (5,3) -> AA 05 03 01 01");
	is_int(sh_xact_expect(h, BL_NS_BOOTLOADER, 0x85, 1, 0x82), 257, "write (5,5) -> AA 05 82 01 01");
}

/* BL_ADDR and BL_DATA; the first data write erases the flash. */
static void boot_data(struct simh *h, const uint8_t *orig)
{
	/* BL_ADDR clamp, BL_DATA read, no auto-increment. */
	is_int(sh_write(h, BL_NS_BOOTLOADER, BL_BOOT_ADDR, 0x0100), 257, "BL_ADDR < 0x0400 -> 257");
	is_int(sh_read(h, BL_NS_BOOTLOADER, BL_BOOT_ADDR), 0x0400, "... clamped to 0x0400");
	is_int(sh_write(h, BL_NS_BOOTLOADER, BL_BOOT_ADDR, 0x0402), 0, "BL_ADDR 0x0402");
	is_int(sh_read(h, BL_NS_BOOTLOADER, BL_BOOT_DATA), orig[2], "BL_DATA reads the image byte");

	/* The first data write erases everything and answers late. */
	h->timeout_us = 1 * SH_S;
	is_int(sh_write(h, BL_NS_BOOTLOADER, BL_BOOT_DATA, 0x5A), 0, "first BL_DATA write");
	ok(h->last_rtt > 400000 && h->last_rtt < 700000, "answered after the erase (%.0f ms)", h->last_rtt / 1e3);
	is_int(sh_read(h, BL_NS_BOOTLOADER, BL_BOOT_DATA), 0x5A, "byte programmed");
	is_int(sh_read(h, BL_NS_BOOTLOADER, BL_BOOT_ADDR), 0x0402, "pointer not incremented");
	sh_write(h, BL_NS_BOOTLOADER, BL_BOOT_ADDR, 0x0403);
	is_int(sh_read(h, BL_NS_BOOTLOADER, BL_BOOT_DATA), 0xFF, "the rest is erased");
	is_int(sh_write(h, BL_NS_BOOTLOADER, BL_BOOT_DATA, 0x11), 0, "second write: no erase");
	ok(h->last_rtt < 5000, "and answered at once (%.1f ms)", h->last_rtt / 1e3);
	sh_write(h, BL_NS_BOOTLOADER, BL_BOOT_ADDR, 0x0402);
	is_int(sh_read(h, BL_NS_BOOTLOADER, BL_BOOT_DATA), 0x5A, "the first byte survived");
}

/* An interrupted flash, a bad image, then a good one that starts. */
static void boot_flash(struct simh *h)
{
	/* An interrupted flash lands in the bootloader again. */
	sh_fault(h, BL_FAULT_RESET, -1, 0, 0);
	sh_wait(h, 2.0);
	is_int(bl_simdev_mcu_state(h->d), BL_SIMDEV_BOOTLOADER, "reset with a broken image: bootloader");
	is_int(sh_write(h, BL_NS_BOOTLOADER, BL_BOOT_BOOTLOAD, 0), 257, "BL_BOOTLOAD with a bad checksum -> 257");
	is_int(sh_read(h, BL_NS_BOOTLOADER, BL_BOOT_ADDR), 0x0400, "... and it stays in the bootloader (pointer reset)");

	/* A bad image: last byte off by one. */
	uint8_t img[BL_FLASH_IMAGE_SIZE];
	bl_sim_firmware_image(img, 77);
	img[BL_FLASH_IMAGE_SIZE - 1]++;
	is_int(flash_image(h, img, false), 0, "bad image written (2 transactions per byte)");
	is_int(sh_write(h, BL_NS_BOOTLOADER, BL_BOOT_BOOTLOAD, 0), 257, "bad checksum: AA 05 80 01 01");
	sh_wait(h, 2.0);
	ok(sh_read(h, BL_NS_BOOTLOADER, BL_BOOT_ADDR) >= 0x0400, "still in the bootloader");

	/* A good image, Python's way with read-back. */
	img[BL_FLASH_IMAGE_SIZE - 1]--;
	uint64_t t0 = h->t;
	is_int(flash_image(h, img, true), 0, "good image written and verified (46080 transactions)");
	diag("flashing took %.0f virtual seconds", (double)(h->t - t0) / 1e6);
	is_int(sh_write(h, BL_NS_BOOTLOADER, BL_BOOT_BOOTLOAD, 0), 0, "good checksum: AA 05 80 00 00");
	h->timeout_us = 100 * SH_MS;
	ok(sh_read(h, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER) < 0, "starting: no answer yet");
	sh_wait(h, 2.0);
	is_int(sh_read(h, BL_NS_BOOTLOADER, BL_BOOT_ADDR), 257, "(5,1) -> 257: the application runs");
	is_int(sh_read(h, BL_NS_UNIT, BL_UNIT_FIRMWARE_VER), 7, "FIRMWARE_VER 7");
	is_int(sh_read(h, BL_NS_UNIT, BL_UNIT_SERIAL_NUM), 1000, "SERIAL_NUM kept (EEPROM)");
	ok(memcmp(bl_simdev_flash(h->d), img, sizeof img) == 0, "flash holds the new image");
}

static void test_bootloader(void)
{
	struct simh h;
	sh_open_default(&h);
	h.timeout_us = 1 * SH_S;
	sh_wait(&h, 1.0);
	uint8_t orig[BL_FLASH_IMAGE_SIZE];
	memcpy(orig, bl_simdev_flash(h.d), sizeof orig);

	boot_enter(&h);
	boot_data(&h, orig);
	boot_flash(&h);
	/* Bootloader, then straight back out without flashing. */
	sh_write(&h, BL_NS_UNIT, BL_UNIT_BOOTLOAD, 1);
	sh_wait(&h, 2.0);
	is_int(sh_read(&h, BL_NS_BOOTLOADER, BL_BOOT_ADDR), 0x0400, "bootloader again");
	is_int(sh_write(&h, BL_NS_BOOTLOADER, BL_BOOT_BOOTLOAD, 0), 0, "leave without flashing: 00 00");
	sh_wait(&h, 2.0);
	is_int(sh_read(&h, BL_NS_BOOTLOADER, BL_BOOT_ADDR), 257, "application again");
	sh_close(&h);
}

static void test_lost_during_erase(void)
{
	struct simh h;
	sh_open_default(&h);
	sh_write(&h, BL_NS_UNIT, BL_UNIT_BOOTLOAD, 0);
	sh_wait(&h, 2.0);
	/* Send the first data write and, 100 ms later, a read: the read
	 * arrives during the erase and is lost. */
	sh_send(&h, (const uint8_t[]){0xAA, 0x05, 0x82, 0x12, 0x00}, 5);
	sh_wait(&h, 0.1);
	h.nresp = 0;
	sh_send(&h, (const uint8_t[]){0xAA, 0x05, 0x01, 0x00, 0x00}, 5);
	sh_wait(&h, 1.0);
	ok(sh_find(&h, 5, 0x82) >= 0, "the erase write was answered");
	ok(sh_find(&h, 5, 0x01) < 0, "a packet sent during the erase was lost");
	is_int(sh_read(&h, BL_NS_BOOTLOADER, BL_BOOT_ADDR), 0x0400, "after the erase it answers again");
	sh_close(&h);
}

static void test_bad_image_at_power_up(void)
{
	struct bl_simdev_config cfg;
	bl_simdev_config_default(&cfg, 0);
	static uint8_t img[BL_FLASH_IMAGE_SIZE];
	bl_sim_firmware_image(img, 5);
	img[100] ^= 1;
	cfg.firmware_image = img;
	struct simh h;
	sh_open(&h, &cfg);
	is_int(sh_read(&h, BL_NS_BOOTLOADER, BL_BOOT_ADDR), 0x0400, "an invalid image powers up in the bootloader");
	is_int(sh_read(&h, BL_NS_COMMS, BL_COMMS_PSU), 1, "COMMS answers");
	sh_close(&h);

	uint8_t a[BL_FLASH_IMAGE_SIZE], b[BL_FLASH_IMAGE_SIZE];
	bl_sim_firmware_image(a, 1);
	bl_sim_firmware_image(b, 2);
	unsigned sum = 0;
	for (int i = 0; i < BL_FLASH_IMAGE_SIZE - 1; i++)
		sum += a[i];
	is_int(sum & 0xFF, a[BL_FLASH_IMAGE_SIZE - 1], "synthetic image checksum (sum of 15359 bytes mod 256)");
	ok(memcmp(a, b, sizeof a) != 0, "different seeds, different images");
}

int main(void)
{
	plan_lazy();
	test_watchdog();
	test_reset();
	test_bootloader();
	test_lost_during_erase();
	test_bad_image_at_power_up();
	return done_testing();
}
