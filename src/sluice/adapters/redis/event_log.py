"""Redis Streams event log and Pub/Sub control bus (streaming spec §2.3, §7.2).

Keys are hash-tagged per run so a run's keys share a cluster slot: ``<p>:{<run>}:log`` (stream; fields
``e`` event, ``k`` key, ``n`` node, ``d`` payload, ``p`` prev), ``<p>:{<run>}:meta`` (hash ``last``,
``fence``; lives ``meta_ttl``) and ``<p>:{<run>}:keys`` (hash key → offset; the log's TTL).

The client must return bytes (``decode_responses=False``, the default): payloads are binary.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sluice.runtime.ports import AppendResult, Fenced, LogBounds, LogEntry, NewEntry

_OFFSET = re.compile(r"^\d+-\d+$")
_FLAG_KEY, _FLAG_NODE = 1, 2
_ARGS_PER_ENTRY = 5

# KEYS: log, meta, keys. ARGV: fence, run_start, retention, meta_ttl, then per entry: flags (1 key, 2 node),
# event, payload, key, node. Returns {"FENCED", stored} or {"OK", offset1, dup1, offset2, dup2, ...}.
_APPEND_LUA = """
local log, meta, keys = KEYS[1], KEYS[2], KEYS[3]
local fence = tonumber(ARGV[1])
local stored = tonumber(redis.call('HGET', meta, 'fence') or '0')
if fence < stored then return {'FENCED', stored} end

local meta_last = redis.call('HGET', meta, 'last')
local prev = false
if redis.call('EXISTS', log) == 0 then
  if ARGV[2] == '1' then prev = '0-0'
  elseif meta_last then prev = meta_last
  elseif redis.call('EXISTS', meta) == 1 then prev = '0-0'
  else prev = '?' end
  redis.call('DEL', keys)
end
if fence > stored then redis.call('HSET', meta, 'fence', ARGV[1]) end

-- the first id of a new incarnation: just above meta.last unless the server clock is already past it
local function first_id()
  if not meta_last then return '*' end
  local ms, seq = string.match(meta_last, '^(%d+)-(%d+)$')
  local t = redis.call('TIME')
  local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if ms and now_ms <= tonumber(ms) then return ms .. '-' .. string.format('%d', tonumber(seq) + 1) end
  return '*'
end

