/*
 * Own-IDE in-container supervisor (protocol: docs/SANDBOX.md).
 *
 * Runs as the sandbox user inside a runtime container. It reads a header and the source
 * files from stdin (never more than the header and the payload, so the rest of the pipe is
 * the program's stdin), optionally runs a compile command, runs the program, and reports
 * exit status, signal, CPU time, peak RSS, wall time and cgroup OOM kills framed by a nonce
 * the program cannot learn (it is read from the pipe before any fork and the supervisor is
 * made non-dumpable first, so /proc/<pid>/mem, /fd and ptrace are closed to the program).
 *
 * Exit status: 0 after a run report, 1 after a failed compile report, 125 on a protocol or
 * supervisor error (message on stderr, no report).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define NONCE_LEN 32
#define MAX_PAYLOAD (64LL * 1024 * 1024)
#define MAX_NAME 64
#define MAX_FILES 256
/* Words of a run command given in the payload (the program and its arguments). */
#define MAX_RUN_WORDS 256
#define MAX_COMMAND (64LL * 1024)

static char nonce[NONCE_LEN + 1];
/* Commands given in the payload (`:compile`, `:run` records); they replace argv's. */
static char *payload_compile;
static char *payload_run[MAX_RUN_WORDS + 1];
static int payload_run_words;
/* Options from the header: the program's CPU-time limit in seconds (0: none), and whether
 * its stdin and stdout are a terminal (see run_tty). */
static long long cpu_limit_s;
static int use_tty;
/* The pre-started program (--warm): its pid (0: none) and the write end of its control pipe,
 * which it holds as fd 3 and reads the rest of its command from (see start_warm). */
static pid_t warm_pid;
static int warm_fd = -1;
/* --warm-compile: the pre-started process is the compiler (stdin /dev/null, stdout onto
 * stderr, as the compile step's), not the program. */
static int warm_compile;
static char **warm_argv;
static int warm_words;

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n = snprintf(buf, sizeof buf, "own-ide supervisor: ");
    va_start(ap, fmt);
    n += vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    /* Best effort: if stderr is gone there is nobody to tell. */
    ssize_t ignored = write(2, buf, (size_t)n);
    (void)ignored;
    _exit(125);
}

/* Writes all of buf; returns 0, or -1 on a write error other than EINTR. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Reads exactly len bytes from fd 0; dies on EOF or error. */
static void read_exact(char *buf, size_t len)
{
    while (len > 0) {
        ssize_t r = read(0, buf, len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            die("reading stdin: %s", strerror(errno));
        }
        if (r == 0)
            die("stdin ended inside the header or payload");
        buf += r;
        len -= (size_t)r;
    }
}

/*
 * Reads one '\n'-terminated line byte by byte (so nothing past it is consumed), at most
 * max bytes without the newline; stores it NUL-terminated. *budget (if not NULL) is
 * decremented by every byte read and must not go negative.
 */
static void read_line(char *buf, size_t max, long long *budget, const char *what)
{
    size_t n = 0;
    for (;;) {
        char c;
        if (budget != NULL && --*budget < 0)
            die("%s runs past the payload length", what);
        read_exact(&c, 1);
        if (c == '\n')
            break;
        if (n == max)
            die("%s line is too long", what);
        buf[n++] = c;
    }
    buf[n] = '\0';
}

/* Parses a decimal number without sign or leading garbage; -1 if invalid or > max. */
static long long parse_size(const char *s, long long max)
{
    long long v = 0;
    if (*s == '\0' || (s[0] == '0' && s[1] != '\0'))
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
        if (v > max)
            return -1;
    }
    return v;
}

