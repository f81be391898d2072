// initplan.h: a container's init in C, fed a plan (initplan_linux.go
// writes it), so that the init never starts a Go runtime: that start was
// most of what an init cost. It takes the Go init's steps (init_linux.go,
// mounts_linux.go) in the same order; create gives the Go init whatever
// the plan cannot say (hooks, personality, shared root propagation).
// Included once, by nsenter.c, after execplan.h.
//
// Fields, after execplan.h's length:
//   new_cgroupns has_hostname hostname has_domainname domainname fifo_fd
//   joins_mount (1: a joined mount namespace; the root's fields are absent)
//   rootfs rootfs_fd(-1: bind the path) root_propagation
//   n_ops op...        each: kind what args... (see run_op)
//   no_pivot   n_sysctl (key path value)...   n_masked path...
//   n_readonly path...   root_readonly final_propagation(0: none)
//   oom_score_adj("" for none) ioprio(0: none)
//   the process's part (execplan.h's parse_proc)

#include <libgen.h>
#include <limits.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

struct berth_mount_attr {
	uint64_t attr_set, attr_clr, propagation, userns_fd;
};

// The op being run, for error messages ("mounts[3] /dev").
static const char *init_what = "";

// secure_join resolves the container path p inside root, following
// symlinks as if root were "/" (an image's symlink can never lead a mount
// outside it), as filepath-securejoin's SecureJoin does for the Go init.
// Components that do not exist are taken as they are.
static void secure_join(const char *root, const char *p, char *out) {
	char rest[PATH_MAX], cur[PATH_MAX] = "";
	if (strlen(p) >= sizeof rest) {
		errno = ENAMETOOLONG;
		plan_fail(init_what, p);
	}
	strcpy(rest, p);
	int links = 0;
	char *r = rest;
	while (*r != '\0') {
		while (*r == '/')
			r++;
		if (*r == '\0')
			break;
		size_t n = strcspn(r, "/");
		char comp[NAME_MAX + 1];
		if (n > NAME_MAX) {
			errno = ENAMETOOLONG;
			plan_fail(init_what, p);
		}
		memcpy(comp, r, n);
		comp[n] = '\0';
		r += n;
		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			char *slash = strrchr(cur, '/');
			if (slash != NULL)
				*slash = '\0';
			continue;
		}
		char full[PATH_MAX], target[PATH_MAX];
		if (snprintf(full, sizeof full, "%s%s/%s", root, cur, comp) >= (int)sizeof full) {
			errno = ENAMETOOLONG;
			plan_fail(init_what, p);
		}
		ssize_t tl = readlink(full, target, sizeof target - 1);
		if (tl < 0) { // no symlink, or not there yet
			if (strlen(cur) + n + 2 > sizeof cur) {
				errno = ENAMETOOLONG;
				plan_fail(init_what, p);
			}
			strcat(cur, "/");
			strcat(cur, comp);
			continue;
		}
		if (++links > 255) {
			errno = ELOOP;
			plan_fail(init_what, p);
		}
		target[tl] = '\0';
		char next[PATH_MAX];
		if (snprintf(next, sizeof next, "%s/%s", target, r) >= (int)sizeof next) {
			errno = ENAMETOOLONG;
			plan_fail(init_what, p);
		}
		if (target[0] == '/')
			cur[0] = '\0';
		strcpy(rest, next);
		r = rest;
	}
	snprintf(out, PATH_MAX, "%s%s", root, cur);
}

static void mkdir_all(const char *path) {
	char buf[PATH_MAX];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *s = buf + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			plan_fail(init_what, buf);
		*s = c;
		if (c == '\0')
			break;
	}
	struct stat st;
	if (stat(path, &st) < 0)
		plan_fail(init_what, path);
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		plan_fail(init_what, path);
	}
}

