/* test_firmware_update.c - `batlab firmware check|update` and the Lua
 * dev:firmware_check / dev:firmware_update, end to end through the built
 * binary ($BATLAB) against a local HTTP server (support/httpd.c) on a
 * loopback port: a release list and images it serves, the error cases
 * (HTTP 404/500, a refused connection, no .bin asset, JSON that is broken
 * or not a release list, a corrupt, short or truncated image), and a unit
 * served by `batlab sim --pty` that still runs its old firmware after a
 * failed update. No internet, no sleeps: the server's sockets exist before
 * a client starts.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/bl.h"
#include "core/regs.h"
#include "sim/simdev.h"
#include "support/child.h"
#include "support/httpd.h"
#include "tap.h"

#define OUT_MAX 65536

static char dir[64], base[128], tmp_path_buf[512];
static struct httpd srv;
static struct { int code; char out[OUT_MAX], err[OUT_MAX]; } res;

static const char *path_of(const char *name)
{
	snprintf(tmp_path_buf, sizeof tmp_path_buf, "%s/%s", dir, name);
	return tmp_path_buf;
}

static void write_file(const char *name, const void *data, size_t n)
{
	FILE *f = fopen(path_of(name), "wb");

	if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
		printf("Bail out! cannot write %s\n", path_of(name));
		exit(1);
	}
}

static char *read_text(const char *name)
{
	static char buf[OUT_MAX];
	FILE *f = fopen(path_of(name), "rb");
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = 0;
	return buf;
}

static void write_text(const char *name, const char *text)
{
	write_file(name, text, strlen(text));
}

/* Run batlab with the words of the formatted line (split at spaces). */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	static char line[4096];
	char *argv[64], *save = NULL;
	int n = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	argv[n++] = "batlab";
	for (char *w = strtok_r(line, " ", &save); w && n < 63; w = strtok_r(NULL, " ", &save))
		argv[n++] = w;
	argv[n] = NULL;
	remove(path_of("requests.log"));
	res.code = run_cmd(argv, res.out, sizeof res.out, res.err, sizeof res.err);
	return res.code;
}

/* The last command's output as diagnostics. */
static void dump(const char *label, const char *text)
{
	while (*text) {
		size_t n = strcspn(text, "\n");

		diag("%s: %.*s", label, (int)n, text);
		text += n + (text[n] != 0);
	}
}

