/* regs.h - the one register table of the Batlab V1.0 (firmware v7), and
 * every code the device uses (modes, status and error bits, settings, LED
 * codes).
 *
 * The Lua constants, the command line's name lookup and the docs all come
 * from bl_regs[] and bl_consts[]; nothing else spells a register address.
 */
#ifndef BL_REGS_H
#define BL_REGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Namespace bytes on the wire. */
enum bl_ns {
	BL_NS_CELL0 = 0x00,
	BL_NS_CELL1 = 0x01,
	BL_NS_CELL2 = 0x02,
	BL_NS_CELL3 = 0x03,
	BL_NS_UNIT = 0x04,
	BL_NS_BOOTLOADER = 0x05,
	BL_NS_COMMS = 0xFF,
};
#define BL_CELLS 4

/* Which table a namespace byte uses: the four cells share one. */
enum bl_ns_kind {
	BL_NSK_CELL,
	BL_NSK_UNIT,
	BL_NSK_BOOTLOADER,
	BL_NSK_COMMS,
	BL_NSK_NONE,          /* 0x06..0xFE: the device answers 257 */
};

/* Namespace sizes: the firmware answers 257 at or beyond these. */
#define BL_CELL_NREGS 0x1F
#define BL_UNIT_NREGS 0x12
#define BL_COMMS_NREGS 0x09
#define BL_BOOTLOADER_NREGS 0x03

/* Cell registers (namespaces 0..3). */
enum bl_cell_reg {
	BL_CELL_MODE = 0x00,
	BL_CELL_ERROR = 0x01,
	BL_CELL_STATUS = 0x02,
	BL_CELL_CURRENT_SETPOINT = 0x03,
	BL_CELL_REPORT_INTERVAL = 0x04,
	BL_CELL_TEMPERATURE = 0x05,
	BL_CELL_CURRENT = 0x06,
	BL_CELL_VOLTAGE = 0x07,
	BL_CELL_CHARGEL = 0x08,
	BL_CELL_CHARGEH = 0x09,
	BL_CELL_VOLTAGE_LIMIT_CHG = 0x0A,
	BL_CELL_VOLTAGE_LIMIT_DCHG = 0x0B,
	BL_CELL_CURRENT_LIMIT_CHG = 0x0C,
	BL_CELL_CURRENT_LIMIT_DCHG = 0x0D,
	BL_CELL_TEMP_LIMIT_CHG = 0x0E,
	BL_CELL_TEMP_LIMIT_DCHG = 0x0F,
	BL_CELL_DUTY = 0x10,
	BL_CELL_COMPENSATION = 0x11,
	BL_CELL_CURRENT_PP = 0x12,
	BL_CELL_VOLTAGE_PP = 0x13,
	BL_CELL_CURRENT_CALIB_OFF = 0x14,
	BL_CELL_CURRENT_CALIB_SCA = 0x15,
	BL_CELL_TEMP_CALIB_R = 0x16,
	BL_CELL_TEMP_CALIB_B = 0x17,
	BL_CELL_CURRENT_CALIB_PP = 0x18,
	BL_CELL_VOLTAGE_CALIB_PP = 0x19,
	BL_CELL_CURR_CALIB_PP_OFF = 0x1A,
	BL_CELL_VOLT_CALIB_PP_OFF = 0x1B,
	BL_CELL_CURR_LOWV_SCA = 0x1C,
	BL_CELL_CURR_LOWV_OFF = 0x1D,
	BL_CELL_CURR_LOWV_OFF_SCA = 0x1E,
};

/* Unit registers (namespace 4). */
enum bl_unit_reg {
	BL_UNIT_SERIAL_NUM = 0x00,
	BL_UNIT_DEVICE_ID = 0x01,
	BL_UNIT_FIRMWARE_VER = 0x02,
	BL_UNIT_VCC = 0x03,
	BL_UNIT_SINE_FREQ = 0x04,
	BL_UNIT_SYSTEM_TIMER = 0x05,
	BL_UNIT_SETTINGS = 0x06,
	BL_UNIT_SINE_OFFSET = 0x07,
	BL_UNIT_SINE_MAGDIV = 0x08,
	BL_UNIT_LED_MESSAGE = 0x09,
	BL_UNIT_BOOTLOAD = 0x0A,
	BL_UNIT_VOLT_CH_CALIB_OFF = 0x0B,
	BL_UNIT_VOLT_CH_CALIB_SCA = 0x0C,
	BL_UNIT_VOLT_DC_CALIB_OFF = 0x0D,
	BL_UNIT_VOLT_DC_CALIB_SCA = 0x0E,
	BL_UNIT_LOCK = 0x0F,
	BL_UNIT_ZERO_AMP_THRESH = 0x10,
	BL_UNIT_WATCHDOG_TIMER = 0x11,
};

