#ifndef CKVDSYSTEM_H
#define CKVDSYSTEM_H

/* Linux headers that Swift's Glibc module does not bring in, for KVDSystem: epoll and timerfd (kvbench's
 * event loop) and TCP_NODELAY. This target adds no functions of its own; it exists only to import these headers. */
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <netinet/tcp.h>

#endif
