/* http.c - fetching one document over HTTP(S) into memory (see http.h). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core/bl.h"
#include "host/http.h"

#define CONNECT_TIMEOUT_S 15L
#define STALL_TIMEOUT_S 30L   /* no byte for this long: give up */
#define MAX_REDIRECTS 5L

struct sink {
	char *buf;
	size_t len, cap, max;
	bool too_large;
};

/* Returning less than given makes curl stop with CURLE_WRITE_ERROR. */
static size_t on_data(char *data, size_t size, size_t n, void *ud)
{
	struct sink *s = ud;
	size_t add = size * n;

	if (s->len + add > s->max) {
		s->too_large = true;
		return 0;
	}
	if (s->len + add + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 16384;
		char *nb;

		while (cap < s->len + add + 1)
			cap *= 2;
		if (!(nb = realloc(s->buf, cap)))
			return 0;
		s->buf = nb;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, data, add);
	s->len += add;
	s->buf[s->len] = '\0';
	return add;
}

/* Everything a transfer is set up with, in one place. */
static struct curl_slist *setup(CURL *c, const char *url, const char *accept, struct sink *s,
                                char *curl_err)
{
	struct curl_slist *headers = NULL;

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
	/* A file:// or other scheme from a redirect is not what was asked. */
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, STALL_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	/* GitHub's API refuses requests without a User-Agent. */
	curl_easy_setopt(c, CURLOPT_USERAGENT, "batlab/" BL_VERSION);
	if (accept) {
		char h[256];

		snprintf(h, sizeof h, "Accept: %s", accept);
		headers = curl_slist_append(NULL, h);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	}
	return headers;
}

int bl_http_get(const char *url, const char *accept, size_t max, char **body, size_t *len,
                char *err, size_t errlen)
{
	char curl_err[CURL_ERROR_SIZE] = "";
	struct sink s = { NULL, 0, 0, max, false };
	struct curl_slist *headers;
	long code = 0;
	CURLcode rc;
	CURL *c;

	*body = NULL;
	*len = 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c = curl_easy_init())) {
		snprintf(err, errlen, "%s: cannot initialise libcurl", url);
		return BL_ERR_MEM;
	}
	headers = setup(c, url, accept, &s, curl_err);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	curl_slist_free_all(headers);
	curl_global_cleanup();
	if (rc == CURLE_OK && (code < 200 || code > 299)) {
		snprintf(err, errlen, "%s: the server answered HTTP %ld", url, code);
	} else if (rc != CURLE_OK) {
		if (s.too_large)
			snprintf(err, errlen, "%s: larger than %zu bytes", url, max);
		else
			snprintf(err, errlen, "%s: %s", url, curl_err[0] ? curl_err : curl_easy_strerror(rc));
	} else {
		if (!s.buf && !(s.buf = calloc(1, 1))) {
			snprintf(err, errlen, "out of memory");
			return BL_ERR_MEM;
		}
		*body = s.buf;
		*len = s.len;
		return BL_OK;
	}
	free(s.buf);
	return BL_ERR_IO;
}
