/* mqttfeed.c - one channel's samples as MQTT messages (mqtt.h): JSON on
 * <serial>/<channel>/sample, one per sample, with the labels last set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "core/regs.h"
#include "host/labels.h"
#include "host/csv.h"
#include "host/mqtt.h"

#define LABEL_MAX 64

struct bl_mqttfeed {
	struct bl_chan_listener listener;   /* first: the listener is the feed */
	struct bl_mqtt *m;
	char cell[LABEL_MAX], topic[48];
	double t0;
	struct bl_labels lb;
	struct bl_carry carry;              /* a resumed step's, as the CSV's */
	struct bl_buf msg;
};

static void add_number(struct bl_buf *b, const char *key, double v, int prec)
{
	bl_buf_addc(b, ',');
	bl_json_text(b, key);
	bl_buf_addc(b, ':');
	if (v != v) {
		bl_buf_adds(b, "null");
		return;
	}
	bl_csv_fixed(b, v, prec);
}

static void add_text(struct bl_buf *b, const char *key, const char *v)
{
	bl_buf_addc(b, ',');
	bl_json_text(b, key);
	bl_buf_addc(b, ':');
	bl_json_text(b, v);
}

static void on_sample(struct bl_chan_listener *l, const struct bl_sample *s, int status)
{
	struct bl_mqttfeed *f = (struct bl_mqttfeed *)(void *)l;
	struct bl_buf *b = &f->msg;
	const char *mode;
	double step_time, ah, wh;

	if (status != BL_OK || !s)
		return;
	step_time = s->step_time, ah = s->charge_ah, wh = s->energy_wh;
	bl_carry_apply(&f->carry, s->step_seq, &step_time, &ah, &wh);
	mode = bl_mode_name(s->mode);
	b->len = 0;
	bl_buf_adds(b, "{\"time\":");
	bl_csv_fixed(b, s->time - f->t0, 3);
	add_text(b, "cell", f->cell);
	add_number(b, "voltage", s->voltage, 4);
	add_number(b, "current", s->current, 4);
	add_number(b, "temp_c", s->temp_c, 2);
	add_number(b, "charge_ah", ah, 6);
	add_number(b, "energy_wh", wh, 6);
	add_number(b, "step", f->lb.step, 0);
	add_text(b, "step_name", f->lb.step_name);
	add_number(b, "cycle", f->lb.cycle, 0);
	add_text(b, "cycle_kind", f->lb.cycle_kind);
	add_text(b, "mode", mode ? mode : "?");
	bl_buf_addc(b, '}');
	if (!b->oom)
		bl_mqtt_publish(f->m, f->topic, b->p, b->len, BL_MQTT_LIVE);
}

struct bl_mqttfeed *bl_mqttfeed_open(struct bl_mqtt *m, struct bl_channel *ch, const char *cell,
                                     uint32_t serial, int channel, double t0)
{
	struct bl_mqttfeed *f = calloc(1, sizeof *f);

	if (!f)
		return NULL;
	f->m = m;
	snprintf(f->cell, sizeof f->cell, "%s", cell);
	snprintf(f->topic, sizeof f->topic, "%u/%d/sample", (unsigned)serial, channel);
	bl_labels_init(&f->lb);
	f->t0 = t0;
	f->listener.fn = on_sample;
	bl_channel_listen(ch, &f->listener);
	return f;
}

void bl_mqttfeed_label(struct bl_mqttfeed *f, int step, const char *step_name, int cycle,
                       const char *cycle_kind)
{
	if (bl_labels_set(&f->lb, step, step_name, cycle, cycle_kind))
		bl_carry_set(&f->carry, 0, 0, 0);
}

void bl_mqttfeed_carry(struct bl_mqttfeed *f, double step_time, double charge_ah, double energy_wh)
{
	bl_carry_set(&f->carry, step_time, charge_ah, energy_wh);
}

void bl_mqttfeed_close(struct bl_mqttfeed *f)
{
	if (!f)
		return;
	if (f->listener.ch)
		bl_channel_unlisten(&f->listener);
	bl_buf_free(&f->msg);
	free(f);
}
