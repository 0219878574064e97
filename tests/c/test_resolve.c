/* test_resolve.c - host names looked up off the event loop (host/resolve.h):
 * which hosts need a lookup; the answer comes through the loop, never
 * from inside the call that starts it; a name that does not resolve is
 * an answer naming it; a cancelled lookup never calls back; the CLI's
 * bounded wait. */
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/loop.h"
#include "host/resolve.h"
#include "tap.h"

struct answer {
	int calls;
	struct bl_addrs addrs;
};

static void got(void *ud, const struct bl_addrs *a)
{
	struct answer *ans = ud;

	ans->calls++;
	ans->addrs = *a;
}

static bool answered(void *ud)
{
	return ((struct answer *)ud)->calls > 0;
}

static void look_up(struct bl_loop *loop, const char *host, struct answer *ans)
{
	char err[200] = "";
	struct bl_resolve *r;

	memset(ans, 0, sizeof *ans);
	r = bl_resolve_start(loop, host, got, ans, err, sizeof err);
	ok(r != NULL, "%s: the lookup starts %s", host, err);
	is_int(ans->calls, 0, "%s: no answer from inside the call that starts it", host);
	bl_loop_run_until(loop, answered, ans, bl_loop_now(loop) + 20000000u);
	is_int(ans->calls, 1, "%s: one answer, through the loop", host);
}

int main(void)
{
	struct bl_loop *loop = bl_loop_new(bl_clock_real());
	struct answer ans;
	struct bl_addrs w;
	struct bl_resolve *r;
	char err[200];
	bool local = false;

	plan_lazy();
	ok(!bl_host_needs_lookup("") && !bl_host_needs_lookup("/run/postgresql") &&
	   !bl_host_needs_lookup("@abstract"), "a socket needs no lookup");
	ok(!bl_host_needs_lookup("127.0.0.1") && !bl_host_needs_lookup("::1") &&
	   !bl_host_needs_lookup("2001:db8::5"), "a number needs no lookup");
	ok(bl_host_needs_lookup("localhost") && bl_host_needs_lookup("lab-server") &&
	   bl_host_needs_lookup("127.0.0.1.example"), "a name does");

	look_up(loop, "localhost", &ans);
	for (int i = 0; i < ans.addrs.n; i++)
		local = local || strcmp(ans.addrs.a[i], "127.0.0.1") == 0 || strcmp(ans.addrs.a[i], "::1") == 0;
	ok(ans.addrs.n >= 1 && local, "localhost: its loopback address (%d addresses, %s)", ans.addrs.n,
	   ans.addrs.n ? ans.addrs.a[0] : ans.addrs.error);

	look_up(loop, "nonexistent.invalid", &ans);
	is_int(ans.addrs.n, 0, "nonexistent.invalid: no address");
	ok(strstr(ans.addrs.error, "cannot resolve the host name 'nonexistent.invalid'") != NULL,
	   "nonexistent.invalid: the error names it (%s)", ans.addrs.error);

	/* a lookup walked away from: no callback, and its memory is the
	 * lookup's own to free when it ends (ASan sees either go wrong) */
	memset(&ans, 0, sizeof ans);
	r = bl_resolve_start(loop, "localhost", got, &ans, err, sizeof err);
	bl_resolve_cancel(r);
	bl_loop_run_until(loop, answered, &ans, bl_loop_now(loop) + 300000u);
	is_int(ans.calls, 0, "a cancelled lookup does not call back");

	is_int(bl_resolve_wait("localhost", 20, &w) >= 1, 1, "the bounded wait: localhost resolves");
	is_int(bl_resolve_wait("nonexistent.invalid", 20, &w), 0, "the bounded wait: a name that does not");
	ok(strstr(w.error, "nonexistent.invalid") != NULL, "and says which (%s)", w.error);

	bl_loop_free(loop);
	return done_testing();
}