static int valid_component(const char *s, size_t len)
{
    if (len == 0 || len > MAX_NAME)
        return 0;
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

/* name: component or component/component; returns the slash position, 0 if none, -1 bad. */
static int check_name(const char *name)
{
    const char *slash = strchr(name, '/');
    if (slash == NULL)
        return valid_component(name, strlen(name)) ? 0 : -1;
    if (strchr(slash + 1, '/') != NULL)
        return -1;
    if (!valid_component(name, (size_t)(slash - name)) ||
        !valid_component(slash + 1, strlen(slash + 1)))
        return -1;
    return (int)(slash - name);
}

/* Reads a command record's bytes as a NUL-terminated string; a NUL inside is refused (it
 * would silently cut the word short). */
static char *read_command(long long size, const char *what)
{
    if (size > MAX_COMMAND)
        die("%s record is too long", what);
    char *s = malloc((size_t)size + 1);
    if (s == NULL)
        die("out of memory");
    read_exact(s, (size_t)size);
    s[size] = '\0';
    if (memchr(s, '\0', (size_t)size) != NULL)
        die("%s record holds a NUL byte", what);
    return s;
}

static void read_header_and_files(void)
{
    /* Header: "<nonce> <len>[ cpu=<s>][ tty]" -> 32 + 1 + up to 20 digits + options. */
    char line[NONCE_LEN + 1 + 24 + 32];
    read_line(line, sizeof line - 1, NULL, "header");
    if (strlen(line) < NONCE_LEN + 2 || line[NONCE_LEN] != ' ')
        die("bad header");
    for (int i = 0; i < NONCE_LEN; i++) {
        char c = line[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            die("bad nonce");
    }
    memcpy(nonce, line, NONCE_LEN);
    nonce[NONCE_LEN] = '\0';
    char *opts = strchr(line + NONCE_LEN + 1, ' ');
    if (opts != NULL)
        *opts++ = '\0';
    long long budget = parse_size(line + NONCE_LEN + 1, MAX_PAYLOAD);
    if (budget < 0)
        die("bad payload length");
    /* Options, space-separated; an unknown one is refused rather than ignored. */
    for (char *opt = opts; opt != NULL && *opt != '\0';) {
        char *next = strchr(opt, ' ');
        if (next != NULL)
            *next++ = '\0';
        if (strncmp(opt, "cpu=", 4) == 0) {
            cpu_limit_s = parse_size(opt + 4, 86400);
            if (cpu_limit_s <= 0)
                die("bad cpu limit");
        } else if (strcmp(opt, "tty") == 0) {
            use_tty = 1;
        } else {
            die("unknown header option");
        }
        opt = next;
    }

    static char buf[65536];
    int files = 0;
    while (budget > 0) {
        char rec[MAX_NAME * 2 + 1 + 1 + 24];
        read_line(rec, sizeof rec - 1, &budget, "file record");
        char *sp = strrchr(rec, ' ');
        if (sp == NULL)
            die("bad file record");
        *sp = '\0';
        long long size = parse_size(sp + 1, MAX_PAYLOAD);
        if (size < 0 || size > budget)
            die("bad file size for '%s'", rec);
        /* Command records: names cannot start with ':', so they never collide with a file. */
        if (strcmp(rec, ":compile") == 0) {
            if (payload_compile != NULL)
                die("a second :compile record");
            budget -= size;
            payload_compile = read_command(size, ":compile");
            continue;
        }
        if (strcmp(rec, ":run") == 0) {
            if (payload_run_words == MAX_RUN_WORDS)
                die("too many :run records");
            budget -= size;
            payload_run[payload_run_words++] = read_command(size, ":run");
            continue;
        }
        int slash = check_name(rec);
        if (slash < 0)
            die("refused file name '%s'", rec);
        if (++files > MAX_FILES)
            die("too many files");
        if (slash > 0) {
            rec[slash] = '\0';
            if (mkdir(rec, 0755) != 0 && errno != EEXIST)
                die("mkdir '%s': %s", rec, strerror(errno));
            rec[slash] = '/';
        }
        /* O_EXCL + O_NOFOLLOW: a duplicate name or a pre-placed link is an error, not a write
         * through it. */
        int fd = open(rec, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
            die("create '%s': %s", rec, strerror(errno));
        budget -= size;
        while (size > 0) {
            size_t chunk = size > (long long)sizeof buf ? sizeof buf : (size_t)size;
            read_exact(buf, chunk);
            if (write_all(fd, buf, chunk) != 0)
                die("write '%s': %s", rec, strerror(errno));
            size -= (long long)chunk;
        }
        if (close(fd) != 0)
            die("close '%s': %s", rec, strerror(errno));
    }
}

/* The memory cgroup's oom_kill counter (v2 memory.events, v1 memory.oom_control), -1 if
 * neither is readable. */
static long long read_oom_kills(void)
{
    static const char *paths[] = {"/sys/fs/cgroup/memory.events",
                                  "/sys/fs/cgroup/memory/memory.oom_control"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        char buf[1024];
        size_t n = 0;
        for (;;) {
            ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            n += (size_t)r;
            if (n == sizeof buf - 1)
                break;
        }
        close(fd);
        buf[n] = '\0';
        for (char *p = buf; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
            if (strncmp(p, "oom_kill ", 9) == 0)
                return strtoll(p + 9, NULL, 10);
        }
    }
    return -1;
}

static void close_fds_above_2(void)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
        return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 1048576)
        max = 1048576;
    for (long fd = 3; fd < max; fd++)
        close((int)fd);
}

/* Child side common set-up: own process group, default signals, no fds but 0-2. */
static void child_setup(void)
{
    setpgid(0, 0);
    signal(SIGPIPE, SIG_DFL);
    close_fds_above_2();
}

static long long ms_between(const struct timespec *a, const struct timespec *b)
{
    return (long long)(b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000;
}

struct outcome {
    int status;
    struct rusage ru;
    long long wall_ms;
    int oom;
};

static struct outcome supervise(pid_t pid, long long oom_before, const struct timespec *t0)
{
    struct outcome o;
    memset(&o, 0, sizeof o);
    /* Also from the parent, so the kill below cannot miss a group the child has not made yet. */
    setpgid(pid, pid);
    /* Any child: without --init the supervisor is pid 1 and orphans are reparented to it, so
     * they are reaped here too instead of filling the pids limit with zombies. */
    for (;;) {
        int st;
        struct rusage ru;
        pid_t r = wait4(-1, &st, 0, &ru);
        if (r == pid) {
            o.status = st;
            o.ru = ru;
            break;
        }
        if (r > 0 || (r < 0 && errno == EINTR))
            continue;
        die("wait4: %s", strerror(errno));
    }
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    o.wall_ms = ms_between(t0, &t1);
    /* Leftovers: the child's group, then everything else of this uid (setsid escapes the group;
     * kill(-1) spares the caller and pid 1). */
    kill(-pid, SIGKILL);
    kill(-1, SIGKILL);
    long long oom_after = read_oom_kills();
    o.oom = oom_before >= 0 && oom_after > oom_before;
    return o;
}

static int fmt_status(char *buf, size_t len, char kind, const struct outcome *o, int wall)
{
    char ex[16] = "-", sg[16] = "-";
    if (WIFEXITED(o->status))
        snprintf(ex, sizeof ex, "%d", WEXITSTATUS(o->status));
    else if (WIFSIGNALED(o->status))
        snprintf(sg, sizeof sg, "%d", WTERMSIG(o->status));
    long long cpu_ms = (long long)(o->ru.ru_utime.tv_sec + o->ru.ru_stime.tv_sec) * 1000 +
                       (o->ru.ru_utime.tv_usec + o->ru.ru_stime.tv_usec) / 1000;
    char wallbuf[40] = "";
    if (wall)
        snprintf(wallbuf, sizeof wallbuf, " wall_ms=%lld", o->wall_ms);
    return snprintf(buf, len, "\x1e%s\x1e%c exit=%s signal=%s cpu_ms=%lld rss_kb=%ld%s oom=%d\x1e%s\x1e",
                    nonce, kind, ex, sg, cpu_ms, o->ru.ru_maxrss, wallbuf, o->oom, nonce);
}

static void report(int fd, const char *buf, int len)
{
    if (len < 0 || write_all(fd, buf, (size_t)len) != 0)
        die("writing the report: %s", strerror(errno));
}

static void drop_warm(void);

/* Hands the compile to the warm compiler if cmd is its command (words joined by spaces)
 * followed by more plain words (no shell syntax: what the shell would do with them is what
 * the compiler gets); 0 when it took the compile, -1 when the compile must start afresh. */
static int go_warm_compile(const char *cmd)
{
    if (warm_pid <= 0 || !warm_compile)
        return -1;
    const char *p = cmd;
    for (int i = 0; i < warm_words; i++) {
        size_t l = strlen(warm_argv[i]);
        if (strncmp(p, warm_argv[i], l) != 0 || p[l] != ' ')
            return -1;
        p += l + 1;
    }
    if (*p == '\0' || strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789_./:=+- ") != strlen(p))
        return -1;
    while (*p) {
        size_t l = strcspn(p, " ");
        if (l > 0 && (write_all(warm_fd, p, l) != 0 || write_all(warm_fd, "", 1) != 0))
            return -1; /* it died: EPIPE */
        p += l;
        p += strspn(p, " ");
    }
    close(warm_fd);
    warm_fd = -1;
    return 0;
}

static void compile(const char *cmd)
{
    long long oom_before = read_oom_kills();
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid;
    if (go_warm_compile(cmd) == 0) {
        pid = warm_pid;
        warm_pid = 0; /* reaped below; nothing of it is left for the run */
    } else {
        drop_warm();
        pid = fork();
    }
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        child_setup();
        int null = open("/dev/null", O_RDONLY);
        if (null < 0 || dup2(null, 0) < 0 || dup2(2, 1) < 0)
            _exit(126);
        if (null > 2)
            close(null);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    struct outcome o = supervise(pid, oom_before, &t0);
    char buf[256];
    report(2, buf, fmt_status(buf, sizeof buf, 'C', &o, 0));
    if (!WIFEXITED(o.status) || WEXITSTATUS(o.status) != 0)
        _exit(1);
}

/* The child's side of the run step: limits, then the program. */
static void exec_program(char **argv) __attribute__((noreturn));
static void exec_program(char **argv)
{
    child_setup();
    if (cpu_limit_s > 0) {
        /* SIGXCPU at the limit, SIGKILL a second later for a program that ignores it. */
        struct rlimit rl = {(rlim_t)cpu_limit_s, (rlim_t)cpu_limit_s + 1};
        if (setrlimit(RLIMIT_CPU, &rl) != 0)
            _exit(126);
    }
    execvp(argv[0], argv);
    char msg[320];
    int n = snprintf(msg, sizeof msg, "cannot run '%s': %s\n", argv[0], strerror(errno));
    if (n > 0)
        write_all(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    _exit(127);
}

/*
 * A pseudo-terminal for the program's stdin and stdout (stderr stays the pipe), so that C
 * stdio line-buffers stdout and flushes it before reading stdin, as at a terminal: a prompt
 * printed without a newline shows before the program waits. Canonical mode (a read that
 * starts in raw mode would not end at an EOF character), with no echo, no signals, no CR/LF
 * mapping and no output processing; the line-editing characters that remain are escaped by
 * tty_escape, so bytes pass unchanged. Returns the master; *slave gets the other end.
 */
static int open_pty(int *slave)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0)
        die("cannot open a pseudo-terminal: %s", strerror(errno));
    char name[64];
    if (ptsname_r(m, name, sizeof name) != 0)
        die("ptsname: %s", strerror(errno));
    int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    struct termios t;
    if (s < 0 || tcgetattr(s, &t) != 0)
        die("cannot open the terminal's other end: %s", strerror(errno));
    cfmakeraw(&t);
    t.c_lflag |= ICANON | IEXTEN;
    t.c_cc[VEOF] = 4;
    t.c_cc[VLNEXT] = 0x16;
    /* End-of-line characters: only the newline itself. */
    t.c_cc[VEOL] = '\n';
    t.c_cc[VEOL2] = '\n';
    if (tcsetattr(s, TCSANOW, &t) != 0)
        die("tcsetattr: %s", strerror(errno));
    *slave = s;
    return m;
}

/* Whether the line discipline would act on c in canonical mode with IEXTEN (EOF, erase,
 * kill, word erase, reprint, literal next). */
static int tty_special(unsigned char c)
{
    return c == 4 || c == 0x7f || c == 0x15 || c == 0x17 || c == 0x12 || c == 0x16 || c == 8;
}

/* Copies src into dst (room for 2 * len) with each special character preceded by the
 * literal-next character; returns the length written. */
static size_t tty_escape(char *dst, const char *src, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (tty_special((unsigned char)src[i]))
            dst[n++] = 0x16;
        dst[n++] = src[i];
    }
    return n;
}

/* Copies what is readable on the master to stdout; 0 once the terminal has no writer left
 * (EIO) or nothing is there now. */
static int drain_master(int m)
{
    static char buf[65536];
    ssize_t n = read(m, buf, sizeof buf);
    if (n > 0) {
        /* A closed reader (the engine is gone) is no reason to stop supervising. */
        (void)write_all(1, buf, (size_t)n);
        return 1;
    }
    return 0;
}

/*
 * supervise() for a program on a terminal: while it runs, copies the container's stdin to the
 * terminal (never blocking on a program that does not read) and the terminal to stdout. The
 * end of stdin becomes the terminal's end of input: EOF characters, so a read returns 0.
 * After the program, everything of the uid is killed and reaped, then what the terminal still
 * holds is copied, so the report comes after all of the program's output.
 */
static struct outcome supervise_tty(pid_t pid, int m, int sfd, long long oom_before,
                                    const struct timespec *t0)
{
    struct outcome o;
    memset(&o, 0, sizeof o);
    setpgid(pid, pid);
    if (fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK) != 0)
        die("fcntl: %s", strerror(errno));
    static char raw[2048], in[4096];
    size_t in_len = 0, in_off = 0;
    int in_open = 1, eof_due = 0, master_open = 1, done = 0;
    while (!done) {
        struct pollfd p[3] = {
            {master_open ? m : -1, (short)(POLLIN | (in_off < in_len || eof_due ? POLLOUT : 0)), 0},
            {in_open && in_off == in_len ? 0 : -1, POLLIN, 0},
            {sfd, POLLIN, 0},
        };
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll: %s", strerror(errno));
        }
        if (p[0].revents & POLLIN)
            drain_master(m);
        else if (p[0].revents & (POLLHUP | POLLERR))
            master_open = drain_master(m); /* no writer left: stop polling a hung-up master */
        if ((p[0].revents & POLLOUT) && in_off < in_len) {
            ssize_t w = write(m, in + in_off, in_len - in_off);
            if (w > 0)
                in_off += (size_t)w;
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(0, raw, sizeof raw);
            if (r > 0) {
                in_len = tty_escape(in, raw, (size_t)r);
                in_off = 0;
            } else if (r == 0 || errno != EINTR) {
                in_open = 0;
                eof_due = 2;
            }
        }
        if (eof_due && in_off == in_len) {
            /* Two EOF characters: the first only ends an unfinished last line, if there is
             * one; a second end of input, if the program reads on, is one more 0 from read. */
            static const char eot[2] = {4, 4};
            ssize_t w = write(m, eot + (2 - eof_due), (size_t)eof_due);
            if (w > 0)
                eof_due -= (int)w;
        }
        if (p[2].revents & POLLIN) {
            struct signalfd_siginfo si;
            ssize_t ignored = read(sfd, &si, sizeof si);
            (void)ignored;
            for (;;) {
                int st;
                struct rusage ru;
                pid_t r = wait4(-1, &st, WNOHANG, &ru);
                if (r <= 0)
                    break;
                if (r == pid) {
                    o.status = st;
                    o.ru = ru;
                    done = 1;
                }
            }
        }
    }
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    o.wall_ms = ms_between(t0, &t1);
    kill(-pid, SIGKILL);
    kill(-1, SIGKILL);
    /* Every process of the uid is dead once reaped: no writer is left on the terminal. */
    for (;;) {
        pid_t r = wait4(-1, NULL, 0, NULL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
    }
    while (drain_master(m))
        ;
    long long oom_after = read_oom_kills();
    o.oom = oom_before >= 0 && oom_after > oom_before;
    return o;
}

