// nsenter: joins a container's namespaces before the Go runtime starts.
//
// The kernel refuses setns() into a mount or user namespace to a
// multi-threaded process, and a Go program has threads before main runs. So
// this constructor runs first, in the still single-threaded process, when
// berth-runtime re-executes itself for "exec":
//
//   _BERTH_NSENTER       "user:/proc/123/ns/user,net:/proc/123/ns/net,..." (any subset)
//   _BERTH_INIT_SYNC     fd of the socket to the berth-runtime "exec" parent
//
// and for "create" when the container joins a mount or user namespace or has
// a new time namespace (its new namespaces are then made here, after the
// joins, so that a joined user namespace owns them):
//
//   _BERTH_UNSHARE       clone flags to unshare after joining
//   _BERTH_TIMENS        "monotonic S NS\nboottime S NS\n", for /proc/self/timens_offsets
//
// and, for any of those and for a container's init, the container's cgroups
// on a v1 host (see join_cgroups):
//
//   _BERTH_CGROUP_TASKS  "5,6,7": fds of each hierarchy's "tasks" file
//
// and, for a container's init that the C init serves (initplan.h), whose
// orders then come as a plan on the sync socket:
//
//   _BERTH_INIT_PLAN     1
//
// It opens every path first (joining the mount namespace changes what paths
// mean), joins them (user first, mount last), then forks: joining a PID
// namespace only applies to children. The parent writes the child's PID (as
// the host sees it) on the sync socket and exits; the child goes on into the
// Go runtime, inside every namespace, and reads its orders from the socket.
// Without the variable it does nothing, so other invocations pay nothing.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <termios.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "execplan.h"
#include "initplan.h"

#define MAX_NS 8

static void die(int sync, const char *what, const char *path) {
	char text[768];
	snprintf(text, sizeof text, "nsenter: %s %s: %s", what, path, strerror(errno));
	if (sync >= 0)
		write_error(sync, text);
	_exit(1);
}

static int ns_flag(const char *kind) {
	static const struct { const char *name; int flag; } kinds[] = {
		{"user", CLONE_NEWUSER}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"net", CLONE_NEWNET},
		{"pid", CLONE_NEWPID}, {"cgroup", CLONE_NEWCGROUP}, {"time", 0x00000080 /* CLONE_NEWTIME */},
		{"mnt", CLONE_NEWNS},
	};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strcmp(kinds[i].name, kind) == 0)
			return kinds[i].flag;
	return -1;
}

// pod_pause is PID 1 of a pod's shared PID namespace (berthd starts
// berth-runtime with _BERTH_PAUSE=1 and CLONE_NEWPID): it holds the
// namespace open, reaps the orphans its containers leave, and exits on
// SIGTERM or SIGINT. It never starts the Go runtime: its footprint is a few
// pages.
static volatile sig_atomic_t pause_stop;
static void pause_on_signal(int sig) {
	if (sig != SIGCHLD)
		pause_stop = 1;
}

static void pod_pause(void) {
	struct sigaction sa = {.sa_handler = pause_on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd <= 2 && null >= 0; fd++)
		dup2(null, fd);
	while (!pause_stop) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		pause();
	}
	_exit(0);
}

// join_cgroups moves this process into the container's v1 cgroups by
// writing "0" to each "tasks" file the parent opened for it. While the
// process is single-threaded that moves only itself, which the kernel does
// without its global threadgroup lock; a move by another process (a PID
// written to cgroup.procs) takes that lock and waits out an RCU grace period,
// most of an exec's cost (see cgroups_join.go). The files are closed: the
// container must not keep them.
static void join_cgroups(int sync) {
	const char *list = getenv("_BERTH_CGROUP_TASKS");
	if (list == NULL)
		return;
	for (const char *p = list; *p != '\0';) {
		char *end;
		long fd = strtol(p, &end, 10);
		if (end == p || fd < 3) {
			errno = EINVAL;
			die(sync, "join cgroups: fd list", list);
		}
		if (write((int)fd, "0", 1) != 1) {
			int e = errno;
			char link[64], path[256];
			snprintf(link, sizeof link, "/proc/self/fd/%ld", fd);
			ssize_t n = readlink(link, path, sizeof path - 1);
			path[n > 0 ? n : 0] = '\0';
			errno = e;
			die(sync, "join cgroup", path);
		}
		close((int)fd);
		p = *end == ',' ? end + 1 : end;
	}
	unsetenv("_BERTH_CGROUP_TASKS");
}

