"""Discord's gateway (v10, JSON text frames, no compression) on /gw.

HELLO (op 10) on connect; IDENTIFY (op 2) -> READY + one GUILD_CREATE per guild; HEARTBEAT
(op 1) -> HEARTBEAT_ACK (op 11); RESUME (op 6) -> the missed dispatches, then RESUMED, or
INVALID_SESSION (op 9, d=false) when the session cannot be resumed. Close codes as documented:
4001 unknown opcode, 4002 decode error, 4003 not authenticated, 4004 authentication failed,
4005 already authenticated, 4014 disallowed intents. A client closing with 1000/1001 ends its
session; any other drop leaves it resumable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .entities import GUILD_MEMBERS, MESSAGE_CONTENT
from .state import World

HELLO, HEARTBEAT, IDENTIFY, PRESENCE, VOICE, RESUME, RECONNECT = 10, 1, 2, 3, 4, 6, 7
REQUEST_MEMBERS, INVALID_SESSION, HEARTBEAT_ACK, DISPATCH = 8, 9, 11, 0
GUILD_PRESENCES = 1 << 8
PRIVILEGED = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT
REPLAY_LIMIT = 1000


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    session: Session | None = None
    dropped_by_fake: bool = False
    writer: asyncio.Task[None] | None = None

    def send(self, frame: dict[str, Any] | str) -> None:
        self.queue.put_nowait(frame if isinstance(frame, str) else json.dumps(frame))


@dataclass(eq=False)
class Session:
    id: str
    intents: int
    shard: list[int] | None
    seq: int = 0
    resumable: bool = True
    conn: Connection | None = None
    buffer: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=REPLAY_LIMIT))


class Gateway:
    def __init__(self, world: World, *, heartbeat_interval: int = 41250,
                 privileged_intents: int = GUILD_MEMBERS | MESSAGE_CONTENT,
                 application_flags: int = (1 << 15) | (1 << 19) | (1 << 23)) -> None:
        self.world = world
        self.heartbeat_interval = heartbeat_interval
        self.privileged_intents = privileged_intents
        self.application_flags = application_flags
        self.url = ""
        self.sessions: dict[str, Session] = {}
        self.connections: set[Connection] = set()
        self.ready_count = 0
        self.resume_count = 0
        self.invalid_session_count = 0
        self.heartbeats = 0
        self.close_codes: list[int] = []  # codes the fake closed connections with
        self.received: list[dict[str, Any]] = []  # every frame the client sent (token masked)

    # --- state ------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """A live connection whose session got READY (or RESUMED)."""
        return any(c.session is not None and not c.ws.closed for c in self.connections)

    @property
    def session(self) -> Session | None:
        live = [s for s in self.sessions.values() if s.conn is not None]
        return live[-1] if live else None

    # --- dispatching ------------------------------------------------------------------------

    def dispatch(self, event: str, data: dict[str, Any] | Callable[[int], dict[str, Any]],
                 intent: int | None = None) -> None:
        """Send an event to every session (buffered for a resume while disconnected)."""
        for session in list(self.sessions.values()):
            if not session.resumable:
                continue
            if intent is not None and not session.intents & intent:
                continue
            body = data(session.intents) if callable(data) else data
            self._send_dispatch(session, event, body)
        self.world.changed()

    def _send_dispatch(self, session: Session, event: str, data: Any) -> None:
        session.seq += 1
        frame = json.dumps({"op": DISPATCH, "t": event, "s": session.seq, "d": data})
        session.buffer.append((session.seq, frame))
        if session.conn is not None and not session.conn.ws.closed:
            session.conn.send(frame)

    # --- controls ---------------------------------------------------------------------------

    async def drop(self, code: int = 4000) -> None:
        """Close every connection with `code`; sessions stay resumable (unless 1000/1001)."""
        for conn in list(self.connections):
            conn.dropped_by_fake = True
            self.close_codes.append(code)
            if conn.session is not None and code in (1000, 1001):
                conn.session.resumable = False
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=code, message=b"fake drop"), 5)

    def request_reconnect(self) -> None:
        for conn in self.connections:
            conn.send({"op": RECONNECT, "d": None, "s": None, "t": None})

    def invalidate_session(self, resumable: bool = False) -> None:
        for conn in self.connections:
            if conn.session is not None and not resumable:
                conn.session.resumable = False
            self.invalid_session_count += 1
            conn.send({"op": INVALID_SESSION, "d": resumable, "s": None, "t": None})

    async def close_all(self) -> None:
        for conn in list(self.connections):
            conn.dropped_by_fake = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=1001, message=b"going away"), 2)

    # --- the websocket ----------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        conn = Connection(ws)
        conn.writer = asyncio.create_task(self._write(conn))
        self.connections.add(conn)
        conn.send({"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval,
                                      "_trace": ['["fake-gateway",{"micros":0}]']},
                   "s": None, "t": None})
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_text(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await self._close(conn, 4002, "Error while decoding payload.")
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.connections.discard(conn)
            conn.queue.put_nowait(None)
            session = conn.session
            if session is not None and session.conn is conn:
                session.conn = None
                if not conn.dropped_by_fake and ws.close_code in (1000, 1001):
                    session.resumable = False  # a clean close by the client ends the session
                if not session.resumable:
                    self.sessions.pop(session.id, None)
            self.world.changed()
        return ws

    async def _write(self, conn: Connection) -> None:
        while True:
            frame = await conn.queue.get()
            if frame is None or conn.ws.closed:
                return
            try:
                await conn.ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                return

    async def _close(self, conn: Connection, code: int, reason: str) -> None:
        conn.dropped_by_fake = True
        self.close_codes.append(code)
        if conn.session is not None:
            conn.session.resumable = False
        await conn.ws.close(code=code, message=reason.encode())

    async def _on_text(self, conn: Connection, text: str) -> None:
        try:
            frame = json.loads(text)
            op = int(frame["op"])
        except (ValueError, KeyError, TypeError):
            await self._close(conn, 4002, "Error while decoding payload.")
            return
        data = frame.get("d")
        recorded = json.loads(text)
        if isinstance(recorded.get("d"), dict) and "token" in recorded["d"]:
            recorded["d"]["token"] = "***"
        self.received.append(recorded)
        if op == HEARTBEAT:
            self.heartbeats += 1
            conn.send({"op": HEARTBEAT_ACK})
        elif op == IDENTIFY:
            await self._identify(conn, data or {})
        elif op == RESUME:
            await self._resume(conn, data or {})
        elif op in (PRESENCE, VOICE):
            if conn.session is None:
                await self._close(conn, 4003, "Not authenticated.")
        elif op == REQUEST_MEMBERS:
            if conn.session is None:
                await self._close(conn, 4003, "Not authenticated.")
            else:
                self._members_chunk(conn.session, data or {})
        else:
            await self._close(conn, 4001, "Unknown opcode.")
        self.world.changed()

    async def _identify(self, conn: Connection, data: dict[str, Any]) -> None:
        if conn.session is not None:
            await self._close(conn, 4005, "Already authenticated.")
            return
        if data.get("token") != self.world.bot_token:
            await self._close(conn, 4004, "Authentication failed.")
            return
        intents = int(data.get("intents") or 0)
        if intents & PRIVILEGED & ~self.privileged_intents:
            await self._close(conn, 4014, "Disallowed intent(s).")
            return
        session = Session(secrets.token_hex(16), intents, data.get("shard"), conn=conn)
        self.sessions[session.id] = session
        conn.session = session
        world = self.world
        ready: dict[str, Any] = {
            "v": 10,
            "user_settings": {},
            "user": world.bot_user_json(),
            "relationships": [],
            "private_channels": [],
            "presences": [],
            "guilds": [{"id": gid, "unavailable": True} for gid in world.guilds],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["brazil", "us-east", "us-south"],
            "session_type": "normal",
            "session_id": session.id,
            "resume_gateway_url": self.url,
            "application": {"id": world.application_id, "flags": self.application_flags},
            "auth": {},
            "_trace": ['["fake-gateway-prd",{"micros":0}]'],
        }
        if session.shard is not None:
            ready["shard"] = session.shard
        self._send_dispatch(session, "READY", ready)
        self.ready_count += 1
        for guild in world.guilds.values():
            self._send_dispatch(session, "GUILD_CREATE", world.guild_create_json(guild, intents))

    async def _resume(self, conn: Connection, data: dict[str, Any]) -> None:
        if data.get("token") != self.world.bot_token:
            await self._close(conn, 4004, "Authentication failed.")
            return
        session = self.sessions.get(str(data.get("session_id")))
        seq = int(data.get("seq") or 0)
        if (session is None or not session.resumable
                or (session.buffer and seq < session.buffer[0][0] - 1) or seq > session.seq):
            self.invalid_session_count += 1
            conn.send({"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        if session.conn is not None and session.conn is not conn:
            old = session.conn
            old.dropped_by_fake = True
            with contextlib.suppress(Exception):
                await old.ws.close(code=4000, message=b"session resumed elsewhere")
        session.conn = conn
        conn.session = session
        for s, frame in session.buffer:
            if s > seq:
                conn.send(frame)
        self._send_dispatch(session, "RESUMED", {"_trace": ['["fake-gateway-prd",{}]']})
        self.resume_count += 1

    def _members_chunk(self, session: Session, data: dict[str, Any]) -> None:
        guild = self.world.guilds.get(str(data.get("guild_id")))
        if guild is None or not session.intents & GUILD_MEMBERS:
            return
        query = str(data.get("query") or "").lower()
        wanted = {str(u) for u in data.get("user_ids") or []}
        limit = int(data.get("limit") or 0)
        members = []
        for member in guild.members.values():
            user = self.world.users[member.user_id]
            if wanted and user.id not in wanted:
                continue
            if query and not user.username.lower().startswith(query):
                continue
            members.append(member.to_json(self.world))
        if limit:
            members = members[:limit]
        chunk: dict[str, Any] = {"guild_id": guild.id, "members": members, "chunk_index": 0,
                                 "chunk_count": 1, "not_found": []}
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        self._send_dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)
