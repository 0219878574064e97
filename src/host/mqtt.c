/* mqtt.c - the MQTT telemetry client on the event loop (mqtt.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/bl.h"
#include "core/clock.h"
#include "host/csv.h"
#include "host/mqtt.h"
#include "host/resolve.h"

#define MOD "mqtt"
#define RETRY_US 1000000u
#define KEEPALIVE_S 30
#define TOPIC_MAX 256

/* An event or status published while the broker was away (or before it
 * answered the first time): they go out in order once connected, the
 * oldest dropped beyond HELD_MAX. Samples are never held. */
#define HELD_MAX 1000

struct held {
	struct held *next;
	size_t n;
	bool retain;
	char *payload;
	char topic[];
};

struct bl_mqtt {
	struct bl_loop *loop;
	struct mosquitto *mq;
	struct bl_io io;
	struct bl_timer tick;       /* keep-alive pings and retries */
	char prefix[TOPIC_MAX];     /* <prefix>/<node> */
	char host[256];
	int port;
	char tls_why[120];          /* why the broker's certificate was refused */
	bool connecting, connected, closing;
	struct bl_resolve *lookup;  /* the broker's name being looked up */
	struct bl_addrs addrs;      /* its addresses, tried in turn */
	int next_addr;
	uint64_t last_try_us;
	struct held *held, **held_tail;
	size_t nheld;
	/* QoS 1 messages (statuses, "online") the broker has not acknowledged:
	 * closing waits for them, as a socket closed with acknowledgements
	 * unread is reset, and the broker drops what it had not read yet */
	unsigned char unacked_mid[65536 / 8];
	size_t unacked;
	struct bl_mqtt_stats st;
};

static struct held *unhold(struct bl_mqtt *m)
{
	struct held *h = m->held;

	m->held = h->next;
	if (!m->held)
		m->held_tail = &m->held;
	m->nheld--;
	return h;
}

static void hold(struct bl_mqtt *m, const char *topic, const char *payload, size_t n, bool retain)
{
	size_t tl = strlen(topic) + 1;
	struct held *h = malloc(sizeof *h + tl + n + 1);

	if (!h) {
		m->st.dropped++;
		return;
	}
	if (m->nheld >= HELD_MAX) {
		free(unhold(m));
		m->st.dropped++;
	}
	h->next = NULL;
	h->n = n;
	h->retain = retain;
	memcpy(h->topic, topic, tl);
	h->payload = h->topic + tl;
	memcpy(h->payload, payload, n);
	*m->held_tail = h;
	m->held_tail = &h->next;
	m->nheld++;
}

static int publish(struct bl_mqtt *m, const char *topic, size_t n, const void *payload, bool retain)
{
	int mid = 0, rc = mosquitto_publish(m->mq, &mid, topic, (int)n, payload, retain ? 1 : 0, retain);

	if (rc == MOSQ_ERR_SUCCESS && retain) {
		m->unacked_mid[(mid & 0xffff) / 8] |= (unsigned char)(1u << (mid % 8));
		m->unacked++;
	}
	return rc;
}

static void on_publish(struct mosquitto *mq, void *ud, int mid)
{
	struct bl_mqtt *m = ud;
	unsigned char bit = (unsigned char)(1u << (mid % 8));

	(void)mq;
	if (m->unacked_mid[(mid & 0xffff) / 8] & bit) {
		m->unacked_mid[(mid & 0xffff) / 8] &= (unsigned char)~bit;
		m->unacked--;
	}
}

static void release(struct bl_mqtt *m, bool send)
{
	while (m->held) {
		struct held *h = unhold(m);
		if (send && publish(m, h->topic, h->n, h->payload, h->retain) == MOSQ_ERR_SUCCESS)
			m->st.published++;
		free(h);
	}
}

static void say_error(struct bl_mqtt *m, const char *msg)
{
	if (strcmp(msg, m->st.error) != 0 && !m->closing)
		BL_WARN(MOD, "%s (telemetry is dropped meanwhile)", msg);
	snprintf(m->st.error, sizeof m->st.error, "%s", msg);
}

static void set_error(struct bl_mqtt *m, const char *what, int rc)
{
	char msg[sizeof m->st.error];

	snprintf(msg, sizeof msg, "%.60s %.80s:%d: %.40s", what, m->host, m->port, mosquitto_strerror(rc));
	say_error(m, msg);
}

