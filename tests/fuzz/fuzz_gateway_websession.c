/*
 * Fuzz target for web-session's restart file (web_sessions_load, which
 * reads DATA_DIR/web-sessions at start). Properties: no crash, at most
 * the table's max restored, and what was restored dumps and loads again
 * to the same number of sessions.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/web-session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* web.c hashes with SHA-256; the parser does not care which */
static void
hash(const char *id, char out[WEB_SESSION_HEX_SIZE])
{
	size_t n = strlen(id);

	for (size_t i = 0; i < WEB_SESSION_HEX_SIZE - 1; i++)
		out[i] = "0123456789abcdef"[(id[i % n] + i) % 16];
	out[WEB_SESSION_HEX_SIZE - 1] = '\0';
}

#define MAX_SESSIONS 8
#define NOW 100000

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct web_sessions *ws = web_sessions_new(MAX_SESSIONS, 3600);
	struct web_sessions *again = web_sessions_new(MAX_SESSIONS, 3600);
	size_t n, skipped;
	char *text;

	web_sessions_set_hash(ws, hash);
	web_sessions_set_hash(again, hash);
	n = web_sessions_load(ws, (const char *)data, size, NOW, &skipped);
	if (n > MAX_SESSIONS || web_sessions_count(ws) != n)
		abort();
	text = web_sessions_dump(ws, NOW);
	if (web_sessions_load(again, text, strlen(text), NOW, &skipped) != n)
		abort();
	free(text);
	web_sessions_free(&again);
	web_sessions_free(&ws);
	return 0;
}
