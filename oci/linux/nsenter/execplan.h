// execplan.h: the exec child's last steps, in C (see exec_linux.go, which
// writes the plan), which the C init (initplan.h) takes too. Included once,
// by nsenter.c.
//
// The plan arrives on the sync socket as a 4-byte little-endian length and
// then NUL-terminated fields, in this order:
//   uid gid umask(-1: keep) no_new_privs cwd tty rows cols
//   seccomp(hex BPF, "" for none) seccomp_flags
//   bounding effective permitted inheritable ambient   (hex bitmasks)
//   n_groups group...   n_rlimits (resource soft hard)...   n_args arg...   n_env env...
// On success the process execs and the socket, close-on-exec, reaches EOF;
// on failure an error message in JSON is written and the child exits 127.

static int plan_sync = -1;
// plan_kind begins every error message: "exec" or "init".
static const char *plan_kind = "exec";

// The console socket, when the process gets a terminal, is this fd.
#define CONSOLE_FD 4

// write_error writes text to fd as the JSON error message the Go side
// decodes, escaped (paths may hold quotes or backslashes).
static void write_error(int fd, const char *text) {
	char msg[2048];
	size_t n = (size_t)snprintf(msg, sizeof msg, "{\"type\":\"error\",\"message\":\"");
	for (const unsigned char *c = (const unsigned char *)text; *c != '\0' && n < sizeof msg - 16; c++) {
		if (*c == '"' || *c == '\\') {
			msg[n++] = '\\';
			msg[n++] = (char)*c;
		} else if (*c < 0x20) {
			n += (size_t)snprintf(msg + n, sizeof msg - n, "\\u%04x", *c);
		} else {
			msg[n++] = (char)*c;
		}
	}
	n += (size_t)snprintf(msg + n, sizeof msg - n, "\"}\n");
	(void)!write(fd, msg, n);
}

// plan_fail reports a failure on the sync socket, as JSON, or, once the
// socket is closed (the init after "ready"), on stderr, and exits.
static void plan_fail(const char *what, const char *detail) {
	char text[768];
	snprintf(text, sizeof text, "%s: %s %s: %s", plan_kind, what, detail, strerror(errno));
	if (plan_sync >= 0) {
		write_error(plan_sync, text);
	} else {
		char line[800];
		int n = snprintf(line, sizeof line, "berth-runtime %s\n", text);
		(void)!write(2, line, n > (int)sizeof line - 1 ? sizeof line - 1 : (size_t)n);
	}
	_exit(127);
}

static char *plan_buf, *plan_pos, *plan_end;

static const char *next_field(void) {
	if (plan_pos >= plan_end) {
		errno = EINVAL;
		plan_fail("malformed plan", "");
	}
	char *f = plan_pos;
	plan_pos += strlen(f) + 1;
	return f;
}

static unsigned long long next_num(int base) { return strtoull(next_field(), NULL, base); }

static void read_full(int fd, void *buf, size_t n) {
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			errno = r == 0 ? EPIPE : errno;
			plan_fail("read plan", "");
		}
		got += (size_t)r;
	}
}

// plan_terminal makes a pty in the container's devpts, sends the master over
// the console socket with the pty's name (as runc does), and makes the
// slave our controlling terminal and stdio; with console (a container's
// init, after pivot_root) /dev/console too, as in runc.
static void plan_terminal(unsigned short rows, unsigned short cols, int console) {
	int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		plan_fail("open", "/dev/ptmx");
	int unlock = 0;
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		plan_fail("unlock pty", "");
	unsigned int n;
	if (ioctl(master, TIOCGPTN, &n) < 0)
		plan_fail("pty number", "");
	char name[64];
	snprintf(name, sizeof name, "/dev/pts/%u", n);
	int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		plan_fail("open", name);
	if (rows || cols) {
		struct winsize ws = {.ws_row = rows, .ws_col = cols};
		(void)ioctl(master, TIOCSWINSZ, &ws);
	}
	if (console) {
		int fd = open("/dev/console", O_CREAT | O_RDONLY | O_CLOEXEC, 0644);
		if (fd >= 0) {
			close(fd);
			(void)mount(name, "/dev/console", NULL, MS_BIND, NULL);
		}
	}
	struct iovec iov = {.iov_base = name, .iov_len = strlen(name)};
	char cbuf[CMSG_SPACE(sizeof(int))];
	memset(cbuf, 0, sizeof cbuf);
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &master, sizeof(int));
	if (sendmsg(CONSOLE_FD, &msg, 0) < 0)
		plan_fail("send pty master", "");
	close(master);
	close(CONSOLE_FD);
	if (setsid() < 0)
		plan_fail("setsid", "");
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		plan_fail("set controlling tty", name);
	for (int fd = 0; fd <= 2; fd++)
		if (dup3(slave, fd, 0) < 0)
			plan_fail("dup pty", name);
	close(slave);
}

