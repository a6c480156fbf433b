#!/usr/bin/env python3
"""The hostile clients of scripts/stress.sh. Every mode connects only to 127.0.0.1 (source addresses
from 127.0.0.0/8 stand in for other clients), every loop is bounded in count and time, and each mode
prints one JSON object with its counts.

  stress_client.py slowloris PORT CONNECTIONS SECONDS INTERVAL KEY
  stress_client.py flood PORT CONNECTIONS SOURCES KEY
  stress_client.py big PORT CLIENTS KEY VALUE_FILE SMALL_KEY
  stress_client.py big-unread PORT CLIENTS KEY HOLD_SECONDS KVD_PID
  stress_client.py bodies PORT ENDLESS TRICKLING SECONDS INTERVAL KEY
  stress_client.py mget-amplify PORT CLIENTS KEY COUNT KVD_PID
"""
import json
import os
import select
import socket
import sys
import threading
import time

HOST = "127.0.0.1"


def connect(port, source=None, timeout=2.0):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    if source:
        sock.bind((source, 0))
    sock.connect((HOST, port))
    return sock


def request(path):
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def read_response(sock, deadline):
    """Reads one response with a Content-Length body: (status, body), or (None, reason)."""
    data = b""
    while b"\r\n\r\n" not in data:
        if time.monotonic() > deadline:
            return None, "timeout"
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return None, "timeout"
        except OSError as error:
            return None, type(error).__name__
        if not chunk:
            return None, "closed"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return None, "bad status line"
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        if time.monotonic() > deadline:
            return status, None
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(1 << 20)
        except OSError:
            return status, None
        if not chunk:
            return status, None
        body += chunk
    return status, body


def get(port, path, source=None, timeout=3.0):
    """One request on a new connection: (status, body, seconds) or (None, reason, seconds)."""
    start = time.monotonic()
    try:
        sock = connect(port, source, timeout)
    except OSError as error:
        return None, type(error).__name__, time.monotonic() - start
    try:
        sock.sendall(request(path))
        status, body = read_response(sock, start + timeout)
        return status, body, time.monotonic() - start
    except OSError as error:
        return None, type(error).__name__, time.monotonic() - start
    finally:
        sock.close()


class Prober(threading.Thread):
    """A well-behaved client: one GET a second (or `interval`) from its own address while an attack runs."""

    def __init__(self, port, path, source, interval=1.0, timeout=3.0):
        super().__init__(daemon=True)
        self.port, self.path, self.source, self.interval, self.timeout = port, path, source, interval, timeout
        self.served = 0
        self.failed = []
        self.latencies = []
        self.stop = threading.Event()

    def run(self):
        for _ in range(100000):
            if self.stop.is_set():
                return
            status, body, seconds = get(self.port, self.path, self.source, self.timeout)
            if status in (200, 404):
                self.served += 1
                self.latencies.append(seconds)
            else:
                self.failed.append(str(status) if status else body)
            self.stop.wait(self.interval)

    def result(self):
        self.stop.set()
        self.join(self.timeout + 2)
        return {"normal_served": self.served, "normal_failed": len(self.failed),
                "normal_failures": sorted(set(self.failed))[:5],
                "normal_max_latency_s": round(max(self.latencies, default=0), 3)}


