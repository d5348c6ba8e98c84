/*
 * dw_test_proxy.h - a TCP proxy in front of the test's redis-server that breaks chosen commands,
 * for the C integration tests: a fault at a named point of a command sequence, the same every
 * run (no timing, no CLIENT KILL racing the client).
 *
 * The proxy is a child process listening on a free loopback port; each connection accepted
 * gets its own connection to 127.0.0.1:<redis port>, and the bytes go through unchanged. The
 * client's bytes are read as RESP commands (arrays of bulk strings, what hiredis sends), and a
 * rule names a command (case-insensitive) and what happens to it, once, at its first occurrence
 * on any connection:
 *   close  the client's connection is closed instead of forwarding it (the command is lost,
 *          its reply never comes: a connection dropped mid-sequence);
 *   side   another command (argv, NULL-terminated) is sent first on a connection of the
 *          proxy's own and its reply awaited, then the named command is forwarded: "someone
 *          else wrote between two commands of the client", at an exact point;
 *   lose_reply  the command is forwarded, and once Redis has run it the client's connection is
 *          closed: its reply never comes (the write applied, the answer lost). "Once Redis has
 *          run it": the proxy shuts its side of the connection to Redis and waits for Redis to
 *          close it, which Redis does only after the commands before the end of the stream.
 * A rule with `arg` matches only a command whose first argument is arg (a key).
 * The listening socket is bound before the fork, so the caller may connect at once. Include once
 * per test file; stop it with dw_test_proxy_stop() (it also ends with the test's process).
 * Linux only (PR_SET_PDEATHSIG), like the rest of the integration tests.
 */
#ifndef DW_TEST_PROXY_H
#define DW_TEST_PROXY_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define DW_TEST_PROXY_CONNS 8     /* client connections held at once */
#define DW_TEST_PROXY_SIDE_ARGS 6 /* arguments of a side command, NULL included */
/* lose_reply: the longest wait for Redis to close its end (milliseconds) */
#define DW_TEST_PROXY_DRAIN_MS 5000

struct dw_test_proxy_rule {
    const char *on;  /* the command's name */
    const char *arg; /* NULL, or the first argument the command must have */
    int close;       /* 1: close the client's connection instead of forwarding the command */
    int lose_reply;  /* 1: forward the command, close the client's connection once it ran */
    const char *side[DW_TEST_PROXY_SIDE_ARGS]; /* else: sent first on the proxy's own connection */
};

/* One client connection and its connection to Redis. */
struct dw_test_proxy_conn {
    int cfd, ufd;
    char *in; /* the client's bytes not forwarded yet (an incomplete command) */
    size_t n, cap;
};

