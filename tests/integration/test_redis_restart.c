/*
 * test_redis_restart.c - checkpoints across a Redis restart from its append-only file, against
 * a real redis-server (started here with persistence in a scratch directory).
 *
 * A restarted Redis answers -LOADING while it replays its AOF. WATCH is accepted during that
 * time, the owner check is not, and the replay touches the watched meta key: a checkpoint that
 * kept that WATCH would see its next EXEC aborted and could take the abort for lost ownership.
 * A failed transaction is not proof of lost ownership: the checkpoint must be retried and
 * succeed once Redis has loaded, never report "fenced" (-2) for a partition nobody else claimed.
 * The Redis key-load-delay setting (microseconds per key) keeps the server loading for seconds.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "dw_test_redis.h"

#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_part.h"
#include "driftwatch/io/dw_redis.h"

#define FILLER_KEYS "60000" /* keys that make the AOF slow to load */
#define LOAD_DELAY_US "40"  /* microseconds per key while loading: about 2.4 s */
#define RETRY_MS 50         /* milliseconds between checkpoint attempts */
#define MAX_ATTEMPTS 400    /* 20 s of attempts at most */

static struct dw_feature_cfg g_feats[] = {{"amount", DW_FEATURE_NUMERIC}};
static struct dw_model_cfg g_models[] = {{.name = "fraud",
                                          .task = DW_TASK_CLASSIFICATION,
                                          .positive_class = "1",
                                          .features = g_feats,
                                          .n_features = 1}};
static struct dw_config g_cfg;
static char g_dir[64];
static int g_port;
static pid_t g_pid; /* the server, stopped by teardown whatever the test's outcome */

static pid_t start_server(char *load_delay_us)
{
    char port_s[16];
    snprintf(port_s, sizeof(port_s), "%d", g_port);
    char *argv[] = {"redis-server",
                    "--port",
                    port_s,
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    g_dir,
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                    "--enable-debug-command",
                    "yes",
                    "--key-load-delay",
                    load_delay_us,
                    NULL};
    return dw_test_redis_spawn(argv);
}

/* Runs one command on a connection of our own; @returns its reply as text (static buffer). */
static const char *raw(const char *cmd)
{
    static char out[256];
    char line[512];
    snprintf(line, sizeof(line), "redis-cli -p %d %s 2>&1", g_port, cmd);
    FILE *f = popen(line, "r");
    out[0] = 0;
    if (f) {
        if (!fgets(out, sizeof(out), f)) {
            out[0] = 0;
        }
        pclose(f);
    }
    out[strcspn(out, "\n")] = 0;
    return out;
}

static void wait_ready(void)
{
    for (int i = 0; i < 200; i++) {
        if (strcmp(raw("PING"), "PONG") == 0) {
            return;
        }
        usleep(50 * 1000);
    }
    fail_msg("redis-server did not start");
}

static void predict(struct dw_part *p, struct dw_prediction *ev, const char *id, int64_t ts)
{
    dw_test_prediction(ev, &g_models[0], id, ts);
    dw_part_on_prediction(p, ev);
    p->off_pred++;
}

static void test_checkpoint_during_aof_load(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/dw_test_redis_restart_XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    g_port = dw_test_free_port();
    dw_test_redis_config(&g_cfg, g_port, "restart", g_models, 1);

    g_pid = start_server("0");
    wait_ready();
    raw("DEBUG POPULATE " FILLER_KEYS " filler 64");
    raw("BGREWRITEAOF"); /* the filler keys go into the AOF's base file */
    sleep(2);

    char errstr[256] = "";
    struct dw_redis *r = dw_redis_connect(&g_cfg, errstr, sizeof(errstr));
    assert_non_null(r);
    struct dw_prediction *ev = calloc(1, sizeof(*ev) + sizeof(struct dw_val));
    struct dw_part *p = dw_part_new(&g_cfg, 3);
    assert_int_equal(dw_redis_claim(r, 3, "me", errstr, sizeof(errstr)), 0);
    predict(p, ev, "a", 605000);
    assert_int_equal(dw_redis_checkpoint(r, p, "me", 0, 0, NULL, errstr, sizeof(errstr)), 0);

    /* kill -9 and restart: the AOF is replayed slowly. */
    kill(g_pid, SIGKILL);
    waitpid(g_pid, NULL, 0);
    g_pid = start_server(LOAD_DELAY_US);
    predict(p, ev, "b", 606000);
    int saw_error = 0, rc = -1;
    for (int i = 0; i < MAX_ATTEMPTS; i++) {
        rc = dw_redis_checkpoint(r, p, "me", 0, 0, NULL, errstr, sizeof(errstr));
        if (rc == -2) {
            fail_msg("checkpoint %d after the restart reported lost ownership: %s", i, errstr);
        }
        if (rc == 0) {
            break;
        }
        saw_error = 1;
        usleep(RETRY_MS * 1000);
    }
    assert_int_equal(rc, 0);
    assert_true(saw_error); /* the server was loading at first: the test did test something */

    /* What a new owner loads is both predictions. */
    struct dw_part *q = dw_part_new(&g_cfg, 3);
    assert_int_equal(dw_redis_load_part(r, q, NULL, 0, errstr, sizeof(errstr)), 1);
    assert_int_equal(q->off_pred, p->off_pred);
    struct dw_agg *w = dw_part_window(q, &g_models[0], 600000);
    assert_non_null(w);
    assert_int_equal(w->all.predictions, 2);

    dw_part_free(q);
    dw_part_free(p);
    free(ev);
    dw_redis_free(r);
}

static int teardown(void **state)
{
    (void)state;
    if (g_pid > 0) {
        kill(g_pid, SIGKILL);
        waitpid(g_pid, NULL, 0);
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_checkpoint_during_aof_load, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
