/*
 * dw_test_redis.h - a real redis-server for the C integration tests: a free loopback port and
 * the server started on it (no persistence). Include once per test file; the test waits until
 * the server answers (its own connection, with or without a password) and stops it with
 * kill(pid, SIGTERM).
 */
#ifndef DW_TEST_REDIS_H
#define DW_TEST_REDIS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

/* A TCP port free on 127.0.0.1 right now (the kernel's choice). */
static int dw_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

/*
 * Starts redis-server with `argv` (argv[0] "redis-server", NULL-terminated), stdout discarded.
 * @returns the child's pid (-1 when fork failed).
 */
static inline pid_t dw_test_redis_spawn(char *const *argv)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout)) {
            _exit(126);
        }
        execvp("redis-server", argv);
        _exit(127);
    }
    return pid;
}

/*
 * Starts redis-server on 127.0.0.1:port, requiring `password` when not NULL.
 * @returns the child's pid (-1 when fork failed).
 */
static inline pid_t dw_test_redis_start(int port, const char *password)
{
    char port_s[16];
    snprintf(port_s, sizeof(port_s), "%d", port);
    char *argv[] = {"redis-server",
                    "--port",
                    port_s,
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    (char *)password ? "--requirepass" : NULL,
                    (char *)password,
                    NULL};
    return dw_test_redis_spawn(argv);
}

#endif
