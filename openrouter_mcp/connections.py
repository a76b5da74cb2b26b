"""The per-client `Connection` behind a request: where per-session protocol state lives.

Per-session settings (a client's log level, its resource subscriptions) belong to the client's
connection, which outlives each request: the SDK builds a new `ServerSession` per request, while the
`Connection` it wraps is one per client, carries `state` for this purpose, and unwinds `exit_stack`
when the client goes. The SDK's own `mcp.server.context.Context.connection` exposes it publicly, but
the runner hands handlers and middleware a `ServerRequestContext` instead, whose session keeps it in
a private attribute: `connection_of` is the one place that reaches it.
"""

from __future__ import annotations

from typing import Any

from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext


def connection_of(ctx: ServerRequestContext[Any, Any]) -> Connection:
    """The connection of the client that sent the request `ctx` belongs to.

    Raises:
        RuntimeError: the SDK no longer keeps the connection where this looks for it.
    """
    connection = getattr(ctx.session, "_connection", None)
    if not isinstance(connection, Connection):
        raise RuntimeError("this version of the mcp SDK keeps no Connection on ServerSession._connection")
    return connection
