#ifndef CKVDSHIM_H
#define CKVDSHIM_H

/*
 * CKVDShim adapts the libmicrohttpd calls Swift cannot make well:
 * - ckvd_start_daemon: MHD_start_daemon takes its options as a variadic list
 *   ended by MHD_OPTION_END. The shim takes a plain struct instead, turns the
 *   options that are set into an MHD_OPTION_ARRAY, and makes the variadic call.
 * - ckvd_select_turn, ckvd_select_answer_resumed: one loop turn of a daemon in
 *   external select mode, which works on fd_set bitmaps (MHD_get_fdset2,
 *   select, MHD_run_from_select) that Swift cannot handle well.
 * - ckvd_daemon_epoll_fd, ckvd_daemon_port, ckvd_connection_client_address, ckvd_connection_fd:
 *   MHD_get_daemon_info and MHD_get_connection_info are variadic; these read
 *   the one field kvd needs from each.
 * It also brings in <sys/eventfd.h>, which Swift's Glibc module lacks.
 * It holds no state and adds no logic of its own.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <poll.h>
#include <sys/eventfd.h> /* not in Swift's Glibc module; workers wake each other with it */
#include <microhttpd.h>

/* libmicrohttpd's MHD_OPTION_UNESCAPE_CALLBACK signature (it has no typedef):
 * rewrites the 0-terminated s in place and returns its new length. */
typedef size_t (*ckvd_unescape_callback)(void *cls, struct MHD_Connection *c, char *s);

/* Everything ckvd_start_daemon needs. Zero / NULL means "libmicrohttpd's
 * default" for every field except the flags, the port and the handler. */
struct ckvd_daemon_options {
    unsigned int flags;                 /* MHD_USE_* / MHD_ALLOW_* bits */
    uint16_t port;                      /* ignored when bind_address or listen_fd is given */
    const struct sockaddr *bind_address;/* borrowed for the call only; NULL: any address */
    int listen_fd;                      /* -1: libmicrohttpd binds; else an open listening socket it adopts */
    int reuse_port;                     /* 1: SO_REUSEPORT on the socket libmicrohttpd binds */
    unsigned int connection_limit;      /* 0: default */
    unsigned int connection_timeout_s;  /* 0: idle connections never time out */
    unsigned int listen_backlog;        /* 0: default */
    size_t connection_memory_limit;     /* 0: default (32 KiB) */

    MHD_AcceptPolicyCallback accept_policy;
    void *accept_policy_cls;
    MHD_AccessHandlerCallback handler;  /* required */
    void *handler_cls;
    MHD_RequestCompletedCallback completed;
    void *completed_cls;
    MHD_NotifyConnectionCallback notify_connection;
    void *notify_connection_cls;
    ckvd_unescape_callback unescape;
    void *unescape_cls;
    MHD_LogCallback logger;
    void *logger_cls;
};

/* Starts a daemon with the given options (borrowed for the call only).
 * Returns the daemon, owned by the caller (release with MHD_stop_daemon),
 * or NULL when libmicrohttpd refused to start; errno then tells why when
 * the failure came from a system call (bind, listen, epoll_create). */
struct MHD_Daemon *ckvd_start_daemon(const struct ckvd_daemon_options *options);

/* One turn of a daemon in external select mode (started without MHD_USE_EPOLL), plus the
 * caller's own descriptors: builds the fd_sets from the daemon (MHD_get_fdset2) and from
 * `extra` (POLLIN / POLLOUT in events), waits in select() for at most timeout_ms (less when
 * the daemon has a timeout of its own), lets the daemon process what is ready
 * (MHD_run_from_select), and sets each extra descriptor's revents as poll() would.
 * fd_set is a fixed-size bitmap Swift cannot handle well; that is why this lives here.
 * The daemon's descriptors are always below FD_SETSIZE (libmicrohttpd refuses connections above
 * it); when one of `extra` is not, that turn waits in poll() instead, on the same descriptors: no
 * descriptor is ever left out of a wait (slower, and kvd's configuration checks keep it rare).
 * Returns select()'s result (-1 with errno on failure; EINTR counts as an empty turn). */
int ckvd_select_turn(struct MHD_Daemon *daemon, struct pollfd *extra, int extra_count, int timeout_ms);

/* For a daemon in external select mode, after MHD_resume_connection: lets the resumed
 * connections' handlers queue their responses, then writes what is ready to be written,
 * without a select() call (sockets are assumed writable; one that is not gets EAGAIN and
 * waits for the next turn, as it would anyway). Saves two select() calls per loop turn. */
void ckvd_select_answer_resumed(struct MHD_Daemon *daemon);

/* MHD_get_daemon_info and MHD_get_connection_info are variadic; these read the one field
 * kvd needs from each. */

/* The daemon's epoll descriptor (owned by the daemon), or -1. */
int ckvd_daemon_epoll_fd(struct MHD_Daemon *daemon);

/* The port the daemon's listening socket is bound to, or 0. */
uint16_t ckvd_daemon_port(struct MHD_Daemon *daemon);

/* The client's address (owned by the connection, valid while it is open), or NULL. */
const struct sockaddr *ckvd_connection_client_address(struct MHD_Connection *connection);

/* The connection's socket (owned by the connection), or -1. */
int ckvd_connection_fd(struct MHD_Connection *connection);

#endif
