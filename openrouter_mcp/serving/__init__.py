"""How clients reach the server: stdio, streamable HTTP and SSE, bearer tokens, per-client limits and
persona scopes."""
