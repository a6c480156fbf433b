#include "CKVDShim.h"
#include <stddef.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/select.h>

#define CKVD_MAX_OPTIONS 16

struct MHD_Daemon *ckvd_start_daemon(const struct ckvd_daemon_options *o) {
    struct MHD_OptionItem items[CKVD_MAX_OPTIONS];
    int n = 0;
#define CKVD_OPTION(opt, val, ptr) \
    items[n++] = (struct MHD_OptionItem){ (opt), (intptr_t)(val), (void *)(ptr) }

    /* The logger goes first, so that no message reaches libmicrohttpd's own. */
    if (o->logger != NULL)
        CKVD_OPTION(MHD_OPTION_EXTERNAL_LOGGER, o->logger, o->logger_cls);
    if (o->bind_address != NULL)
        CKVD_OPTION(MHD_OPTION_SOCK_ADDR, 0, o->bind_address);
    if (o->listen_fd >= 0)
        CKVD_OPTION(MHD_OPTION_LISTEN_SOCKET, o->listen_fd, NULL);
    if (o->reuse_port)
        CKVD_OPTION(MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL);
    if (o->connection_limit > 0)
        CKVD_OPTION(MHD_OPTION_CONNECTION_LIMIT, o->connection_limit, NULL);
    if (o->connection_timeout_s > 0)
        CKVD_OPTION(MHD_OPTION_CONNECTION_TIMEOUT, o->connection_timeout_s, NULL);
    if (o->listen_backlog > 0)
        CKVD_OPTION(MHD_OPTION_LISTEN_BACKLOG_SIZE, o->listen_backlog, NULL);
    if (o->connection_memory_limit > 0)
        CKVD_OPTION(MHD_OPTION_CONNECTION_MEMORY_LIMIT, o->connection_memory_limit, NULL);
    if (o->completed != NULL)
        CKVD_OPTION(MHD_OPTION_NOTIFY_COMPLETED, o->completed, o->completed_cls);
    if (o->notify_connection != NULL)
        CKVD_OPTION(MHD_OPTION_NOTIFY_CONNECTION, o->notify_connection, o->notify_connection_cls);
    if (o->unescape != NULL)
        CKVD_OPTION(MHD_OPTION_UNESCAPE_CALLBACK, o->unescape, o->unescape_cls);
    /* kvd ignores SIGPIPE process-wide before any daemon starts. */
    CKVD_OPTION(MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1, NULL);
    CKVD_OPTION(MHD_OPTION_END, 0, NULL);
#undef CKVD_OPTION
    _Static_assert(13 <= CKVD_MAX_OPTIONS, "option array too small");

    return MHD_start_daemon(o->flags, o->port,
                            o->accept_policy, o->accept_policy_cls,
                            o->handler, o->handler_cls,
                            MHD_OPTION_ARRAY, items,
                            MHD_OPTION_END);
}

int ckvd_daemon_epoll_fd(struct MHD_Daemon *daemon) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_EPOLL_FD);
    return info == NULL ? -1 : info->epoll_fd;
}

uint16_t ckvd_daemon_port(struct MHD_Daemon *daemon) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info == NULL ? 0 : info->port;
}

const struct sockaddr *ckvd_connection_client_address(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return info == NULL ? NULL : info->client_addr;
}

int ckvd_connection_fd(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info == NULL ? -1 : info->connect_fd;
}

/* The rare turn where one of the caller's descriptors is too high for an fd_set (>= FD_SETSIZE):
 * the daemon's sets (its descriptors are always below FD_SETSIZE) and the caller's descriptors go
 * into one poll() call instead, so that no descriptor is ever left out of the wait. */