// mk_mountpoint makes dest a directory, or an empty file, to bind onto.
static void mk_mountpoint(const char *dest, int dir) {
	if (dir) {
		mkdir_all(dest);
		return;
	}
	char parent[PATH_MAX];
	snprintf(parent, sizeof parent, "%s", dest);
	mkdir_all(dirname(parent));
	int fd = open(dest, O_CREAT | O_RDONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		plan_fail(init_what, dest);
	close(fd);
}

// remount_flags remounts a bind with flags, keeping those the kernel would
// refuse to clear (nosuid, nodev, noexec, ro already set).
static void remount_flags(const char *dest, unsigned long flags) {
	struct statfs st;
	if (statfs(dest, &st) < 0)
		plan_fail(init_what, dest);
	unsigned long keep = (unsigned long)st.f_flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY);
	if (mount("", dest, NULL, MS_BIND | MS_REMOUNT | keep | flags, NULL) < 0)
		plan_fail("remount", dest);
}

static void attach_fd(int fd, const char *dest) {
	struct stat st;
	if (fstat(fd, &st) < 0)
		plan_fail(init_what, "bind source");
	mk_mountpoint(dest, S_ISDIR(st.st_mode));
	if (syscall(SYS_move_mount, fd, "", AT_FDCWD, dest, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		plan_fail(init_what, "attach the copy of the source");
	close(fd);
}

// run_op runs one step of the root filesystem's making, each on a path
// inside rootfs.
static void run_op(const char *rootfs) {
	const char *kind = next_field();
	init_what = next_field();
	char dest[PATH_MAX];
	switch (kind[0]) {
	case 'm': { // mount: source dest fstype flags data
		const char *src = next_field();
		secure_join(rootfs, next_field(), dest);
		const char *fstype = next_field();
		unsigned long flags = (unsigned long)next_num(10);
		const char *data = next_field();
		mkdir_all(dest);
		if (mount(src, dest, fstype, flags, *data ? data : NULL) < 0)
			plan_fail(init_what, fstype);
		break;
	}
	case 'b': { // bind: source source_fd(-1: by path) dest flags
		const char *src = next_field();
		int fd = atoi(next_field());
		secure_join(rootfs, next_field(), dest);
		unsigned long flags = (unsigned long)next_num(10);
		if (fd >= 0) {
			attach_fd(fd, dest);
		} else {
			struct stat st;
			if (stat(src, &st) < 0)
				plan_fail("bind source", src);
			mk_mountpoint(dest, S_ISDIR(st.st_mode));
			if (mount(src, dest, NULL, MS_BIND | (flags & MS_REC), NULL) < 0)
				plan_fail("bind", src);
		}
		unsigned long extra = flags & ~(unsigned long)(MS_BIND | MS_REC | MS_REMOUNT);
		if (extra != 0)
			remount_flags(dest, extra);
		break;
	}
	case 'p': // propagation: dest flags
		secure_join(rootfs, next_field(), dest);
		if (mount("", dest, NULL, (unsigned long)next_num(10), NULL) < 0)
			plan_fail(init_what, "set propagation");
		break;
	case 'r': { // recursive read-only: dest
		secure_join(rootfs, next_field(), dest);
		struct berth_mount_attr attr = {.attr_set = 0x1 /* MOUNT_ATTR_RDONLY */};
		if (syscall(SYS_mount_setattr, -1, dest, AT_RECURSIVE, &attr, sizeof attr) < 0)
			plan_fail(init_what, "rro");
		break;
	}
	case 'x': // remount: dest flags
		secure_join(rootfs, next_field(), dest);
		remount_flags(dest, (unsigned long)next_num(10));
		break;
	case 'l': { // symlink: target linkpath
		const char *target = next_field();
		secure_join(rootfs, next_field(), dest);
		if (symlink(target, dest) < 0 && errno != EEXIST)
			plan_fail(init_what, dest);
		break;
	}
	case 't': { // /dev/ptmx to the container's devpts, when it has one
		char ptmx[PATH_MAX];
		struct stat st;
		secure_join(rootfs, "/dev/pts/ptmx", ptmx);
		secure_join(rootfs, "/dev/ptmx", dest);
		if (stat(ptmx, &st) == 0 && symlink("pts/ptmx", dest) < 0 && errno != EEXIST)
			plan_fail(init_what, dest);
		break;
	}
	case 'd': { // device: path mode dev uid gid
		const char *path = next_field();
		secure_join(rootfs, path, dest);
		mode_t mode = (mode_t)next_num(10);
		dev_t dev = (dev_t)next_num(10);
		uid_t uid = (uid_t)next_num(10);
		gid_t gid = (gid_t)next_num(10);
		char parent[PATH_MAX];
		snprintf(parent, sizeof parent, "%s", dest);
		mkdir_all(dirname(parent));
		(void)unlink(dest);
		if (mknod(dest, mode, dev) < 0) {
			if (errno != EPERM)
				plan_fail(init_what, "mknod");
			// Where mknod is not allowed, the host's node, bound.
			mk_mountpoint(dest, 0);
			if (mount(path, dest, NULL, MS_BIND, NULL) < 0)
				plan_fail(init_what, "bind");
			break;
		}
		if (chown(dest, uid, gid) < 0)
			plan_fail(init_what, "chown");
		break;
	}
	default:
		errno = EINVAL;
		plan_fail("malformed plan: op", kind);
	}
}

// enter_root makes rootfs the root: pivot_root(".", "."), and the old root
// detached; or MS_MOVE and chroot (asked for, or a host root on ramfs).
static void enter_root(const char *rootfs, int no_pivot) {
	init_what = "enter the root filesystem";
	if (!no_pivot) {
		int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
		int newroot = open(rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
		if (oldroot < 0 || newroot < 0 || fchdir(newroot) < 0)
			plan_fail("open", rootfs);
		if (syscall(SYS_pivot_root, ".", ".") == 0) {
			if (fchdir(oldroot) < 0)
				plan_fail("fchdir", "old root");
			// The old root is stacked on "." now: keep its unmount from reaching the host.
			if (mount("", ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
				plan_fail("make old root rslave", "");
			if (umount2(".", MNT_DETACH) < 0)
				plan_fail("detach old root", "");
			if (chdir("/") < 0)
				plan_fail("chdir", "/");
			close(oldroot);
			close(newroot);
			return;
		}
		if (errno != EINVAL)
			plan_fail("pivot_root", rootfs);
		close(oldroot);
		close(newroot);
	}
	if (chdir(rootfs) < 0)
		plan_fail("chdir", rootfs);
	if (mount(rootfs, "/", NULL, MS_MOVE, NULL) < 0)
		plan_fail("move onto /", rootfs);
	if (chroot(".") < 0)
		plan_fail("chroot", rootfs);
	if (chdir("/") < 0)
		plan_fail("chdir", "/");
}

static void write_file(const char *path, const char *v) {
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	size_t n = strlen(v);
	if (fd < 0 || write(fd, v, n) != (ssize_t)n)
		plan_fail(init_what, path);
	close(fd);
}

// resolve_exe finds the process's executable as the Go init's lookPath
// does, before "ready", so that create fails when it is missing.
static const char *resolve_exe(struct proc_plan *p) {
	static char full[PATH_MAX];
	const char *file = p->argv[0];
	struct stat st;
	if (strchr(file, '/') != NULL) {
		if (stat(file, &st) < 0)
			plan_fail("process.args[0]", file);
		if (S_ISDIR(st.st_mode)) {
			errno = EISDIR;
			plan_fail("process.args[0]", file);
		}
		if (access(file, X_OK) < 0)
			plan_fail("process.args[0]", file);
		return file;
	}
	char *dirs = strdup(p->path);
	for (char *d = dirs, *end; d != NULL; d = end) {
		end = strchr(d, ':');
		if (end != NULL)
			*end++ = '\0';
		snprintf(full, sizeof full, "%s/%s", *d ? d : ".", file);
		if (stat(full, &st) == 0 && !S_ISDIR(st.st_mode) && access(full, X_OK) == 0)
			return full;
	}
	errno = ENOENT;
	char detail[512];
	snprintf(detail, sizeof detail, "\"%s\": executable file not found in $PATH (%s)", file, p->path);
	plan_fail("process.args[0]", detail);
	return NULL;
}

static void setup_rootfs(void) {
	const char *rootfs = next_field();
	int rootfs_fd = atoi(next_field());
	unsigned long prop = (unsigned long)next_num(10);
	umask(0);
	// Our mounts must not propagate back to the host's mount namespace.
	if (mount("", "/", NULL, prop, NULL) < 0)
		plan_fail("make / ", "rslave");
	// pivot_root needs the new root to be a mount point.
	init_what = "root.path";
	if (rootfs_fd >= 0)
		attach_fd(rootfs_fd, rootfs);
	else if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		plan_fail("bind root.path", rootfs);
	for (size_t n = (size_t)next_num(10); n > 0; n--)
		run_op(rootfs);
	enter_root(rootfs, (int)next_num(10));

	// Before readonlyPaths makes /proc/sys read-only.
	for (size_t n = (size_t)next_num(10); n > 0; n--) {
		init_what = next_field();
		const char *path = next_field();
		write_file(path, next_field());
	}
	struct stat st;
	for (size_t n = (size_t)next_num(10); n > 0; n--) {
		const char *p = next_field();
		init_what = "linux.maskedPaths";
		if (stat(p, &st) < 0) {
			if (errno == ENOENT)
				continue;
			plan_fail(init_what, p);
		}
		int r = S_ISDIR(st.st_mode) ? mount("tmpfs", p, "tmpfs", MS_RDONLY, "size=0k") : mount("/dev/null", p, NULL, MS_BIND, NULL);
		if (r < 0)
			plan_fail(init_what, p);
	}
	for (size_t n = (size_t)next_num(10); n > 0; n--) {
		const char *p = next_field();
		init_what = "linux.readonlyPaths";
		if (stat(p, &st) < 0 && errno == ENOENT)
			continue;
		if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0)
			plan_fail(init_what, p);
		remount_flags(p, MS_RDONLY | MS_REC);
	}
	init_what = "root.readonly";
	if (next_num(10))
		remount_flags("/", MS_RDONLY);
	unsigned long final = (unsigned long)next_num(10);
	if (final != 0 && mount("", "/", NULL, final, NULL) < 0)
		plan_fail("linux.rootfsPropagation", "");
	umask(022);
}

// finish_init takes the process's steps, says "ready", waits for start
// on the FIFO and executes the process.
static void finish_init(int sync, int fifo) {
	const char *oom = next_field();
	if (*oom != '\0') {
		init_what = "process.oomScoreAdj";
		write_file("/proc/self/oom_score_adj", oom);
	}
	int prio = (int)next_num(10);
	if (prio != 0 && syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, prio) < 0)
		plan_fail("process.ioPriority:", "ioprio_set");
	struct proc_plan p;
	parse_proc(&p);
	p.bind_console = 1;
	init_what = "process.cwd";
	mkdir_all(p.cwd);
	apply_proc(&p);
	const char *exe = resolve_exe(&p);

	static const char ready[] = "{\"type\":\"ready\"}\n";
	if (write(sync, ready, sizeof ready - 1) != (ssize_t)(sizeof ready - 1))
		plan_fail("write", "ready");
	close(sync);
	plan_sync = -1;
	// Block until "start" opens the FIFO for reading; through /proc/self/fd,
	// which works after pivot_root, where the host's path is gone — or
	// through the host's /proc, passed in, where a joined mount namespace's
	// /proc may show another PID namespace.
	char fifo_path[64];
	snprintf(fifo_path, sizeof fifo_path, "/proc/self/fd/%d", fifo);
	const char *procs = getenv("_BERTH_PROC_FD");
	int w = procs != NULL ? openat(atoi(procs), fifo_path + strlen("/proc/"), O_WRONLY | O_CLOEXEC) : open(fifo_path, O_WRONLY | O_CLOEXEC);
	if (w < 0)
		plan_fail("open exec fifo", fifo_path);
	if (write(w, "", 1) != 1)
		plan_fail("write exec fifo", fifo_path);
	close(w);
	close(fifo);
	exec_proc(&p, exe);
}

static void run_init_plan(int sync) {
	plan_kind = "init";
	read_plan(sync);
	if (next_num(10) && unshare(CLONE_NEWCGROUP) < 0)
		plan_fail("unshare", "cgroup namespace");
	int has_host = (int)next_num(10);
	const char *host = next_field();
	if (has_host && sethostname(host, strlen(host)) < 0)
		plan_fail("hostname", host);
	int has_domain = (int)next_num(10);
	const char *domain = next_field();
	if (has_domain && setdomainname(domain, strlen(domain)) < 0)
		plan_fail("domainname", domain);
	int fifo = (int)next_num(10);
	if (!next_num(10)) // a joined mount namespace's root is the container's already
		setup_rootfs();
	finish_init(sync, fifo);
}
