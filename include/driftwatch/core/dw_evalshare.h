/*
 * dw_evalshare.h - which models' evaluator leases a pod holds: the fair share of the live pods
 * and a stable, well spread choice of models (rendezvous hashing), as pure functions.
 *
 * The caller (`driftwatch run`) reads the live pods (a heartbeat set in Redis) and the leases
 * it holds, asks dw_evalshare_plan() what to release and what to try, and takes or releases
 * the leases in Redis. Nothing here reads a clock or speaks to a server: the rules are tested
 * in tests/unit/test_evalshare.c, including a simulation of pods joining and dying.
 */
#ifndef DW_EVALSHARE_H
#define DW_EVALSHARE_H

#include <stddef.h>
#include <stdint.h>

/** @brief What a pod does with one model's lease this tick. */
enum dw_share_act {
    DW_SHARE_SKIP = 0, /* not held, not to be tried now */
    DW_SHARE_KEEP,     /* held: renew it */
    DW_SHARE_RELEASE,  /* held beyond the share: give it up so a pod below its share takes it */
    DW_SHARE_TRY,      /* not held: try to take it (in the order of dw_evalshare_plan's order) */
};

/** @returns ceil(n_models / n_pods): the most models one pod evaluates (n_pods 0 counts as 1). */
size_t dw_evalshare_share(size_t n_models, size_t n_pods);

/** @returns the rendezvous score of (pod, model): higher means the pod prefers the model. */
uint64_t dw_evalshare_score(const char *pod, const char *model);

/**
 * @brief The balanced assignment every pod computes alike from the same live set: models in
 *        their given order, each to the pod of highest score that is still below the share.
 *        owner_of[i] := index into pods of model i's pod (n_pods >= 1).
 */
void dw_evalshare_assign(const char *const *models, size_t n_models, const char *const *pods,
                         size_t n_pods, size_t *owner_of);

/**
 * @brief What pod `self` does with each model's lease, given the live pods (`self` counted
 *        once whether listed or not) and held[i] (1: self holds model i's lease).
 *        act[i] := KEEP / RELEASE for held models: beyond the share, the held models assigned
 *        to another pod are released first, then those self scores lowest. For the others TRY
 *        while self holds less than its share, else SKIP; order[0..n) := the TRY models in the
 *        order to try them: those assigned to self first, then by self's score, highest first.
 *        *share := self's share; the caller stops trying once it holds that many.
 * @returns n, the number of TRY models.
 */
size_t dw_evalshare_plan(const char *self, const char *const *models, size_t n_models,
                         const char *const *pods, size_t n_pods, const unsigned char *held,
                         enum dw_share_act *act, size_t *order, size_t *share);

#endif
