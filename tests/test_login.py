"""`openrouter-mcp login` against the simulated OpenRouter on loopback, and where the server then finds its key.

An HTTP client that follows redirects plays the browser: it opens the consent page, the simulator consents and
redirects it to the login's callback on 127.0.0.1, and the login exchanges the code for a key. keyring is given
a keychain of the test's own (a dict), or its `fail` backend, which sends the key to the owner-only file.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

import anyio
import httpx2
import keyring
import keyring.backend
import pytest
from keyring.backends import fail
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from pydantic import SecretStr

from openrouter_mcp import login
from openrouter_mcp.__main__ import parse_args
from openrouter_mcp.config import Settings
from openrouter_mcp.errors import ConfigurationError, MissingApiKeyError
from openrouter_mcp.keystore import ACCOUNT, SERVICE, KeyStore
from openrouter_mcp.login import CALLBACK_PREFIX, LoginError, Pkce, s256, sign_in
from openrouter_mcp.simulator import Simulator, serve_in_thread
from tests.openapi_contract import validate_request

#: The simulator's own key: a key the exchange did not create gets 401 from it.
SIM_KEY = "sk-or-v1-" + "5" * 64
KEY_SHAPE = re.compile(r"sk-or-v1-[0-9a-f]{64}")


class MemoryKeychain(keyring.backend.KeyringBackend):
    """A keychain in a dict, ranked usable like a real one."""

    priority = 1.0

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.entries[(service, username)]


def no_keychain() -> fail.Keyring:
    """keyring's backend for "no keychain here", as keyring picks it on a machine without one."""
    return fail.Keyring()  # type: ignore[no-untyped-call]


