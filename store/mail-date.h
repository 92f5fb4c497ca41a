/*
 * mail-date — RFC 5322 date-time parsing, with the obsolete forms real mail
 * uses: two- and three-digit years (RFC 5322 4.3), named zones (UT, GMT,
 * EST ... PDT; military letters count as +0000 as 4.3 says), no zone
 * (+0000), missing seconds, a missing or doubled day name, comments and
 * odd whitespace, full month names, and the asctime() form
 * "Mon Jan  3 10:00:00 2022".
 */
#ifndef POPGATE_MAIL_DATE_H
#define POPGATE_MAIL_DATE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parses a Date: value. *time_r gets UTC seconds since the epoch,
 * *tz_min_r the zone offset in minutes east of UTC. 0 ok, -1 if no date
 * can be read (then the outputs are untouched).
 */
int mail_date_parse(const char *s, size_t len, int64_t *time_r,
    int32_t *tz_min_r);

/* Parses the date of a Received: value: the text after its last ';'. */
int mail_date_parse_received(const char *s, size_t len, int64_t *time_r,
    int32_t *tz_min_r);

#endif
