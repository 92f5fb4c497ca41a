/*
 * reindex — `popgatectl reindex [USER] [--rebuild]`: brings the full-text
 * index up to date while the daemon runs. For each user in turn, bounded
 * writer jobs (store_fts_reindex_step: at most GATEWAY_REINDEX_BATCH_BYTES
 * of message bytes, one transaction each) index the bodies that have no
 * index entry yet (mail stored before the index existed, or with it
 * switched off). --rebuild first drops the user's index (one
 * transaction): SEARCH stays exact meanwhile, reading unindexed messages
 * in full.
 *
 * One run at a time; the request is answered when it starts, progress
 * and the last run's outcome are in `popgatectl stats` (index_*). Owned
 * by the loop; the jobs go through the store's writer.
 */
#ifndef POPGATE_GATEWAY_REINDEX_H
#define POPGATE_GATEWAY_REINDEX_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct gateway;

/* Message bytes one reindex job reads and indexes: keeps each job's hold
 * on the writer to tens of milliseconds. */
#define GATEWAY_REINDEX_BATCH_BYTES (4u * 1024 * 1024)

/* Starts a run over users[0..n) (copied). -1 if one is running. */
int reindex_start(struct gateway *gw, const uint32_t *users, size_t n,
    bool rebuild);
/* Adds index_* counters to a stats object. */
void reindex_stats_add(struct gateway *gw, json_t *stats);
/* Frees the run's state (after the writer stopped). */
void reindex_free(struct gateway *gw);

#endif
