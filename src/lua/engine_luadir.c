/* lua/engine_luadir.c - where the engine's lua/ directory is: told
 * (opts->luadir, $BATLAB_LUA_PATH), or searched around the binary, or the
 * install directory (the order is in engine.h).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lua/engine_parts.h"

#ifndef BL_LUADIR
#define BL_LUADIR "/usr/local/share/batlab/lua"
#endif

static int is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int has_batlab_dir(const char *dir)
{
	char p[PATH_MAX];

	if ((size_t)snprintf(p, sizeof p, "%s/batlab", dir) >= sizeof p)
		return 0;
	return is_dir(p);
}

#define MAX_CANDIDATES 10

struct candidates {
	char path[MAX_CANDIDATES][PATH_MAX];
	int n;
};

static void add_candidate(struct candidates *c, const char *dir, const char *suffix)
{
	if (c->n >= MAX_CANDIDATES || !dir || !*dir)
		return;
	if ((size_t)snprintf(c->path[c->n], PATH_MAX, "%s%s", dir, suffix) >= PATH_MAX)
		return;
	c->n++;
}

/* The three places lua/ can be relative to a binary's directory: the
 * source tree (dir/lua, or build/rel/../../lua), and an install
 * (bin/../share/batlab/lua). */
static void add_around(struct candidates *c, const char *file)
{
	char dir[PATH_MAX];
	char *slash;

	if (!file || (size_t)snprintf(dir, sizeof dir, "%s", file) >= sizeof dir)
		return;
	slash = strrchr(dir, '/');
	if (!slash)
		return;
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	add_candidate(c, dir, "/lua");
	add_candidate(c, dir, "/../../lua");
	add_candidate(c, dir, "/../share/batlab/lua");
}

/* The program's argv[0] as it was invoked (a symlink keeps its own
 * name there), from /proc/self/cmdline. */
static int read_argv0(char *buf, size_t n)
{
	FILE *f = fopen("/proc/self/cmdline", "r");
	size_t len;

	if (!f)
		return -1;
	len = fread(buf, 1, n - 1, f);
	fclose(f);
	buf[len] = '\0';
	return len > 0 ? 0 : -1;
}

char *bl_engine_find_luadir(const char *explicit, const char *argv0)
{
	struct candidates *c = calloc(1, sizeof *c);
	char exe[PATH_MAX], real[PATH_MAX], a0[PATH_MAX];
	const char *pick = NULL, *env = getenv("BATLAB_LUA_PATH");
	ssize_t n;
	char *out;

	if (!c)
		return NULL;
	if (explicit && *explicit)
		add_candidate(c, explicit, "");
	else if (env && *env)
		add_candidate(c, env, "");
	if (c->n) {
		/* Told where: trust it, whether it exists yet or not. */
		pick = c->path[0];
	} else {
		n = readlink("/proc/self/exe", exe, sizeof exe - 1);
		if (n > 0) {
			exe[n] = '\0';
			add_around(c, exe);
		}
		if (!argv0 && read_argv0(a0, sizeof a0) == 0)
			argv0 = a0;
		if (argv0 && strchr(argv0, '/'))
			add_around(c, argv0);
		add_candidate(c, BL_LUADIR, "");
		for (int i = 0; i < c->n && !pick; i++)
			if (has_batlab_dir(c->path[i]))
				pick = c->path[i];
		for (int i = 0; i < c->n && !pick; i++)
			if (is_dir(c->path[i]))
				pick = c->path[i];
		if (!pick)
			pick = BL_LUADIR;
	}
	/* Absolute, so that a script that changes directory keeps it. */
	if (realpath(pick, real))
		out = strdup(real);
	else if (pick[0] != '/' && getcwd(exe, sizeof exe) &&
	         (size_t)snprintf(real, sizeof real, "%s/%s", exe, pick) < sizeof real)
		out = strdup(real);
	else
		out = strdup(pick);
	free(c);
	return out;
}
