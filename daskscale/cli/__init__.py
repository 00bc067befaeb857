"""The ``daskscale`` command. Thin: it parses arguments and calls the Python API.

Each verb lives in its own module and is imported only when used, so ``daskscale --help``
stays fast.

Errors (:func:`main`) end with ONE line on stderr and a non-zero exit code, never a traceback:

- bad usage (a missing argument, an option value of the wrong type): ``daskscale: error:
  <what> (see 'daskscale VERB --help')``, exit 2;
- a :class:`~daskscale.errors.DaskscaleError` (bad input: the message names what, where and
  what to do; also when raised inside a Dask task on a worker, which re-raises it here) or
  an ``OSError`` (a missing file, a refused connection): ``daskscale: error: <message>``, exit 2;
- an error of the cluster itself (an exception class of ``distributed``, e.g. a worker
  killed while running a task): ``daskscale: cluster error: <type>: <message>``, exit 3;
- anything else is a bug, not bad input, and is not disguised as one:
  ``daskscale: internal error (a bug): <type>: <message>; run with DASKSCALE_DEBUG=1 for the
  traceback``, exit 1.

With ``DASKSCALE_DEBUG=1`` (or ``daskscale -v VERB``) every error is raised with its full
traceback and the workers of a cluster started by the command log failed tasks as
distributed does.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from typing import Any, NoReturn

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
@click.option("-v", "--verbose", is_flag=True, help="Full tracebacks and the workers' logs (as DASKSCALE_DEBUG=1).")
def cli(verbose: bool) -> None:
    """daskscale: scikit-learn style machine learning past one machine's memory, on Dask."""
    if verbose:
        os.environ["DASKSCALE_DEBUG"] = "1"


def debugging() -> bool:
    """``DASKSCALE_DEBUG`` is set (or ``daskscale -v``): show tracebacks and the workers' logs."""
    return os.environ.get("DASKSCALE_DEBUG", "") not in ("", "0")


def _fail(message: str, code: int) -> NoReturn:
    click.echo(re.sub(r"\s*\n\s*", " ", message.strip()), err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> Any:
    """Entry point: run the CLI; errors end in one line on stderr (see the module notes)."""
    try:
        return cli.main(args=argv, prog_name="daskscale", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _fail("daskscale: interrupted", 130)
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        _fail(f"daskscale: error: {exc.format_message()}{where}", exc.exit_code)
    except click.ClickException as exc:
        _fail(f"daskscale: error: {exc.format_message()}", exc.exit_code)
    except (DaskscaleError, OSError) as exc:
        if debugging():
            raise
        _fail(f"daskscale: error: {exc}", 2)
    except Exception as exc:  # noqa: BLE001 - classified below, never hidden: see the module notes
        if debugging():
            raise
        what = f"{type(exc).__name__}: {exc}"
        if type(exc).__module__.partition(".")[0] == "distributed":
            _fail(f"daskscale: cluster error: {what}", 3)
        _fail(f"daskscale: internal error (a bug): {what}; run with DASKSCALE_DEBUG=1 for the traceback", 1)
