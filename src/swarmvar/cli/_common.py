"""Parsing shared by the CLI commands: data sources and confidence levels."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console

from .. import data
from ..errors import SwarmVarError


def parse_alphas(
    values: list[str] | None, default: tuple[float, ...] = (0.99,)
) -> tuple[float, ...]:
    """``--alpha 0.99 --alpha 0.975`` or ``--alpha 0.99,0.975`` -> (0.99, 0.975)."""
    if not values:
        return default
    out: list[float] = []
    for value in values:
        for part in value.replace(",", " ").split():
            try:
                out.append(float(part))
            except ValueError as exc:
                raise typer.BadParameter(f"{part!r} is not a number (e.g. 0.99)") from exc
    return tuple(out)


def load_series(source: str, column: str | None, kind: str, last: int | None) -> pd.Series:
    """A bundled data set name or a CSV/Parquet path, as validated log returns."""
    if source.lower() in data.DATASETS and not Path(source).exists():
        series = data.load(source)
    else:
        if kind not in ("price", "return"):
            raise typer.BadParameter("--kind must be 'price' or 'return'")
        series = data.read(source, column, kind=kind)  # type: ignore[arg-type]
    if last is not None:
        if last < 2:
            raise typer.BadParameter("--last must be at least 2")
        series = series.iloc[-last:]
    return series


def make_console() -> Console:
    """A console at least 120 columns wide, so tables stay readable in logs and CI."""
    width = Console().width
    return Console(width=max(width, 120))


def fail(exc: SwarmVarError) -> typer.Exit:
    """Print a SwarmVarError as a one-line message and return the exit to raise."""
    typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


def persist_compilations(home: Path) -> Path:
    """Keep JAX's compiled programs under ``<home>/cache/jax`` across runs.

    GarchT's likelihood (~0.35 s) and StudentT's optional NUTS sampler
    (``sampler="nuts"``, ~5 s) compile on first use in a process; with the
    persistent cache a later run (or a spawned backtest worker) loads the
    compiled program instead. Set through
    the environment before JAX is imported, so worker processes inherit it;
    a cache directory the user already set wins.
    """
    folder = Path(os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                                        str(Path(home) / "cache" / "jax")))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
    return folder
