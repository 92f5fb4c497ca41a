/*
 * libFuzzer target for blob deserialisation: the store's blob file may be
 * corrupted, so anything mail_deserialize() accepts must render, resolve
 * sections and serialise again without a crash or an out-of-range offset.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "store/mail-render.h"
#include "store/mail-serialize.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mail_message *msg, *again;
	struct strbuf out = STRBUF_INIT, blob = STRBUF_INIT;
	const char *error;
	uint32_t path[4] = { 1, 1, 2, 1 };
	uint64_t off, len;
	int tz;

	struct arena *a = arena_new(1024);
	struct mail_envelope env;
	int env_rc = mail_blob_envelope(data, size, a, &env, NULL, &error);

	if (mail_deserialize(data, size, &msg, &error) < 0) {
		arena_free(&a);
		return 0;
	}
	/* the root envelope alone (SORT's reader) agrees with the whole */
	if (env_rc != 0 || env.date_valid != msg->parts[0].envelope->date_valid ||
	    env.date_time != msg->parts[0].envelope->date_time ||
	    (env.subject == NULL) != (msg->parts[0].envelope->subject == NULL) ||
	    (env.subject != NULL && strcmp(env.subject,
	    msg->parts[0].envelope->subject) != 0))
		abort();
	arena_free(&a);
	mail_render_bodystructure(&out, msg, true);
	mail_render_bodystructure(&out, msg, false);
	mail_render_message_envelope(&out, msg);
	(void)mail_message_internaldate(msg, 0, &tz);
	for (size_t n = 0; n <= 4; n++) {
		for (int k = MAIL_SECTION_PART; k <= MAIL_SECTION_MIME; k++) {
			if (mail_section_range(msg, path, n,
			    (enum mail_section_kind)k, &off, &len, &error) == 0 &&
			    (off > msg->size || len > msg->size - off))
				abort();
		}
	}
	/* What was accepted serialises back to the same bytes. */
	mail_serialize(msg, &blob);
	if (mail_deserialize(blob.data, blob.len, &again, &error) < 0)
		abort();
	mail_message_free(&again);
	mail_message_free(&msg);
	strbuf_free(&out);
	strbuf_free(&blob);
	return 0;
}
