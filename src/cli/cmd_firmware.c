/* cli/cmd_firmware.c - `batlab firmware load FILE`, `batlab firmware
 * check|update` (the newest released image, host/fwrelease.h) and
 * `batlab calibration backup|restore FILE`. Files and downloads are read
 * and checked completely before the device is touched: a bad image never
 * half-writes a unit. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/devsel.h"
#include "core/bl.h"
#include "device/calib.h"
#include "device/flash.h"
#include "host/fwrelease.h"

/* ---- firmware load, check, update ----------------------------------------------- */

static const struct cli_cmd firmware_cmd = {
	"firmware load", "FILE",
	"Flash a firmware image (a .bin of exactly 15360 bytes whose last byte is\n"
	"the checksum of the others). The file is checked before anything is sent;\n"
	"each byte is written and read back. Progress: one updating line on a\n"
	"terminal, else a line every 10 %. Then batlab connects again and prints\n"
	"the new firmware version. A unit already in its bootloader is flashed too.\n",
	1, 1, true,
};

static const struct cli_cmd check_cmd = {
	"firmware check", "[--from URL]",
	"Print the newest released firmware: its version, release tag and image.\n"
	"The release list is the JSON of the firmware project's GitHub releases\n"
	"(" BL_FW_RELEASES_URL ");\n"
	"drafts, prereleases and tags that are not vN are skipped.\n"
	"\n"
	"  --from URL       another release list (also: $" BL_FW_URL_ENV ")\n",
	0, 0, false,
};

static const struct cli_cmd update_cmd = {
	"firmware update", "[--from URL] [--force]",
	"Download the newest released image (as 'firmware check' finds it), check\n"
	"it as 'firmware load' does, and flash it when its version is newer than\n"
	"the unit's (a unit in its bootloader is always flashed). Nothing is sent\n"
	"to the unit until the image is downloaded and checked.\n"
	"\n"
	"  --from URL       another release list (also: $" BL_FW_URL_ENV ")\n"
	"  --force          flash even when the unit's version is not older\n",
	0, 0, true,
};

struct progress {
	bool tty;
	int last;          /* last percentage shown */
};

static void on_progress(struct bl_device *d, size_t done, size_t total, void *ud)
{
	struct progress *p = ud;
	int pct = (int)(done * 100 / total);

	(void)d;
	if (pct == p->last)
		return;
	if (p->tty) {
		printf("\rflashing: %3d %% (%zu/%zu bytes)", pct, done, total);
		if (done == total)
			printf("\n");
		fflush(stdout);
	} else if (pct / 10 != p->last / 10) {
		printf("flashing: %d %% (%zu/%zu bytes)\n", pct / 10 * 10, done, total);
	}
	p->last = pct;
}

/* Flash a checked image (named `what` in messages) into the selected unit,
 * connect again and print the version it reports; an exit code. */
static int flash(struct cli_devsel *s, const uint8_t *image, size_t len, const char *what)
{
	struct progress pr = {false, -1};
	uint16_t before = bl_device_identity(s->dev)->firmware;
	int st;

	pr.tty = isatty(STDOUT_FILENO);
	printf("flashing %s into Batlab %u on %s\n", what, bl_device_identity(s->dev)->serial,
	       bl_device_port(s->dev));
	st = cli_wait(s->dev, bl_op_firmware_load(s->dev, image, len, on_progress, &pr, NULL, NULL),
	              NULL, NULL);
	if (st != BL_OK) {
		if (pr.tty && pr.last >= 0)
			printf("\n");
		return cli_device_error(s, s->dev, st, "flashing (if the unit stays in its bootloader, "
		                        "run the same command again)");
	}
	st = cli_wait(s->dev, bl_op_connect(s->dev, NULL, NULL), NULL, NULL);
	if (st != BL_OK)
		return cli_device_error(s, s->dev, st, "connecting after the flash");
	printf("firmware version %u (was %u)\n", bl_device_identity(s->dev)->firmware, before);
	return BL_EXIT_OK;
}

static int firmware_load(int argc, char **argv)
{
	struct cli_devsel_opts o;
	struct cli_devsel s;
	char *pos[CLI_MAX_POS], err[512];
	uint8_t *image = NULL;
	size_t len = 0;
	int npos, r;

	if ((r = cli_parse(&firmware_cmd, argc, argv, NULL, &o, pos, &npos)) != BL_EXIT_OK)
		return r == CLI_HELP ? BL_EXIT_OK : r;
	if (bl_firmware_read_file(pos[0], &image, &len, err, sizeof err) != BL_OK) {
		cli_error("firmware load: %s", err);
		return BL_EXIT_USAGE;
	}
	if ((r = cli_devsel_open(&s, &o, "firmware load", CLI_SEL_BOOTLOADER)) == BL_EXIT_OK) {
		r = flash(&s, image, len, pos[0]);
		cli_devsel_close(&s);
	}
	free(image);
	return r;
}