local out = {'OK'}
local last = false
for b = 5, #ARGV, 5 do
  local flags = tonumber(ARGV[b])
  local has_key, has_node = flags % 2 == 1, flags >= 2
  local known = has_key and redis.call('HGET', keys, ARGV[b + 3])
  if known then
    out[#out + 1] = known
    out[#out + 1] = 1
  else
    local fields = {'e', ARGV[b + 1], 'd', ARGV[b + 2]}
    if has_key then fields[#fields + 1] = 'k'; fields[#fields + 1] = ARGV[b + 3] end
    if has_node then fields[#fields + 1] = 'n'; fields[#fields + 1] = ARGV[b + 4] end
    local id = '*'
    if prev then
      fields[#fields + 1] = 'p'
      fields[#fields + 1] = prev
      id = first_id()
      prev = false
    end
    id = redis.call('XADD', log, id, unpack(fields))
    if has_key then redis.call('HSET', keys, ARGV[b + 3], id) end
    last = id
    out[#out + 1] = id
    out[#out + 1] = 0
  end
end
if last then redis.call('HSET', meta, 'last', last) end
redis.call('EXPIRE', log, ARGV[3])
redis.call('EXPIRE', keys, ARGV[3])
redis.call('EXPIRE', meta, ARGV[4])
return out
"""

# KEYS: meta. ARGV: fence, meta_ttl.
_RAISE_FENCE_LUA = """
if tonumber(ARGV[1]) > tonumber(redis.call('HGET', KEYS[1], 'fence') or '0') then
  redis.call('HSET', KEYS[1], 'fence', ARGV[1])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


async def _call(result: Awaitable[Any] | Any) -> Any:
    """Await a redis-py command; its stubs type async results as ``Awaitable | value``."""
    return await cast(Awaitable[Any], result)


class _Script:
    """A Lua script run by EVALSHA; loaded on the first NOSCRIPT (also after a server restart)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, client: aioredis.Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await _call(client.evalsha(self.sha, len(keys), *keys, *args))
        except NoScriptError:
            await _call(client.script_load(self.source))
            return await _call(client.evalsha(self.sha, len(keys), *keys, *args))


_APPEND = _Script(_APPEND_LUA)
_RAISE_FENCE = _Script(_RAISE_FENCE_LUA)


def _check_offset(offset: str) -> str:
    if not _OFFSET.match(offset):
        raise ValueError(f"invalid event log offset: {offset!r}")
    return offset


def _text(value: bytes | None) -> str | None:
    return value.decode() if value is not None else None


def _entry(offset: bytes, fields: Mapping[bytes, bytes]) -> LogEntry:
    return LogEntry(
        offset=offset.decode(),
        event=fields[b"e"].decode(),
        payload=fields[b"d"],
        key=_text(fields.get(b"k")),
        node=_text(fields.get(b"n")),
        prev=_text(fields.get(b"p")),
    )


def _position(offset: str) -> tuple[int, int]:
    ms, seq = offset.split("-")
    return int(ms), int(seq)


class RedisEventLog:
    """``EventLog`` on Redis Streams. ``client`` is the shared pool; ``url`` opens waiter connections."""

    def __init__(
        self,
        client: aioredis.Redis,
        url: str,
        prefix: str = "sluice",
        retention_seconds: int = 600,
        meta_ttl_seconds: int = 604800,
        block_ms: int = 1000,
    ) -> None:
        if client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("RedisEventLog needs a client with decode_responses=False")
        self._client = client
        self._url = url
        self._prefix = prefix
        self._retention = retention_seconds
        self._meta_ttl = meta_ttl_seconds
        self._block_ms = block_ms
        self._waiters: set[RedisLogWaiter] = set()

    def log_key(self, run_id: str) -> str:
        return f"{self._prefix}:{{{run_id}}}:log"

    def meta_key(self, run_id: str) -> str:
        return f"{self._prefix}:{{{run_id}}}:meta"

    def keys_key(self, run_id: str) -> str:
        return f"{self._prefix}:{{{run_id}}}:keys"

    async def append(
        self, run_id: str, entries: Sequence[NewEntry], fence: int = 0, run_start: bool = False
    ) -> list[AppendResult]:
        args: list[Any] = [fence, 1 if run_start else 0, self._retention, self._meta_ttl]
        for entry in entries:
            flags = (entry.key is not None) * _FLAG_KEY + (entry.node is not None) * _FLAG_NODE
            args += [flags, entry.event, entry.payload, entry.key or "", entry.node or ""]
        keys = [self.log_key(run_id), self.meta_key(run_id), self.keys_key(run_id)]
        reply = await _APPEND(self._client, keys, args)
        if reply[0] == b"FENCED":
            raise Fenced(f"run {run_id}: fence {fence} is below the stored fence {reply[1]}")
        return [
            AppendResult(offset.decode(), bool(duplicate))
            for offset, duplicate in zip(reply[1::2], reply[2::2], strict=True)
        ]

    async def read(self, run_id: str, after: str, limit: int) -> list[LogEntry]:
        if limit <= 0:
            return []
        rows = await _call(
            self._client.xrange(self.log_key(run_id), f"({_check_offset(after)}", "+", count=limit)
        )
        return [_entry(offset, fields) for offset, fields in rows]

    async def bounds(self, run_id: str) -> LogBounds:
        log = self.log_key(run_id)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.xrange(log, "-", "+", count=1)
            pipe.xrevrange(log, "+", "-", count=1)
            pipe.hget(self.meta_key(run_id), "last")
            first_rows, last_rows, meta_last = await pipe.execute()
        # the last offset handed out: meta's, or the log's own if meta was lost
        candidates = [o.decode() for o in (meta_last, last_rows[0][0] if last_rows else None) if o]
        last = max(candidates, key=_position) if candidates else None
        if not first_rows:
            return LogBounds(exists=False, first=None, first_prev=None, last=last)
        first = _entry(*first_rows[0])
        return LogBounds(exists=True, first=first.offset, first_prev=first.prev, last=last)

    async def touch(self, run_id: str) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.expire(self.log_key(run_id), self._retention)
            pipe.expire(self.keys_key(run_id), self._retention)
            pipe.expire(self.meta_key(run_id), self._meta_ttl)
            await pipe.execute()

    async def raise_fence(self, run_id: str, fence: int) -> None:
        await _RAISE_FENCE(self._client, [self.meta_key(run_id)], [fence, self._meta_ttl])

    def waiter(self) -> RedisLogWaiter:
        waiter = RedisLogWaiter(self, self._client, self._url, self._block_ms)
        self._waiters.add(waiter)
        return waiter

    async def close(self) -> None:
        """Closes the waiters' connections; the shared client belongs to the caller."""
        for waiter in list(self._waiters):
            await waiter.close()

    def _forget(self, waiter: RedisLogWaiter) -> None:
        self._waiters.discard(waiter)


class RedisLogWaiter:
    """``XREAD BLOCK`` over many runs on one dedicated connection (never the shared pool).

    A wait longer than ``block_ms`` loops, so BLOCK stays below the socket timeout (``block_ms`` + 5 s).
    ``interrupt()`` sends ``CLIENT UNBLOCK <id> ERROR`` from the shared client; issued while no wait runs,
    it ends the next wait at once, so an interrupt is never lost.
    """

    def __init__(self, log: RedisEventLog, shared: aioredis.Redis, url: str, block_ms: int) -> None:
        self._log = log
        self._shared = shared
        self._block_ms = block_ms
        self._conn = aioredis.Redis.from_url(
            url, socket_timeout=block_ms / 1000 + 5, single_connection_client=True
        )
        self._client_id: int | None = None
        self._waiting = False
        self._interrupted = False
        self._interrupt_event = asyncio.Event()
        self._closed = False

    async def wait(self, cursors: Mapping[str, str], timeout: float) -> set[str]:
        if self._closed:
            raise RuntimeError("waiter is closed")
        streams = {self._log.log_key(run): _check_offset(offset) for run, offset in cursors.items()}
        runs = {self._log.log_key(run): run for run in cursors}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._waiting = True
        try:
            if not streams:  # XREAD needs a stream: only an interrupt or the timeout ends this wait
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(timeout, 0.0)):
                        await self._interrupt_event.wait()
            elif self._client_id is None:
                self._client_id = int(await _call(self._conn.client_id()))
            while streams and not self._interrupted:
                remaining_ms = int((deadline - loop.time()) * 1000)
                block = max(1, min(remaining_ms, self._block_ms)) if remaining_ms > 0 else None
                try:
                    reply = await _call(self._conn.xread(streams, count=1, block=block))
                except ResponseError as error:
                    if str(error).startswith("UNBLOCKED"):
                        continue  # interrupted: the loop condition sees the flag
                    raise
                if reply:
                    return {runs[key.decode()] for key, _ in reply}
                if block is None:
                    break
            self._interrupted = False
            self._interrupt_event.clear()
            return set()
        except BaseException:
            self._client_id = None  # the connection may have been dropped; a new one gets a new id
            raise
        finally:
            self._waiting = False

    async def interrupt(self) -> None:
        self._interrupted = True
        self._interrupt_event.set()
        # the XREAD may still be in flight (not yet blocked): retry briefly until it is unblocked or done
        for _ in range(200):
            client_id = self._client_id
            if not self._waiting or client_id is None:
                return
            if await _call(self._shared.client_unblock(client_id, error=True)):
                return
            await asyncio.sleep(0.005)

    async def close(self) -> None:
        if self._closed:
            return
        await self.interrupt()
        self._closed = True
        self._log._forget(self)
        await self._conn.aclose()


def _json_object(data: bytes) -> dict[str, Any] | None:
    """A control message, or ``None`` for anything that is not a JSON object (ignored, not fatal)."""
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class RedisControlBus:
    """JSON messages on Pub/Sub channel ``<p>:ctl``. Each subscription holds one connection of the pool."""

    def __init__(self, client: aioredis.Redis, prefix: str = "sluice", reconnect_delay: float = 1.0) -> None:
        self._client = client
        self._channel = f"{prefix}:ctl"
        self._reconnect_delay = reconnect_delay
        self._closed = False

    async def publish(self, message: Mapping[str, Any]) -> None:
        data = json.dumps(dict(message), separators=(",", ":"), ensure_ascii=False)
        await _call(self._client.publish(self._channel, data))

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        """Subscribes on first iteration and resubscribes after connection loss (messages sent meanwhile
        are lost; the runner's lease renewal covers that, spec §7.3). Ends when the bus is closed."""
        while not self._closed:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                while not self._closed:
                    # a finite timeout: a blocking read would hit the pool's socket timeout when idle
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message["type"] == "message":
                        decoded = _json_object(message["data"])
                        if decoded is not None:
                            yield decoded
            except (RedisConnectionError, RedisTimeoutError):
                await asyncio.sleep(self._reconnect_delay)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        """Ends every subscription within about a second; the shared client belongs to the caller."""
        self._closed = True
