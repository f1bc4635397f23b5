#!/usr/bin/env python3
"""An ssh ProxyCommand that adds latency: `delay_relay.py HOST PORT ONE_WAY_MS`. Every byte reaches the other end
ONE_WAY_MS later, in order, in both directions: a round trip costs 2 x ONE_WAY_MS, as on a link to a real VPS.
(Linux's netem would do this in the kernel, but this machine's kernel lacks it.)"""
import heapq
import itertools
import os
import socket
import sys
import threading
import time


def pump(read, write, delay: float) -> None:
    """Copy chunks from read() to write(), each `delay` seconds after it arrived; an empty chunk ends it."""
    queue, ready, order = [], threading.Condition(), itertools.count()

    def sender():
        while True:
            with ready:
                while not queue:
                    ready.wait()
                due, _, data = queue[0]
                wait = due - time.monotonic()
                if wait > 0:
                    ready.wait(wait)
                    continue
                heapq.heappop(queue)
            write(data)
            if not data:
                return

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    while True:
        data = read()
        with ready:
            heapq.heappush(queue, (time.monotonic() + delay, next(order), data))
            ready.notify()
        if not data:
            break
    thread.join()


def main() -> None:
    host, port, one_way_ms = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    delay = one_way_ms / 1000
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def to_server(data: bytes) -> None:
        if data:
            sock.sendall(data)
        else:
            sock.shutdown(socket.SHUT_WR)

    def to_client(data: bytes) -> None:
        if data:
            os.write(1, data)
        else:
            os.close(1)

    upstream = threading.Thread(target=pump, args=(lambda: os.read(0, 65536), to_server, delay), daemon=True)
    upstream.start()
    pump(lambda: sock.recv(65536), to_client, delay)


if __name__ == "__main__":
    main()
