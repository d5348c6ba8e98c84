/*
 * dw_evalshare.c - which models a pod evaluates: a fair share of the live pods, chosen by
 * rendezvous hashing.
 *
 * Why a lease per model and a share: one lease for the whole group made one pod evaluate every
 * window of every model while the others idled. With a lease per model any pod can evaluate
 * any model, and a pod takes at most ceil(models / live pods) of them, so N pods split the
 * work and a pod that dies leaves at most its share behind, which the others take once its
 * leases expire (a lease period, renewed every evaluation tick).
 *
 * Why rendezvous hashing: every pod ranks the models by a hash of (pod, model) and computes the
 * same balanced assignment from the same live set (each model, in config order, to the pod of
 * highest score still below the share), so pods reach for different models first instead of
 * racing for the same ones, and a pod joining or leaving moves few models. The assignment only
 * orders what a pod tries: the leases in Redis decide (SET NX), so pods that briefly disagree
 * on the live set cost a retry, never two evaluators of one model. A pod releases leases only
 * when it holds more than its share (a pod joined), the ones assigned to other pods first, so
 * a balanced state is left alone even when it differs from the assignment: no lease flaps.
 */
#include <stdlib.h>
#include <string.h>

#include "driftwatch/core/dw_common.h"
#include "driftwatch/core/dw_evalshare.h"

#include "driftwatch/core/dw_banned.h" /* last: after every declaration */

size_t dw_evalshare_share(size_t n_models, size_t n_pods)
{
    size_t pods = n_pods ? n_pods : 1;
    return (n_models + pods - 1) / pods;
}

uint64_t dw_evalshare_score(const char *pod, const char *model)
{
    /* pod and model hashed apart then mixed: "ab"+"c" and "a"+"bc" score differently */
    return dw_fmix64(dw_hash64(pod, strlen(pod)) * 0x9e3779b97f4a7c15ULL ^
                     dw_hash64(model, strlen(model)));
}

void dw_evalshare_assign(const char *const *models, size_t n_models, const char *const *pods,
                         size_t n_pods, size_t *owner_of)
{
    size_t share = dw_evalshare_share(n_models, n_pods);
    size_t *load = dw_calloc(n_pods ? n_pods : 1, sizeof(*load));
    for (size_t i = 0; i < n_models; i++) {
        size_t best = 0;
        uint64_t best_score = 0;
        int found = 0;
        for (size_t p = 0; p < n_pods; p++) {
            uint64_t s = dw_evalshare_score(pods[p], models[i]);
            if (load[p] < share && (!found || s > best_score)) {
                best = p;
                best_score = s;
                found = 1;
            }
        }
        owner_of[i] = best;
        load[best]++;
    }
    free(load);
}

/* Sorts idx[0..n) by key, highest first (insertion sort: tens of models). */
static void sort_desc(size_t *idx, size_t n, const uint64_t *key)
{
    for (size_t i = 1; i < n; i++) {
        size_t v = idx[i], j = i;
        while (j > 0 && key[idx[j - 1]] < key[v]) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
}

size_t dw_evalshare_plan(const char *self, const char *const *models, size_t n_models,
                         const char *const *pods, size_t n_pods, const unsigned char *held,
                         enum dw_share_act *act, size_t *order, size_t *share_out)
{
    /* the live set with self in it, once */
    const char **live = dw_calloc(n_pods + 1, sizeof(*live));
    size_t n_live = 0, me = n_pods;
    for (size_t p = 0; p < n_pods; p++) {
        if (strcmp(pods[p], self) == 0) {
            me = n_live;
        }
        live[n_live++] = pods[p];
    }
    if (me == n_pods) {
        me = n_live;
        live[n_live++] = self;
    }
    size_t share = dw_evalshare_share(n_models, n_live);
    *share_out = share;
    size_t *owner_of = dw_calloc(n_models ? n_models : 1, sizeof(*owner_of));
    dw_evalshare_assign(models, n_models, live, n_live, owner_of);
    /* rank: assigned to self above everything else, then self's score */
    uint64_t *rank = dw_calloc(n_models ? n_models : 1, sizeof(*rank));
    size_t *idx = dw_calloc(n_models ? n_models : 1, sizeof(*idx));
    size_t n_held = 0;
    for (size_t i = 0; i < n_models; i++) {
        rank[i] = dw_evalshare_score(self, models[i]) >> 1 | (uint64_t)(owner_of[i] == me) << 63;
        idx[i] = i;
        n_held += held[i] != 0;
    }
    sort_desc(idx, n_models, rank);
    size_t kept = 0, n_try = 0;
    for (size_t k = 0; k < n_models; k++) {
        size_t i = idx[k];
        if (held[i]) {
            act[i] = kept < share ? DW_SHARE_KEEP : DW_SHARE_RELEASE;
            kept++;
        } else if (n_held < share) {
            act[i] = DW_SHARE_TRY;
            order[n_try++] = i;
        } else {
            act[i] = DW_SHARE_SKIP;
        }
    }
    free(idx);
    free(rank);
    free(owner_of);
    free(live);
    return n_try;
}
