/* hiredis 0.14, as Debian's libhiredis-dev installs it. */
#include <hiredis/hiredis.h>
