/* cli/cli.h - the batlab command's subcommands and exit codes. */
#ifndef BL_CLI_H
#define BL_CLI_H

#include <stdbool.h>

#include "core/bl.h"   /* enum bl_exit */

/* Each subcommand gets argv with argv[0] = its own name; a function that
 * serves more than one command tells them apart by it. */
int cmd_sim(int argc, char **argv);
int cmd_lua(int argc, char **argv);
int cmd_shell(int argc, char **argv);
int cmd_run(int argc, char **argv);          /* run, cycletest, dischargetest */
int cmd_settings(int argc, char **argv);     /* settings view FILE (cmd_settings.c) */
int cmd_report(int argc, char **argv);
int cmd_db(int argc, char **argv);          /* db, runs (cmd_db.c) */
/* The utility commands (cmd_info.c, cmd_regs.c, cmd_channel.c,
 * cmd_firmware.c), on the device selection of devsel.h. */
int cmd_list(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_measure(int argc, char **argv);
int cmd_setpoints(int argc, char **argv);
int cmd_read(int argc, char **argv);
int cmd_write(int argc, char **argv);
int cmd_lowcurrent(int argc, char **argv);
int cmd_impedance(int argc, char **argv);
int cmd_current(int argc, char **argv);      /* charge, discharge */
int cmd_sinewave(int argc, char **argv);
int cmd_mode(int argc, char **argv);         /* stop, reset */
int cmd_firmware(int argc, char **argv);
int cmd_calibration(int argc, char **argv);

/* Long options (cliopt.c): "--name" (or "--name=..." when it may have a
 * value), and the value of "--name=V" or "--name V" (NULL after a message
 * "CMD: --name needs a value"). */
bool cli_opt_match(const char *arg, const char *name, bool may_have_value);
const char *cli_opt_value(const char *cmd, int argc, char **argv, int *i, const char *name);

struct bl_engine;
/* After a Lua chunk failed with status `st` (cmd_lua.c): print the message
 * the engine left on its stack, pop it, and return the exit code (usage
 * for a file that is missing or does not compile, else failed). */
int cli_lua_report(struct bl_engine *e, int st);
/* Before the engine is freed: end the stock tests still running (their
 * channels made safe, notices printed, logs closed, in that order), and
 * say on stderr how many were cut short. Returns that number; the
 * command then exits 1. */
int cli_lua_end_tests(struct bl_engine *e, const char *cmd, const char *why);

/* Print "batlab: <msg>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
