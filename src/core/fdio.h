/* fdio.h - small helpers for non-blocking descriptors: a raw terminal
 * setting, a drain of queued output, and a non-blocking pipe. Used by the
 * tty link, the simulator's pty server, the event loop's wake-up pipe and
 * the shell's signal pipe, which share nothing else. */
#ifndef BL_FDIO_H
#define BL_FDIO_H

#include <stddef.h>
#include <stdint.h>

/* Put a terminal descriptor in raw 8N1 at 38400 with no flow control and
 * VMIN 1 (so a non-blocking read of nothing is EAGAIN, never 0). 0 or -1
 * with errno. */
int bl_tty_set_raw(int fd);

/* Write as much of buf[0..*len) to a non-blocking descriptor as it takes
 * now and move what is left to the front (*len shrinks). 0 when all went
 * out or the descriptor would block; -1 with errno on an error (EPIPE for
 * a write of 0 bytes). */
int bl_fd_drain(int fd, uint8_t *buf, size_t *len);

/* pipe(2) with both ends non-blocking and close-on-exec: a wake-up pipe
 * that a signal handler can write to without ever blocking. 0, or -1 with
 * errno. */
int bl_fd_pipe(int fds[2]);

#endif
