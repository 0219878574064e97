/* sim/cell.h - physical model of one cell in a virtual Batlab slot.
 *
 * An equivalent circuit: open-circuit voltage against state of charge, a
 * series resistance R0 and one RC pair (R1, C1), with coulombic efficiency,
 * a lumped thermal model (I^2 R heating, Newtonian cooling to ambient),
 * capacity fade with charge throughput and self-discharge.
 *
 * Sign convention everywhere: current > 0 charges the cell, < 0 discharges.
 * Currents and voltages passed in and out are as the slot sees them; a
 * reversed cell sees the slot's current negated (a slot "charge"
 * discharges it) and shows the slot a negated voltage.
 * The model knows nothing about registers; sim/firmware.c turns it into
 * register values.
 */
#ifndef BL_SIM_CELL_H
#define BL_SIM_CELL_H

#include <stdbool.h>
#include <stddef.h>

#define BL_OCV_MAX_POINTS 24
#define BL_PROFILE_NAME_MAX 32

/* Parameters: a profile gives defaults, a layout overrides any of them. */
struct bl_cell_params {
	char profile[BL_PROFILE_NAME_MAX]; /* "nmc18650", "lfp26650", ... */
	double capacity_ah;        /* nominal (new) capacity */
	double soc;                /* initial state of charge, 0..1 */
	double r0_ohm;             /* series resistance at 25 degC */
	double r1_ohm;             /* RC pair resistance */
	double c1_farad;           /* RC pair capacitance */
	double coulombic_eff;      /* charge accepted / charge put in, 0..1 */
	double temp_c;             /* initial cell temperature */
	double ambient_c;          /* surroundings */
	double heat_capacity_j_k;  /* lumped thermal mass */
	double cooling_w_k;        /* heat transfer coefficient to ambient */
	double fade_per_ah;        /* fraction of capacity lost per Ah of throughput */
	double self_discharge_per_day; /* fraction of capacity per day at rest */
	double self_heating_w;     /* extra internal heat (a failing cell); 0 normally */
	int ocv_points;            /* number of (soc, volts) pairs, ascending soc */
	double ocv_soc[BL_OCV_MAX_POINTS];
	double ocv_v[BL_OCV_MAX_POINTS];
	double v_min;              /* chemistry's safe window, for docs/warnings */
	double v_max;
	bool reversed;             /* inserted backwards: terminal voltage negated */
};

struct bl_cell {
	struct bl_cell_params p;
	double soc;                /* 0..1 of the current (faded) capacity */
	double v_rc;               /* voltage across the RC pair */
	double temp_c;
	double capacity_ah;        /* current capacity after fade */
	double throughput_ah;      /* total |charge| moved */
	double charge_in_ah;       /* bookkeeping: delivered to the cell (+) */
	double charge_out_ah;      /* bookkeeping: taken from the cell */
	/* Charge pushed past the ends of the SOC range (< 0 below empty, > 0
	 * above full). SOC itself stays in [0, 1]; this is what makes the
	 * voltage collapse or soar instead of sitting at the table's ends. */
	double excess_ah;
	/* Caches of pure functions of the state above (cell.c), so that a
	 * latch works each out once: the resistance factor of the state
	 * (temp_c, soc, excess_ah, capacity_ah) as last stepped to, and the
	 * thermal decay exp(x) of the last step length. Never read unless
	 * their inputs match exactly. */
	bool rf_ok, heat_ok;
	double rf, rf_temp, rf_soc, rf_excess, rf_cap;
	double heat_x, heat_decay;
};

/* Built-in profiles, by name: "nmc18650", "lfp26650", "lipo-pouch",
 * "nmc18650-aged", "nmc18650-damaged", "nmc18650-reversed".
 * Returns NULL for an unknown name. */
const struct bl_cell_params *bl_cell_profile(const char *name);
/* Names of all built-in profiles, NULL-terminated. */
const char *const *bl_cell_profile_names(void);

void bl_cell_init(struct bl_cell *c, const struct bl_cell_params *p);
/* Open-circuit voltage at a state of charge (no sign flip for reversed). */
double bl_cell_ocv(const struct bl_cell *c, double soc);
/* Terminal voltage with `current_a` flowing now (signed, see above);
 * negative for a reversed cell. */
double bl_cell_voltage(const struct bl_cell *c, double current_a);
/* Advance the model by dt seconds with a constant current. Handles the RC
 * relaxation exactly (exponential), heating, fade and self-discharge. */
void bl_cell_step(struct bl_cell *c, double current_a, double dt_s);
/* Magnitude of the impedance at a frequency (R0 + RC pair), ohms. */
double bl_cell_impedance(const struct bl_cell *c, double hz);
/* R0 and R1 now, after the temperature and low-SOC factors (either out
 * pointer may be NULL). */
void bl_cell_resistance(const struct bl_cell *c, double *r0, double *r1);
/* Check a parameter set; on error writes the offending field into err and
 * returns a negative bl_status. */
int bl_cell_params_check(const struct bl_cell_params *p, char *err, size_t errlen);

#endif