class LockedKeychain(MemoryKeychain):
    """A keychain that is there but refuses to store (a locked Secret Service, a denied prompt)."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.PasswordSetError("locked")


@pytest.fixture
def sim() -> Simulator:
    return Simulator(api_key=SIM_KEY)


@pytest.fixture
def base_url(sim: Simulator) -> Iterator[str]:
    with serve_in_thread(sim) as url:
        yield url


@pytest.fixture
def settings(base_url: str) -> Settings:
    return Settings(base_url=base_url, auth_url=base_url.removesuffix("/api/v1") + "/auth")


class Browser:
    """Plays the user's browser: follows the consent page's redirect to the callback and keeps what it saw."""

    def __init__(self, rewrite: Callable[[str], str] | None = None) -> None:
        self.rewrite = rewrite  # changes the callback URL the consent page redirects to, before following it
        self.pages: list[httpx2.Response] = []
        self.done = threading.Event()

    def __call__(self, url: str) -> bool:
        try:
            with httpx2.Client(timeout=10.0) as client:
                response = client.get(url)
                while response.is_redirect:
                    location = response.headers["location"]
                    response = client.get(self.rewrite(location) if self.rewrite else location)
                self.pages.append(response)
        finally:
            self.done.set()
        return True

    async def page(self) -> httpx2.Response:
        """The page the callback answered (the login does not wait for its browser: a console one may linger)."""
        assert await anyio.to_thread.run_sync(self.done.wait, 10.0), "the browser never finished"
        return self.pages[0]


def said() -> tuple[list[str], Callable[[str], None]]:
    lines: list[str] = []
    return lines, lines.append


# --- the whole flow ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_signing_in_stores_a_working_key_in_the_keychain_and_never_shows_it(
    sim: Simulator, settings: Settings, tmp_path: Path
) -> None:
    keychain = MemoryKeychain()
    store = KeyStore(tmp_path / "key", keychain)
    browser = Browser()
    messages, say = said()

    with anyio.fail_after(30):
        where = await sign_in(settings, store, open_browser=browser, say=say, timeout=20, limit=5)

    key = keychain.entries[(SERVICE, ACCOUNT)]
    assert KEY_SHAPE.fullmatch(key) and key in sim.issued_keys
    assert where == f"the OS keychain ({keychain.name})" and not (tmp_path / "key").exists()
    page = await browser.page()
    assert page.status_code == 200 and "Signed in" in page.text
    assert all(key not in text for text in [*messages, where, page.text])
    # What went to OpenRouter: the consent page got the S256 challenge and the limit, the exchange is to spec.
    (consent,) = [r for r in sim.requests if r.path == "/auth"]
    assert consent.query["code_challenge_method"] == "S256" and consent.query["limit"] == "5"
    assert sim.issued_keys[key] == 5.0
    assert urlsplit(consent.query["callback_url"]).hostname == "127.0.0.1"
    (exchange,) = [r for r in sim.requests if r.path == "/auth/keys"]
    validate_request("POST", "/auth/keys", exchange.body)
    assert "authorization" not in exchange.headers
    # The stored key is the server's key from now on, and OpenRouter (simulated) takes it.
    settings_now = Settings.from_env({}, key_store=store)
    assert settings_now.api_key is not None and settings_now.api_key.get_secret_value() == key
    async with httpx2.AsyncClient() as client:
        credits = await client.get(f"{settings.base_url}/credits", headers={"Authorization": f"Bearer {key}"})
    assert credits.status_code == 200


@pytest.mark.anyio
async def test_without_a_keychain_the_key_goes_to_a_file_only_its_owner_can_read(
    sim: Simulator, settings: Settings, tmp_path: Path
) -> None:
    store = KeyStore(tmp_path / "config" / "openrouter-mcp" / "key", no_keychain())
    messages, say = said()

    with anyio.fail_after(30):
        where = await sign_in(settings, store, open_browser=Browser(), say=say, timeout=20)

    key = store.file.read_text().strip()
    assert key in sim.issued_keys and sim.issued_keys[key] is None
    assert stat.S_IMODE(store.file.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.file.parent.stat().st_mode) == 0o700
    assert where.startswith(str(store.file)) and "readable only by you" in where
    assert all(key not in text for text in messages)


@pytest.mark.anyio
async def test_a_keychain_that_refuses_the_key_leaves_it_in_the_file_and_says_so(
    settings: Settings, tmp_path: Path
) -> None:
    store = KeyStore(tmp_path / "key", LockedKeychain())
    with anyio.fail_after(30):
        where = await sign_in(settings, store, open_browser=Browser(), say=said()[1], timeout=20)

    assert store.file.exists() and "refused it: PasswordSetError" in where


@pytest.mark.anyio
async def test_no_browser_prints_the_url_and_only_the_callback_request_counts(
    settings: Settings, tmp_path: Path
) -> None:
    keychain = MemoryKeychain()
    messages: list[str] = []
    url_said = anyio.Event()

    def say(text: str) -> None:
        messages.append(text)
        url_said.set()

    async def play_browser() -> None:
        await url_said.wait()
        url = messages[0].split()[-1]
        callback = urlsplit(parse_qs(urlsplit(url).query)["callback_url"][0])
        async with httpx2.AsyncClient(follow_redirects=True, timeout=10.0) as client:
            # A browser asks for more than the callback; those requests neither end nor spoil the login.
            stray = await client.get(urlunsplit(callback._replace(path="/favicon.ico")))
            assert stray.status_code == 404
            page = await client.get(url)
            assert page.status_code == 200

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(play_browser)
            await sign_in(settings, KeyStore(tmp_path / "key", keychain), open_browser=None, say=say, timeout=20)

    assert "Open this URL in a browser" in messages[0] and "waiting up to 20 s" in messages[0]
    assert (SERVICE, ACCOUNT) in keychain.entries


# --- each failure, with a clear message, and nothing stored -------------------------------------------


@pytest.mark.anyio
async def test_a_callback_with_the_wrong_state_is_refused_and_no_code_is_exchanged(
    sim: Simulator, settings: Settings, tmp_path: Path
) -> None:
    def forge(location: str) -> str:
        parts = urlsplit(location)
        return urlunsplit(parts._replace(path=CALLBACK_PREFIX + "someone-elses-state"))

    keychain = MemoryKeychain()
    browser = Browser(rewrite=forge)
    with anyio.fail_after(30), pytest.raises(LoginError, match="wrong state") as caught:
        await sign_in(settings, KeyStore(tmp_path / "key", keychain), open_browser=browser, say=said()[1], timeout=20)

    assert "Run `openrouter-mcp login` again" in str(caught.value)
    page = await browser.page()
    assert page.status_code == 400 and "wrong state" in page.text
    assert sim.count("/auth/keys") == 0 and keychain.entries == {} and not (tmp_path / "key").exists()


@pytest.mark.anyio
async def test_a_verifier_that_does_not_match_the_challenge_is_refused_by_openrouter(
    sim: Simulator, settings: Settings, tmp_path: Path
) -> None:
    mismatched = Pkce(verifier="a" * 64, challenge=s256("b" * 64))
    keychain = MemoryKeychain()
    browser = Browser()
    with anyio.fail_after(30), pytest.raises(LoginError) as caught:
        await sign_in(
            settings, KeyStore(tmp_path / "key", keychain), open_browser=browser, say=said()[1], timeout=20,
            pkce=mismatched,
        )  # fmt: skip

    message = str(caught.value)
    assert "would not exchange the sign-in code" in message and "Invalid code_verifier" in message
    assert "nothing was stored" in message
    assert sim.count("/auth/keys") == 1 and sim.issued_keys == {} and keychain.entries == {}
    page = await browser.page()
    assert page.status_code == 400 and "Sign-in failed" in page.text


@pytest.mark.slow
@pytest.mark.anyio
async def test_no_answer_within_the_timeout_says_how_to_get_more_time(settings: Settings, tmp_path: Path) -> None:
    def browser_that_never_comes_back(url: str) -> bool:
        return True

    with anyio.fail_after(10), pytest.raises(LoginError, match=r"no answer from OpenRouter within 0\.3 s") as caught:
        await sign_in(
            settings, KeyStore(tmp_path / "key", MemoryKeychain()), open_browser=browser_that_never_comes_back,
            say=said()[1], timeout=0.3,
        )  # fmt: skip

    assert "--timeout" in str(caught.value)


@pytest.mark.anyio
async def test_a_port_in_use_says_which_and_how_to_choose_another(settings: Settings, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(LoginError, match=f"port {port} on 127.0.0.1 is already in use") as caught:
            await sign_in(
                settings, KeyStore(tmp_path / "key", MemoryKeychain()), open_browser=Browser(), say=said()[1],
                port=port, timeout=5,
            )  # fmt: skip

    assert "--port" in str(caught.value)


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_browser_that_cannot_be_opened_leaves_the_printed_url_to_use(
    settings: Settings, tmp_path: Path
) -> None:
    messages, say = said()
    with anyio.fail_after(10), pytest.raises(LoginError):
        await sign_in(
            settings, KeyStore(tmp_path / "key", MemoryKeychain()), open_browser=lambda url: False, say=say,
            timeout=0.5,
        )  # fmt: skip

    assert "If it does not open, visit" in messages[0] and settings.auth_url in messages[0]
    assert "No browser could be opened" in messages[1]


# --- where the server finds its key ------------------------------------------------------------------


def test_the_key_is_looked_for_in_the_environment_then_the_key_file_then_the_keychain_then_the_stored_file(
    tmp_path: Path,
) -> None:
    keychain = MemoryKeychain()
    store = KeyStore(tmp_path / "stored", keychain)
    key_file = tmp_path / "env-key"
    key_file.write_text("sk-or-v1-from-the-variable-file\n")
    key_file.chmod(0o600)

    def found(env: dict[str, str]) -> str | None:
        key = Settings.from_env(env, key_store=store).api_key
        return key.get_secret_value() if key else None

    assert found({}) is None
    KeyStore(store.file, no_keychain()).save(SecretStr("sk-or-v1-stored-in-a-file"))
    assert found({}) == "sk-or-v1-stored-in-a-file"
    keychain.set_password(SERVICE, ACCOUNT, "sk-or-v1-in-the-keychain")
    assert found({}) == "sk-or-v1-in-the-keychain"
    assert found({"OPENROUTER_API_KEY_FILE": str(key_file)}) == "sk-or-v1-from-the-variable-file"
    env = {"OPENROUTER_API_KEY_FILE": str(key_file), "OPENROUTER_API_KEY": "sk-or-v1-from-the-variable"}
    assert found(env) == "sk-or-v1-from-the-variable"


def test_help_and_the_keyless_error_tell_where_the_key_is_looked_for_and_how_to_sign_in(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    flat = " ".join(capsys.readouterr().out.split())
    keyless = str(MissingApiKeyError("`get_credits`"))

    order = (
        "OPENROUTER_API_KEY, else from the file OPENROUTER_API_KEY_FILE names, else from where `openrouter-mcp login`"
    )
    assert order in flat and "login [--no-browser] [--limit USD]" in flat and "logout" in flat
    assert "Run `openrouter-mcp login`" in keyless
    assert "in that order: OPENROUTER_API_KEY, OPENROUTER_API_KEY_FILE, the stored key" in keyless


def test_a_key_the_keychain_takes_replaces_the_copy_an_earlier_login_left_in_the_file(tmp_path: Path) -> None:
    keychain = MemoryKeychain()
    KeyStore(tmp_path / "key", no_keychain()).save(SecretStr("sk-or-v1-old"))

    KeyStore(tmp_path / "key", keychain).save(SecretStr("sk-or-v1-new"))

    assert keychain.entries[(SERVICE, ACCOUNT)] == "sk-or-v1-new" and not (tmp_path / "key").exists()


def test_a_stored_key_file_others_can_read_is_refused_with_the_fix(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "key", no_keychain())
    store.save(SecretStr("sk-or-v1-stored"))
    store.file.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600") as caught:
        Settings.from_env({}, key_store=store)
    assert "sk-or-v1-stored" not in str(caught.value)


def test_a_keychain_that_cannot_be_read_is_skipped_for_the_stored_file_and_an_empty_file_is_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class UnreadableKeychain(MemoryKeychain):
        def get_password(self, service: str, username: str) -> str | None:
            raise keyring.errors.KeyringLocked("locked")

    store = KeyStore(tmp_path / "key", UnreadableKeychain())
    KeyStore(store.file, no_keychain()).save(SecretStr("sk-or-v1-in-the-file"))

    loaded = store.load()

    assert loaded is not None and loaded[0].get_secret_value() == "sk-or-v1-in-the-file"
    assert "cannot read the stored key from the OS keychain (KeyringLocked)" in caplog.text
    store.file.write_text("\n")
    with pytest.raises(ConfigurationError, match="is empty: run `openrouter-mcp login` again"):
        store.load()


def test_logout_removes_the_key_from_the_keychain_and_the_file(tmp_path: Path) -> None:
    keychain = MemoryKeychain()
    store = KeyStore(tmp_path / "key", keychain)
    KeyStore(store.file, no_keychain()).save(SecretStr("sk-or-v1-old-copy"))
    keychain.set_password(SERVICE, ACCOUNT, "sk-or-v1-current")

    assert store.delete() == [f"the OS keychain ({keychain.name})", str(store.file)]
    assert keychain.entries == {} and not store.file.exists()
    assert store.delete() == []


def test_the_login_command_uses_keyrings_configured_keychain_and_says_where_not_what(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("OPENROUTER_BASE_URL", settings.base_url)
    monkeypatch.setenv("OPENROUTER_AUTH_URL", settings.auth_url)
    monkeypatch.setenv("OPENROUTER_API_KEY", SIM_KEY)
    keychain = MemoryKeychain()
    configured = keyring.get_keyring()
    keyring.set_keyring(keychain)
    try:
        assert login.main_login(["--timeout", "20"], open_browser=Browser()) == 0
        key = keychain.entries[(SERVICE, ACCOUNT)]
        assert login.main_logout([]) == 0
    finally:
        keyring.set_keyring(configured)

    err = capsys.readouterr().err
    assert f"Signed in. The new key is stored in the OS keychain ({keychain.name})." in err
    assert "OPENROUTER_API_KEY is set, and the server uses it before the stored key" in err
    assert "Removed the stored key from the OS keychain" in err and "https://openrouter.ai/settings/keys" in err
    assert key not in err and SIM_KEY not in err and keychain.entries == {}


def test_the_login_command_rejects_a_limit_that_is_not_a_positive_amount(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        login.main_login(["--limit", "-3"])
    assert "must be a positive amount in USD" in capsys.readouterr().err


# --- real processes ----------------------------------------------------------------------------------


def base_env(home: Path, **extra: str) -> dict[str, str]:
    """No key variables, a home of the test's own, and keyring's fail backend: the key file is the store."""
    passed = {name: os.environ[name] for name in ("PATH", "LANG", "SYSTEMROOT") if name in os.environ}
    return passed | {"HOME": str(home), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"} | extra


@pytest.mark.slow
def test_a_server_given_its_key_in_the_environment_never_imports_keyring() -> None:
    probe = (
        "import sys; from openrouter_mcp.__main__ import main; from openrouter_mcp.config import Settings; "
        "assert Settings.from_env().api_key is not None; print('keyring' in sys.modules)"
    )
    env = {"PATH": os.environ["PATH"], "OPENROUTER_API_KEY": SIM_KEY}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


@pytest.mark.slow
@pytest.mark.anyio
async def test_login_then_the_server_uses_the_stored_key_then_logout_removes_it(
    sim: Simulator, settings: Settings, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "openrouter_mcp"]
    env = base_env(
        tmp_path, OPENROUTER_BASE_URL=settings.base_url, OPENROUTER_AUTH_URL=settings.auth_url,
        OPENROUTER_MCP_AUDIT="off",
    )  # fmt: skip
    with anyio.fail_after(60):
        async with await anyio.open_process(
            [*command, "login", "--no-browser", "--limit", "2", "--timeout", "30"], env=env
        ) as process:
            assert process.stderr is not None
            err = b""
            while b"\n  http" not in err or not err.endswith(b"\n"):
                err += await process.stderr.receive()
            url = err.decode().split("\n  ", 1)[1].split()[0]
            async with httpx2.AsyncClient(follow_redirects=True, timeout=10.0) as client:
                assert (await client.get(url)).status_code == 200
            async for chunk in process.stderr:
                err += chunk
            assert await process.wait() == 0, err.decode()

    stored = tmp_path / ".config" / "openrouter-mcp" / "key"
    key = stored.read_text().strip()
    assert sim.issued_keys[key] == 2.0 and stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert key not in err.decode() and f"stored in {stored}" in err.decode()

    # The server, with no key variable set, finds the stored key: the simulator takes only its own or issued keys.
    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    with (tmp_path / "server-stderr.txt").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            credits = await client.call_tool("get_credits", {})
    assert not credits.is_error, credits.content
    assert sim.requests[-1].headers["authorization"] == f"Bearer {key}"
    assert key not in (tmp_path / "server-stderr.txt").read_text()

    done = subprocess.run([*command, "logout"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and f"Removed the stored key from {stored}" in done.stderr
    assert not stored.exists()
