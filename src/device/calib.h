/* calib.h - calibration backup and restore: the 49-value file described
 * in docs/cli.md (the order Lexcelon's `recover` command reads).
 *
 * Line 1 is the 32-bit serial number; then, for each cell 0..3,
 * CURRENT_CALIB_OFF, CURRENT_CALIB_SCA, CURR_LOWV_OFF, CURR_LOWV_SCA,
 * CURR_LOWV_OFF_SCA, TEMP_CALIB_R, TEMP_CALIB_B, CURRENT_CALIB_PP,
 * VOLTAGE_CALIB_PP, CURR_CALIB_PP_OFF, VOLT_CALIB_PP_OFF; then UNIT
 * VOLT_CH_CALIB_OFF, VOLT_CH_CALIB_SCA, VOLT_DC_CALIB_OFF, VOLT_DC_CALIB_SCA.
 * One decimal integer per line; signed registers may be written negative.
 */
#ifndef BL_CALIB_H
#define BL_CALIB_H

#include <stddef.h>
#include <stdint.h>

#include "device/device.h"

#define BL_CALIB_VALUES 49

struct bl_calibration {
	uint32_t serial;
	uint16_t reg[BL_CALIB_VALUES - 1];  /* raw register values, file order */
};

/* Text of the file. Returns a malloc'd string. */
char *bl_calib_format(const struct bl_calibration *c);
/* Parse and check a file's text: exactly 49 integers, each in its
 * register's range, no scale of 0 (the firmware would divide by it).
 * Errors name the line. */
int bl_calib_parse(const char *text, const char *name, struct bl_calibration *c,
                   char *err, size_t errlen);

/* Read every calibration register into *out, which must stay valid until
 * the op completes. */
struct bl_op *bl_op_calib_backup(struct bl_device *d, struct bl_calibration *out,
                                 bl_op_fn fn, void *ud);
/* Write every register, each verified by a read back; the serial number
 * only if it differs (with SETTINGS.DEBUG set for the two writes, then the
 * previous SETTINGS restored). */
struct bl_op *bl_op_calib_restore(struct bl_device *d, const struct bl_calibration *c,
                                  bl_op_fn fn, void *ud);

#endif
