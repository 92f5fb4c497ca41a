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
 * Folding is Unicode full case folding (libunistring's u8_casefold, the
 * default locale-independent folding of Unicode's CaseFolding.txt) with
 * the result in NFC, so "JÜRG", "jürg" and "ju\u0308rg" (decomposed) are
 * one name, and "Straße" folds to "strasse". A part that is not valid
 * UTF-8 has its ASCII letters folded and other bytes kept. Folding may
 * change a name's length: the callers check the length of the result.
 * Pure: libc and libunistring only, any thread.
 */
#ifndef POPGATE_USERNAME_H
#define POPGATE_USERNAME_H

#include <stdbool.h>
#include <stddef.h>

/* true when name is already canonical. */
bool username_is_canon(const char *name, bool fold_local);
/* Canonical copy (caller frees). */
char *username_canon_dup(const char *name, bool fold_local);

#endif