/* Bootloader registers (namespace 5, only while the bootloader runs). */
enum bl_boot_reg {
	BL_BOOT_BOOTLOAD = 0x00,   /* BL_BOOTLOAD: write = check image, reboot */
	BL_BOOT_ADDR = 0x01,       /* BL_ADDR: flash pointer */
	BL_BOOT_DATA = 0x02,       /* BL_DATA: flash byte at the pointer */
};

/* COMMS registers (namespace 0xFF, answered by the USB MCU). */
enum bl_comms_reg {
	BL_COMMS_LED0 = 0x00,
	BL_COMMS_LED1 = 0x01,
	BL_COMMS_LED2 = 0x02,
	BL_COMMS_LED3 = 0x03,
	BL_COMMS_PSU = 0x04,
	BL_COMMS_PSU_VOLTAGE = 0x05,
	BL_COMMS_PSU_CUTOFF_LOW = 0x06,
	BL_COMMS_PSU_CUTOFF_HIGH = 0x07,
	BL_COMMS_PSU_CUTOFF_HYST = 0x08,
};

/* MODE values. */
enum bl_mode {
	BL_MODE_NO_CELL = 0,
	BL_MODE_BACKWARDS = 1,
	BL_MODE_IDLE = 2,
	BL_MODE_CHARGE = 3,
	BL_MODE_DISCHARGE = 4,
	BL_MODE_IMPEDANCE = 5,
	BL_MODE_STOPPED = 6,
};
#define BL_MODE_COUNT 7

/* ERROR bits (latched) and STATUS bits (recomputed every pass) share the
 * low bit positions. */
enum bl_error_bit {
	BL_ERR_VOLTAGE_LIMIT_CHG = 0x0001,
	BL_ERR_VOLTAGE_LIMIT_DCHG = 0x0002,
	BL_ERR_CURRENT_LIMIT_CHG = 0x0004,
	BL_ERR_CURRENT_LIMIT_DCHG = 0x0008,
	BL_ERR_TEMP_LIMIT_CHG = 0x0010,
	BL_ERR_TEMP_LIMIT_DCHG = 0x0020,
	BL_ERR_BACKWARDS = 0x0040,     /* defined, never set by any firmware */
	BL_ERR_NO_CELL = 0x0080,       /* defined, never set by any firmware */
	BL_ERR_NO_PSU = 0x0100,
	BL_ERR_HW_CURRENT_LIMIT = 0x0200, /* v5+, unreachable in practice */
	BL_ERR_LOW_VCC = 0x0800,
};

enum bl_status_bit {
	BL_STAT_VOLTAGE_LIMIT_CHG = 0x0001,
	BL_STAT_VOLTAGE_LIMIT_DCHG = 0x0002,
	BL_STAT_CURRENT_LIMIT_CHG = 0x0004,
	BL_STAT_CURRENT_LIMIT_DCHG = 0x0008,
	BL_STAT_TEMP_LIMIT_CHG = 0x0010,
	BL_STAT_TEMP_LIMIT_DCHG = 0x0020,
	BL_STAT_BACKWARDS = 0x0040,
	BL_STAT_NO_CELL = 0x0080,
	BL_STAT_NO_PSU = 0x0100,
	BL_STAT_NOT_INITIALIZED = 0x0200,
	BL_STAT_NOT_CALIBRATED = 0x0400,
	BL_STAT_LOW_VCC = 0x0800,
};

