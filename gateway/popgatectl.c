/* popgatectl — placeholder until the gateway issue lands. */
#include <stdio.h>

int
main(void)
{
	fprintf(stderr, "popgatectl: the control socket is not built yet.\n");
	return 1;
}
