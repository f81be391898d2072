// docker-init: `docker run --init`. berthd binds berth-runtime into the
// container as /sbin/docker-init and runs "docker-init -- CMD...": as the
// container's PID 1 it starts the command in a process group of its own
// (the terminal's foreground group when there is one), forwards every signal
// it receives to it, reaps the orphans the container leaves, and exits with
// the command's status, as tini, Docker's own init, does. It runs before the
// Go runtime starts and never returns to it: a few pages, no threads.
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void docker_init(int argc, char **argv) {
	int first = 1;
	if (argc > 1 && strcmp(argv[1], "--") == 0)
		first = 2;
	if (first >= argc) {
		fprintf(stderr, "docker-init: no command given\n");
		_exit(127);
	}
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t child = fork();
	if (child < 0) {
		perror("docker-init: fork");
		_exit(127);
	}
	if (child == 0) {
		setpgid(0, 0);
		if (isatty(STDIN_FILENO)) {
			signal(SIGTTOU, SIG_IGN);
			tcsetpgrp(STDIN_FILENO, getpgrp());
			signal(SIGTTOU, SIG_DFL);
		}
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvp(argv[first], argv + first);
		fprintf(stderr, "docker-init: exec %s: %s\n", argv[first], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	setpgid(child, child);
	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(&all, &info);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid != child)
				continue; // an orphan, reaped
			if (WIFSIGNALED(status))
				_exit(128 + WTERMSIG(status));
			_exit(WEXITSTATUS(status));
		}
	}
}

// glibc calls constructors with the program's arguments.
__attribute__((constructor)) static void berth_docker_init(int argc, char **argv, char **envp) {
	(void)envp;
	if (argc > 0 && argv != NULL && argv[0] != NULL && strcmp(basename(argv[0]), "docker-init") == 0)
		docker_init(argc, argv);
}
