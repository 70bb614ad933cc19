#ifndef DISC_VERSION_H
#define DISC_VERSION_H
/* Version of the observation format the scanner writes. */
#define DISC_OBSERVATION_VERSION 1
const char *disc_version(void);
#endif