static void print_release(const struct bl_fw_release *rel)
{
	printf("latest firmware version %d (release %s, image %s)\n", rel->version, rel->tag,
	       rel->asset);
}

static int firmware_check(int argc, char **argv)
{
	const char *from = NULL;
	const struct cli_opt opts[] = {{"--from", true, &from, NULL}, {NULL, false, NULL, NULL}};
	struct cli_devsel_opts unused;
	struct bl_fw_release rel;
	char *pos[CLI_MAX_POS], err[1024];
	int npos, r;

	if ((r = cli_parse(&check_cmd, argc, argv, opts, &unused, pos, &npos)) != BL_EXIT_OK)
		return r == CLI_HELP ? BL_EXIT_OK : r;
	if (bl_fw_latest(bl_fw_releases_url(from), &rel, err, sizeof err) != BL_OK) {
		cli_error("firmware check: %s", err);
		return BL_EXIT_USAGE;
	}
	print_release(&rel);
	return BL_EXIT_OK;
}

/* Whether the unit needs the release; prints why not. */
static bool wanted(const struct cli_devsel *s, const struct bl_fw_release *rel, bool force)
{
	const struct bl_identity *id = bl_device_identity(s->dev);

	if (force || id->bootloader || id->firmware < rel->version)
		return true;
	printf("Batlab %u on %s: firmware version %u is up to date (use --force to flash "
	       "version %d anyway)\n", id->serial, bl_device_port(s->dev), id->firmware, rel->version);
	return false;
}

static int firmware_update(int argc, char **argv)
{
	const char *from = NULL;
	bool force = false;
	const struct cli_opt opts[] = {
		{"--from", true, &from, NULL}, {"--force", false, NULL, &force},
		{NULL, false, NULL, NULL},
	};
	struct cli_devsel_opts o;
	struct cli_devsel s;
	struct bl_fw_release rel;
	char *pos[CLI_MAX_POS], err[1024];
	uint8_t *image = NULL;
	size_t len = 0;
	int npos, r;

	if ((r = cli_parse(&update_cmd, argc, argv, opts, &o, pos, &npos)) != BL_EXIT_OK)
		return r == CLI_HELP ? BL_EXIT_OK : r;
	/* The whole download is checked before a device is even opened. */
	if (bl_fw_latest(bl_fw_releases_url(from), &rel, err, sizeof err) != BL_OK ||
	    bl_fw_download(&rel, &image, &len, err, sizeof err) != BL_OK) {
		cli_error("firmware update: %s", err);
		return BL_EXIT_USAGE;
	}
	print_release(&rel);
	if ((r = cli_devsel_open(&s, &o, "firmware update", CLI_SEL_BOOTLOADER)) == BL_EXIT_OK) {
		if (wanted(&s, &rel, force))
			r = flash(&s, image, len, rel.asset);
		cli_devsel_close(&s);
	}
	free(image);
	return r;
}

int cmd_firmware(int argc, char **argv)
{
	const char *usage = "usage: batlab firmware load FILE | check | update";

	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("%s [options]\n\nRun 'batlab firmware load --help', 'batlab firmware check "
		       "--help' or 'batlab firmware update --help' for the details.\n", usage);
		return BL_EXIT_OK;
	}
	if (argc < 2) {
		cli_error("firmware: missing subcommand (%s)", usage);
		return BL_EXIT_USAGE;
	}
	if (strcmp(argv[1], "load") == 0)
		return firmware_load(argc - 1, argv + 1);
	if (strcmp(argv[1], "check") == 0)
		return firmware_check(argc - 1, argv + 1);
	if (strcmp(argv[1], "update") == 0)
		return firmware_update(argc - 1, argv + 1);
	cli_error("firmware: unknown subcommand '%s' (%s)", argv[1], usage);
	return BL_EXIT_USAGE;
}

/* ---- calibration backup / restore ----------------------------------------- */

static const struct cli_cmd backup_cmd = {
	"calibration backup", "FILE [--force]",
	"Read every calibration register (49 values: the serial number, 11 per\n"
	"cell, 4 of the unit) into FILE, one decimal integer per line, in the\n"
	"order Lexcelon's 'recover' reads. An existing FILE is kept unless --force.\n"
	"\n"
	"  --force          overwrite FILE\n",
	1, 1, true,
};

static const struct cli_cmd restore_cmd = {
	"calibration restore", "FILE",
	"Write the calibration in FILE (as written by 'calibration backup') back\n"
	"into the unit, each register verified by reading it back. The file is\n"
	"checked first; errors name the line. A different serial number in the\n"
	"file is written too (that is how a wiped unit gets its identity back).\n",
	1, 1, true,
};

/* Write the whole text next to path, then rename: a crash never leaves a
 * truncated backup where a good one was. */
