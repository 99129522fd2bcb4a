"""`openpista auth login | status | logout`: signing in to providers and the stored credentials.

Secrets never reach the terminal: keys are read without echo (or from stdin when it is not
a terminal, for scripts), and `status` shows how and until when, never a token.
"""

from __future__ import annotations

import getpass
import os
import sys
import time
from pathlib import Path

from openpista.core.errors import OpenpistaError
from openpista.providers.credentials import Credential, CredentialStore
from openpista.providers.signin.slots import (
    CREDENTIAL_SLOTS,
    CredentialSlot,
    KeyField,
    SigninMethod,
    find_slot,
)

SIGNED_IN = "●"
NOT_SIGNED_IN = "○"


class SigninCancelled(OpenpistaError):
    """The user gave no answer where one was needed."""


class UnusableValueError(OpenpistaError):
    """A typed key or endpoint that could never work."""


class UnknownProviderError(OpenpistaError):
    """A provider name (or sign-in method) that no credential slot has."""


# -- login --------------------------------------------------------------------------------------


def login(provider: str | None, method: str | None, *, no_browser: bool) -> None:
    """Sign in to `provider` (or the one picked interactively) and store the credential."""
    store = CredentialStore.open()
    if provider is None:
        slot = _pick_slot(store)
        chosen = _method_for(slot, method) if method else _pick_method(slot)
    else:
        slot = _slot_or_usage_error(provider)
        chosen = _method_for(slot, method or slot.methods[0].kind)
    if chosen.kind == "oauth":
        from openpista.cli.signals import run_cancellable
        from openpista.providers.signin.flows import sign_in

        console = TerminalConsole(open_browsers=not no_browser)
        signed_in: list[Credential] = []

        async def wait_for_sign_in() -> int:
            signed_in.append(await sign_in(slot.name, console))
            return 0

        # Ctrl-C or SIGTERM while the browser step waits: the callback port is freed, one
        # line is said, and the status is 128 + the signal, as for every other command.
        status = run_cancellable(wait_for_sign_in())
        if not signed_in:
            raise SystemExit(status)
        credential = signed_in[0]
    else:
        credential = _read_key(slot, chosen)
    store.put(credential)
    _say(
        f"Signed in to {slot.display_name}: {chosen.label}. "
        f"The credential is stored in {store.location}."
    )


def _slot_or_usage_error(name: str) -> CredentialSlot:
    slot = find_slot(name)
    if slot is None:
        raise UnknownProviderError(
            f'unknown provider "{name}"; expected one of: {", ".join(CREDENTIAL_SLOTS)}'
        )
    return slot


def _method_for(slot: CredentialSlot, kind: str) -> SigninMethod:
    wanted = kind.replace("-", "_")
    found = slot.method(wanted)
    if found is None:
        offered = " or ".join(f"--method {m.kind.replace('_', '-')}" for m in slot.methods)
        raise UnknownProviderError(f"{slot.name} cannot be signed in to with {kind}; use {offered}")
    return found


def _pick_slot(store: CredentialStore) -> CredentialSlot:
    stored = {credential.provider: credential for credential in store.all()}
    choices = list(CREDENTIAL_SLOTS.values())
    _say(f"Sign in to which provider? ({SIGNED_IN} signed in, {NOT_SIGNED_IN} not)")
    while True:
        width = max(len(slot.name) for slot in choices)
        for number, slot in enumerate(choices, 1):
            credential = stored.get(slot.name)
            dot = SIGNED_IN if credential else NOT_SIGNED_IN
            state = f"  ({_describe(credential)})" if credential else ""
            _say(f"  {number:>2}. {dot} {slot.name:<{width}}  {slot.display_name}{state}")
        answer = _read_line("Number or name (or part of a name to search): ")
        if not answer:
            raise SigninCancelled("no provider chosen; sign-in cancelled")
        if answer.isdigit() and 1 <= int(answer) <= len(choices):
            return choices[int(answer) - 1]
        exact = find_slot(answer)
        if exact is not None:
            return exact
        needle = answer.lower()
        matches = [
            slot
            for slot in CREDENTIAL_SLOTS.values()
            if needle in slot.name or needle in slot.display_name.lower()
        ]
        if len(matches) == 1:
            return matches[0]
        if matches:
            choices = matches
            _say(f'Providers matching "{answer}":')
        else:
            choices = list(CREDENTIAL_SLOTS.values())
            _say(f'Nothing matches "{answer}"; the providers are:')


