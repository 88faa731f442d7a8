"""An open-loop HTTP/1.1 load generator: each target sends `rate` requests a second on a fixed
schedule, whatever the server does, and each latency runs from the request's *scheduled* send
time. A server that stalls therefore shows the stall in the latencies of every request that was
due meanwhile, instead of being sent fewer requests (coordinated omission, giltene/wrk2 README;
locust's `constant_throughput` paces each user after its previous answer, so it omits them too).

One process, one event loop (uvloop), raw keep-alive connections parsed with httptools (both
already installed with uvicorn): a request costs the generator tens of microseconds, so 300
requests a second leave it mostly idle. A due request takes an idle connection or opens a new
one (up to MAX_CONNECTIONS); connections are reused first in, first out, so that traffic spreads
over every server worker that accepted one.

Run as `python -m bench.load.openloop` with a JSON plan on stdin (see `Target`); prints a JSON
object: per target, a list of [scheduled offset s, latency ms, status, send lag ms]; status 0
means no HTTP answer (connection error or CLIENT_TIMEOUT_S).
"""

from __future__ import annotations

import asyncio
import collections
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httptools

MAX_CONNECTIONS = 256
PREOPEN_CONNECTIONS = 16
CLIENT_TIMEOUT_S = 10.0
IDLE_REUSE_S = 2.0  # servers close idle keep-alive connections (uvicorn: 5 s); do not race them


@dataclass
class Target:
    """`path` and `body` may hold {sym} (rotated over `symbols`) and {ts} (a distinct bar time
    per request: `ts_base` + i minutes, so that every write inserts a new row)."""

    name: str
    rate: float
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    symbols: list[str] = field(default_factory=list)
    ts_base: int = 0

    def request(self, i: int, host: str) -> bytes:
        path, body = self.path, self.body
        if self.symbols:
            sym = self.symbols[i % len(self.symbols)]
            path = path.replace("{sym}", sym)
            body = body.replace("{sym}", sym) if body is not None else None
        if body is not None and "{ts}" in body:
            ts = datetime.fromtimestamp(self.ts_base + 60 * i, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            body = body.replace("{ts}", ts)
        payload = body.encode() if body is not None else b""
        lines = [f"{self.method} {path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


class Connection(asyncio.Protocol):
    """One keep-alive connection; `send` returns the status of the next complete response."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future | None = None
        self.closed = False
        self.last_used = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def on_message_complete(self) -> None:
        keep = self.parser.should_keep_alive()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.parser.get_status_code())
        if not keep:
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionError("closed by the server"))

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def send(self, data: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        try:
            return await self.waiter
        finally:
            self.last_used = time.monotonic()


class Pool:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: collections.deque[Connection] = collections.deque()
        self.open = 0
        self.freed = asyncio.Condition()

    async def _connect(self) -> Connection:
        self.open += 1
        try:
            _, conn = await asyncio.get_running_loop().create_connection(
                Connection, self.host, self.port
            )
        except BaseException:
            self.open -= 1
            raise
        return conn

    async def acquire(self) -> Connection:
        while True:
            while self.idle:
                conn = self.idle.popleft()
                if not conn.closed and time.monotonic() - conn.last_used < IDLE_REUSE_S:
                    return conn
                self.discard(conn)
            if self.open < MAX_CONNECTIONS:
                return await self._connect()
            async with self.freed:  # every connection busy: wait (the latency keeps counting)
                await self.freed.wait()

    async def release(self, conn: Connection) -> None:
        if conn.closed:
            self.discard(conn)
        else:
            self.idle.append(conn)
        async with self.freed:
            self.freed.notify()

    def discard(self, conn: Connection) -> None:
        conn.close()
        self.open -= 1

    async def preopen(self, count: int) -> None:
        for conn in await asyncio.gather(*(self._connect() for _ in range(count))):
            self.idle.append(conn)


def now() -> float:
    """The clock of schedules and latencies: uvloop's loop.time() only has millisecond steps."""
    return time.perf_counter()


async def one(pool: Pool, data: bytes, due: float, out: list, start: float) -> None:
    lag = now() - due
    status = 0
    try:
        conn = await asyncio.wait_for(pool.acquire(), CLIENT_TIMEOUT_S)
        try:
            status = await asyncio.wait_for(conn.send(data), CLIENT_TIMEOUT_S)
        except (TimeoutError, OSError, httptools.HttpParserError):
            conn.close()
        await pool.release(conn)
    except (TimeoutError, OSError):
        pass
    latency = now() - due
    out.append([round(due - start, 6), round(latency * 1000, 3), status, round(lag * 1000, 3)])


async def drive(pool: Pool, target: Target, start: float, duration: float, out: list) -> None:
    """Send target's requests at start + i/rate for `duration` seconds, without waiting."""
    host = f"{pool.host}:{pool.port}"
    tasks = set()
    count = int(duration * target.rate)
    for i in range(count):
        due = start + i / target.rate
        while (delay := due - now()) > 0:  # uvloop's timers may wake up to 1 ms early
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(pool, target.request(i, host), due, out, start))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks)


async def run(host: str, port: int, targets: list[Target], duration: float) -> dict[str, list]:
    pool = Pool(host, port)
    await pool.preopen(PREOPEN_CONNECTIONS)
    results: dict[str, list] = {t.name: [] for t in targets}
    start = now() + 0.2
    await asyncio.gather(*(drive(pool, t, start, duration, results[t.name]) for t in targets))
    for conn in pool.idle:
        conn.close()
    return results


def main() -> None:
    plan: dict[str, Any] = json.load(sys.stdin)
    targets = [Target(**t) for t in plan["targets"]]
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # the stock loop works too, with a little more overhead per request
        pass
    results = asyncio.run(run(plan["host"], plan["port"], targets, plan["duration"]))
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