static int write_file(const char *path, const char *text, char *err, size_t errlen)
{
	char tmp[4096];
	FILE *f;

	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	f = fopen(tmp, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (f)
			remove(tmp);
		return -1;
	}
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		remove(tmp);
		return -1;
	}
	return 0;
}

static int calib_backup(int argc, char **argv)
{
	bool force = false;
	const struct cli_opt opts[] = {{"--force", false, NULL, &force}, {NULL, false, NULL, NULL}};
	struct cli_devsel_opts o;
	struct cli_devsel s;
	struct bl_calibration cal;
	char *pos[CLI_MAX_POS], err[512], *text;
	int npos, r, st;

	if ((r = cli_parse(&backup_cmd, argc, argv, opts, &o, pos, &npos)) != BL_EXIT_OK)
		return r == CLI_HELP ? BL_EXIT_OK : r;
	if (!force && access(pos[0], F_OK) == 0) {
		cli_error("calibration backup: %s exists (use --force to overwrite it)", pos[0]);
		return BL_EXIT_USAGE;
	}
	if ((r = cli_devsel_open(&s, &o, "calibration backup", 0)) != BL_EXIT_OK)
		return r;
	st = cli_wait(s.dev, bl_op_calib_backup(s.dev, &cal, NULL, NULL), NULL, NULL);
	if (st != BL_OK) {
		r = cli_device_error(&s, s.dev, st, "reading the calibration");
		goto out;
	}
	text = bl_calib_format(&cal);
	if (!text || write_file(pos[0], text, err, sizeof err) != 0) {
		cli_error("calibration backup: %s", text ? err : "out of memory");
		r = BL_EXIT_USAGE;
	} else {
		printf("calibration of Batlab %u written to %s (%d values)\n", cal.serial, pos[0],
		       BL_CALIB_VALUES);
	}
	free(text);
out:
	cli_devsel_close(&s);
	return r;
}

static char *read_text(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	/* A calibration file is under 400 bytes; anything past 64 KiB is not one. */
	buf = malloc(65536 + 1);
	if (!buf) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n = fread(buf, 1, 65536, f);
	if (ferror(f) || (n == 65536 && fgetc(f) != EOF)) {
		snprintf(err, errlen, "%s: %s", path, ferror(f) ? "read error" : "too large");
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	if (strlen(buf) != n) {
		snprintf(err, errlen, "%s: not a text file", path);
		free(buf);
		return NULL;
	}
	return buf;
}

static int calib_restore(int argc, char **argv)
{
	struct cli_devsel_opts o;
	struct cli_devsel s;
	struct bl_calibration cal;
	char *pos[CLI_MAX_POS], err[512], *text;
	int npos, r, st;
	uint32_t before;

	if ((r = cli_parse(&restore_cmd, argc, argv, NULL, &o, pos, &npos)) != BL_EXIT_OK)
		return r == CLI_HELP ? BL_EXIT_OK : r;
	if (!(text = read_text(pos[0], err, sizeof err))) {
		cli_error("calibration restore: %s", err);
		return BL_EXIT_USAGE;
	}
	st = bl_calib_parse(text, pos[0], &cal, err, sizeof err);
	free(text);
	if (st != BL_OK) {
		cli_error("calibration restore: %s", err);
		return BL_EXIT_USAGE;
	}
	if ((r = cli_devsel_open(&s, &o, "calibration restore", 0)) != BL_EXIT_OK)
		return r;
	before = bl_device_identity(s.dev)->serial;
	st = cli_wait(s.dev, bl_op_calib_restore(s.dev, &cal, NULL, NULL), NULL, NULL);
	if (st != BL_OK) {
		r = cli_device_error(&s, s.dev, st, "writing the calibration");
	} else {
		printf("calibration restored from %s into Batlab %u on %s (%d values)\n", pos[0], before,
		       bl_device_port(s.dev), BL_CALIB_VALUES);
		if (cal.serial != before)
			printf("serial number changed: %u -> %u\n", before, cal.serial);
	}
	cli_devsel_close(&s);
	return r;
}

int cmd_calibration(int argc, char **argv)
{
	const char *usage = "usage: batlab calibration backup|restore FILE";

	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("%s [options]\n\nRun 'batlab calibration backup --help' or "
		       "'batlab calibration restore --help' for the details.\n", usage);
		return BL_EXIT_OK;
	}
	if (argc < 2) {
		cli_error("calibration: missing subcommand (%s)", usage);
		return BL_EXIT_USAGE;
	}
	if (strcmp(argv[1], "backup") == 0)
		return calib_backup(argc - 1, argv + 1);
	if (strcmp(argv[1], "restore") == 0)
		return calib_restore(argc - 1, argv + 1);
	cli_error("calibration: unknown subcommand '%s' (%s)", argv[1], usage);
	return BL_EXIT_USAGE;
}