/*
 * --warm: the run's program started before its run is known, while the container waits in
 * the pool (a language whose runtime takes tens of milliseconds to boot, such as Node.js
 * from its snapshot, then only loads the program when the run comes). It is started before
 * the header is read, so that nothing of the nonce is ever in its memory, with the usual
 * child set-up plus fd 3, the read end of a control pipe: when the run's command starts with
 * the warm command, the remaining words (each ending in a NUL) are written there and the pipe
 * closed, and the child goes on as the run's program. It reads nothing else before that.
 * --warm-compile is the same for the compile step (see go_warm_compile): the compiler is
 * pre-started, with the compile step's stdin and stdout.
 */
static void start_warm(char **argv)
{
    int ctl[2];
    if (pipe2(ctl, O_CLOEXEC) != 0)
        die("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGPIPE, SIG_DFL);
        if (warm_compile) {
            int null = open("/dev/null", O_RDONLY);
            if (null < 0 || dup2(null, 0) < 0 || dup2(2, 1) < 0)
                _exit(126);
            if (null != 0 && null != ctl[0] && null != ctl[1])
                close(null);
        }
        /* dup2 leaves the copy without O_CLOEXEC, but is a no-op when the pipe is fd 3
         * already; everything above it is closed. */
        if (ctl[0] == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(ctl[0], 3) < 0)
            _exit(126);
#ifdef SYS_close_range
        if (syscall(SYS_close_range, 4U, ~0U, 0U) != 0)
#endif
        {
            for (int fd = 4; fd < 1024; fd++)
                close(fd);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    setpgid(pid, pid);
    close(ctl[0]);
    warm_pid = pid;
    warm_fd = ctl[1];
    warm_argv = argv;
    for (warm_words = 0; argv[warm_words] != NULL; warm_words++)
        ;
}

/* The warm child is not used: killed (the supervise loop reaps it). */
static void drop_warm(void)
{
    if (warm_pid > 0)
        kill(-warm_pid, SIGKILL);
    if (warm_fd >= 0)
        close(warm_fd);
    warm_pid = 0;
    warm_fd = -1;
}

/* Hands the run to the warm child if argv is its command plus more words; 0 when it took
 * the run (its limits set), -1 when the run must start a fresh process. */
static int go_warm(char **argv)
{
    if (warm_pid <= 0 || warm_compile || use_tty)
        return -1;
    int n = 0;
    while (argv[n] != NULL)
        n++;
    if (n <= warm_words)
        return -1;
    for (int i = 0; i < warm_words; i++)
        if (strcmp(argv[i], warm_argv[i]) != 0)
            return -1;
    if (cpu_limit_s > 0) {
        struct rlimit rl = {(rlim_t)cpu_limit_s, (rlim_t)cpu_limit_s + 1};
        if (prlimit(warm_pid, RLIMIT_CPU, &rl, NULL) != 0)
            return -1;
    }
    for (int i = warm_words; i < n; i++)
        if (write_all(warm_fd, argv[i], strlen(argv[i]) + 1) != 0)
            return -1; /* it died: EPIPE */
    close(warm_fd);
    warm_fd = -1;
    return 0;
}

static void run(char **argv)
{
    long long oom_before = read_oom_kills();
    int m = -1, slave = -1, sfd = -1;
    sigset_t chld, old;
    if (use_tty) {
        m = open_pty(&slave);
        /* SIGCHLD through a descriptor, so one poll waits for output, input and the end. */
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &chld, &old) != 0 ||
            (sfd = signalfd(-1, &chld, SFD_CLOEXEC)) < 0)
            die("signalfd: %s", strerror(errno));
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid;
    if (go_warm(argv) == 0) {
        pid = warm_pid;
    } else {
        drop_warm();
        pid = fork();
    }
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        if (use_tty) {
            sigprocmask(SIG_SETMASK, &old, NULL);
            if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0)
                _exit(126);
        }
        exec_program(argv);
    }
    struct outcome o;
    if (use_tty) {
        close(slave);
        o = supervise_tty(pid, m, sfd, oom_before, &t0);
    } else {
        o = supervise(pid, oom_before, &t0);
    }
    char buf[256];
    report(1, buf, fmt_status(buf, sizeof buf, 'R', &o, 1));
    int n = snprintf(buf, sizeof buf, "\x1e%s\x1e\x1e%s\x1e", nonce, nonce);
    report(2, buf, n);
}

