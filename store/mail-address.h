/*
 * mail-address — RFC 5322 address-list parsing for ENVELOPE, lenient the
 * way real mail needs: groups (and a group never closed), quoted local
 * parts, comments (a trailing comment is the display name when there is no
 * phrase: "user@host (Real Name)"), source routes (<@a,@b:user@host>),
 * missing domains (MAIL_MISSING_DOMAIN), "<>", empty lists, stray commas
 * and garbage. It never fails: whatever is unreadable is skipped.
 */
#ifndef POPGATE_MAIL_ADDRESS_H
#define POPGATE_MAIL_ADDRESS_H

#include <stddef.h>
#include <stdint.h>

#include "mail-message.h"

struct arena;

/* Addresses (group markers included) kept per header: a To: with 500,000
 * addresses is cut here (and by the parser's field size limit first). */
#define MAIL_ADDRESSES_MAX 10000

/*
 * Parses s[0..len) (an unfolded header value) into *list_r; strings and
 * the array come from arena. At most max entries are kept (0: none).
 */
void mail_address_parse(struct arena *arena, const char *s, size_t len,
    uint32_t max, struct mail_address_list *list_r);

#endif
