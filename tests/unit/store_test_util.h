/*
 * store_test_util.h — small fixtures shared by the store's Check suites
 * (static, so each suite is self-contained): a temporary store directory,
 * and a one-call delivery of a test message.
 */
#ifndef POPGATE_STORE_TEST_UTIL_H
#define POPGATE_STORE_TEST_UTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

struct tstore {
	char dir[64];
	struct store *store;
};

static inline void
tstore_open_max(struct tstore *t, size_t map_size, uint64_t map_max)
{
	struct store_options opts = { map_size, 0, false, map_max };
	const char *error = NULL;

	strcpy(t->dir, "/tmp/popgate-store-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t->dir));
	ck_assert_msg(store_open(t->dir, &opts, &t->store, &error) == 0,
	    "%s", error);
}

static inline void
tstore_open(struct tstore *t, size_t map_size)
{
	tstore_open_max(t, map_size, 0);
}

static inline void
tstore_reopen(struct tstore *t)
{
	const char *error = NULL;

	store_close(&t->store);
	ck_assert_msg(store_open(t->dir, NULL, &t->store, &error) == 0,
	    "%s", error);
}

/* Runs the offline checker: the store must be consistent. */
static inline void
tstore_check(struct tstore *t)
{
	unsigned int problems = 0;
	const char *error = NULL;
	int rc = store_check(t->dir, stderr, &problems, &error);

	ck_assert_msg(rc == 0, "store_check: %s", error);
	ck_assert_uint_eq(problems, 0);
}

static inline void
tstore_close(struct tstore *t)
{
	char path[128];

	store_close(&t->store);
	snprintf(path, sizeof(path), "%s/data.mdb", t->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", t->dir);
	unlink(path);
	rmdir(t->dir);
}

static inline uint32_t
tuser(struct tstore *t, const char *name)
{
	const char *error = NULL;
	uint32_t id = 0;

	ck_assert_msg(store_user_create(t->store, name, "hash", 0, &id,
	    &error) == 0, "%s", error);
	return id;
}

static inline uint32_t
tmailbox(struct tstore *t, uint32_t user, const char *name)
{
	struct store_mailbox_info info;
	struct store_read *r;
	uint32_t id;

	ck_assert_int_eq(store_read_begin(t->store, &r, NULL), 0);
	ck_assert_int_eq(store_mailbox_lookup(r, user, name, &info, NULL), 0);
	id = info.id;
	store_read_end(&r);
	return id;
}

static inline struct store_mailbox_info
tinfo(struct tstore *t, uint32_t user, uint32_t mbox)
{
	struct store_mailbox_info info;
	struct store_read *r;

	ck_assert_int_eq(store_read_begin(t->store, &r, NULL), 0);
	ck_assert_int_eq(store_mailbox_get(r, user, mbox, &info, NULL), 0);
	info.name = NULL;	/* gone with the snapshot */
	store_read_end(&r);
	return info;
}

/* Delivers one message with body text; returns its UID. */
static inline uint32_t
tdeliver(struct tstore *t, uint32_t user, uint32_t mbox, const char *text,
    uint32_t flags)
{
	struct store_new_msg m;
	const char *error = NULL;
	uint32_t uid = 0;

	memset(&m, 0, sizeof(m));
	m.data = text;
	m.size = strlen(text);
	m.structure = "S";
	m.structure_size = 1;
	m.internaldate = 1700000000;
	m.tz_offset_min = 60;
	m.system_flags = flags;
	ck_assert_msg(store_deliver(t->store, user, mbox, &m, 1, &uid, NULL,
	    &error) == 0, "%s", error);
	return uid;
}

#endif
