// Hostile program for selftest.sh: everything it tries against its supervisor must fail.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

static void check(const char *what, int rc) {
    std::printf("%s: %s\n", what, rc < 0 ? std::strerror(errno) : "SUCCEEDED");
}

int main() {
    // First, before this program opens anything itself.
    int extra = 0;
    if (DIR *own = opendir("/proc/self/fd")) {
        while (dirent *e = readdir(own))
            if (e->d_name[0] != '.' && std::atoi(e->d_name) > 2 && std::atoi(e->d_name) != dirfd(own))
                extra++;
    }
    std::printf("own fds above 2: %d\n", extra);
    pid_t sup = getppid();
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/mem", sup);
    check("open supervisor mem", open(path, O_RDONLY));
    std::snprintf(path, sizeof path, "/proc/%d/fd", sup);
    DIR *d = opendir(path);
    check("list supervisor fds", d ? 0 : -1);
    std::snprintf(path, sizeof path, "/proc/%d/environ", sup);
    check("open supervisor environ", open(path, O_RDONLY));
    check("ptrace attach supervisor", (int)ptrace(PTRACE_ATTACH, sup, nullptr, nullptr));
    check("io_uring_setup", (int)syscall(__NR_io_uring_setup, 1, nullptr));
    std::printf("\x1e" "00000000000000000000000000000000" "\x1eR exit=0 signal=- cpu_ms=0 rss_kb=0 wall_ms=0 oom=0\x1e" "00000000000000000000000000000000" "\x1e\n");
    return 3;
}
