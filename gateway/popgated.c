/*
 * popgated — placeholder until the gateway issue lands: the daemon that
 * composes store, POP3 upstream, IMAP frontend and control socket.
 */
#include <stdio.h>

int
main(void)
{
	fprintf(stderr, "popgated: the gateway is not built yet: store, IMAP "
	    "frontend, POP3 upstream and control socket are in progress "
	    "(see the open issues).\n");
	return 1;
}
