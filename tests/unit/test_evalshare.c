/*
 * test_evalshare.c - the share of models per pod and which models a pod tries or releases
 * (dw_evalshare): the share rounds up, the assignment is balanced and the same on every pod,
 * a pod above its share releases the models assigned elsewhere first, and a simulation of
 * leases (SET NX semantics over a table) shows three pods and five models settle at 2/2/1
 * with every model held once, a newcomer getting its share, and a dead pod's models taken over.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "driftwatch/core/dw_evalshare.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

#define N_MODELS 5
#define MAX_PODS 4

static const char *const models[N_MODELS] = {"fraud", "churn", "ranker", "spam", "credit"};

static void test_share_rounds_up(void **state)
{
    (void)state;
    assert_int_equal(dw_evalshare_share(5, 3), 2);
    assert_int_equal(dw_evalshare_share(5, 2), 3);
    assert_int_equal(dw_evalshare_share(5, 1), 5);
    assert_int_equal(dw_evalshare_share(5, 5), 1);
    assert_int_equal(dw_evalshare_share(5, 9), 1);
    assert_int_equal(dw_evalshare_share(6, 3), 2);
    assert_int_equal(dw_evalshare_share(0, 3), 0);
    assert_int_equal(dw_evalshare_share(5, 0), 5); /* no pod listed yet: self alone */
}

static void test_assign_balanced_and_stable(void **state)
{
    (void)state;
    const char *pods[3] = {"pod-a:1", "pod-b:2", "pod-c:3"};
    const char *shuffled[3] = {"pod-c:3", "pod-a:1", "pod-b:2"};
    size_t own[N_MODELS], own2[N_MODELS];
    dw_evalshare_assign(models, N_MODELS, pods, 3, own);
    dw_evalshare_assign(models, N_MODELS, shuffled, 3, own2);
    size_t load[3] = {0};
    for (size_t i = 0; i < N_MODELS; i++) {
        load[own[i]]++;
        /* the same pod whatever order the pods were listed in (every pod computes it alike) */
        assert_string_equal(pods[own[i]], shuffled[own2[i]]);
    }
    for (size_t p = 0; p < 3; p++) {
        assert_true(load[p] >= 1 && load[p] <= 2); /* 5 over 3: 2, 2, 1 */
    }
    /* one pod alone: every model is its own */
    dw_evalshare_assign(models, N_MODELS, pods, 1, own);
    for (size_t i = 0; i < N_MODELS; i++) {
        assert_int_equal(own[i], 0);
    }
}

static void test_plan_under_share_tries_assigned_first(void **state)
{
    (void)state;
    const char *pods[3] = {"pod-a:1", "pod-b:2", "pod-c:3"};
    size_t own[N_MODELS];
    dw_evalshare_assign(models, N_MODELS, pods, 3, own);
    unsigned char held[N_MODELS] = {0};
    enum dw_share_act act[N_MODELS];
    size_t order[N_MODELS], share = 0;
    for (size_t p = 0; p < 3; p++) {
        size_t n = dw_evalshare_plan(pods[p], models, N_MODELS, pods, 3, held, act, order, &share);
        assert_int_equal(n, N_MODELS); /* every model is a candidate while below the share */
        assert_int_equal(share, 2);
        size_t mine = 0;
        for (size_t i = 0; i < N_MODELS; i++) {
            mine += own[i] == p;
            assert_int_equal(act[i], DW_SHARE_TRY);
        }
        for (size_t k = 0; k < n; k++) {
            assert_int_equal(own[order[k]] == p, k < mine); /* its own models first */
        }
    }
}

static void test_plan_over_share_releases_others_first(void **state)
{
    (void)state;
    const char *pods[3] = {"pod-a:1", "pod-b:2", "pod-c:3"};
    size_t own[N_MODELS];
    dw_evalshare_assign(models, N_MODELS, pods, 3, own);
    /* pod-a held all five while alone; the two others joined: share 2 */
    unsigned char held[N_MODELS] = {1, 1, 1, 1, 1};
    enum dw_share_act act[N_MODELS];
    size_t order[N_MODELS], share = 0;
    assert_int_equal(
        dw_evalshare_plan("pod-a:1", models, N_MODELS, pods, 3, held, act, order, &share), 0);
    size_t keep = 0;
    for (size_t i = 0; i < N_MODELS; i++) {
        assert_true(act[i] == DW_SHARE_KEEP || act[i] == DW_SHARE_RELEASE);
        keep += act[i] == DW_SHARE_KEEP;
        if (own[i] == 0) {
            assert_int_equal(act[i], DW_SHARE_KEEP); /* its assigned ones are kept */
        }
    }
    assert_int_equal(keep, 2);
    /* at its share: nothing to try, nothing released */
    unsigned char two[N_MODELS] = {0};
    for (size_t i = 0, n = 0; i < N_MODELS && n < 2; i++) {
        if (own[i] != 0) {
            two[i] = 1; /* held models assigned elsewhere: balanced, left alone */
            n++;
        }
    }
    assert_int_equal(
        dw_evalshare_plan("pod-a:1", models, N_MODELS, pods, 3, two, act, order, &share), 0);
    for (size_t i = 0; i < N_MODELS; i++) {
        assert_int_equal(act[i], two[i] ? DW_SHARE_KEEP : DW_SHARE_SKIP);
    }
    /* self missing from the live list still counts once: alone, share 5 */
    assert_int_equal(
        dw_evalshare_plan("pod-a:1", models, N_MODELS, NULL, 0, two, act, order, &share), 3);
    assert_int_equal(share, 5);
    /* listed, not counted twice: share ceil(5 / 3) */
    const char *with_self[3] = {"pod-b:2", "pod-a:1", "pod-c:3"};
    dw_evalshare_plan("pod-a:1", models, N_MODELS, with_self, 3, two, act, order, &share);
    assert_int_equal(share, 2);
}

