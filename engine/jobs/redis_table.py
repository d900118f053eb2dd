"""Jobs and worker registrations as Redis hashes: the job table of several hosts sharing one Redis queue."""

from __future__ import annotations

import json
import time
from typing import Any

from engine.jobs.host import HEARTBEAT_TIMEOUT_S
from engine.jobs.record import STORED, Job

# Compare-and-set on a job hash: ARGV[1] = allowed states ("" = any), then field/value pairs.
_REDIS_UPDATE = """
local s = redis.call('HGET', KEYS[1], 'state')
if not s then return 0 end
if ARGV[1] ~= '' then
  local ok = false
  for st in string.gmatch(ARGV[1], '[^,]+') do if cjson.encode(st) == s then ok = true end end
  if not ok then return 0 end
end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""

# Insert a job unless an identical one is queued or running. KEYS: active key, job hash, job index.
_REDIS_INSERT = """
local existing = redis.call('GET', KEYS[1])
if existing then
  local s = redis.call('HGET', ARGV[3] .. existing, 'state')
  if s == '"queued"' or s == '"running"' then return existing end
end
redis.call('SET', KEYS[1], ARGV[1])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return ARGV[1]
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisJobTable:
    """Jobs as Redis hashes (one JSON value per field, so concurrent field updates never collide)."""

    shares_store = False

    def __init__(self, url: str, prefix: str = "trtdash"):
        import redis  # noqa: PLC0415 - only needed in Redis mode

        self.r = redis.Redis.from_url(url)
        self.p = prefix
        self._update = self.r.register_script(_REDIS_UPDATE)
        self._insert = self.r.register_script(_REDIS_INSERT)

    def _k(self, job_id: str) -> str:
        return f"{self.p}:job:{job_id}"

    def insert_or_join(self, job: Job, dedupe: str) -> tuple[Job, bool]:
        flat: list[Any] = []
        for k in STORED:
            flat += [k, json.dumps(getattr(job, k))]
        got = self._insert(
            keys=[f"{self.p}:active:{dedupe}", self._k(job.job_id), f"{self.p}:jobs"],
            args=[job.job_id, job.created_ts, f"{self.p}:job:", *flat],
        )
        got = _text(got)
        if got == job.job_id:
            return job, False
        existing = self.get(got)
        return (existing, True) if existing else (job, False)

    def get(self, job_id: str) -> Job | None:
        h = self.r.hgetall(self._k(job_id))
        if not h:
            return None
        d = {_text(k): json.loads(v) for k, v in h.items() if _text(k) in STORED}
        return Job(**d)

    def select(self, states: tuple[str, ...] | None = None, limit: int | None = None) -> list[Job]:
        out = []
        for jid in self.r.zrevrange(f"{self.p}:jobs", 0, -1):
            job = self.get(_text(jid))
            if job is None or (states and job.state not in states):
                continue
            out.append(job)
            if limit and len(out) >= limit:
                break
        return out

    def update(self, job_id: str, only_if: tuple[str, ...] | None = None, **values: Any) -> bool:
        values["updated_ts"] = time.time()
        flat: list[Any] = []
        for k, v in values.items():
            flat += [k, json.dumps(v)]
        return bool(self._update(keys=[self._k(job_id)], args=[",".join(only_if or ()), *flat]))

    def put_blob(self, job_id: str, blob: bytes) -> None:
        self.r.set(f"{self.p}:blob:{job_id}", blob, ex=7 * 86400)

    def take_blob(self, job_id: str) -> bytes | None:
        blob = self.r.get(f"{self.p}:blob:{job_id}")
        return blob if isinstance(blob, bytes) else None

    def register_worker(self, info: dict[str, Any]) -> None:
        key = f"{self.p}:worker:{info['worker_id']}"
        self.r.hset(key, mapping={"body": json.dumps(info), "heartbeat_ts": time.time()})
        self.r.expire(key, int(HEARTBEAT_TIMEOUT_S * 3))
        self.r.sadd(f"{self.p}:workers", info["worker_id"])

    def heartbeat(self, worker_id: str) -> None:
        key = f"{self.p}:worker:{worker_id}"
        if self.r.exists(key):  # only the heartbeat field: registrations may change concurrently
            self.r.hset(key, "heartbeat_ts", time.time())
            self.r.expire(key, int(HEARTBEAT_TIMEOUT_S * 3))

    def remove_worker(self, worker_id: str) -> None:
        self.r.delete(f"{self.p}:worker:{worker_id}")
        self.r.srem(f"{self.p}:workers", worker_id)

    def workers(self) -> list[dict[str, Any]]:
        out = []
        for wid in sorted(self.r.smembers(f"{self.p}:workers")):
            h = {_text(k): _text(v) for k, v in self.r.hgetall(f"{self.p}:worker:{_text(wid)}").items()}
            if "body" not in h:
                self.r.srem(f"{self.p}:workers", wid)
                continue
            out.append({**json.loads(h["body"]), "heartbeat_ts": float(h["heartbeat_ts"])})
        return out