/* ok() that shows what the last command printed when it fails. */
static int okr(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int okr(int cond, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = tap_vok(cond, fmt, ap);
	va_end(ap);
	if (!r) {
		diag("exit %d", res.code);
		dump("stdout", res.out);
		dump("stderr", res.err);
	}
	return r;
}

static bool has(const char *text, const char *part)
{
	return strstr(text, part) != NULL;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* A release object; assets "name=path" pairs, path served by the test
 * server (absolute URL). */
static void release(char *buf, size_t n, const char *tag, const char *more, const char *asset,
                    const char *path)
{
	snprintf(buf, n,
	         "{\"tag_name\": \"%s\"%s, \"assets\": [{\"name\": \"%s.hex\", "
	         "\"browser_download_url\": \"%s/nothing.hex\"}%s%s%s%s%s%s%s]}",
	         tag, more, asset, base, path ? ", {\"name\": \"" : "", path ? asset : "",
	         path ? ".bin\", \"browser_download_url\": \"" : "", path ? base : "",
	         path ? "/" : "", path ? path : "", path ? "\"}" : "");
}

/* One release list file: "[" release "]" with the release above plus a
 * prerelease, a draft and a tag that is no version, all higher. */
static void release_list(const char *name, const char *tag, const char *asset, const char *path)
{
	char rel[1024], skip[1024], draft[1024], text[4096];

	release(rel, sizeof rel, tag, "", asset, path);
	release(skip, sizeof skip, "v99", ", \"prerelease\": true", "Beta", "fw8.bin");
	release(draft, sizeof draft, "v98", ", \"draft\": true", "Draft", "fw8.bin");
	snprintf(text, sizeof text,
	         "[\n  %s,\n  %s,\n  %s,\n  {\"tag_name\": \"nightly\", \"assets\": []},\n"
	         "  {\"tag_name\": \"v5\", \"assets\": []}\n]\n", skip, rel, draft);
	write_text(name, text);
}

static void make_files(void)
{
	static uint8_t image[BL_FLASH_IMAGE_SIZE];
	char rel[1024];

	bl_sim_firmware_image(image, 8);
	write_file("fw8.bin", image, sizeof image);
	write_file("short.bin", image, 100);
	image[200] ^= 0x10;
	write_file("bad.bin", image, sizeof image);
	snprintf(base, sizeof base, "http://127.0.0.1:%d", srv.port);

	release_list("releases.json", "v8", "Batlab-Measure_V8", "redirect/fw8.bin");
	release_list("same.json", "v7", "Batlab-Measure_V7", "fw8.bin");
	release_list("old.json", "6", "Batlab-Measure_V6", "fw8.bin");
	release_list("nobin.json", "v9", "Batlab-Measure_V9", NULL);
	release_list("corrupt.json", "v8", "Batlab-Measure_V8", "bad.bin");
	release_list("short.json", "v8", "Batlab-Measure_V8", "short.bin");
	release_list("missing.json", "v8", "Batlab-Measure_V8", "nope.bin");
	release_list("truncated.json", "v8", "Batlab-Measure_V8", "truncate/fw8.bin");
	release(rel, sizeof rel, "v8.0", "", "Batlab-Measure_V8", "fw8.bin");
	write_text("latest.json", rel);
	write_text("broken.json", "[\n  {\"tag_name\": \"v8\",\n   \"assets\": [}\n]\n");
	write_text("notlist.json", "\"releases\"\n");
	write_text("none.json", "[]\n");
	write_text("notag.json", "[{\"name\": \"v8\"}]\n");
}

static void test_check(void)
{
	okr(run("firmware check --from %s/releases.json", base) == 0 &&
	   strcmp(res.out, "latest firmware version 8 (release v8, image Batlab-Measure_V8.bin)\n") == 0 &&
	   res.err[0] == 0, "firmware check prints the newest release (drafts, prereleases, "
	   "non-version tags skipped)");
	okr(strncmp(read_text("requests.log"), "/releases.json batlab/", 22) == 0 &&
	   count_lines(read_text("requests.log")) == 1,
	   "one request, the list, with batlab's User-Agent");
	okr(run("firmware check --from %s/latest.json", base) == 0 &&
	   has(res.out, "version 8 (release v8.0, image Batlab-Measure_V8.bin)"),
	   "a single release (releases/latest) and a v8.0 tag");

	snprintf(tmp_path_buf, sizeof tmp_path_buf, "%s/old.json", base);
	setenv("BATLAB_FIRMWARE_URL", tmp_path_buf, 1);
	okr(run("firmware check") == 0 && has(res.out, "latest firmware version 6 (release 6,"),
	   "BATLAB_FIRMWARE_URL sets the list");
	okr(run("firmware check --from %s/releases.json", base) == 0 && has(res.out, "version 8"),
	   "--from wins over BATLAB_FIRMWARE_URL");
	unsetenv("BATLAB_FIRMWARE_URL");

	okr(run("firmware check --from") == 2 && count_lines(res.err) == 1 && has(res.err, "--from"),
	   "--from without a URL: exit 2");
	okr(run("firmware check --sim --from %s/releases.json", base) == 2 &&
	   has(res.err, "unknown option '--sim'"), "check opens no device: --sim is refused");
	okr(run("firmware check --help") == 0 && has(res.out, "--from URL") &&
	   has(res.out, "BATLAB_FIRMWARE_URL") && has(res.out, "Lexcelon/batlab-firmware-measure"),
	   "firmware check --help");
	okr(run("firmware --help") == 0 && has(res.out, "load FILE | check | update"), "firmware --help");
}

static void test_update(void)
{
	okr(run("firmware update --sim --from %s/releases.json", base) == 0,
	   "firmware update --sim: exit 0");
	okr(has(res.out, "latest firmware version 8 (release v8, image Batlab-Measure_V8.bin)\n"
	       "flashing Batlab-Measure_V8.bin into Batlab 1000 on sim0\n"),
	   "the release, then flashing the 7 of the virtual Batlab");
	okr(has(res.out, "flashing: 100 % (15360/15360 bytes)\nfirmware version 7 (was 7)\n") &&
	   count_lines(res.out) == 13, "every byte, then connected again (the virtual Batlab "
	   "always reports 7)");
	okr(count_lines(read_text("requests.log")) == 3 &&
	   strncmp(read_text("requests.log"), "/releases.json batlab/", 22) == 0 &&
	   has(read_text("requests.log"), "\n/redirect/fw8.bin batlab/") &&
	   has(read_text("requests.log"), "\n/fw8.bin batlab/"),
	   "the list, then the image through a redirect");

	okr(run("firmware update --sim --from %s/same.json", base) == 0 &&
	   strcmp(res.out, "latest firmware version 7 (release v7, image Batlab-Measure_V7.bin)\n"
	          "Batlab 1000 on sim0: firmware version 7 is up to date (use --force to flash "
	          "version 7 anyway)\n") == 0, "the same version: nothing flashed");
	okr(run("firmware update --sim --from %s/old.json", base) == 0 &&
	   has(res.out, "firmware version 7 is up to date") && !has(res.out, "flashing"),
	   "an older release: nothing flashed");
	okr(run("firmware update --sim --force --from %s/old.json", base) == 0 &&
	   has(res.out, "flashing Batlab-Measure_V6.bin into Batlab 1000 on sim0\n") &&
	   has(res.out, "firmware version 7 (was 7)"), "--force flashes it anyway");
	okr(run("firmware update --sim --devices 2 --serial 1001 --from %s/releases.json", base) == 0 &&
	   has(res.out, "into Batlab 1001 on sim1"), "--serial picks the unit");
}

/* Each: exit 2, one line on stderr naming the command and what, no
 * flashing (the device was not even opened). */
static void update_fails(const char *from, const char *want1, const char *want2, const char *what)
{
	int code = run("firmware update --sim --from %s", from);

	okr(code == 2 && count_lines(res.err) == 1 && has(res.err, "batlab: firmware update: ") &&
	   has(res.err, want1) && has(res.err, want2) && res.out[0] == 0,
	   "%s: exit 2, one line", what);
}

static void test_errors(void)
{
	char url[256], closed[128];

	snprintf(url, sizeof url, "%s/status/404", base);
	update_fails(url, url, "the server answered HTTP 404", "the list is not there (404)");
	snprintf(url, sizeof url, "%s/status/500", base);
	update_fails(url, url, "HTTP 500", "a server error (500)");
	snprintf(closed, sizeof closed, "http://127.0.0.1:%d/releases.json", srv.closed_port);
	update_fails(closed, closed, "Couldn't connect to server", "connection refused");
	update_fails("http://127.0.0.1:1:2/x", "127.0.0.1:1:2", "URL", "a malformed URL");
	snprintf(url, sizeof url, "%s/nobin.json", base);
	update_fails(url, "release v9 has no .bin asset (its assets: Batlab-Measure_V9.hex)", url,
	             "a release without a .bin asset");
	snprintf(url, sizeof url, "%s/broken.json", base);
	update_fails(url, "broken.json: line 3, column 15: invalid JSON: expected value but found '}'", base,
	             "malformed JSON: line and column");
	snprintf(url, sizeof url, "%s/notlist.json", base);
	update_fails(url, "a release list must be a JSON array of releases, not a string", url,
	             "JSON that is not a release list");
	snprintf(url, sizeof url, "%s/none.json", base);
	update_fails(url, "no release with a version tag (vN) among 0 releases", url, "no releases");
	snprintf(url, sizeof url, "%s/notag.json", base);
	update_fails(url, "notag.json: release 1: \"tag_name\" (a string) is missing", url,
	             "a release without a tag");
	snprintf(url, sizeof url, "%s/corrupt.json", base);
	update_fails(url, "/bad.bin: not a valid image: checksum mismatch", base,
	             "a corrupt image fails the check");
	snprintf(url, sizeof url, "%s/short.json", base);
	update_fails(url, "/short.bin: not a valid image: an image must be exactly 15360 bytes, "
	             "this one has 100", base, "a short image");
	snprintf(url, sizeof url, "%s/missing.json", base);
	update_fails(url, "/nope.bin: the server answered HTTP 404", base, "the image is not there");
	snprintf(url, sizeof url, "%s/truncated.json", base);
	update_fails(url, "/truncate/fw8.bin: transfer closed with 7680 bytes remaining", base,
	             "a download cut short");
	okr(run("firmware check --from %s/nobin.json", base) == 2 && count_lines(res.err) == 1 &&
	   has(res.err, "batlab: firmware check: ") && has(res.err, "no .bin asset"),
	   "firmware check reports the same errors");
}

/* A unit served by `batlab sim --pty` (its own process, so its state
 * outlives each command): failed updates leave it running its old
 * firmware, outside its bootloader. */
static void test_pty_unit_untouched(void)
{
	char *args[] = {"batlab", "sim", "--pty", NULL};
	char line[512], pty[256];
	struct child sim;
	int st;

	if (spawn(&sim, args) < 0 || read_lines(sim.out, line, sizeof line, 1, 10000) == 0 ||
	    sscanf(line, "%255s", pty) != 1) {
		ok(0, "batlab sim --pty prints its device");
		return;
	}
	okr(run("firmware update --port %s --from %s/corrupt.json", pty, base) == 2 &&
	   has(res.err, "checksum mismatch"), "a corrupt image: exit 2");
	okr(run("firmware update --port %s --from %s/status/500", pty, base) == 2 &&
	   has(res.err, "HTTP 500"), "a server error: exit 2");
	okr(run("firmware update --port %s --from http://127.0.0.1:%d/x", pty, srv.closed_port) == 2 &&
	   has(res.err, "Couldn't connect"), "no server: exit 2");
	okr(run("info --port %s", pty) == 0 && has(res.out, "Firmware         7\n"),
	   "the unit still runs its firmware 7, not in its bootloader");
	okr(run("firmware update --port %s --from %s/same.json", pty, base) == 0 &&
	   has(res.out, "firmware version 7 is up to date"), "a real port: up to date");
	kill(sim.pid, SIGTERM);
	st = reap(&sim, 10000);
	okr(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "sim --pty exits 0 on SIGTERM");
}

/* The Lua methods, in a script run by `batlab lua` with the release list
 * from BATLAB_FIRMWARE_URL; it prints what each call returns. */
static void test_lua(void)
{
	static const char script[] =
		"local base = ...\n"
		"local pool = assert(batlab.open { sim = true })\n"
		"local dev = pool:active()\n"
		"local function show(...) print(select('#', ...), ...) end\n"
		"show(dev:firmware_check())\n"
		"show(dev:firmware_check(false, base .. '/old.json'))\n"
		"local v, file = dev:firmware_check(true)\n"
		"show(v, file, #assert(io.open(file, 'rb')):read('a'))\n"
		"show(dev:firmware_bootload(file))\n"
		"show(dev:firmware_check('saved.bin', base .. '/latest.json'))\n"
		"show(dev:firmware_check('bad.bin.out', base .. '/corrupt.json'))\n"
		"show(io.open('bad.bin.out'))\n"
		"show(dev:firmware_update())\n"
		"show(dev:firmware_update { from = base .. '/same.json' })\n"
		"show(dev:firmware_update { from = base .. '/old.json', force = true })\n"
		"show(dev:firmware_update { from = base .. '/status/500' })\n"
		"show(dev:firmware_update { from = base .. '/nobin.json' })\n"
		"show(dev.ver)\n"
		"show(pcall(dev.firmware_update, dev, { from = 3 }))\n"
		"pool:close()\n";
	char cwd[4096], want[4096], url[256];

	write_text("fw.lua", script);
	snprintf(url, sizeof url, "%s/releases.json", base);
	setenv("BATLAB_FIRMWARE_URL", url, 1);
	if (!getcwd(cwd, sizeof cwd) || chdir(dir) != 0) {
		ok(0, "chdir %s", dir);
		return;
	}
	run("lua fw.lua %s", base);
	if (chdir(cwd) != 0)
		printf("Bail out! chdir back\n");
	unsetenv("BATLAB_FIRMWARE_URL");
	snprintf(want, sizeof want,
	         "1\t8\n"
	         "1\t6\n"
	         "3\t8\tBatlab-Measure_V8.bin\t15360\n"
	         "1\ttrue\n"
	         "2\t8\tsaved.bin\n"
	         "3\tnil\tfirmware check: %s/bad.bin: not a valid image: checksum mismatch: the last "
	         "byte is 0x", base);
	okr(res.code == 0 && strncmp(res.out, want, strlen(want)) == 0,
	   "check: the version; with download the checked image saved (as the asset's name or the "
	   "file given); a corrupt one is not");
	okr(has(res.out, "EINVAL\n3\tnil\tbad.bin.out: No such file or directory\t2\n"),
	   "nothing saved from a corrupt download");
	okr(has(res.out, "\n2\ttrue\t8\n2\tfalse\t7\n2\ttrue\t6\n"),
	   "update: true, 8 flashed; false, 7 up to date; true, 6 with force");
	snprintf(want, sizeof want, "3\tnil\tfirmware update: %s/status/500: the server answered "
	         "HTTP 500\tEIO\n3\tnil\tfirmware update: %s/nobin.json: release v9 has no .bin asset "
	         "(its assets: Batlab-Measure_V9.hex)\tENOENT\n1\t7\n", base, base);
	okr(has(res.out, want), "failures: nil, message, code; the device still answers");
	okr(has(res.out, "2\tfalse\t") && has(res.out, "opts.from must be a URL string"),
	   "a bad option raises");
	okr(strncmp(read_text("saved.bin"), "batlab virtual measure firmware v7", 34) == 0,
	   "the saved image is the one served");
}

int main(void)
{
	plan_lazy();
	if (!find_batlab()) {
		printf("Bail out! no batlab binary at %s\n", batlab);
		return 1;
	}
	snprintf(dir, sizeof dir, "/tmp/batlab-fwtest-XXXXXX");
	if (!mkdtemp(dir) || httpd_start(&srv, dir) != 0) {
		printf("Bail out! cannot start the test HTTP server\n");
		return 1;
	}
	make_files();
	test_check();
	test_update();
	test_errors();
	test_pty_unit_untouched();
	test_lua();
	httpd_stop(&srv);
	if (system(NULL)) {
		char cmd[128];

		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", dir);
	}
	return done_testing();
}
