#include "disc/version.h"

const char *disc_version(void)
{
	return "1";
}
