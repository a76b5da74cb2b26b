"""Command-line values that must be numbers in a range: one parser each, shared by every subcommand.

Each turns a bad value into argparse's own error ("argument --port: must be 0 to 65535, got 70000"), which
argparse prints with the usage line and exit status 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T", int, float)


def _parser(convert: Callable[[str], T], noun: str, accept: Callable[[T], bool], expected: str) -> Callable[[str], T]:
    def parse(raw: str) -> T:
        try:
            value = convert(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not {noun}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {raw}")
        return value

    return parse


positive_int = _parser(int, "a whole number", lambda value: value >= 1, "at least 1")
positive_seconds = _parser(float, "a number of seconds", lambda v: 0 < v < math.inf, "a positive number of seconds")
positive_usd = _parser(float, "an amount in USD", lambda value: 0 < value < math.inf, "a positive amount in USD")
port_number = _parser(int, "a port number", lambda value: 0 <= value <= 65535, "0 to 65535")
