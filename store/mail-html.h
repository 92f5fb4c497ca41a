/*
 * mail-html — the text of an HTML part, as SEARCH (and its index) reads
 * it: tags and comments dropped, the content of <script>, <style> and
 * <head> dropped, block tags (p, br, div, li, tr, h1-h6 ...) turned into
 * a line end and cells into a space, character references (&amp;
 * &eacute; &#233; &#xE9;) decoded to UTF-8, &nbsp; to a space. What is
 * not markup is copied byte for byte, so plain text that merely contains
 * "<" or "&" comes out as it was.
 *
 * Pure and linear in the input; memory is the output only.
 */
#ifndef POPGATE_MAIL_HTML_H
#define POPGATE_MAIL_HTML_H

#include <stddef.h>

struct strbuf;

/* Longest tag name looked at (longer names are dropped like any tag). */
#define MAIL_HTML_TAG_NAME_MAX 16
/* Longest character reference recognised ("&" + name + ";"). */
#define MAIL_HTML_ENTITY_MAX 12

/* Appends the text of the UTF-8 HTML in html[0..len). */
void mail_html_to_text(const char *html, size_t len, struct strbuf *out);

#endif