// load_filter installs the container's seccomp filter, given as hex BPF.
static void load_filter(const char *hex, unsigned long flags) {
	size_t n = strlen(hex) / 2;
	if (n == 0)
		return;
	unsigned char *prog = malloc(n);
	if (prog == NULL)
		plan_fail("malloc", "");
	for (size_t i = 0; i < n; i++) {
		unsigned int b;
		if (sscanf(hex + 2 * i, "%2x", &b) != 1) {
			errno = EINVAL;
			plan_fail("seccomp filter", "malformed");
		}
		prog[i] = (unsigned char)b;
	}
	struct sock_fprog fprog = {.len = (unsigned short)(n / sizeof(struct sock_filter)), .filter = (struct sock_filter *)prog};
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fprog) < 0)
		plan_fail("load seccomp filter", "");
}

// read_plan reads a plan's fields from the sync socket.
static void read_plan(int sync) {
	plan_sync = sync;
	uint8_t lenb[4];
	read_full(sync, lenb, 4);
	size_t len = (size_t)lenb[0] | (size_t)lenb[1] << 8 | (size_t)lenb[2] << 16 | (size_t)lenb[3] << 24;
	plan_buf = malloc(len + 1);
	if (plan_buf == NULL)
		plan_fail("malloc", "");
	read_full(sync, plan_buf, len);
	plan_buf[len] = '\0';
	plan_pos = plan_buf;
	plan_end = plan_buf + len;
}

// proc_plan is the process's part of a plan.
struct proc_plan {
	uid_t uid;
	gid_t gid;
	long umask_v;
	int nnp, tty;
	int bind_console; // the init's: /dev/console becomes the terminal
	const char *cwd;
	unsigned short rows, cols;
	const char *filter_hex;
	unsigned long filter_flags;
	uint64_t bnd, eff, perm, inh, amb;
	size_t ngroups;
	gid_t *groups;
	char **argv, **envp;
	const char *path; // the process's $PATH
};

// parse_proc reads the process's part; rlimits are set as they are read.
static void parse_proc(struct proc_plan *p) {
	memset(p, 0, sizeof *p);
	p->uid = (uid_t)next_num(10);
	p->gid = (gid_t)next_num(10);
	p->umask_v = strtol(next_field(), NULL, 10);
	p->nnp = (int)next_num(10);
	p->cwd = next_field();
	p->tty = (int)next_num(10);
	p->rows = (unsigned short)next_num(10);
	p->cols = (unsigned short)next_num(10);
	p->filter_hex = next_field();
	p->filter_flags = (unsigned long)next_num(10);
	p->bnd = next_num(16);
	p->eff = next_num(16);
	p->perm = next_num(16);
	p->inh = next_num(16);
	p->amb = next_num(16);
	p->ngroups = (size_t)next_num(10);
	p->groups = calloc(p->ngroups + 1, sizeof(gid_t));
	for (size_t i = 0; i < p->ngroups; i++)
		p->groups[i] = (gid_t)next_num(10);
	size_t nrl = (size_t)next_num(10);
	for (size_t i = 0; i < nrl; i++) {
		int res = (int)next_num(10);
		struct rlimit rl = {.rlim_cur = next_num(10), .rlim_max = next_num(10)};
		if (setrlimit(res, &rl) < 0)
			plan_fail("setrlimit", "");
	}
	size_t nargs = (size_t)next_num(10);
	p->argv = calloc(nargs + 1, sizeof(char *));
	for (size_t i = 0; i < nargs; i++)
		p->argv[i] = (char *)next_field();
	size_t nenv = (size_t)next_num(10);
	p->envp = calloc(nenv + 1, sizeof(char *));
	p->path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (size_t i = 0; i < nenv; i++) {
		p->envp[i] = (char *)next_field();
		if (strncmp(p->envp[i], "PATH=", 5) == 0)
			p->path = p->envp[i] + 5;
	}
	if (nargs == 0) {
		errno = EINVAL;
		plan_fail("no command", "");
	}
}