static void watch(struct bl_mqtt *m)
{
	int fd = mosquitto_socket(m->mq);
	unsigned ev = BL_IO_READ;

	if (fd < 0) {
		if (m->io.active)
			bl_io_stop(m->loop, &m->io);
		return;
	}
	if (m->io.active && m->io.fd != fd)
		bl_io_stop(m->loop, &m->io);
	m->io.fd = fd;
	if (mosquitto_want_write(m->mq) || m->connecting)
		ev |= BL_IO_WRITE;
	bl_io_start(m->loop, &m->io, ev);
}

static void connect_next(struct bl_mqtt *m);

/* The handshake failed on the broker's certificate (tls_info): said as
 * such, naming the host it was checked against, rather than libmosquitto's
 * "A TLS error occurred." */
static void refused(struct bl_mqtt *m)
{
	char msg[sizeof m->st.error];

	snprintf(msg, sizeof msg, "the MQTT broker %.50s:%d is refused: its certificate %.90s", m->host, m->port,
	         m->tls_why);
	m->tls_why[0] = '\0';
	say_error(m, msg);
}

static void lost(struct bl_mqtt *m, int rc)
{
	/* the name's next address, at once (localhost: ::1, then 127.0.0.1),
	 * the error said only when the last one fails too */
	bool next = m->connecting && !m->connected && !m->closing && m->next_addr > 0
	            && m->next_addr < m->addrs.n;

	if (!next && (m->connected || m->connecting) && m->tls_why[0])
		refused(m);
	else if (!next && (m->connected || m->connecting))
		set_error(m, m->connected ? "lost the MQTT broker" : "cannot reach the MQTT broker", rc);
	m->connected = m->connecting = false;
	m->st.connected = false;
	if (m->io.active)
		bl_io_stop(m->loop, &m->io);
	if (next)
		connect_next(m);
}

/* Connect to the next address the lookup gave: libmosquitto is given the
 * number, never the name, which it would look up again itself, blocking
 * the loop (with TLS too: the certificate is checked against the name by
 * the SSL_CTX, tls_setup). */
static void connect_next(struct bl_mqtt *m)
{
	int rc;

	m->connecting = true;
	m->tls_why[0] = '\0';
	rc = mosquitto_connect_async(m->mq, m->addrs.a[m->next_addr++], m->port, KEEPALIVE_S);
	if (rc != MOSQ_ERR_SUCCESS)
		lost(m, rc);
	else
		watch(m);
}

static void looked_up(void *ud, const struct bl_addrs *addrs)
{
	struct bl_mqtt *m = ud;

	m->lookup = NULL;
	if (addrs->n == 0) {
		char msg[sizeof m->st.error];
		snprintf(msg, sizeof msg, "cannot reach the MQTT broker: %s", addrs->error);
		say_error(m, msg);
		m->connecting = false;
		return;
	}
	m->addrs = *addrs;
	m->next_addr = 0;
	connect_next(m);
}

/* Every try looks the name up again (the broker may have moved); a
 * number is its own address. */
static void try_connect(struct bl_mqtt *m)
{
	char err[200];

	m->last_try_us = bl_clock_monotonic_us();
	m->connecting = true;
	if (!bl_host_needs_lookup(m->host)) {
		m->addrs.n = 1;
		snprintf(m->addrs.a[0], sizeof m->addrs.a[0], "%.45s", m->host);
		m->next_addr = 0;
		connect_next(m);
		return;
	}
	m->lookup = bl_resolve_start(m->loop, m->host, looked_up, m, err, sizeof err);
	if (!m->lookup) {
		say_error(m, err);
		m->connecting = false;
	}
}

static void on_connect(struct mosquitto *mq, void *ud, int rc)
{
	struct bl_mqtt *m = ud;
	char topic[TOPIC_MAX + 16];

	if (rc != 0) {
		set_error(m, "the MQTT broker refused the connection", MOSQ_ERR_CONN_REFUSED);
		m->connecting = false;
		return;
	}
	m->connecting = false;
	m->connected = m->st.connected = true;
	m->st.error[0] = '\0';
	snprintf(topic, sizeof topic, "%s/online", m->prefix);
	(void)mq;
	publish(m, topic, 4, "true", true);
	release(m, true);
}

