/* link/serial.c - real serial ports through libserialport: opening,
 * configuration, enumeration by USB VID:PID, and the generic "open by
 * path" that falls back to termios for paths libserialport refuses.
 *
 * Once open, a serial link is a descriptor link (tty.c): we poll the
 * port's descriptor ourselves, because sp_wait(..., 0) means "forever" and
 * the loop needs zero-timeout polls.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <libserialport.h>

#include "core/bl.h"
#include "link/link.h"

#define MOD "link"

static void serial_release(int fd, void *ctx)
{
	struct sp_port *port = ctx;

#ifdef TIOCNXCL
	/* Root ignores TIOCEXCL, others would be locked out until the last
	 * close; undo it explicitly. */
	ioctl(fd, TIOCNXCL);
#else
	(void)fd;
#endif
	sp_close(port);
	sp_free_port(port);
}

static int sp_status(int e)
{
	switch (e) {
	case ENOENT:
	case ENODEV:
	case ENXIO:
		return BL_ERR_NOTFOUND;
	case EBUSY:
		return BL_ERR_BUSY;
	default:
		return BL_ERR_IO;
	}
}

/* Like bl_link_open_serial, but tells "libserialport refuses this path"
 * (returns 1) apart from real failures. */
static int open_serial(const char *path, struct bl_link **out, char *err, size_t errlen)
{
	struct sp_port *port = NULL;
	int fd = -1, e;

	if (sp_get_port_by_name(path, &port) != SP_OK)
		return 1;
	if (sp_open(port, SP_MODE_READ_WRITE) != SP_OK) {
		e = sp_last_error_code();
		if (e == EBUSY)
			snprintf(err, errlen, "%s: in use by another program", path);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(e));
		sp_free_port(port);
		return sp_status(e);
	}
	if (sp_set_baudrate(port, BL_LINK_BAUD) != SP_OK ||
	    sp_set_bits(port, 8) != SP_OK ||
	    sp_set_parity(port, SP_PARITY_NONE) != SP_OK ||
	    sp_set_stopbits(port, 1) != SP_OK ||
	    sp_set_flowcontrol(port, SP_FLOWCONTROL_NONE) != SP_OK ||
	    sp_get_port_handle(port, &fd) != SP_OK) {
		char *msg = sp_last_error_message();
		snprintf(err, errlen, "%s: cannot set 38400 8N1: %s", path, msg ? msg : "error");
		sp_free_error_message(msg);
		sp_close(port);
		sp_free_port(port);
		return BL_ERR_IO;
	}
#ifdef TIOCEXCL
	/* Keeps non-root programs that do not flock (e.g. a terminal emulator)
	 * off the port. */
	ioctl(fd, TIOCEXCL);
#endif
	sp_flush(port, SP_BUF_BOTH);
	return bl_link_fd_adopt(fd, path, "serial", serial_release, port, out, err, errlen);
}

int bl_link_open_serial(const char *path, struct bl_link **out, char *err, size_t errlen)
{
	int r = open_serial(path, out, err, errlen);

	if (r == 1) {
		snprintf(err, errlen, "%s: not a serial port libserialport can open", path);
		return BL_ERR_NOTFOUND;
	}
	return r;
}

int bl_link_open(const char *path, struct bl_link **out, char *err, size_t errlen)
{
	int r = open_serial(path, out, err, errlen);

	if (r == 1) {
		BL_DEBUG(MOD, "%s: libserialport refuses it, using termios", path);
		return bl_link_open_tty(path, out, err, errlen);
	}
	return r;
}

/* Natural order, so /dev/ttyACM2 comes before /dev/ttyACM10. */
static int cmp_path(const void *pa, const void *pb)
{
	const char *a = *(char *const *)pa, *b = *(char *const *)pb;

	while (*a && *b) {
		if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
			unsigned long x = strtoul(a, (char **)&a, 10);
			unsigned long y = strtoul(b, (char **)&b, 10);
			if (x != y)
				return x < y ? -1 : 1;
			continue;
		}
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		a++;
		b++;
	}
	return (unsigned char)*a - (unsigned char)*b;
}

int bl_link_list_batlabs(char ***paths)
{
	struct sp_port **ports = NULL;
	char **out = NULL;
	int n = 0, cap = 0;

	*paths = NULL;
	if (sp_list_ports(&ports) != SP_OK)
		return BL_ERR_IO;
	for (int i = 0; ports[i]; i++) {
		int vid = 0, pid = 0;
		char *name;
		if (sp_get_port_transport(ports[i]) != SP_TRANSPORT_USB)
			continue;
		if (sp_get_port_usb_vid_pid(ports[i], &vid, &pid) != SP_OK)
			continue;
		if (vid != BL_BATLAB_VID || pid != BL_BATLAB_PID)
			continue;
		if (n == cap) {
			char **p = realloc(out, (size_t)(cap ? cap * 2 : 4) * sizeof *out);
			if (!p)
				goto nomem;
			out = p;
			cap = cap ? cap * 2 : 4;
		}
		name = strdup(sp_get_port_name(ports[i]));
		if (!name)
			goto nomem;
		out[n++] = name;
	}
	sp_free_port_list(ports);
	if (n > 1)
		qsort(out, (size_t)n, sizeof *out, cmp_path);
	*paths = out;
	return n;
nomem:
	sp_free_port_list(ports);
	bl_link_list_free(out, n);
	return BL_ERR_MEM;
}

void bl_link_list_free(char **paths, int count)
{
	for (int i = 0; i < count; i++)
		free(paths[i]);
	free(paths);
}