int main(int argc, char **argv)
{
    /* First: the program runs as the same uid; non-dumpable closes /proc/<pid>/mem, /fd,
     * environ and ptrace to it before anything secret (the nonce) is in memory. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        die("prctl(PR_SET_DUMPABLE): %s", strerror(errno));
    /* kill(-1) after the run would hit every process of the uid: as root that is the host's
     * or container's whole process table, so root is refused outright. */
    if (getuid() == 0 || geteuid() == 0)
        die("refusing to run as root");
    /* A closed reader must give EPIPE on the report write, not kill us silently. */
    signal(SIGPIPE, SIG_IGN);

    /* The commands come from argv, or from the payload (which a warm container, started
     * before its run was known, needs): a `:compile` record replaces --compile and `:run`
     * records (one per word) replace the program and its arguments. */
    const char *compile_cmd = NULL;
    int i = 1;
    /* `--warm WORDS...`: the rest of argv is the command to pre-start (see start_warm). */
    if (i < argc && (strcmp(argv[i], "--warm") == 0 || strcmp(argv[i], "--warm-compile") == 0)) {
        if (i + 1 >= argc)
            die("%s needs a command", argv[i]);
        warm_compile = strcmp(argv[i], "--warm-compile") == 0;
        start_warm(argv + i + 1);
        i = argc;
    }
    if (i < argc && strcmp(argv[i], "--compile") == 0) {
        if (i + 1 >= argc)
            die("--compile needs a command");
        compile_cmd = argv[i + 1];
        i += 2;
    }
    char **prog = NULL;
    if (i < argc) {
        if (strcmp(argv[i], "--") != 0 || i + 1 >= argc)
            die("usage: supervisor [--warm|--warm-compile WORDS...] | [--compile CMD] [-- PROGRAM [ARGS...]]");
        prog = argv + i + 1;
    }

    read_header_and_files();
    if (payload_compile != NULL)
        compile_cmd = payload_compile;
    if (payload_run_words > 0) {
        payload_run[payload_run_words] = NULL;
        prog = payload_run;
    }
    if (prog == NULL)
        die("no program to run: neither argv nor the payload names one");
    if (compile_cmd != NULL) {
        /* A warm program: the compile's clean-up would kill it anyway; its memory is the
         * compiler's. */
        if (!warm_compile)
            drop_warm();
        compile(compile_cmd);
    }
    run(prog);
    return 0;
}