static void on_disconnect(struct mosquitto *mq, void *ud, int rc)
{
	(void)mq;
	lost(ud, rc ? MOSQ_ERR_CONN_LOST : MOSQ_ERR_SUCCESS);
}

static void on_io(struct bl_loop *loop, struct bl_io *io, unsigned events, void *ud)
{
	struct bl_mqtt *m = ud;
	int rc = MOSQ_ERR_SUCCESS;

	(void)loop;
	(void)io;
	/* while connecting, a socket ready to write goes to loop_read too: a
	 * TLS handshake under way goes on only there (libmosquitto's
	 * loop_write leaves it alone, and the broker says nothing until it has
	 * our hello); with nothing to read it reads nothing */
	if ((events & BL_IO_READ) || (m->connecting && (events & BL_IO_WRITE)))
		rc = mosquitto_loop_read(m->mq, 1);
	if (rc == MOSQ_ERR_SUCCESS && (events & BL_IO_WRITE))
		rc = mosquitto_loop_write(m->mq, 1);
	if (rc != MOSQ_ERR_SUCCESS) {
		lost(m, rc);
		return;
	}
	watch(m);
}

static void on_tick(struct bl_loop *loop, struct bl_timer *t, void *ud)
{
	struct bl_mqtt *m = ud;

	(void)loop;
	(void)t;
	if (m->lookup)
		return; /* the name is being looked up */
	if (m->connected || m->connecting) {
		if (mosquitto_loop_misc(m->mq) != MOSQ_ERR_SUCCESS)
			lost(m, MOSQ_ERR_CONN_LOST);
		else
			watch(m);
	} else if (bl_clock_monotonic_us() - m->last_try_us >= RETRY_US) {
		try_connect(m);
	}
}

/* OpenSSL's word on the handshake. At its start: the server's name (SNI)
 * is the name the user gave, not the address libmosquitto was given and
 * set (SSL_set_tlsext_host_name in its net__socket_connect_step3, just
 * before SSL_connect: there is no other hook in between), none for a
 * number (RFC 6066). An alert sent: when it is for the broker's
 * certificate, why (for lost() to say). */
static void tls_info(const SSL *ssl, int where, int ret)
{
	struct bl_mqtt *m = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	long v;

	(void)ret;
	if (where & SSL_CB_HANDSHAKE_START) {
		m->tls_why[0] = '\0';
		/* the SSL is libmosquitto's, not const: OpenSSL's callback type says
		 * only that it does not expect to be changed from here */
		SSL_set_tlsext_host_name((SSL *)ssl, bl_host_needs_lookup(m->host) ? m->host : NULL);
	} else if ((where & SSL_CB_ALERT) && (where & SSL_CB_WRITE)
	           && (v = SSL_get_verify_result(ssl)) != X509_V_OK) {
		if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
			snprintf(m->tls_why, sizeof m->tls_why, "is not for '%.70s'", m->host);
		else
			snprintf(m->tls_why, sizeof m->tls_why, "does not verify: %.80s",
			         X509_verify_cert_error_string(v));
	}
}

/* The CA certificates, the client's certificate and key (from the lab
 * configuration file) into ctx, or false with why in err. */
static bool tls_files(SSL_CTX *ctx, const struct bl_mqtt_opts *o, char *err, size_t errlen)
{
	const char *what = NULL, *file = NULL, *why;
	unsigned long e;

	if (SSL_CTX_load_verify_locations(ctx, o->cafile, o->capath) != 1)
		what = "CA certificates", file = o->cafile ? o->cafile : o->capath;
	else if (o->certfile && SSL_CTX_use_certificate_chain_file(ctx, o->certfile) != 1)
		what = "client certificate", file = o->certfile;
	else if (o->keyfile && SSL_CTX_use_PrivateKey_file(ctx, o->keyfile, SSL_FILETYPE_PEM) != 1)
		what = "client key", file = o->keyfile;
	else if ((o->certfile || o->keyfile) && SSL_CTX_check_private_key(ctx) != 1)
		what = "client key (not the certificate's)", file = o->keyfile ? o->keyfile : o->certfile;
	if (!what)
		return true;
	e = ERR_peek_error(); /* the first: the cause ("No such file...") */
	why = ERR_SYSTEM_ERROR(e) ? strerror(ERR_GET_REASON(e)) : ERR_reason_error_string(e);
	snprintf(err, errlen, "cannot load the MQTT %s from %s: %s", what, file, why ? why : "unknown error");
	ERR_clear_error();
	return false;
}

