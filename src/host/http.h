/* http.h - fetching one document over HTTP(S) into memory (libcurl).
 *
 * Only what batlab needs from the network: GET a URL, follow redirects
 * (release assets on GitHub redirect to a download host), and tell a
 * network failure from an HTTP error status, each as a message that
 * names the URL. The call blocks until the transfer ends or a timeout
 * (connect 15 s, then no data for 30 s) gives up.
 */
#ifndef BL_HTTP_H
#define BL_HTTP_H

#include <stddef.h>

/* GET url. On BL_OK *body is malloc'd (NUL-terminated, *len bytes before
 * the NUL). A body over `max` bytes, a network failure (no route,
 * connection refused, DNS, TLS, timeout) or an HTTP status other than 2xx
 * give BL_ERR_IO with err set to "URL: what went wrong". `accept` is the
 * Accept header (NULL: none). */
int bl_http_get(const char *url, const char *accept, size_t max, char **body, size_t *len,
                char *err, size_t errlen);

#endif
