/* sim/layout_describe.c - a layout written back as JSON, every device,
 * serial, cell and parameter spelled out, as `batlab sim --describe`
 * prints it. Numbers are written so that the text parses back to a
 * bit-identical layout.
 */
#include "sim/layout.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/bl.h"
#include "sim/layout_json.h"
#include "sim/layout_parts.h"

struct sb {
	char *buf;
	size_t len, cap;
	bool oom;
};

static void sb_add(struct sb *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_add(struct sb *s, const char *fmt, ...)
{
	if (s->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			s->oom = true;
			return;
		}
		if ((size_t)n < s->cap - s->len) {
			s->len += (size_t)n;
			return;
		}
		size_t ncap = s->cap * 2 + (size_t)n;
		char *nb = realloc(s->buf, ncap);
		if (!nb) {
			s->oom = true;
			return;
		}
		s->buf = nb;
		s->cap = ncap;
	}
}

/* The shortest decimal that reads back as the same double, so that a
 * description parses to exactly the layout it came from. */
static void sb_num(struct sb *s, double v)
{
	char tmp[40];
	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(tmp, sizeof tmp, "%.0f", v);
		sb_add(s, "%s", tmp);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof tmp, "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	sb_add(s, "%s", tmp);
}

static void sb_str(struct sb *s, const char *str)
{
	sb_add(s, "\"");
	for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
		if (*p == '"' || *p == '\\')
			sb_add(s, "\\%c", *p);
		else if (*p < 0x20)
			sb_add(s, "\\u%04x", *p);
		else
			sb_add(s, "%c", *p);
	}
	sb_add(s, "\"");
}

static void sb_seed(struct sb *s, uint64_t seed)
{
	if (seed <= (uint64_t)BL_JW_MAX_EXACT_INT)
		sb_add(s, "%" PRIu64, seed);
	else
		sb_add(s, "\"%" PRIu64 "\"", seed);
}

static void describe_cell(struct sb *s, const struct bl_cell_params *p, const char *indent)
{
	sb_add(s, "{\n%s  \"profile\": ", indent);
	sb_str(s, p->profile);
	for (size_t i = 0; i < bl_layout_ncell_fields; i++) {
		const struct cell_field *f = &bl_layout_cell_fields[i];
		sb_add(s, ",\n%s  \"%s\": ", indent, f->name);
		if (f->type == F_BOOL)
			sb_add(s, "%s", p->reversed ? "true" : "false");
		else
			sb_num(s, cell_num_get(p, f));
	}
	sb_add(s, ",\n%s  \"ocv\": [", indent);
	for (int i = 0; i < p->ocv_points; i++) {
		sb_add(s, "%s[", i ? ", " : "");
		sb_num(s, p->ocv_soc[i]);
		sb_add(s, ", ");
		sb_num(s, p->ocv_v[i]);
		sb_add(s, "]");
	}
	sb_add(s, "]\n%s}", indent);
}

static void describe_fault(struct sb *s, const struct bl_fault *f)
{
	const struct fault_kind_info *k = bl_layout_fault_kind_by_kind(f->kind);
	sb_add(s, "{\"at\": ");
	sb_num(s, (double)f->at_us / 1e6);
	sb_add(s, ", \"kind\": \"%s\"", k ? k->name : "unknown");
	if (!k)
		sb_add(s, ", \"comment\": \"unknown kind %d\"", (int)f->kind);
	if (k && k->slot)
		sb_add(s, ", \"slot\": %d", f->slot);
	if (k && k->count)
		sb_add(s, ", \"count\": %d", f->count);
	if (k && k->value != NO_VALUE) {
		sb_add(s, ", \"value\": ");
		sb_num(s, f->value);
	}
	if (k && k->cell) {
		sb_add(s, ", \"cell\": ");
		describe_cell(s, &f->cell, "          ");
	}
	sb_add(s, "}");
}

char *bl_sim_layout_describe(const struct bl_sim_layout *l)
{
	struct sb s = { .cap = 4096 };
	s.buf = malloc(s.cap);
	if (!s.buf)
		return NULL;
	s.buf[0] = 0;
	int n = l ? l->ndevices : 0;
	sb_add(&s, "{\n  \"count\": %d,\n  \"devices\": [", n);
	for (int i = 0; i < n; i++) {
		const struct bl_simdev_config *d = &l->devices[i];
		sb_add(&s, "%s\n    {\n", i ? "," : "");
		sb_add(&s, "      \"serial\": %" PRIu32 ",\n",
		       (uint32_t)d->device_id << 16 | d->serial_num);
		sb_add(&s, "      \"vcc\": ");
		sb_num(&s, d->vcc_v);
		sb_add(&s, ",\n      \"psu\": %s,\n      \"psu_v\": ", d->psu ? "true" : "false");
		sb_num(&s, d->psu_v);
		sb_add(&s, ",\n      \"ambient_c\": ");
		sb_num(&s, d->ambient_c);
		sb_add(&s, ",\n      \"seed\": ");
		sb_seed(&s, d->seed);
		sb_add(&s, ",\n      \"noise\": {\"v\": ");
		sb_num(&s, d->noise_v);
		sb_add(&s, ", \"a\": ");
		sb_num(&s, d->noise_a);
		sb_add(&s, ", \"temp_c\": ");
		sb_num(&s, d->noise_temp_c);
		sb_add(&s, "},\n      \"operator_delay_s\": ");
		sb_num(&s, d->operator_delay_s);
		sb_add(&s, ",\n      \"cells\": [");
		for (int c = 0; c < 4; c++) {
			sb_add(&s, "%s\n        ", c ? "," : "");
			if (d->slot_used[c])
				describe_cell(&s, &d->cells[c], "        ");
			else
				sb_add(&s, "null");
		}
		sb_add(&s, "\n      ],\n      \"faults\": [");
		for (int f = 0; f < d->nfaults; f++) {
			sb_add(&s, "%s\n        ", f ? "," : "");
			describe_fault(&s, &d->faults[f]);
		}
		sb_add(&s, "%s],\n      \"queue\": [", d->nfaults ? "\n      " : "");
		for (int q = 0; q < d->nqueue; q++) {
			sb_add(&s, "%s\n        ", q ? "," : "");
			describe_cell(&s, &d->queue[q], "        ");
		}
		sb_add(&s, "%s]\n    }", d->nqueue ? "\n      " : "");
	}
	sb_add(&s, "%s]\n}\n", n ? "\n  " : "");
	if (s.oom) {
		free(s.buf);
		return NULL;
	}
	return s.buf;
}
