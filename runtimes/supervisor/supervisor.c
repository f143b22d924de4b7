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
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
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
    /* Header: "<nonce> <len>" -> 32 + 1 + up to 20 digits. */
    char line[NONCE_LEN + 1 + 24];
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
    long long budget = parse_size(line + NONCE_LEN + 1, MAX_PAYLOAD);
    if (budget < 0)
        die("bad payload length");

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

static void compile(const char *cmd)
{
    long long oom_before = read_oom_kills();
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
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

static void run(char **argv)
{
    long long oom_before = read_oom_kills();
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        child_setup();
        execvp(argv[0], argv);
        char msg[320];
        int n = snprintf(msg, sizeof msg, "cannot run '%s': %s\n", argv[0], strerror(errno));
        if (n > 0)
            write_all(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
        _exit(127);
    }
    struct outcome o = supervise(pid, oom_before, &t0);
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
    if (i < argc && strcmp(argv[i], "--compile") == 0) {
        if (i + 1 >= argc)
            die("--compile needs a command");
        compile_cmd = argv[i + 1];
        i += 2;
    }
    char **prog = NULL;
    if (i < argc) {
        if (strcmp(argv[i], "--") != 0 || i + 1 >= argc)
            die("usage: supervisor [--compile CMD] [-- PROGRAM [ARGS...]]");
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
    if (compile_cmd != NULL)
        compile(compile_cmd);
    run(prog);
    return 0;
}