def slowloris(port, connections, seconds, interval, key):
    """Opens `connections` from 127.0.0.1, each sending an endless request head one byte every
    `interval` seconds, for `seconds`; a prober from 127.0.0.2 asks for `key` meanwhile."""
    prober = Prober(port, f"/get/{key}", "127.0.0.2")
    prober.start()
    start = time.monotonic()
    open_socks, refused, closed_after = [], 0, []
    for _ in range(connections):
        try:
            sock = connect(port, "127.0.0.1")
            sock.sendall(b"GET /get/" + key.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            sock.setblocking(False)
            open_socks.append((sock, time.monotonic()))
        except OSError:
            refused += 1
    opened = len(open_socks)
    answered = 0
    rounds = int(seconds / interval) + 1
    for _ in range(rounds):
        if time.monotonic() - start >= seconds:
            break
        time.sleep(min(interval, max(0, seconds - (time.monotonic() - start))))
        alive = []
        poller = select.poll()  # select() cannot hold descriptors past 1023
        for sock, _ in open_socks:
            poller.register(sock, select.POLLIN)
        readable = {fd for fd, _ in poller.poll(0)}
        for sock, opened_at in open_socks:
            gone = False
            try:
                if sock.fileno() in readable:
                    data = sock.recv(4096)
                    if data:
                        answered += 1  # kvd answered (408/400) and will close
                    gone = True
                else:
                    sock.send(b"x")
            except OSError:
                gone = True
            if gone:
                closed_after.append(time.monotonic() - opened_at)
                sock.close()
            else:
                alive.append((sock, opened_at))
        open_socks = alive
    still_open = len(open_socks)
    for sock, _ in open_socks:
        sock.close()
    closed_after.sort()
    result = {"slow_connections": connections, "slow_refused_at_connect": refused, "slow_opened": opened,
              "slow_closed_by_kvd": len(closed_after), "slow_answered_before_close": answered,
              "slow_still_open_at_end": still_open, "seconds": round(time.monotonic() - start, 1),
              "slow_median_seconds_to_close": round(closed_after[len(closed_after) // 2], 1) if closed_after else None}
    result.update(prober.result())
    return result


def flood(port, connections, sources, key):
    """Opens `connections` at once, spread over `sources` addresses (127.0.1.x), then sends a GET on
    each: counts what kvd served and what it refused (connect failure, close without an answer, 503)."""
    start = time.monotonic()
    socks, connect_failed = [], 0
    for index in range(connections):
        try:
            socks.append(connect(port, f"127.0.1.{1 + index % sources}"))
        except OSError:
            connect_failed += 1
    sent = []
    for sock in socks:
        try:
            sock.sendall(request(f"/get/{key}"))
            sent.append(sock)
        except OSError:
            connect_failed += 1
    statuses, unanswered = {}, 0
    deadline = time.monotonic() + 15
    for sock in sent:
        status, _ = read_response(sock, deadline)
        if status is None:
            unanswered += 1
        else:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
    for sock in socks:
        sock.close()
    served = sum(count for status, count in statuses.items() if status in ("200", "404"))
    return {"flood_connections": connections, "flood_sources": sources, "flood_served": served,
            "flood_refused": connections - served, "flood_connect_failed": connect_failed,
            "flood_closed_unanswered": unanswered, "flood_statuses": statuses,
            "seconds": round(time.monotonic() - start, 1)}


def big(port, clients, key, value_file, small_key):
    """`clients` concurrent GETs of the big value, each checked byte for byte; a prober times small GETs."""
    with open(value_file, "rb") as file:
        expected = b'"' + file.read() + b'"'  # printable ASCII: the JSON string is the value in quotes
    prober = Prober(port, f"/get/{small_key}", "127.0.0.3", interval=0.1, timeout=10)
    prober.start()
    results = [None] * clients

    def fetch(index):
        status, body, seconds = get(port, f"/get/{key}", f"127.0.2.{1 + index}", timeout=60)
        results[index] = (status, body == expected if status == 200 else False, round(seconds, 2),
                          body if status != 200 and isinstance(body, (bytes, str)) else None)

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(70)
    statuses = {}
    for result in results:
        status = str(result[0]) if result else "none"
        statuses[status] = statuses.get(status, 0) + 1
    out = {"big_clients": clients, "big_value_bytes": len(expected) - 2, "big_statuses": statuses,
           "big_correct": sum(1 for r in results if r and r[1]),
           "big_wrong": sum(1 for r in results if r and r[0] == 200 and not r[1]),
           "big_seconds": [r[2] for r in results if r]}
    out.update(prober.result())
    return out


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def big_unread(port, clients, key, hold_seconds, pid):
    """`clients` GET the big value and never read the answer for `hold_seconds`; kvd's peak RSS meanwhile."""
    socks = []
    for index in range(clients):
        try:
            sock = connect(port, f"127.0.3.{1 + index}")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(request(f"/get/{key}"))
            socks.append(sock)
        except OSError:
            pass
    peak = 0
    deadline = time.monotonic() + hold_seconds
    for _ in range(int(hold_seconds / 0.25) + 1):
        if time.monotonic() >= deadline:
            break
        peak = max(peak, rss_kib(pid))
        time.sleep(0.25)
    for sock in socks:
        sock.close()
    return {"unread_clients": len(socks), "unread_hold_seconds": hold_seconds, "kvd_peak_rss_kib": peak}


def bodies(port, endless, trickling, seconds, interval, key):
    """Opens `endless` connections that send a chunked request body as fast as kvd reads it, and
    `trickling` ones that send one byte of body every `interval` seconds, spread over POST /mget,
    GET /get/KEY and POST /other, for `seconds`; a prober from 127.0.0.2 asks for `key` meanwhile.
    Counts how many kvd closed, and how long each lasted."""
    prober = Prober(port, f"/get/{key}", "127.0.0.2")
    prober.start()
    heads = [b"POST /mget", b"GET /get/" + key.encode(), b"POST /other"]
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
    start = time.monotonic()
    socks, refused = [], 0
    for index in range(endless + trickling):
        kind = "endless" if index < endless else "trickling"
        try:
            sock = connect(port, "127.0.0.1")
            sock.sendall(heads[index % 3] + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
            sock.setblocking(False)
            socks.append({"sock": sock, "kind": kind, "opened": time.monotonic(), "next": 0.0})
        except OSError:
            refused += 1
    closed = {"endless": [], "trickling": []}
    sent = 0
    while socks and time.monotonic() - start < seconds:
        poller = select.poll()
        for entry in socks:
            poller.register(entry["sock"], select.POLLIN | select.POLLOUT)
        events = dict(poller.poll(100))
        alive = []
        now = time.monotonic()
        for entry in socks:
            sock, gone = entry["sock"], False
            event = events.get(sock.fileno(), 0)
            try:
                if event & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    sock.recv(4096)  # an answer (413) or the close: kvd is done with it
                    gone = True
                elif entry["kind"] == "endless" and event & select.POLLOUT:
                    sent += sock.send(chunk)
                elif entry["kind"] == "trickling" and now >= entry["next"]:
                    sent += sock.send(b"1\r\n \r\n")
                    entry["next"] = now + interval
            except BlockingIOError:
                pass
            except OSError:
                gone = True
            if gone:
                closed[entry["kind"]].append(now - entry["opened"])
                sock.close()
            else:
                alive.append(entry)
        socks = alive
    still = {"endless": 0, "trickling": 0}
    for entry in socks:
        still[entry["kind"]] += 1
        entry["sock"].close()
    result = {"refused_at_connect": refused, "body_bytes_sent": sent, "seconds": round(time.monotonic() - start, 1)}
    for kind in ("endless", "trickling"):
        times = sorted(closed[kind])
        result[f"{kind}_closed_by_kvd"] = len(times)
        result[f"{kind}_still_open_at_end"] = still[kind]
        result[f"{kind}_max_seconds_to_close"] = round(times[-1], 1) if times else None
    result.update(prober.result())
    return result


def mget_amplify(port, clients, key, count, pid):
    """`clients` connections each POST /mget naming `key` `count` times (one big value asked for
    again and again); reads every answer. Reports the statuses and kvd's peak RSS (VmHWM)."""
    body = json.dumps([key] * count).encode()
    head = f"POST /mget HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    start = time.monotonic()
    socks = []
    for _ in range(clients):
        sock = connect(port, "127.0.0.1", timeout=60)
        sock.sendall(head + body)
        socks.append(sock)
    statuses = {}
    for sock in socks:
        status, answer = read_response(sock, time.monotonic() + 120)
        label = str(status) if status else f"none ({answer})"
        statuses[label] = statuses.get(label, 0) + 1
        sock.close()
    peak = 0
    with open(f"/proc/{pid}/status") as status_file:
        for line in status_file:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1])
    return {"amplify_clients": clients, "amplify_keys": count, "amplify_statuses": statuses,
            "kvd_peak_rss_mib": round(peak / 1024, 1), "seconds": round(time.monotonic() - start, 1)}


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "slowloris":
        result = slowloris(int(args[0]), int(args[1]), float(args[2]), float(args[3]), args[4])
    elif mode == "flood":
        result = flood(int(args[0]), int(args[1]), int(args[2]), args[3])
    elif mode == "big":
        result = big(int(args[0]), int(args[1]), args[2], args[3], args[4])
    elif mode == "bodies":
        result = bodies(int(args[0]), int(args[1]), int(args[2]), float(args[3]), float(args[4]), args[5])
    elif mode == "mget-amplify":
        result = mget_amplify(int(args[0]), int(args[1]), args[2], int(args[3]), int(args[4]))
    elif mode == "big-unread":
        result = big_unread(int(args[0]), int(args[1]), args[2], float(args[3]), int(args[4]))
    else:
        sys.exit(f"unknown mode {mode}")
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