// apply_proc makes this process the plan's: cwd, terminal, no_new_privs,
// capabilities, credentials, umask, and the seccomp filter when it must be
// loaded while we still have CAP_SYS_ADMIN.
static void apply_proc(struct proc_plan *p) {
	if (chdir(p->cwd) < 0)
		plan_fail("chdir", p->cwd);
	// As root, before the credentials change: /dev/ptmx may need it.
	if (p->tty)
		plan_terminal(p->rows, p->cols, p->bind_console);
	if (p->nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		plan_fail("no_new_privs", "");
	int last = 40;
	FILE *lc = fopen("/proc/sys/kernel/cap_last_cap", "re");
	if (lc != NULL) {
		if (fscanf(lc, "%d", &last) != 1)
			last = 40;
		fclose(lc);
	}
	for (int c = 0; c <= last; c++)
		if (!(p->bnd >> c & 1) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			plan_fail("drop bounding capability", "");
	// Without no_new_privs, loading needs CAP_SYS_ADMIN: load while we have it.
	if (!p->nnp)
		load_filter(p->filter_hex, p->filter_flags);
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		plan_fail("keepcaps", "");
	// Raw system calls: glibc's wrappers would try to change every thread,
	// and there is only this one.
	if (syscall(SYS_setgroups, p->ngroups, p->groups) < 0)
		plan_fail("setgroups", "");
	if (syscall(SYS_setresgid, p->gid, p->gid, p->gid) < 0)
		plan_fail("setresgid", "");
	if (syscall(SYS_setresuid, p->uid, p->uid, p->uid) < 0)
		plan_fail("setresuid", "");
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		plan_fail("keepcaps", "");
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2] = {
		{.effective = (uint32_t)p->eff, .permitted = (uint32_t)p->perm, .inheritable = (uint32_t)p->inh},
		{.effective = (uint32_t)(p->eff >> 32), .permitted = (uint32_t)(p->perm >> 32), .inheritable = (uint32_t)(p->inh >> 32)},
	};
	if (syscall(SYS_capset, &hdr, data) < 0)
		plan_fail("capset", "");
	for (int c = 0; c <= last; c++)
		if (p->amb >> c & 1)
			(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0); // as runc 1.2: best effort
	if (p->umask_v >= 0)
		umask((mode_t)p->umask_v);
}

// exec_proc closes what is ours, loads a no_new_privs filter last and
// executes the process: exe when the caller resolved it, else argv[0]
// searched in $PATH. It returns only by failing.
static void exec_proc(struct proc_plan *p, const char *exe) {
	// Nothing of ours may leak into the process but stdio and the sync
	// socket, which closes on exec and so tells the parent it succeeded.
	(void)syscall(SYS_close_range, 3, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
	if (plan_sync >= 0)
		fcntl(plan_sync, F_SETFD, FD_CLOEXEC);
	if (p->nnp)
		load_filter(p->filter_hex, p->filter_flags);

	char **argv = p->argv;
	if (exe != NULL || strchr(argv[0], '/') != NULL) {
		execve(exe != NULL ? exe : argv[0], argv, p->envp);
		plan_fail("exec", argv[0]);
	}
	char *dirs = strdup(p->path), *save = NULL;
	int saved = ENOENT;
	for (char *dir = strtok_r(dirs, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
		char full[4096];
		snprintf(full, sizeof full, "%s/%s", *dir ? dir : ".", argv[0]);
		execve(full, argv, p->envp);
		if (errno != ENOENT && errno != ENOTDIR)
			saved = errno;
	}
	errno = saved;
	plan_fail("executable file not found in $PATH:", argv[0]);
}

static void run_exec_plan(int sync) {
	read_plan(sync);
	struct proc_plan p;
	parse_proc(&p);
	apply_proc(&p);
	exec_proc(&p, NULL);
}