/* UNIT SETTINGS bits. */
enum bl_settings_bit {
	BL_SET_TRIM_OUTPUT = 0x0001,
	BL_SET_VCC_COMPENSATION = 0x0002,
	BL_SET_WATCHDOG_TIMER = 0x0004,
	BL_SET_NO_PSU_DCHG_ENABLE = 0x0008,
	BL_SET_CH0_HI_RES = 0x0010,
	BL_SET_CH1_HI_RES = 0x0020,
	BL_SET_CH2_HI_RES = 0x0040,
	BL_SET_CH3_HI_RES = 0x0080,
	BL_SET_SAFETY_DISABLE = 0x4000,
	BL_SET_DEBUG = 0x8000,
};
#define BL_SET_HI_RES_MASK 0x00F0

/* LED codes (COMMS LED0..3 low byte, UNIT LED_MESSAGE). */
enum bl_led {
	BL_LED_OFF = 0,
	BL_LED_BLIP = 1,
	BL_LED_FLASH_SLOW = 2,
	BL_LED_FLASH_FAST = 3,
	BL_LED_ON = 4,
	BL_LED_PWM = 5,
	BL_LED_RAMP_UP = 6,
	BL_LED_RAMP_DOWN = 7,
	BL_LED_SINE = 8,
};

#define BL_LOCK_UNLOCKED 0
#define BL_LOCK_LOCKED 1
#define BL_WDT_RESET 255          /* value hosts write to WATCHDOG_TIMER */
#define BL_COMMAND_ERROR 257      /* 0x0101: the device's error answer */
#define BL_ADDR_MAX 0x7F          /* largest register address on the wire */
#define BL_SETPOINT_MAX 575       /* hosts never command more (4.49 A) */
#define BL_DUTY_MAX 640           /* 100 % PWM */
#define BL_FIRMWARE_VERSION 7     /* the version this table describes */
#define BL_FLASH_BASE 0x0400      /* application start in flash */
#define BL_FLASH_IMAGE_SIZE 15360 /* a firmware image is exactly this long */

/* How a register's raw value converts to engineering units (units.h). */
enum bl_unit_kind {
	BL_UK_RAW,          /* plain unsigned integer */
	BL_UK_INT16,        /* signed integer counts (calibration offsets) */
	BL_UK_MODE,         /* enum bl_mode */
	BL_UK_ERROR,        /* ERROR bit field */
	BL_UK_STATUS,       /* STATUS bit field */
	BL_UK_SETTINGS,     /* SETTINGS bit field */
	BL_UK_LED,          /* LED code (+ PWM level in the high byte) */
	BL_UK_VOLTAGE,      /* V = int16 * 4.5 / 32768 */
	BL_UK_CURRENT,      /* A = int16 * 4.096 / 32768 */
	BL_UK_SETPOINT,     /* A = raw / 128 (setpoint, sine offset) */
	BL_UK_TEMPERATURE,  /* NTC ratio, per-cell R and B */
	BL_UK_VCC,          /* V = 134217.728 / raw */
	BL_UK_FREQ,         /* Hz = raw * 39.0625 */
	BL_UK_MAGDIV,       /* A pp = 2 / 2^raw */
	BL_UK_CHARGEL,      /* low half of the 32-bit charge counter */
	BL_UK_CHARGEH,      /* high half */
	BL_UK_INTERVAL,     /* report interval: period = (raw + 1) * 0.1 s */
	BL_UK_TICKS,        /* 0.1 s ticks (timers) */
	BL_UK_DUTY,         /* PWM counts, 640 = 100 % */
	BL_UK_COMPENSATION, /* int8 sign-extended duty counts */
	BL_UK_OHMS,         /* TEMP_CALIB_R */
	BL_UK_KELVIN,       /* TEMP_CALIB_B */
	BL_UK_LOCK,         /* 0 unlocked, non-zero locked */
	BL_UK_BOOL,         /* PSU present */
	BL_UK_PSU_VOLTAGE,  /* pin V = raw * 4.096 / 1024 */
	BL_UK_COUNT
};

