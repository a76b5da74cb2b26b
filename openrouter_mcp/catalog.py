"""Placeholder: the catalog cache is being written."""

from __future__ import annotations

from typing import Any


class Catalog:
    def __init__(self, client: Any, *, ttl: float) -> None:
        self.client = client
        self.ttl = ttl
