/* sim/layout.h - virtual Batlab layouts: which devices, which cells, which
 * faults, as JSON data (see docs/simulator.md).
 *
 * A layout file is read with lua-cjson in a private Lua state, so the sim
 * needs no JSON parser of its own. The built-in default layout is one unit
 * with four healthy nmc18650 cells.
 */
#ifndef BL_SIM_LAYOUT_H
#define BL_SIM_LAYOUT_H

#include <stddef.h>

#include "sim/simdev.h"

#define BL_SIM_MAX_DEVICES 64

struct bl_sim_layout {
	int ndevices;
	struct bl_simdev_config *devices;   /* ndevices entries, heap */
};

/* The default: `ndevices` units (1 if 0), serial numbers 1000, 1001, ... */
int bl_sim_layout_default(struct bl_sim_layout *out, int ndevices, uint64_t seed);
/* Load a JSON layout file. On failure returns a negative bl_status and
 * writes "FILE: what is wrong (where)" into err. */
int bl_sim_layout_load(const char *path, uint64_t seed, struct bl_sim_layout *out,
                       char *err, size_t errlen);
/* Load from a JSON string (tests). `name` is used in error messages. */
int bl_sim_layout_parse(const char *json, size_t len, const char *name, uint64_t seed,
                        struct bl_sim_layout *out, char *err, size_t errlen);
void bl_sim_layout_free(struct bl_sim_layout *l);
/* The effective layout as JSON (every device, serial, cell and parameter),
 * as `batlab sim --describe` prints it. Returns a malloc'd string. */
char *bl_sim_layout_describe(const struct bl_sim_layout *l);

#endif
