/* zlib, as Debian's zlib1g-dev installs it (kvload's on-the-fly gzip input). */
#include <zlib.h>
