/* support/httpd.h - a tiny HTTP/1.0 server on a loopback port, for the
 * tests of `batlab firmware check|update` (no internet in tests).
 *
 * It serves the files of one directory (GET /NAME), plus:
 *   /status/NNN          an empty answer with status NNN (404, 500, ...)
 *   /redirect/NAME       302 to /NAME (GitHub's assets redirect too)
 *   /truncate/NAME       NAME's headers, then half its bytes and a close
 * and appends "PATH USER-AGENT" per request to DIR/requests.log (written
 * before the answer, so a finished client's requests are all there).
 *
 * The sockets exist before httpd_start returns, so a client may connect
 * at once: no waiting, no polling. `closed_port` is a port bound but not
 * listening, where a connection is refused.
 */
#ifndef BL_TEST_HTTPD_H
#define BL_TEST_HTTPD_H

#include <sys/types.h>

struct httpd {
	pid_t pid;          /* the serving child */
	int port;
	int closed_port;
	int closed_fd;      /* keeps closed_port taken */
};

/* 0, or -1 with errno. */
int httpd_start(struct httpd *h, const char *dir);
void httpd_stop(struct httpd *h);

#endif
