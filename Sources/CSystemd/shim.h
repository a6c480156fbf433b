/* libsystemd's daemon helpers (sd_notify, sd_listen_fds, sd_watchdog_enabled), as Debian's libsystemd-dev installs them. */
#include <systemd/sd-daemon.h>