__attribute__((constructor)) static void berth_nsenter(void) {
	if (getenv("_BERTH_PAUSE") != NULL)
		pod_pause();
	const char *spec = getenv("_BERTH_NSENTER");
	const char *unshares = getenv("_BERTH_UNSHARE");
	const char *syncs = getenv("_BERTH_INIT_SYNC");
	join_cgroups(syncs != NULL ? atoi(syncs) : -1);
	if (spec == NULL && unshares == NULL && syncs != NULL && getenv("_BERTH_INIT_PLAN") != NULL)
		run_init_plan(atoi(syncs)); // a container's init in C: it never returns
	if ((spec == NULL && unshares == NULL) || syncs == NULL)
		return;
	if (spec == NULL)
		spec = "";
	int sync = atoi(syncs);

	// Order of joining: user first (it grants the rights for the rest), mount last.
	static const char *order[] = {"user", "ipc", "uts", "net", "pid", "cgroup", "time", "mnt"};
	int fds[MAX_NS];
	int flags[MAX_NS];
	const char *paths[MAX_NS];
	int n = 0;
	char *copy = strdup(spec);
	if (copy == NULL)
		die(sync, "strdup", "");
	for (size_t o = 0; o < sizeof order / sizeof order[0]; o++) {
		char *save = NULL;
		char *buf = strdup(copy);
		for (char *item = strtok_r(buf, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
			char *colon = strchr(item, ':');
			if (colon == NULL)
				continue;
			*colon = '\0';
			if (strcmp(item, order[o]) != 0 || n >= MAX_NS)
				continue;
			int flag = ns_flag(item);
			const char *path = strdup(colon + 1);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0 || flag < 0)
				die(sync, "open namespace", path);
			fds[n] = fd;
			flags[n] = flag;
			paths[n] = path;
			n++;
		}
		free(buf);
	}
	free(copy);
	for (int i = 0; i < n; i++) {
		if (setns(fds[i], flags[i]) < 0)
			die(sync, "setns", paths[i]);
		close(fds[i]);
		// Joining a user namespace keeps our IDs, which are host root's
		// and unmapped there: files we create would get EOVERFLOW. Become
		// the namespace's root, as a new one's init does.
		if (flags[i] == CLONE_NEWUSER && unshares != NULL) {
			(void)setgroups(0, NULL); // denied where the namespace denies setgroups; harmless
			if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
				die(sync, "become root in user namespace", paths[i]);
		}
	}
	// create's new namespaces, made after the joins so that the joined user
	// namespace owns them. A new PID or time namespace is the fork's.
	if (unshares != NULL) {
		int uflags = atoi(unshares);
		if (uflags != 0 && unshare(uflags) < 0)
			die(sync, "unshare", unshares);
		const char *offsets = getenv("_BERTH_TIMENS");
		if (offsets != NULL && *offsets != '\0') {
			// Offsets are writable until the namespace's first process exists.
			int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
			if (fd < 0)
				die(sync, "open", "/proc/self/timens_offsets");
			size_t len = strlen(offsets);
			if (write(fd, offsets, len) != (ssize_t)len)
				die(sync, "write", "/proc/self/timens_offsets");
			close(fd);
		}
	}
	pid_t child = fork();
	if (child < 0)
		die(sync, "fork", "");
	if (child > 0) {
		char msg[64];
		int len = snprintf(msg, sizeof msg, "{\"type\":\"pid\",\"pid\":%d}\n", (int)child);
		if (write(sync, msg, (size_t)len) != len)
			_exit(1);
		_exit(0);
	}
	unsetenv("_BERTH_NSENTER");
	unsetenv("_BERTH_UNSHARE");
	unsetenv("_BERTH_TIMENS");
	// For exec, the child becomes the process here without ever starting
	// the Go runtime: that start is most of an exec's cost; so does a
	// container's init that the C init serves.
	if (getenv("_BERTH_EXEC_PLAN") != NULL)
		run_exec_plan(sync);
	if (getenv("_BERTH_INIT_PLAN") != NULL)
		run_init_plan(sync);
}
