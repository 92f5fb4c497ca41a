/*
 * about — what `popgated --version` and `popgatectl --version` print: the
 * program, popgate's version with its git revision, and the versions of
 * the libraries it runs with (so an admin can tell which OpenSSL, libevent
 * and LMDB a bug report is about).
 */
#ifndef POPGATE_GATEWAY_ABOUT_H
#define POPGATE_GATEWAY_ABOUT_H

#include <stdio.h>

void about_print_version(FILE *f, const char *prog);

#endif