/* ---- simulation: a lease table with SET NX semantics, pods ticking in turn ---- */

struct sim {
    const char *pods[MAX_PODS];
    int alive[MAX_PODS];
    int lease[N_MODELS]; /* pod index holding the lease, -1 free */
};

static void sim_tick(struct sim *s, int p)
{
    const char *live[MAX_PODS];
    size_t n_live = 0;
    for (int q = 0; q < MAX_PODS; q++) {
        if (s->pods[q] && s->alive[q]) {
            live[n_live++] = s->pods[q];
        }
    }
    unsigned char held[N_MODELS];
    size_t n_held = 0;
    for (size_t i = 0; i < N_MODELS; i++) {
        held[i] = s->lease[i] == p;
        n_held += held[i];
    }
    enum dw_share_act act[N_MODELS];
    size_t order[N_MODELS], share = 0;
    size_t n =
        dw_evalshare_plan(s->pods[p], models, N_MODELS, live, n_live, held, act, order, &share);
    for (size_t i = 0; i < N_MODELS; i++) {
        if (act[i] == DW_SHARE_RELEASE) {
            s->lease[i] = -1;
            n_held--;
        }
    }
    for (size_t k = 0; k < n && n_held < share; k++) {
        if (s->lease[order[k]] < 0) { /* SET NX */
            s->lease[order[k]] = p;
            n_held++;
        }
    }
}

static void sim_round(struct sim *s)
{
    for (int p = 0; p < MAX_PODS; p++) {
        if (s->pods[p] && s->alive[p]) {
            sim_tick(s, p);
        }
    }
}

/* Every model held by a live pod, none holds more than `max`. */
static void assert_spread(const struct sim *s, int max)
{
    int load[MAX_PODS] = {0};
    for (size_t i = 0; i < N_MODELS; i++) {
        assert_true(s->lease[i] >= 0);
        assert_true(s->alive[s->lease[i]]);
        load[s->lease[i]]++;
    }
    for (int p = 0; p < MAX_PODS; p++) {
        assert_true(load[p] <= max);
    }
}

static void test_simulation_join_and_die(void **state)
{
    (void)state;
    struct sim s = {.pods = {"10.0.0.1:run:1", "10.0.0.2:run:1", "10.0.0.3:run:1", NULL},
                    .alive = {1, 0, 0, 0},
                    .lease = {-1, -1, -1, -1, -1}};
    sim_round(&s);
    assert_spread(&s, 5); /* alone: every model */
    s.alive[1] = s.alive[2] = 1;
    /* pod 0 releases down to 2 on its tick, the newcomers take what is free */
    sim_round(&s);
    sim_round(&s);
    assert_spread(&s, 2);
    int snapshot[N_MODELS];
    memcpy(snapshot, s.lease, sizeof(snapshot));
    sim_round(&s);
    assert_memory_equal(snapshot, s.lease, sizeof(snapshot)); /* settled: no lease moves */
    /* the pod with two models dies: its leases expire, the two others take them (share 3) */
    int dead = 0;
    for (int p = 0; p < 3; p++) {
        int load = 0;
        for (size_t i = 0; i < N_MODELS; i++) {
            load += s.lease[i] == p;
        }
        if (load == 2) {
            dead = p;
        }
    }
    s.alive[dead] = 0;
    for (size_t i = 0; i < N_MODELS; i++) {
        if (s.lease[i] == dead) {
            s.lease[i] = -1;
        }
    }
    sim_round(&s);
    assert_spread(&s, 3);
    for (size_t i = 0; i < N_MODELS; i++) {
        if (snapshot[i] != dead) {
            assert_int_equal(s.lease[i], snapshot[i]); /* the survivors kept theirs */
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_share_rounds_up),
        cmocka_unit_test(test_assign_balanced_and_stable),
        cmocka_unit_test(test_plan_under_share_tries_assigned_first),
        cmocka_unit_test(test_plan_over_share_releases_others_first),
        cmocka_unit_test(test_simulation_join_and_die),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
