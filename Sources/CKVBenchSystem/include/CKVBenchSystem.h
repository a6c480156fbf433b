#ifndef CKVBENCHSYSTEM_H
#define CKVBENCHSYSTEM_H

/* Linux headers that Swift's Glibc module does not bring in: epoll and timerfd, used by KVBenchIO
 * (kvbench's event loop). This target adds no functions of its own; it exists only to import these headers. */
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <netinet/tcp.h>

#endif
