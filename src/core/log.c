/* log.c - the one logging API, and status-code texts. */
#include <stdarg.h>
#include <stdio.h>

#include "core/bl.h"

static enum bl_log_level log_level = BL_LOG_WARN;
static bl_log_handler log_fn;
static void *log_ud;

static const char *const level_names[] = {"error", "warning", "info", "debug", "spew"};

void bl_log_set_handler(bl_log_handler fn, void *ud)
{
	log_fn = fn;
	log_ud = ud;
}

void bl_log_set_level(enum bl_log_level level) { log_level = level; }

static void vlog(enum bl_log_level level, const char *module, const char *fmt, va_list ap)
{
	char msg[1024];

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (log_fn) {
		log_fn(log_ud, level, module, msg);
		return;
	}
	fprintf(stderr, "batlab: %s: %s: %s\n", level_names[level], module, msg);
}

void bl_log(enum bl_log_level level, const char *module, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, module, fmt, ap);
	va_end(ap);
}

struct status_text {
	int status;
	const char *code;
	const char *text;
};

static const struct status_text status_texts[] = {
	{BL_OK, "OK", "success"},
	{BL_ERR_ARG, "EINVAL", "invalid argument"},
	{BL_ERR_IO, "EIO", "input/output error"},
	{BL_ERR_TIMEOUT, "ETIMEDOUT", "timeout"},
	{BL_ERR_PROTO, "EPROTO", "protocol error"},
	{BL_ERR_MEM, "ENOMEM", "out of memory"},
	{BL_ERR_DEVICE, "EDEVICE", "device refused the command (257)"},
	{BL_ERR_BUSY, "EBUSY", "in use by another process"},
	{BL_ERR_CLOSED, "ECLOSED", "device disconnected"},
	{BL_ERR_VERIFY, "EVERIFY", "read-back did not match"},
	{BL_ERR_NOTFOUND, "ENOENT", "not found"},
	{BL_ERR_STATE, "ESTATE", "not possible in the current state"},
	{BL_ERR_SUPP, "ENOTSUP", "not supported"},
};

static const struct status_text *status_find(int status)
{
	for (size_t i = 0; i < BL_ARRAY_LEN(status_texts); i++)
		if (status_texts[i].status == status)
			return &status_texts[i];
	return NULL;
}

const char *bl_strerror(int status)
{
	const struct status_text *t = status_find(status);
	return t ? t->text : "unknown error";
}

const char *bl_strcode(int status)
{
	const struct status_text *t = status_find(status);
	return t ? t->code : "EUNKNOWN";
}
