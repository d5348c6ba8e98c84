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
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "driftwatch/core/dw_config.h"
#include "driftwatch/core/dw_decode.h"
#include "driftwatch/io/dw_redis.h"

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

/*
 * The config of an adapter test against the server on 127.0.0.1:port: `group`, topic
 * "predictions", one-minute windows (10 s lateness, 2 min label horizon, 5 min join TTL).
 */
static inline void dw_test_redis_config(struct dw_config *cfg, int port, const char *group,
                                        struct dw_model_cfg *models, size_t n_models)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->group = (char *)group;
    cfg->topic_predictions = (char *)"predictions";
    cfg->redis_host = (char *)"127.0.0.1";
    cfg->redis_port = port;
    cfg->redis_password = (char *)"";
    cfg->redis_timeout_ms = 2000;
    cfg->window_size_ms = 60000;
    cfg->allowed_lateness_ms = 10000;
    cfg->label_horizon_ms = 120000;
    cfg->join_ttl_ms = 300000;
    cfg->retention_windows = 100;
    cfg->models = models;
    cfg->n_models = n_models;
}

/* Connects to cfg's server, waiting up to 5 s for it to answer. @returns NULL if it never did. */
static inline struct dw_redis *dw_test_redis_wait(const struct dw_config *cfg)
{
    for (int i = 0; i < 100; i++) {
        struct dw_redis *r = dw_redis_connect(cfg, NULL, 0);
        if (r && dw_redis_ping(r) == 0) {
            return r;
        }
        dw_redis_free(r);
        usleep(50 * 1000);
    }
    return NULL;
}

/*
 * A prediction of `model` (version "1.0", class "1") with id, event time ts and its first
 * feature numeric (ts % 1000): the event the adapter tests checkpoint. Other features are the
 * caller's to set before dw_part_on_prediction().
 */
static inline void dw_test_prediction(struct dw_prediction *ev, const struct dw_model_cfg *model,
                                      const char *id, int64_t ts)
{
    ev->id = id;
    ev->id_len = strlen(id);
    ev->model = model;
    ev->model_idx = 0;
    ev->version = "1.0";
    ev->version_len = 3;
    ev->ts_ms = ts;
    snprintf(ev->pred.text, sizeof(ev->pred.text), "1");
    ev->pred.len = 1;
    ev->features[0].kind = DW_VAL_NUM;
    ev->features[0].num = (double)(ts % 1000);
}

#endif
