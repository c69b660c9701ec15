"""``beat keys create|list|revoke``: the facade's API keys in Postgres (see ``app/auth.py``).

A key is printed once, by ``create``; Beat keeps only its hash, so a lost key is revoked and made again.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer

from app.cli_support import Failure, Usage, command_settings, connected, run_against_services
from core.api_keys import SCOPES, parse_scopes
from core.settings import Settings

T = TypeVar("T")

keys_app = typer.Typer(help="API keys of the facade (a key is printed once, when it is made).")


async def _with_pool(settings: Settings, work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    import asyncpg

    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        return await work(pool)
    finally:
        await pool.close()


def _migrated(settings: Settings) -> Settings:
    """Connected settings on a database that has the api_key table (a key may be made before any `beat sink`)."""
    from sqlalchemy.exc import OperationalError

    from core.settings import mask_url
    from sinks.schema import migrate

    settings = connected(settings)
    assert settings.database_url, "connected() fills it or fails"
    try:
        migrate(settings.database_url)
    except OperationalError as exc:
        raise Failure(f"Postgres at {mask_url(settings.database_url)} does not answer ({exc.orig})") from None
    return settings


@keys_app.command("create")
def keys_create(
    name: Annotated[
        str, typer.Option("--name", metavar="NAME", help="who or what the key is for (unique among live keys)")
    ],
    scopes: Annotated[
        str, typer.Option("--scopes", metavar="SCOPES", help=f"comma-separated, of {','.join(SCOPES)}")
    ] = "submit,read",
) -> int:
    """Make a key and print it (only now: Beat keeps its hash)."""
    from app.key_store import NameTaken, create_key

    try:
        parsed = parse_scopes(scopes)
    except ValueError as exc:
        raise Usage(f"--scopes: {exc}") from None
    if not name.strip():
        raise Usage("--name must not be empty")
    settings = _migrated(command_settings())
    try:
        key_id, key = run_against_services(settings, _with_pool(settings, lambda pool: create_key(pool, name, parsed)))
    except NameTaken as exc:
        raise Failure(str(exc)) from None
    typer.echo(f"key {key_id} {name!r} with scopes {','.join(parsed)}; it is shown only this once:", err=True)
    print(key)
    return 0


@keys_app.command("list")
def keys_list(
    revoked: Annotated[bool, typer.Option("--revoked", help="also the revoked keys")] = False,
) -> int:
    """Keys with their scopes and last use (never the key)."""
    from app.key_store import list_keys

    settings = connected(command_settings())
    rows = run_against_services(settings, _with_pool(settings, lambda pool: list_keys(pool, revoked=revoked)))
    print(f"{'id':>4}  {'name':<24} {'scopes':<18} {'created':<19}  {'last used':<19}  revoked")
    for row in rows:
        print(
            f"{row['id']:>4}  {row['name']:<24} {','.join(row['scopes']):<18} {_when(row['created_at']):<19}  "
            f"{_when(row['last_used_at']):<19}  {_when(row['revoked_at'])}"
        )
    return 0


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(metavar="ID_OR_NAME", help="the key's id or name (see `beat keys list`)")],
) -> int:
    """Revoke a key: the facade refuses it within BEAT_API_KEY_REFRESH seconds."""
    from app.key_store import revoke_key

    settings = connected(command_settings())
    if not run_against_services(settings, _with_pool(settings, lambda pool: revoke_key(pool, key))):
        raise Failure(f"no live key {key}")
    typer.echo(f"revoked {key}; facades refuse it within {settings.api_key_refresh:g} s", err=True)
    return 0


def _when(moment: Any) -> str:
    return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S}"


def exposure_check(settings: Settings) -> None:
    """Before ``beat api`` serves: refuse (Failure) a keyless facade on an address others reach; warn when it
    serves keyless on loopback, or without knowing the Postgres keys."""
    import asyncio
    import logging

    from app.auth import NotExposable, check_exposure
    from app.key_store import live_keys
    from core.api_keys import parse_env_keys

    async def stored() -> int | None:
        import asyncpg

        try:
            conn = await asyncpg.connect(settings.database_url, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return None
        try:
            return len(await live_keys(conn))
        finally:
            await conn.close()

    env_keys = parse_env_keys(settings.api_keys.get_secret_value()) if settings.api_keys else []
    try:
        warning = check_exposure(settings.api_host, len(env_keys), None if env_keys else asyncio.run(stored()))
    except NotExposable as exc:
        raise Failure(str(exc)) from None
    if warning:
        logging.getLogger("app.auth").warning("%s", warning)
