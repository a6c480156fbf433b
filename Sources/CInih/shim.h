/* libinih, as Debian's libinih-dev installs it. */
#include <ini.h>