/* TLS: libmosquitto connects to the addresses batlab looked up, and the
 * broker's certificate is checked against the name by OpenSSL during the
 * handshake, before CONNECT (and any credentials) goes out.
 *
 * The SSL_CTX is ours and complete: its verify parameters name the host
 * (each SSL libmosquitto makes from it inherits them), it holds the CA
 * files and the client's certificate, and libmosquitto, with
 * MOSQ_OPT_SSL_CTX_WITH_DEFAULTS off (it is on unless said), uses it as it
 * is (net__init_ssl_ctx) and installs no verify callback of its own. Not
 * WITH_DEFAULTS: libmosquitto
 * 2.0.11 (Debian 12) then installs a callback that finds no client on the
 * SSL, its TLS being initialised only for a CTX it makes itself, and
 * refuses every certificate (fixed in 2.0.15). "Insecure" keeps any
 * version from checking the host against the address it is given. */
static bool tls_setup(struct bl_mqtt *m, const struct bl_mqtt_opts *o, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	X509_VERIFY_PARAM *vp;
	bool ok;

	if (!ctx) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	vp = SSL_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	ok = bl_host_needs_lookup(m->host) ? X509_VERIFY_PARAM_set1_host(vp, m->host, 0) == 1
	                                   : X509_VERIFY_PARAM_set1_ip_asc(vp, m->host) == 1;
	if (!ok)
		snprintf(err, errlen, "the MQTT broker's host '%s' cannot be checked against a certificate", m->host);
	SSL_CTX_set_app_data(ctx, m);
	SSL_CTX_set_info_callback(ctx, tls_info);
	ok = ok && tls_files(ctx, o, err, errlen);
	if (ok && (mosquitto_void_option(m->mq, MOSQ_OPT_SSL_CTX, ctx) != MOSQ_ERR_SUCCESS
	           || mosquitto_int_option(m->mq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0) != MOSQ_ERR_SUCCESS
	           || mosquitto_tls_insecure_set(m->mq, true) != MOSQ_ERR_SUCCESS)) {
		snprintf(err, errlen, "this libmosquitto takes no TLS context");
		ok = false;
	}
	/* libmosquitto took its own reference (mosquitto_void_option), which
	 * mosquitto_destroy drops, before m is freed */
	SSL_CTX_free(ctx);
	return ok;
}

static bool configure(struct bl_mqtt *m, const struct bl_mqtt_opts *o, char *err, size_t errlen)
{
	char topic[TOPIC_MAX + 16];
	int rc;

	snprintf(topic, sizeof topic, "%s/online", m->prefix);
	rc = mosquitto_will_set(m->mq, topic, 5, "false", 1, true);
	if (rc == MOSQ_ERR_SUCCESS && (o->username || o->password))
		rc = mosquitto_username_pw_set(m->mq, o->username, o->password);
	if (rc != MOSQ_ERR_SUCCESS) {
		snprintf(err, errlen, "%s", mosquitto_strerror(rc));
		return false;
	}
	return !(o->cafile || o->capath) || tls_setup(m, o, err, errlen);
}

struct bl_mqtt *bl_mqtt_open(struct bl_loop *loop, const struct bl_mqtt_opts *o, char *err,
                             size_t errlen)
{
	struct bl_mqtt *m = calloc(1, sizeof *m);

	if (!m) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	mosquitto_lib_init();
	m->loop = loop;
	m->held_tail = &m->held;
	snprintf(m->prefix, sizeof m->prefix, "%s/%s", o->prefix ? o->prefix : "batlab", o->node);
	snprintf(m->host, sizeof m->host, "%s", o->host);
	m->port = o->port > 0 ? o->port : (o->cafile || o->capath) ? 8883 : 1883;
	m->mq = mosquitto_new(NULL, true, m);
	if (!m->mq)
		snprintf(err, errlen, "out of memory");
	if (!m->mq || !configure(m, o, err, errlen)) {
		if (m->mq)
			mosquitto_destroy(m->mq);
		free(m);
		return NULL;
	}
	mosquitto_connect_callback_set(m->mq, on_connect);
	mosquitto_disconnect_callback_set(m->mq, on_disconnect);
	mosquitto_publish_callback_set(m->mq, on_publish);
	bl_io_init(&m->io, -1, on_io, m);
	bl_io_foreign(&m->io); /* libmosquitto opens its sockets itself */
	bl_timer_init(&m->tick, on_tick, m);
	bl_timer_after(loop, &m->tick, 1000000u, 1000000u);
	try_connect(m);
	return m;
}

