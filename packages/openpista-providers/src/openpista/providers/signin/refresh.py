"""Stored sign-ins renewed before they expire, safely when several processes share them."""

from __future__ import annotations

import asyncio
import logging
import time

from openpista.providers import _file_lock
from openpista.providers.credentials import Credential, CredentialStore
from openpista.providers.signin._http import SigninError
from openpista.providers.signin.endpoints import SigninEndpoints

logger = logging.getLogger(__name__)

REFRESH_WINDOW_S = 300.0
"""A token expiring within five minutes is refreshed before it is used."""


async def fresh_credential(
    store: CredentialStore,
    provider: str,
    *,
    endpoints: SigninEndpoints | None = None,
    now: float | None = None,
) -> Credential:
    """The stored credential of `provider`, refreshed and saved first when it expires within
    REFRESH_WINDOW_S. Cheap when it does not: one read of the store.

    Refreshes are serialised by a lock file, and the credential is read again once the lock
    is held: a process that waited finds the token another one just refreshed instead of
    spending the (single-use) refresh token twice.

    Raises SigninError when nothing is stored, or when the token has expired and the refresh
    failed. A refresh that fails while the token is still valid is logged and the current
    token returned.
    """
    credential = _stored(store, provider)
    if not _needs_refresh(credential, now):
        return credential
    descriptor = await asyncio.to_thread(_file_lock.acquire, store.refresh_lock_path)
    try:
        credential = _stored(store, provider)
        if not _needs_refresh(credential, now):
            return credential
        from openpista.providers.signin.flows import refresh_credential

        endpoints = SigninEndpoints.from_env() if endpoints is None else endpoints
        try:
            refreshed = await refresh_credential(credential, endpoints, now)
        except SigninError as exc:
            if not credential.expires_within(0, now):
                logger.warning("%s; the current token is used until it expires", exc)
                return credential
            raise SigninError(
                f"{provider}: the stored sign-in expired and could not be refreshed "
                f"({exc.detail}); run `openpista auth login {provider}`",
                provider=provider,
                detail=exc.detail,
                status_code=exc.status_code,
            ) from None
        store.put(refreshed)
        logger.info("%s: refreshed the stored sign-in", provider)
        return refreshed
    finally:
        _file_lock.release(descriptor)


def _stored(store: CredentialStore, provider: str) -> Credential:
    credential = store.get(provider)
    if credential is None:
        raise SigninError(
            f"{provider}: not signed in; run `openpista auth login {provider}`", provider=provider
        )
    return credential


def _needs_refresh(credential: Credential, now: float | None) -> bool:
    return credential.method == "oauth" and credential.expires_within(
        REFRESH_WINDOW_S, time.time() if now is None else now
    )
