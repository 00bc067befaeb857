"""The ``daskscale`` command. Thin: it parses arguments and calls the Python API.

Each verb lives in its own module and is imported only when used, so ``daskscale --help``
stays fast. Bad input ends with a one-line message and a non-zero exit code.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import click

from daskscale.errors import DaskscaleError

#: verb -> "module:attribute" of its click command
COMMANDS: dict[str, str] = {
    "ingest": "daskscale.cli.data:ingest",
    "info": "daskscale.cli.data:info",
    "make-dataset": "daskscale.cli.data:make_dataset",
    "describe": "daskscale.cli.describe:describe",
    "fit": "daskscale.cli.learn:fit",
    "evaluate": "daskscale.cli.learn:evaluate",
    "predict": "daskscale.cli.learn:predict",
    "plan": "daskscale.cli.plan:plan",
    "stream": "daskscale.cli.stream:stream",
    "compress": "daskscale.cli.compress:compress",
    "transfer": "daskscale.cli.transfer:transfer",
    "cluster": "daskscale.cli.cluster:cluster",
    "demo": "daskscale.cli.demo:demo",
}


def _available(verb: str) -> bool:
    module = COMMANDS[verb].partition(":")[0]
    return importlib.util.find_spec(module) is not None


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [v for v in COMMANDS if _available(v)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not _available(name):
            return None
        module, _, attr = COMMANDS[name].partition(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="daskscale")
def cli() -> None:
    """daskscale: scikit-learn style machine learning past one machine's memory, on Dask."""


def main(argv: list[str] | None = None) -> Any:
    """Entry point: run the CLI, turning daskscale errors into one-line messages."""
    try:
        return cli.main(args=argv, prog_name="daskscale", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("daskscale: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (DaskscaleError, FileNotFoundError, PermissionError) as exc:
        click.echo(f"daskscale: error: {exc}", err=True)
        sys.exit(2)