def _pick_method(slot: CredentialSlot) -> SigninMethod:
    if len(slot.methods) == 1:
        return slot.methods[0]
    _say(f"How do you want to sign in to {slot.display_name}?")
    for number, method in enumerate(slot.methods, 1):
        _say(f"  {number}. {method.label}")
    while True:
        answer = _read_line("Choice [1]: ")
        if answer == "":
            return slot.methods[0]
        if answer.isdigit() and 1 <= int(answer) <= len(slot.methods):
            return slot.methods[int(answer) - 1]
        _say(f"Answer a number from 1 to {len(slot.methods)}.")


def _read_key(slot: CredentialSlot, method: SigninMethod) -> Credential:
    values: dict[str, str] = {}
    for field in method.fields:
        prompt = f"{slot.display_name} {field.prompt}: "
        value = _read_secret(prompt) if field.secret else _read_line(prompt)
        if not value and not field.optional:
            raise SigninCancelled(
                f"{slot.name}: no {field.prompt.split(' (')[0]} given; nothing stored"
            )
        if value:
            _check_value(slot, field, value)
            values[field.name] = value
    key = values.pop("api_key")
    return Credential(provider=slot.name, method="api_key", access_token=key, extra=values)


def _check_value(slot: CredentialSlot, field: KeyField, value: str) -> None:
    """Refuse, before anything is stored, a value that could never work: a key with
    characters no HTTP header carries (a pasted newline or escape sequence, a typographic
    dash), an endpoint that is no http(s) URL. The value itself is never repeated."""
    what = field.prompt.split(" (")[0]
    if field.url:
        from urllib.parse import urlsplit

        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.hostname or not value.isascii():
            example = field.prompt.partition("(")[2].rstrip(")") or "https://HOST"
            raise UnusableValueError(
                f"{slot.name}: the {what.lower()} must be an http(s) URL such as {example}; "
                "nothing stored"
            )
    elif any(not " " <= character <= "~" for character in value):
        noun = "key" if field.name == "api_key" or field.secret else what
        raise UnusableValueError(
            f"{slot.name}: the {noun} holds characters an HTTP header cannot carry "
            "(a stray newline?); nothing stored"
        )


def _read_line(prompt: str) -> str:
    """One line typed by the user, or read from stdin when it is not a terminal; "" at EOF."""
    sys.stdout.write(prompt)
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not sys.stdin.isatty():
        sys.stdout.write("\n")
    return line.strip()


def _read_secret(prompt: str) -> str:
    """Like _read_line, without echo on a terminal."""
    if sys.stdin.isatty():
        try:
            return getpass.getpass(prompt).strip()
        except EOFError:
            return ""
    return _read_line(prompt)


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class TerminalConsole:
    """The sign-in flows' view of the terminal: URLs printed, and opened when there is a
    browser to open them in."""

    def __init__(self, *, open_browsers: bool) -> None:
        self.open_browsers = open_browsers

    def say(self, text: str) -> None:
        _say(text)

    def ask(self, prompt: str) -> str:
        return _read_line(prompt)

    def open_browser(self, url: str) -> bool:
        if not self.open_browsers or not _has_display():
            return False
        import webbrowser

        try:
            opened = webbrowser.open(url)
        except Exception:  # a broken BROWSER setting: the URL is on the screen anyway
            return False
        if opened:
            _say("(Opened in your browser; if it did not appear, open the URL above.)")
        return opened


