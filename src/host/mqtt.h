/* mqtt.h - live telemetry to an MQTT broker (docs/lab.md): per channel
 * its samples, its events and a retained status, under
 * <prefix>/<host>/<serial>/<channel>/, and a retained
 * <prefix>/<host>/online that the broker sets to "false" itself (the last
 * will) when batlab goes without saying goodbye.
 *
 * The client is libmosquitto's, its socket watched by the event loop
 * (never its own thread, never a blocking call): reads and writes happen
 * when the socket is ready. Telemetry is live, not a record: while the
 * broker is away, or slower than the samples come, samples are dropped
 * (the files and the database keep everything), and the connection is
 * tried again at most once a second of real time. The broker being down
 * never stalls or stops a test.
 *
 * libmosquitto is given the addresses batlab looked up (resolve.h), never
 * the name. With TLS the broker's certificate is checked against the host
 * as given (a name, or a number's IP address) in the handshake, before
 * CONNECT goes out, and the name is sent as the server name (SNI).
 */
#ifndef BL_MQTT_H
#define BL_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "device/channel.h"

struct bl_mqtt;

struct bl_mqtt_opts {
	const char *host;            /* broker */
	int port;                    /* 0: 1883, or 8883 with TLS */
	const char *prefix;          /* topic prefix; NULL: "batlab" */
	const char *node;            /* this host's name in the topics */
	/* from the configuration file only (never the command line) */
	const char *username, *password;
	const char *cafile, *capath;  /* either set: TLS, these CAs only */
	const char *certfile, *keyfile;
};

struct bl_mqtt_stats {
	uint64_t published, dropped;
	bool connected;
	char error[200];
};

/* NULL with a message in err for bad options or no memory; a broker that
 * is not there is no error. */
struct bl_mqtt *bl_mqtt_open(struct bl_loop *loop, const struct bl_mqtt_opts *o, char *err,
                             size_t errlen);
enum bl_mqtt_kind {
	BL_MQTT_LIVE,       /* a sample: QoS 0, dropped when it cannot go now */
	BL_MQTT_EVENT,      /* QoS 0, held (in order, bounded) while the broker is away */
	BL_MQTT_RETAINED,   /* a status: QoS 1, retained, held like an event */
};

/* Publish under <prefix>/<node>/<sub> (sub may be empty). Returns false
 * when the message was dropped. */
bool bl_mqtt_publish(struct bl_mqtt *m, const char *sub, const char *payload, size_t n,
                     enum bl_mqtt_kind kind);
void bl_mqtt_stats(const struct bl_mqtt *m, struct bl_mqtt_stats *out);
/* Say "online": false, disconnect cleanly (waiting at most wait_s of real
 * time for the broker to take what is queued), free. NULL ok. */
void bl_mqtt_close(struct bl_mqtt *m, double wait_s);

/* JSON string literal of s (quoted, escaped) appended to b. */
struct bl_buf;
void bl_json_text(struct bl_buf *b, const char *s);

/* ---- one channel's samples (mqttfeed.c) ---------------------------------- */

struct bl_mqttfeed;
/* Every sample of ch as <serial>/<channel>/sample JSON: time (s since
 * t0), cell, voltage, current, temp_c, charge_ah, energy_wh, step,
 * step_name, cycle, cycle_kind, mode. */
struct bl_mqttfeed *bl_mqttfeed_open(struct bl_mqtt *m, struct bl_channel *ch, const char *cell,
                                     uint32_t serial, int channel, double t0);
void bl_mqttfeed_label(struct bl_mqttfeed *f, int step, const char *step_name, int cycle,
                       const char *cycle_kind);
/* A resumed step's samples go on from what it had done (bl_recorder_carry). */
void bl_mqttfeed_carry(struct bl_mqttfeed *f, double step_time, double charge_ah, double energy_wh);
void bl_mqttfeed_close(struct bl_mqttfeed *f);

#endif
