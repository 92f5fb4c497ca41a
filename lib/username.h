/*
 * username — the canonical form of a user name, so that one person is one
 * user however they type their name.
 *
 * The part after the last '@' (the mail domain) is always folded to lower
 * case: DNS names are case-insensitive (RFC 4343). The part before it (or
 * the whole name without '@') is folded too unless fold_local is false:
 * RFC 5321 lets a server treat local parts as case-sensitive, but legacy
 * POP3 servers and every common mail host ignore case, and a user who
 * types "Erin" on a phone and "erin" on a laptop is one person.
 *
 * Only ASCII letters are folded; other bytes (UTF-8 included) are kept as
 * they are, so folding never changes a name's length and can be done in
 * place. Pure: libc only, any thread.
 */
#ifndef POPGATE_USERNAME_H
#define POPGATE_USERNAME_H

#include <stdbool.h>
#include <stddef.h>

/* Folds name in place to its canonical form. */
void username_canon(char *name, bool fold_local);
/* true when name is already canonical. */
bool username_is_canon(const char *name, bool fold_local);
/* Canonical copy (caller frees). */
char *username_canon_dup(const char *name, bool fold_local);

#endif