static int ckvd_poll_turn(struct MHD_Daemon *daemon, fd_set *readable, fd_set *writable, fd_set *failed,
                          MHD_socket highest, struct pollfd *extra, int extra_count, int timeout_ms) {
    int capacity = (highest + 1) + extra_count;
    struct pollfd *all = calloc((size_t)capacity, sizeof(struct pollfd));
    if (all == NULL)
        return -1;
    int count = 0;
    for (int fd = 0; fd <= highest; fd++) {
        short events = 0;
        if (FD_ISSET(fd, readable))
            events |= POLLIN;
        if (FD_ISSET(fd, writable))
            events |= POLLOUT;
        if (events != 0 || FD_ISSET(fd, failed))
            all[count++] = (struct pollfd){ .fd = fd, .events = events };
    }
    int daemon_count = count;
    for (int i = 0; i < extra_count; i++) {
        extra[i].revents = 0;
        all[count++] = (struct pollfd){ .fd = extra[i].fd, .events = extra[i].events };
    }
    int ready = poll(all, (nfds_t)count, timeout_ms);
    if (ready < 0) {
        int code = errno;
        if (code != EINTR) {
            free(all);
            errno = code;
            return -1;
        }
        ready = 0;
        for (int i = 0; i < count; i++)
            all[i].revents = 0;
    }
    FD_ZERO(readable);
    FD_ZERO(writable);
    FD_ZERO(failed);
    for (int i = 0; i < daemon_count; i++) {
        /* An error or hang-up counts as readable: the read then reports it, as with select(). */
        if (all[i].revents & (POLLIN | POLLERR | POLLHUP))
            FD_SET(all[i].fd, readable);
        if (all[i].revents & (POLLOUT | POLLERR))
            FD_SET(all[i].fd, writable);
    }
    for (int i = 0; i < extra_count; i++)
        extra[i].revents = all[daemon_count + i].revents;
    free(all);
    MHD_run_from_select(daemon, readable, writable, failed);
    return ready;
}

int ckvd_select_turn(struct MHD_Daemon *daemon, struct pollfd *extra, int extra_count, int timeout_ms) {
    fd_set readable, writable, failed;
    MHD_socket highest = -1;
    FD_ZERO(&readable);
    FD_ZERO(&writable);
    FD_ZERO(&failed);
    if (MHD_get_fdset2(daemon, &readable, &writable, &failed, &highest, FD_SETSIZE) != MHD_YES)
        return -1;
    MHD_UNSIGNED_LONG_LONG daemon_timeout;
    if (MHD_get_timeout(daemon, &daemon_timeout) == MHD_YES && daemon_timeout < (MHD_UNSIGNED_LONG_LONG)timeout_ms)
        timeout_ms = (int)daemon_timeout;
    for (int i = 0; i < extra_count; i++) {
        if (extra[i].fd >= FD_SETSIZE)
            return ckvd_poll_turn(daemon, &readable, &writable, &failed, highest, extra, extra_count, timeout_ms);
    }
    for (int i = 0; i < extra_count; i++) {
        int fd = extra[i].fd;
        extra[i].revents = 0;
        if (fd < 0)
            continue;
        if (extra[i].events & POLLIN)
            FD_SET(fd, &readable);
        if (extra[i].events & POLLOUT)
            FD_SET(fd, &writable);
        if (fd > highest)
            highest = fd;
    }
    struct timeval timeout = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    int ready = select(highest + 1, &readable, &writable, &failed, &timeout);
    if (ready < 0) {
        if (errno != EINTR)
            return -1;
        FD_ZERO(&readable);
        FD_ZERO(&writable);
        FD_ZERO(&failed);
        ready = 0;
    }
    for (int i = 0; i < extra_count; i++) {
        int fd = extra[i].fd;
        if (fd < 0)
            continue;
        if (FD_ISSET(fd, &readable))
            extra[i].revents |= POLLIN;
        if (FD_ISSET(fd, &writable))
            extra[i].revents |= POLLOUT;
    }
    MHD_run_from_select(daemon, &readable, &writable, &failed);
    return ready;
}

void ckvd_select_answer_resumed(struct MHD_Daemon *daemon) {
    fd_set readable, writable, failed;
    MHD_socket highest = -1;
    FD_ZERO(&readable);
    FD_ZERO(&writable);
    FD_ZERO(&failed);
    /* Resumes the connections and calls their handlers, which queue the responses. */
    MHD_run_from_select(daemon, &readable, &writable, &failed);
    if (MHD_get_fdset2(daemon, &readable, &writable, &failed, &highest, FD_SETSIZE) != MHD_YES)
        return;
    FD_ZERO(&readable);
    FD_ZERO(&failed);
    MHD_run_from_select(daemon, &readable, &writable, &failed);
}
