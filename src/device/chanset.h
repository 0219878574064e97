/* chanset.h - the channel layer's state, shared by channel.c (ticks,
 * samples, listeners) and chanop.c (steps, limits). Internal to
 * src/device. */
#ifndef BL_CHANSET_H
#define BL_CHANSET_H

#include "device/channel.h"

struct bl_channel {
	struct bl_chanset *cs;
	int cell;
	struct bl_chan_listener *listeners;
	struct bl_chan_listener *iter_next;  /* the delivery in progress */
	/* the tick */
	bool ticking;
	struct bl_op *tick_op;
	unsigned tick_gen;               /* bumped by each tick callback */
	bool vcc_wait;                   /* its tick waits for another's VCC read */
	int tick_stage;
	struct bl_sample tick;           /* being filled */
	struct bl_sample last;
	bool has_last;
	/* the step */
	enum bl_step_kind step;
	bool step_on;
	uint64_t step_us;
	double energy_wh;
	bool have_p;
	double last_p;
	uint64_t last_us;
	unsigned step_seq;               /* bumped by each step begin */
	bool reset;                      /* a device reset ended the step */
	/* impedance measurements: the counter's charge is not the step's */
	double imp_c;                    /* coulombs they counted in this step */
	bool imp_busy;                   /* one runs: samples hold the charge */
	double imp_q0;                   /* the counter when it began (C) */
	/* reports */
	int want_duty;                   /* want_duty(true) calls not undone */
	bool interval_set;
	double interval_s;
};

struct bl_chanset {
	struct bl_device *d;
	uint32_t serial;
	double vcc;
	uint64_t vcc_us;
	bool have_vcc;
	struct bl_channel *vcc_reader;   /* whose tick reads VCC now (NULL: none) */
	bool dead;                       /* freed by its owner; jobs still run */
	int jobs;                        /* channel operations in flight */
	struct bl_channel ch[BL_CELLS];
};

/* The step's time, charge and energy count from now / the step is over. */
void bl_chan_step_begin(struct bl_channel *c, enum bl_step_kind kind);
void bl_chan_step_end(struct bl_channel *c);
/* Free a set its owner let go of once its last job ended. */
void bl_chanset_release(struct bl_chanset *cs);

#endif
