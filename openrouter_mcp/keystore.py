"""Where `openrouter-mcp login` keeps the key: the OS keychain through `keyring`, else an owner-only file.

The keychain is whatever keyring finds usable: macOS Keychain, Windows Credential Locker, the Secret Service
(GNOME Keyring, KWallet) on a Linux desktop. Where it finds none (a server, a container: keyring's `fail` or
`null` backend), or the keychain refuses the key, the key goes to `~/.config/openrouter-mcp/key`, mode 0600 in
a 0700 folder. The server reads the keychain first, then the file, and only when neither `OPENROUTER_API_KEY`
nor `OPENROUTER_API_KEY_FILE` is set (`config.Settings.from_env`).

This module, and with it keyring, is imported only when a stored key is looked for: keyring scans its
backends' entry points on first use (~0.15 s), which a server given its key in the environment never pays.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import SecretStr

from openrouter_mcp.config import checked_api_key, read_private_file, write_private_file
from openrouter_mcp.errors import ConfigurationError

logger = logging.getLogger("openrouter_mcp")

#: The keychain entry: keyring's (service, username).
SERVICE = "openrouter-mcp"
ACCOUNT = "openrouter-api-key"
#: Where the key goes without a keychain (beside the default personas file).
DEFAULT_KEY_FILE = "~/.config/openrouter-mcp/key"
KEYCHAIN = "the OS keychain"


class KeyringBackend(Protocol):
    """What is used of a `keyring.backend.KeyringBackend`."""

    @property
    def priority(self) -> float: ...

    def get_password(self, service: str, username: str) -> str | None: ...

    def set_password(self, service: str, username: str, password: str) -> None: ...

    def delete_password(self, service: str, username: str) -> None: ...


@dataclass(frozen=True)
class KeyStore:
    """The keychain entry and the file that hold the signed-in key.

    `backend` is the keychain to use (tests pass their own); None asks keyring for the one it is configured
    with (`keyring.get_keyring()`, which honours `PYTHON_KEYRING_BACKEND` and keyring's own config file).
    """

    file: Path
    backend: KeyringBackend | None = None

    @classmethod
    def default(cls) -> KeyStore:
        """The user's store: keyring's backend, and `~/.config/openrouter-mcp/key`."""
        return cls(Path(DEFAULT_KEY_FILE).expanduser())

    def keychain(self) -> KeyringBackend | None:
        """The keychain, or None where there is no usable one (keyring missing, or only its fail/null backend)."""
        backend: Any = self.backend
        if backend is None:
            try:
                import keyring

                backend = keyring.get_keyring()
            except Exception as exc:  # an unimportable keyring, or a broken keyring config: no keychain
                logger.debug("no OS keychain: %s", type(exc).__name__)
                return None
        # keyring ranks each backend; its fail (0) and null (-1) backends are how it says there is none.
        return backend if _priority(backend) > 0 else None

    def load(self) -> tuple[SecretStr, str] | None:
        """The stored key and where it was found (for messages), or None.

        A keychain that cannot be read is logged and skipped: the file may still hold a key.

        Raises:
            ConfigurationError: the key file is unsafe (with the `chmod` that fixes it) or unreadable, or what
                is stored is not a key (the message never contains it).
        """
        keychain = self.keychain()
        if keychain is not None:
            try:
                stored = keychain.get_password(SERVICE, ACCOUNT)
            except Exception as exc:  # keyring's errors, and the D-Bus or OS errors beneath them
                logger.warning("cannot read the stored key from %s (%s)", KEYCHAIN, type(exc).__name__)
                stored = None
            if stored and stored.strip():
                logger.info("using the key `openrouter-mcp login` stored in %s", KEYCHAIN)
                return checked_api_key(stored.strip(), f"the key in {KEYCHAIN}"), KEYCHAIN
        if not self.file.exists():
            return None
        text = read_private_file(self.file, f"the stored key file {self.file}").strip()
        if not text:
            raise ConfigurationError(
                f"the stored key file {self.file} is empty: run `openrouter-mcp login` again, or delete it"
            )
        key = checked_api_key(text, f"the stored key file {self.file}")
        logger.info("using the key `openrouter-mcp login` stored in %s", self.file)
        return key, str(self.file)

    def save(self, key: SecretStr) -> str:
        """Store `key` in the keychain where there is one, else in the file; say where (for the user).

        A copy left in the file by an earlier sign-in is removed once the keychain holds the key: one place
        less to leak from.

        Raises:
            ConfigurationError: neither the keychain nor the file could take the key.
        """
        keychain = self.keychain()
        refused = ""
        if keychain is not None:
            try:
                keychain.set_password(SERVICE, ACCOUNT, key.get_secret_value())
            except Exception as exc:  # a locked or absent keychain daemon, a denied prompt
                refused = f" ({KEYCHAIN} refused it: {type(exc).__name__})"
            else:
                self._remove_file()
                return f"{KEYCHAIN} ({_name(keychain)})"
        write_private_file(self.file, key.get_secret_value() + "\n", f"the key file {self.file}")
        return f"{self.file}, readable only by you{refused}"

    def delete(self) -> list[str]:
        """Remove the stored key from the keychain and the file; say where from (empty: nothing was stored).

        Raises:
            ConfigurationError: the keychain or the file holds the key and would not let it go.
        """
        removed: list[str] = []
        keychain = self.keychain()
        if keychain is not None:
            try:
                if keychain.get_password(SERVICE, ACCOUNT) is not None:
                    keychain.delete_password(SERVICE, ACCOUNT)
                    removed.append(f"{KEYCHAIN} ({_name(keychain)})")
            except Exception as exc:
                raise ConfigurationError(f"cannot remove the key from {KEYCHAIN}: {type(exc).__name__}") from None
        if self._remove_file():
            removed.append(str(self.file))
        return removed

    def _remove_file(self) -> bool:
        try:
            self.file.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise ConfigurationError(f"cannot remove the stored key file {self.file}: {exc.strerror}") from None
        return True


def _priority(backend: Any) -> float:
    try:
        return float(backend.priority)
    except Exception:  # a backend whose priority check raises is one keyring itself would not use
        return 0.0


def _name(backend: Any) -> str:
    return str(getattr(backend, "name", None) or type(backend).__name__)
