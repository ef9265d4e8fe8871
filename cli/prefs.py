"""Preferences: set, get, list, history, unset."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.context import JsonFlag, service
from cli.items import SensOpt, SpaceOpt, TagOpt, _sens
from cli.output import console, items_table, neutral, print_json, render, shown, styled
from cli.streams import text_arg
from vault import OWNER

app = typer.Typer(help="Preferences: one value per key, with history.", no_args_is_help=True)


@app.command("set")
def set_cmd(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="e.g. diet, coffee.order, travel.seat")],
    value: Annotated[str, typer.Argument(help="The value, in words; - reads it from stdin.")],
    space: SpaceOpt = None,
    tag: TagOpt = None,
    sensitivity: SensOpt = None,
    json_out: JsonFlag = False,
) -> None:
    """Set a preference; the old value is kept in its history.

    VALUE - reads it from stdin: pbpaste | ctxvault pref set bio -

    Example: ctxvault pref set diet "vegetarian, no mushrooms" --space health
    """
    pref = service(ctx).set_preference(
        OWNER, key, text_arg(value), space=space or "personal", tags=tag, sensitivity=_sens(sensitivity) or "low"
    )
    render(pref, json_out, shown(f"{pref.key} = {pref.value}"))


@app.command()
def get(ctx: typer.Context, key: str, json_out: JsonFlag = False) -> None:
    """Print a preference's current value.

    Example: ctxvault pref get diet
    """
    pref = service(ctx).get_preference(OWNER, key)
    if json_out:
        print_json(pref)
    else:
        print(neutral(pref.value))


@app.command("list")
def list_cmd(ctx: typer.Context, space: SpaceOpt = None, json_out: JsonFlag = False) -> None:
    """List current preferences.

    Example: ctxvault pref list --space health --json
    """
    prefs = service(ctx).list_preferences(OWNER, spaces=[space] if space else None)
    if json_out:
        print_json(prefs)
        return
    for p in prefs:
        console.print(styled(shown(f"{p.key} = {p.value}"), (f"  ({shown(p.item.space)})", "dim")))


@app.command()
def history(ctx: typer.Context, key: str, json_out: JsonFlag = False) -> None:
    """Show every value a preference has had, newest first.

    Example: ctxvault pref history diet
    """
    items = service(ctx).preference_history(OWNER, key)
    render(items, json_out, items_table(items, title=f"history of {key}"))


@app.command()
def unset(ctx: typer.Context, key: str, json_out: JsonFlag = False) -> None:
    """Remove a preference's current value (history stays until purge).

    Example: ctxvault pref unset diet
    """
    item = service(ctx).unset_preference(OWNER, key)
    render(item, json_out, f"unset {key}")