bool bl_mqtt_publish(struct bl_mqtt *m, const char *sub, const char *payload, size_t n,
                     enum bl_mqtt_kind kind)
{
	bool retain = kind == BL_MQTT_RETAINED;
	char topic[TOPIC_MAX * 2];
	int rc;

	snprintf(topic, sizeof topic, "%s%s%s", m->prefix, sub[0] ? "/" : "", sub);
	if (!m->connected) {
		if (!m->connecting && bl_clock_monotonic_us() - m->last_try_us >= RETRY_US)
			try_connect(m);
		if (kind != BL_MQTT_LIVE) {
			hold(m, topic, payload, n, kind == BL_MQTT_RETAINED);
			return true;
		}
		m->st.dropped++;
		return false;
	}
	/* the broker has not taken the last ones yet: live data can wait no
	 * longer than that, an event or a status can */
	if (kind == BL_MQTT_LIVE && mosquitto_want_write(m->mq)) {
		m->st.dropped++;
		return false;
	}
	rc = publish(m, topic, n, payload, retain);
	if (rc != MOSQ_ERR_SUCCESS) {
		lost(m, rc);
		m->st.dropped++;
		return false;
	}
	/* write now when the socket takes it, else when the loop says it can */
	if (mosquitto_loop_write(m->mq, 1) != MOSQ_ERR_SUCCESS) {
		lost(m, MOSQ_ERR_CONN_LOST);
		return false;
	}
	watch(m);
	m->st.published++;
	return true;
}

void bl_mqtt_stats(const struct bl_mqtt *m, struct bl_mqtt_stats *out)
{
	*out = m->st;
}

void bl_mqtt_close(struct bl_mqtt *m, double wait_s)
{
	uint64_t until;

	if (!m)
		return;
	/* a name still being looked up: its answer, so that a name that does
	 * not resolve is said even by a run shorter than the lookup */
	if (m->lookup && bl_resolve_finish(m->lookup, wait_s))
		m->lookup = NULL;
	/* a connection still under way (a run shorter than connecting): the
	 * statuses held for it go out once it is up */
	until = bl_clock_monotonic_us() + (uint64_t)(wait_s * 1e6);
	while (m->connecting && !m->connected && !m->lookup && bl_clock_monotonic_us() < until) {
		int rc = mosquitto_loop(m->mq, 100, 1);
		if (rc != MOSQ_ERR_SUCCESS)
			lost(m, rc); /* said (a refused certificate too), the next address tried */
	}
	m->closing = true;
	bl_timer_stop(m->loop, &m->tick);
	bl_resolve_cancel(m->lookup);
	if (m->io.active)
		bl_io_stop(m->loop, &m->io);
	if (m->connected) {
		char topic[TOPIC_MAX + 16];
		snprintf(topic, sizeof topic, "%s/online", m->prefix);
		publish(m, topic, 5, "false", true);
		/* what is queued (the last status, the goodbye) goes out, and is
		 * acknowledged, before the goodbye */
		until = bl_clock_monotonic_us() + (uint64_t)(wait_s * 1e6);
		while ((m->unacked > 0 || mosquitto_want_write(m->mq)) && bl_clock_monotonic_us() < until)
			if (mosquitto_loop(m->mq, 100, 1) != MOSQ_ERR_SUCCESS)
				break;
		mosquitto_disconnect(m->mq);
		while (mosquitto_want_write(m->mq) && bl_clock_monotonic_us() < until)
			if (mosquitto_loop(m->mq, 100, 1) != MOSQ_ERR_SUCCESS)
				break;
	}
	release(m, false);
	mosquitto_destroy(m->mq);
	free(m);
}

void bl_json_text(struct bl_buf *b, const char *s)
{
	bl_buf_addc(b, '"');
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			bl_buf_addc(b, '\\');
			bl_buf_addc(b, (char)ch);
		} else if (ch < 0x20) {
			char esc[8];
			snprintf(esc, sizeof esc, "\\u%04x", ch);
			bl_buf_adds(b, esc);
		} else {
			bl_buf_addc(b, (char)ch);
		}
	}
	bl_buf_addc(b, '"');
}
