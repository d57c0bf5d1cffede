"""Injected rate limits (429) and the X-RateLimit-* headers Discord puts on every response.

A 429 blocks its bucket (or everything, when global) for `retry_after` seconds: a client that
retries sooner gets another 429, as it would from Discord. Normal responses carry a generous
bucket (limit 5, 4 remaining) so clients never throttle on their own.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field

from .errors import ApiError

# Clock tolerance for "retried too early" (asyncio may wake a timer a hair early).
EARLY_TOLERANCE = 0.05


@dataclass
class RateLimitRule:
    remaining: int
    retry_after: float
    path_contains: str | None
    global_: bool


@dataclass
class RateLimitHit:
    method: str
    path: str
    retry_after: float
    global_: bool
    injected: bool  # False when the client retried before retry_after had passed


@dataclass
class SteadyLimit:
    """A limit Discord keeps all the time (not a one-off injected 429): at most `limit`
    requests per fixed `window` seconds, per bucket (a route and its major id: member-role
    changes are 10 per window per guild) or, with `global_`, for the whole bot (50/s)."""

    limit: int
    window: float
    path_contains: str | None = None
    global_: bool = False
    counts: dict[str, tuple[float, int]] = field(default_factory=dict)  # key -> (start, n)


@dataclass
class RateLimiter:
    rules: list[RateLimitRule] = field(default_factory=list)
    hits: list[RateLimitHit] = field(default_factory=list)
    blocked: dict[str, float] = field(default_factory=dict)
    global_until: float = 0.0
    steady: list[SteadyLimit] = field(default_factory=list)

    def add(self, n: int, retry_after: float, path_contains: str | None, global_: bool) -> None:
        self.rules.append(RateLimitRule(n, retry_after, path_contains, global_))

    def _steady(self, method: str, path: str, bucket_key: str, now: float) -> ApiError | None:
        for rule in self.steady:
            if rule.path_contains is not None and rule.path_contains not in path:
                continue
            key = "global" if rule.global_ else bucket_key
            start, n = rule.counts.get(key, (now, 0))
            if now - start >= rule.window:
                start, n = now, 0
            if n >= rule.limit:
                retry_after = start + rule.window - now
                if rule.global_:
                    self.global_until = now + retry_after
                else:
                    self.blocked[bucket_key] = now + retry_after
                return self._limited(method, path, bucket_hash(bucket_key), retry_after,
                                     rule.global_, True)
            rule.counts[key] = (start, n + 1)
        return None

    def check(self, method: str, path: str, bucket_key: str) -> ApiError | None:
        now = time.monotonic()
        bucket = bucket_hash(bucket_key)
        if self.global_until - now > EARLY_TOLERANCE:
            return self._limited(method, path, bucket, self.global_until - now, True, False)
        until = self.blocked.get(bucket_key, 0.0)
        if until - now > EARLY_TOLERANCE:
            return self._limited(method, path, bucket, until - now, False, False)
        if self.steady and (limited := self._steady(method, path, bucket_key, now)):
            return limited
        for rule in self.rules:
            if rule.remaining > 0 and (rule.path_contains is None or rule.path_contains in path):
                rule.remaining -= 1
                if rule.global_:
                    self.global_until = now + rule.retry_after
                else:
                    self.blocked[bucket_key] = now + rule.retry_after
                self.rules = [r for r in self.rules if r.remaining > 0]
                return self._limited(method, path, bucket, rule.retry_after, rule.global_, True)
        return None

    def _limited(self, method: str, path: str, bucket: str, retry_after: float,
                 global_: bool, injected: bool) -> ApiError:
        retry_after = round(max(retry_after, 0.001), 3)
        self.hits.append(RateLimitHit(method, path, retry_after, global_, injected))
        headers = {
            "Retry-After": str(math.ceil(retry_after)),
            "X-RateLimit-Scope": "global" if global_ else "user",
        }
        if global_:
            headers["X-RateLimit-Global"] = "true"
        else:
            headers.update({
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                "X-RateLimit-Bucket": bucket,
            })
        body = {"message": "You are being rate limited.", "retry_after": retry_after,
                "global": global_}
        return ApiError(429, 0, body["message"], headers=headers, body=body)


def bucket_hash(bucket_key: str) -> str:
    return hashlib.md5(bucket_key.encode()).hexdigest()


def normal_headers(bucket_key: str) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "4",
        "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
        "X-RateLimit-Reset-After": "1.000",
        "X-RateLimit-Bucket": bucket_hash(bucket_key),
    }
