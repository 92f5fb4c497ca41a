/*
 * version — popgate's version, for --version, the stats command and the
 * metrics endpoint. The release number is set in the Makefile; the git
 * revision of the build (with "-dirty" when the tree had changes) comes
 * from a header the Makefile generates, so it is right for every build.
 */
#ifndef POPGATE_VERSION_H
#define POPGATE_VERSION_H

/* "0.1.0" */
const char *popgate_version(void);
/* "0.1.0 (git 1a2b3c4d5e6f)", or without the part in brackets when the
   build had no git checkout. */
const char *popgate_version_long(void);

#endif