static int dw_test_proxy_write(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int dw_test_proxy_dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The number "<kind><digits>\r\n" at b[*pos]: its value, *pos moved past it; -2 while
 * incomplete, -1 when it is not one. */
static long long dw_test_proxy_num(const char *b, size_t n, size_t *pos, char kind)
{
    if (*pos >= n) {
        return -2;
    }
    if (b[*pos] != kind) {
        return -1;
    }
    long long v = 0;
    size_t i = *pos + 1;
    for (; i < n && b[i] != '\r'; i++) {
        if (b[i] < '0' || b[i] > '9' || v > 1000000000LL) {
            return -1;
        }
        v = v * 10 + (b[i] - '0');
    }
    if (i + 1 >= n) {
        return -2;
    }
    if (b[i + 1] != '\n') {
        return -1;
    }
    *pos = i + 2;
    return v;
}

/* The bytes of the whole command at the start of b, its name (*name, *name_len) and first
 * argument (*arg, *arg_len; NULL when none); 0 while incomplete, -1 when it is not a RESP array
 * of bulk strings. */
static long long dw_test_proxy_cmd(const char *b, size_t n, const char **name, size_t *name_len,
                                   const char **arg, size_t *arg_len)
{
    *arg = NULL;
    *arg_len = 0;
    size_t pos = 0;
    long long argc = dw_test_proxy_num(b, n, &pos, '*');
    if (argc < 1) {
        return argc == -2 ? 0 : -1;
    }
    for (long long i = 0; i < argc; i++) {
        long long len = dw_test_proxy_num(b, n, &pos, '$');
        if (len < 0) {
            return len == -2 ? 0 : -1;
        }
        if (pos + (size_t)len + 2 > n) {
            return 0;
        }
        if (i == 0) {
            *name = b + pos;
            *name_len = (size_t)len;
        } else if (i == 1) {
            *arg = b + pos;
            *arg_len = (size_t)len;
        }
        pos += (size_t)len + 2;
    }
    return (long long)pos;
}

/* Sends argv on a connection of its own to Redis and waits for the first line of the reply. */
static void dw_test_proxy_side(int redis_port, const char *const *argv)
{
    char cmd[1024];
    size_t used = 0, argc = 0;
    while (argc + 1 < DW_TEST_PROXY_SIDE_ARGS && argv[argc]) {
        argc++;
    }
    used += (size_t)snprintf(cmd + used, sizeof(cmd) - used, "*%zu\r\n", argc);
    for (size_t i = 0; i < argc && used < sizeof(cmd); i++) {
        used += (size_t)snprintf(cmd + used, sizeof(cmd) - used, "$%zu\r\n%s\r\n", strlen(argv[i]),
                                 argv[i]);
    }
    int fd = dw_test_proxy_dial(redis_port);
    if (fd < 0 || used >= sizeof(cmd) || dw_test_proxy_write(fd, cmd, used) != 0) {
        _exit(3); /* the test sees the proxy gone: every connection refused */
    }
    char c = 0;
    while (c != '\n' && read(fd, &c, 1) == 1) {
    }
    close(fd);
}

static void dw_test_proxy_drop(struct dw_test_proxy_conn *k)
{
    close(k->cfd);
    close(k->ufd);
    free(k->in);
    memset(k, 0, sizeof(*k));
    k->cfd = k->ufd = -1;
}

/* lose_reply: the command was forwarded; waits until Redis closes the connection (it has run
 * what came before the end of the stream), discarding its replies, then drops k. */
static void dw_test_proxy_lose_reply(struct dw_test_proxy_conn *k)
{
    char buf[4096];
    shutdown(k->ufd, SHUT_WR);
    struct pollfd pf = {.fd = k->ufd, .events = POLLIN};
    while (poll(&pf, 1, DW_TEST_PROXY_DRAIN_MS) > 0 && read(k->ufd, buf, sizeof(buf)) > 0) {
    }
    dw_test_proxy_drop(k);
}

/* Whether rule r names the command name (and its first argument arg). */
static int dw_test_proxy_match(const struct dw_test_proxy_rule *r, const char *name,
                               size_t name_len, const char *arg, size_t arg_len)
{
    return strlen(r->on) == name_len && strncasecmp(r->on, name, name_len) == 0 &&
           (!r->arg || (arg && strlen(r->arg) == arg_len && memcmp(r->arg, arg, arg_len) == 0));
}

/* Forwards k's complete commands, applying the rules. @returns -1 when k was closed. */
static int dw_test_proxy_commands(struct dw_test_proxy_conn *k, int redis_port,
                                  const struct dw_test_proxy_rule *rules, int *fired,
                                  size_t n_rules)
{
    size_t done = 0;
    for (;;) {
        const char *name = NULL, *arg = NULL;
        size_t name_len = 0, arg_len = 0;
        long long len =
            dw_test_proxy_cmd(k->in + done, k->n - done, &name, &name_len, &arg, &arg_len);
        if (len < 0) {
            dw_test_proxy_drop(k);
            return -1;
        }
        if (len == 0) {
            break;
        }
        int lose = 0;
        for (size_t i = 0; i < n_rules; i++) {
            if (fired[i] || !dw_test_proxy_match(&rules[i], name, name_len, arg, arg_len)) {
                continue;
            }
            fired[i] = 1;
            if (rules[i].close) {
                dw_test_proxy_drop(k);
                return -1;
            }
            if (rules[i].lose_reply) {
                lose = 1;
            } else {
                dw_test_proxy_side(redis_port, rules[i].side);
            }
        }
        if (dw_test_proxy_write(k->ufd, k->in + done, (size_t)len) != 0) {
            dw_test_proxy_drop(k);
            return -1;
        }
        if (lose) {
            dw_test_proxy_lose_reply(k);
            return -1;
        }
        done += (size_t)len;
    }
    memmove(k->in, k->in + done, k->n - done);
    k->n -= done;
    return 0;
}

/* The proxy's loop (the child). */
static void dw_test_proxy_run(int lfd, int redis_port, const struct dw_test_proxy_rule *rules,
                              size_t n_rules)
{
    struct dw_test_proxy_conn ks[DW_TEST_PROXY_CONNS];
    int fired[16] = {0};
    for (size_t i = 0; i < DW_TEST_PROXY_CONNS; i++) {
        memset(&ks[i], 0, sizeof(ks[i]));
        ks[i].cfd = ks[i].ufd = -1;
    }
    for (;;) {
        struct pollfd pf[1 + 2 * DW_TEST_PROXY_CONNS];
        pf[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (size_t i = 0; i < DW_TEST_PROXY_CONNS; i++) {
            pf[1 + 2 * i] = (struct pollfd){.fd = ks[i].cfd, .events = POLLIN};
            pf[2 + 2 * i] = (struct pollfd){.fd = ks[i].ufd, .events = POLLIN};
        }
        if (poll(pf, 1 + 2 * DW_TEST_PROXY_CONNS, -1) < 0) {
            continue;
        }
        for (size_t i = 0; i < DW_TEST_PROXY_CONNS; i++) {
            struct dw_test_proxy_conn *k = &ks[i];
            char buf[16384];
            if (k->ufd >= 0 && (pf[2 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR))) {
                ssize_t got = read(k->ufd, buf, sizeof(buf));
                if (got <= 0 || dw_test_proxy_write(k->cfd, buf, (size_t)got) != 0) {
                    dw_test_proxy_drop(k);
                    continue;
                }
            }
            if (k->cfd >= 0 && (pf[1 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR))) {
                ssize_t got = read(k->cfd, buf, sizeof(buf));
                if (got <= 0) {
                    dw_test_proxy_drop(k);
                    continue;
                }
                if (k->n + (size_t)got > k->cap) {
                    char *in = realloc(k->in, 2 * (k->n + (size_t)got));
                    if (!in) {
                        dw_test_proxy_drop(k);
                        continue;
                    }
                    k->in = in;
                    k->cap = 2 * (k->n + (size_t)got);
                }
                memcpy(k->in + k->n, buf, (size_t)got);
                k->n += (size_t)got;
                dw_test_proxy_commands(k, redis_port, rules, fired, n_rules);
            }
        }
        if (pf[0].revents & POLLIN) {
            int cfd = accept(lfd, NULL, NULL);
            size_t i = 0;
            while (i < DW_TEST_PROXY_CONNS && ks[i].cfd >= 0) {
                i++;
            }
            int ufd = cfd >= 0 && i < DW_TEST_PROXY_CONNS ? dw_test_proxy_dial(redis_port) : -1;
            if (ufd < 0) {
                if (cfd >= 0) {
                    close(cfd);
                }
                continue;
            }
            ks[i].cfd = cfd;
            ks[i].ufd = ufd;
        }
    }
}

/*
 * Starts the proxy in front of 127.0.0.1:redis_port with `rules` (at most 16; copied by the
 * fork). @returns its pid, and *port its loopback port; -1 when it could not start.
 */
static inline pid_t dw_test_proxy_start(int redis_port, const struct dw_test_proxy_rule *rules,
                                        size_t n_rules, int *port)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (lfd < 0 || n_rules > 16 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(lfd, 16) != 0 || getsockname(lfd, (struct sockaddr *)&a, &len) != 0) {
        if (lfd >= 0) {
            close(lfd);
        }
        return -1;
    }
    *port = ntohs(a.sin_port);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* A failed assertion leaves the test without stopping its proxy: the proxy ends with
         * the test's process, and holds none of its output (a pipe read to its end). */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent ||
            !freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) {
            _exit(2);
        }
        signal(SIGPIPE, SIG_IGN);
        dw_test_proxy_run(lfd, redis_port, rules, n_rules);
        _exit(0);
    }
    close(lfd);
    return pid;
}

static inline void dw_test_proxy_stop(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
}

#endif