/* Access flags. Reads always work below a namespace's size. */
enum bl_access {
	BL_ACC_R = 0x01,        /* meaningful to read */
	BL_ACC_W = 0x02,        /* meaningful to write (the device accepts it) */
	BL_ACC_EEPROM = 0x04,   /* survives resets and power cycles */
	BL_ACC_MEASURED = 0x08, /* the device overwrites it (a host write is lost) */
	BL_ACC_REFUSED = 0x10,  /* a write is answered with 257 */
	BL_ACC_GUARDED = 0x20,  /* writable only when blank or in DEBUG */
};
#define BL_ACC_RW (BL_ACC_R | BL_ACC_W)
#define BL_ACC_EE (BL_ACC_R | BL_ACC_W | BL_ACC_EEPROM)

struct bl_reg {
	const char *name;         /* upper case, as the seed library names it */
	uint8_t ns_kind;          /* enum bl_ns_kind */
	uint8_t addr;             /* 0..127, without the write flag */
	uint8_t access;           /* enum bl_access flags */
	uint8_t unit;             /* enum bl_unit_kind */
	uint16_t power_on;        /* value after reset (nominal for EEPROM) */
	const char *doc;          /* one line for help texts */
};

extern const struct bl_reg bl_regs[];
extern const size_t bl_regs_count;

/* Named integer constants: namespaces, registers' addresses, codes. Every
 * name is unique, so they can live in one flat table (batlab.MODE_IDLE). */
struct bl_const {
	const char *name;
	long value;
	const char *group;        /* "namespace", "cell", "unit", "mode", ... */
};
extern const struct bl_const bl_consts[];
extern const size_t bl_consts_count;

/* Namespace of a byte; BL_NSK_NONE for bytes no table covers. */
enum bl_ns_kind bl_ns_kind(uint8_t ns);
/* Parse a namespace: "CELL2", "cell2", "unit", "0xff", "4". Returns 0 and
 * sets *ns on success, BL_ERR_NOTFOUND otherwise. */
int bl_ns_parse(const char *text, uint8_t *ns);
/* Canonical name of a namespace byte ("CELL2", "UNIT", "NS_0x06"), written
 * into buf (at least 12 bytes); returns buf. */
const char *bl_ns_name(uint8_t ns, char *buf, size_t n);
/* Number of registers in a namespace (the 257 boundary), 0 for none. */
unsigned bl_ns_size(uint8_t ns);

/* Lookups. NULL when there is no such register. */
const struct bl_reg *bl_reg_by_addr(uint8_t ns, uint8_t addr);
const struct bl_reg *bl_reg_by_name(uint8_t ns, const char *name);
/* Parse a register for a namespace: a name (any case) or a number
 * ("0x0a", "10"). Returns 0 and sets *addr, or BL_ERR_NOTFOUND. */
int bl_reg_parse(uint8_t ns, const char *text, uint8_t *addr);
/* Look a constant up by name (case-insensitive). */
const struct bl_const *bl_const_by_name(const char *name);

/* Names of codes. */
const char *bl_mode_name(uint16_t mode);   /* "CHARGE"; NULL if unknown */
const char *bl_led_name(uint16_t code);
/* Name of one bit of a bit-field kind (BL_UK_ERROR, BL_UK_STATUS,
 * BL_UK_SETTINGS), NULL if the bit has no name. */
const char *bl_bit_name(enum bl_unit_kind kind, uint16_t bit);
/* Every set bit of a field, names joined with `sep` ("VOLTAGE_LIMIT_CHG|NO_PSU"),
 * unnamed bits as "0x1000". "" when no bit is set. Returns the length that
 * would have been written (snprintf style). */
int bl_bits_format(enum bl_unit_kind kind, uint16_t bits, const char *sep,
                   char *buf, size_t n);

/* What every host does to a value before writing it (the seed, its GUI,
 * `batlab write`, dev:write from Lua): CURRENT_SETPOINT of a cell is
 * clamped to BL_SETPOINT_MAX, and the SETTINGS bits TRIM_OUTPUT and
 * VCC_COMPENSATION (firmware loops no host uses) are cleared. *rule, if
 * not NULL, says which applied and changed the value. */
enum bl_write_rule {
	BL_WRITE_AS_IS = 0,
	BL_WRITE_SETPOINT_CLAMPED,
	BL_WRITE_SETTINGS_MASKED,
};
uint16_t bl_host_write_value(uint8_t ns, uint8_t addr, uint16_t raw, enum bl_write_rule *rule);

#endif
