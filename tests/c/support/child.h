/* support/child.h - run the built batlab binary as a child process. */
#ifndef BL_TEST_CHILD_H
#define BL_TEST_CHILD_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct child {
	pid_t pid;
	int out;        /* its stdout */
	int err;        /* its stderr */
};

/* Path of the binary under test: $BATLAB (set by make check), else
 * ../../batlab relative to the test binary. */
extern char batlab[PATH_MAX];
bool find_batlab(void);
/* Start batlab with argv (argv[0] included), stdout and stderr piped. */
int spawn(struct child *c, char *const argv[]);
/* Read until `lines` newlines or EOF within the guard time; NUL-terminated. */
size_t read_lines(int fd, char *buf, size_t size, int lines, int guard_ms);
/* Wait for EOF on its stdout, then its exit status (-1: killed after the guard). */
int reap(struct child *c, int guard_ms);
/* Run to completion collecting both streams; the exit code or -1. */
int run_cmd(char *const argv[], char *out, size_t outsz, char *err, size_t errsz);

#endif
