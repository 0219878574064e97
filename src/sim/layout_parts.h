/* sim/layout_parts.h - what the parts of the layout code share; internal
 * to layout.c (the defaults and the tables below, reading a layout),
 * layout_parse.c (the schema) and layout_describe.c (writing a layout
 * back as JSON). Everything else uses sim/layout.h.
 */
#ifndef BL_SIM_LAYOUT_PARTS_H
#define BL_SIM_LAYOUT_PARTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/cell.h"
#include "sim/layout.h"
#include "sim/simdev.h"

#define DEFAULT_SERIAL      1000
#define DEFAULT_AMBIENT_C   25.0
#define DEFAULT_PROFILE     "nmc18650"

/* ---- Fault kinds ---------------------------------------------------------- */

enum fault_value { NO_VALUE, VALUE_REQUIRED, VALUE_OPTIONAL };

struct fault_kind_info {
	const char *name;
	enum bl_fault_kind kind;
	bool slot;        /* takes a slot 0..3 */
	bool count;       /* takes a count (default 1) */
	enum fault_value value;   /* VALUE_OPTIONAL defaults to 0 */
	double vmin, vmax;
	const char *unit;
	bool cell;        /* takes a cell */
};

/* NULL when there is no such kind. */
const struct fault_kind_info *bl_layout_fault_kind_by_name(const char *name);
const struct fault_kind_info *bl_layout_fault_kind_by_kind(enum bl_fault_kind k);
/* Every kind's name, joined with ", ", into buf. */
void bl_layout_fault_kind_names(char *buf, size_t n);

/* ---- Cell parameters by name ---------------------------------------------- */

enum field_type { F_NUM, F_BOOL };

struct cell_field {
	const char *name;
	size_t off;       /* of a double (F_NUM) or a bool (F_BOOL) */
	enum field_type type;
};

extern const struct cell_field bl_layout_cell_fields[];
extern const size_t bl_layout_ncell_fields;

static inline double *cell_num(struct bl_cell_params *p, const struct cell_field *f)
{
	return (double *)((char *)p + f->off);
}

static inline double cell_num_get(const struct bl_cell_params *p, const struct cell_field *f)
{
	return *(const double *)((const char *)p + f->off);
}

/* ---- Defaults --------------------------------------------------------------- */

uint64_t bl_layout_device_seed(uint64_t base, int index);
/* A profile's cell, at ambient_c and sitting in it. */
void bl_layout_cell_default(struct bl_cell_params *p, const char *profile, double ambient_c);
/* Device `index` of a layout before its entry in the file is applied. */
void bl_layout_device_default(struct bl_simdev_config *cfg, int index, uint64_t seed,
                              double ambient_c);

/* ---- layout_parse.c ------------------------------------------------------- */

struct bl_json_walk;
/* Check the decoded layout at stack index idx and fill out (a malloc'd
 * device array); seed is the default for a layout that names none. */
int bl_layout_walk(struct bl_json_walk *w, int idx, uint64_t seed, struct bl_sim_layout *out);

#endif
