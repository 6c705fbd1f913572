/*
 * LD_PRELOAD shim for the benchmark: sets TCP_NODELAY on every TCP socket
 * before it connects. lettre and mail-send do not expose the option; the
 * "NODELAY" rows of BENCHMARKS.md run them with this shim, the "as shipped"
 * rows without it. Built by scripts/bench:
 *   gcc -O2 -shared -fPIC -o target/libnodelay.so smtp-bench/shim/nodelay.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    static int (*real_connect)(int, const struct sockaddr *, socklen_t);
    if (!real_connect)
        real_connect = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
    if (addr && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6)) {
        int type = 0;
        socklen_t tl = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
    }
    return real_connect(fd, addr, len);
}
