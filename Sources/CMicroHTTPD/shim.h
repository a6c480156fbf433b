/* libmicrohttpd, as Debian's libmicrohttpd-dev installs it. */
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <microhttpd.h>
