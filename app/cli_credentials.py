"""``beat credentials add|list|disable|enable``: the providers' credentials, secrets never printed."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer

from app.cli_support import Failure, Usage, command_settings, connected, run_against_services
from core.settings import Settings, dump_json

T = TypeVar("T")

credentials_app = typer.Typer(help="Provider credentials (secrets are never printed).")


async def _with_store(settings: Settings, work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    import asyncpg

    from providers.credentials import CredentialStore

    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        return await work(CredentialStore(pool))
    finally:
        await pool.close()


@credentials_app.command("add")
def credentials_add(
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="source label, e.g. rapidapi-arraybobo or graphapi")],
    secrets: Annotated[
        str,
        typer.Argument(
            metavar="SECRETS",
            help='JSON object, e.g. \'{"x-rapidapi-key": "…"}\' or \'{"token": "…", "user_id": "…"}\'; '
            '"-" reads it from standard input',
        ),
    ],
    handle: Annotated[
        str | None,
        typer.Option(
            "--handle",
            metavar="HANDLE",
            help="the account a per-account credential belongs to: a Graph handle, a "
            "YouTube channel id (ytapi), a Shopify store domain",
        ),
    ] = None,
) -> int:
    """Add or refresh a credential (re-enables it)."""
    # "-" reads them from standard input, so they stay out of shell history and process lists.
    text = sys.stdin.read() if secrets == "-" else secrets
    try:
        parsed = json.loads(text)
    except ValueError:
        # The text is a secret: the message must not echo it.
        raise Usage("SECRETS is not JSON") from None
    if not isinstance(parsed, dict):
        raise Usage("SECRETS must be a JSON object")
    settings = connected(command_settings())
    print(run_against_services(settings, _with_store(settings, lambda store: store.add(source, parsed, handle=handle))))
    return 0


@credentials_app.command("list")
def credentials_list(
    source: Annotated[str | None, typer.Argument(metavar="SOURCE", help="only this source's")] = None,
) -> int:
    """Credentials with their state, secrets masked."""
    settings = connected(command_settings())
    for entry in run_against_services(settings, _with_store(settings, lambda store: store.list(source))):
        print(dump_json(entry))
    return 0


CredentialId = Annotated[int, typer.Argument(metavar="ID", help="the credential's id (see `beat credentials list`)")]


def _set_enabled(credential_id: int, enabled: bool) -> int:
    settings = connected(command_settings())
    found = run_against_services(
        settings, _with_store(settings, lambda store: store.set_enabled(str(credential_id), enabled))
    )
    if not found:
        raise Failure(f"no credential {credential_id}")
    return 0


@credentials_app.command("disable")
def credentials_disable(credential_id: CredentialId) -> int:
    """Stop using a credential."""
    return _set_enabled(credential_id, False)


@credentials_app.command("enable")
def credentials_enable(credential_id: CredentialId) -> int:
    """Use a credential again, clearing any rest and expiry."""
    return _set_enabled(credential_id, True)