def _has_display() -> bool:
    # On Linux and BSD without a display, webbrowser would start a text browser (lynx,
    # w3m) in this terminal; printing the URL serves a headless server better.
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


# -- status -------------------------------------------------------------------------------------


def status(config_path: Path | None) -> None:
    """Every provider: signed in or not, how, until when, and whether a key is set elsewhere."""
    store = CredentialStore.open()
    stored = {credential.provider: credential for credential in store.all()}
    elsewhere = _keys_elsewhere(config_path)
    if stored:
        _say(f"Credentials are stored in {store.location}.\n")
    else:
        _say(
            "No credentials are stored yet; `openpista auth login` keeps them in "
            f"{store.location}.\n"
        )
    names = list(CREDENTIAL_SLOTS) + sorted(set(stored) - set(CREDENTIAL_SLOTS))
    width = max(len(name) for name in names)
    shown_width = max(len(slot.display_name) for slot in CREDENTIAL_SLOTS.values())
    for name in names:
        slot = CREDENTIAL_SLOTS.get(name)
        credential = stored.get(name)
        dot = SIGNED_IN if credential else NOT_SIGNED_IN
        state = _describe(credential) if credential else "not signed in"
        if name in elsewhere:
            state += f"; a key is also set ({elsewhere[name]})"
        display = slot.display_name if slot else ""
        _say(f"{dot} {name:<{width}}  {display:<{shown_width}}  {state}")


def _describe(credential: Credential | None, now: float | None = None) -> str:
    """How a credential signs in and until when, without a secret."""
    if credential is None:
        return "not signed in"
    how = "signed in (OAuth)" if credential.method == "oauth" else "API key"
    shown = [
        f"{key} {value}" for key, value in credential.extra.items() if key in _SHOWN_EXTRA and value
    ]
    if shown:
        how += f" ({', '.join(shown)})"
    if credential.expires_at is None:
        return how if credential.method == "api_key" else f"{how}, expiry unknown"
    left = credential.expires_at - (time.time() if now is None else now)
    renewable = " (renewed automatically)" if credential.refresh_token else ""
    if left <= 0:
        if credential.refresh_token:
            return f"{how}, expired (renewed on next use)"
        return f"{how}, expired; run `openpista auth login {credential.provider}`"
    return f"{how}, expires in {_duration(left)}{renewable}"


_SHOWN_EXTRA = ("api_base", "api_version", "aws_region_name")
"""Credential.extra values that are no secret and help tell credentials apart."""


def _duration(seconds: float) -> str:
    if seconds < 60:
        return "under a minute"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} days"


def _keys_elsewhere(config_path: Path | None) -> dict[str, str]:
    """Providers with a key in the environment or config.toml: name -> where."""
    from openpista.core.config import env_value, load_config

    found: dict[str, str] = {}
    for slot in CREDENTIAL_SLOTS.values():
        if slot.key_env and os.environ.get(slot.key_env, "").strip():
            found[slot.name] = slot.key_env
    config = load_config(config_path)
    # The loader gave OPENPISTA_API_KEY to the active provider's section: name it, not the file.
    general = env_value(os.environ, "OPENPISTA_API_KEY")
    if general is not None and config.agent.provider not in found:
        found[config.agent.provider] = general[0]
    for name, section in config.providers.items():
        if section.api_key.strip() and name not in found:
            found[name] = "providers." + name + ".api_key in the config"
    return found


# -- logout -------------------------------------------------------------------------------------


def logout(provider: str, config_path: Path | None) -> None:
    """Remove the provider's stored credential; not signed in is said, and is no failure."""
    slot = _slot_or_usage_error(provider)
    store = CredentialStore.open()
    if store.delete(slot.name):
        _say(f"Signed out of {slot.display_name}: removed its credential from {store.location}.")
    else:
        _say(f"Not signed in to {slot.display_name}; nothing to remove.")
    elsewhere = _keys_elsewhere(config_path).get(slot.name)
    if elsewhere:
        _say(f"A key is still set for {slot.name} ({elsewhere}); openpista keeps using it.")
