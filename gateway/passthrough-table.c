/* passthrough-table — see passthrough-table.h. */
#include "gateway/passthrough-table.h"

#include <string.h>

static time_t
expiry(const struct pt_entry *e)
{
	time_t w = e->window != 0 ? e->window + PASSTHROUGH_RATE_WINDOW : 0;

	return e->until > w ? e->until : w;
}

bool
pt_entry_live(const struct pt_entry *e, time_t now)
{
	return expiry(e) > now;
}

struct pt_entry *
pt_table_find(struct pt_entry *t, size_t n, const unsigned char key[32],
    time_t now)
{
	for (size_t i = 0; i < n; i++) {
		if (pt_entry_live(&t[i], now) &&
		    memcmp(t[i].key, key, 32) == 0)
			return &t[i];
	}
	return NULL;
}

struct pt_entry *
pt_table_claim(struct pt_entry *t, size_t n, const unsigned char key[32],
    time_t now, bool evict_live, bool *found_r)
{
	struct pt_entry *free_slot = NULL, *soonest = NULL;

	*found_r = false;
	for (size_t i = 0; i < n; i++) {
		struct pt_entry *e = &t[i];

		if (!pt_entry_live(e, now)) {
			if (free_slot == NULL)
				free_slot = e;
			continue;
		}
		if (memcmp(e->key, key, 32) == 0) {
			*found_r = true;
			return e;
		}
		if (soonest == NULL || expiry(e) < expiry(soonest))
			soonest = e;
	}
	if (free_slot == NULL) {
		if (!evict_live)
			return NULL;
		free_slot = soonest;
	}
	if (free_slot == NULL)
		return NULL;	/* n == 0 */
	memset(free_slot, 0, sizeof(*free_slot));
	memcpy(free_slot->key, key, 32);
	return free_slot;
}
