"""What the commands share: the user error, ``--set`` overrides, config files, checkpoints, devices, and the
one-line report of a failure.

Taught in chapter 5 (training on a GPU) and chapter 10 (the ShapeNet commands).
"""
from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import yaml

#: exit status of an error in the input (arguments, config, data, checkpoint)
EXIT_USAGE = 2
#: exit status of a run that failed on its own (the loss became NaN/inf)
EXIT_FAILURE = 1
#: exit status after Ctrl-C
EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """A user error reported as one line on stderr with exit status 2."""


def parse_assignment(text: str) -> tuple[list[str], object]:
    """``"a.b=1e-3"`` -> ``(["a", "b"], 0.001)``: the key path and the value parsed as YAML (``1e-3`` and
    ``None`` included, which YAML 1.1 alone reads as strings).

    Raises:
        CLIError: no ``=``, or an empty key.
    """
    if "=" not in text:
        raise CLIError(f"--set expects key=value, got {text!r}")
    key, value = text.split("=", 1)
    path = [k.strip() for k in key.strip().split(".")]
    if not all(path):
        raise CLIError(f"--set has an empty key in {text!r}")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    if isinstance(parsed, str):
        if parsed.strip().lower() == "none":
            parsed = None
        else:
            try:  # YAML 1.1 reads "1e-4" (no dot) as a string; a number is meant
                parsed = float(parsed)
            except ValueError:
                pass
    return path, parsed


def apply_overrides(config: dict, assignments: list[str]) -> dict:
    """Apply ``--set`` assignments to a config dict (a copy): nested keys create dicts as needed."""
    out = yaml.safe_load(yaml.safe_dump(config))  # deep copy of plain data
    for text in assignments or []:
        path, value = parse_assignment(text)
        node = out
        for k in path[:-1]:
            if node.get(k) is None:
                node[k] = {}
            if not isinstance(node[k], dict):
                raise CLIError(f"--set {text!r}: {k!r} is not a mapping (it is {node[k]!r})")
            node = node[k]
        node[path[-1]] = value
    return out


def load_config_dict(path) -> dict:
    """Read a YAML preset into a dict (a mapping of config keys).

    Raises:
        CLIError: no file, a file that is not YAML, or YAML that is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise CLIError(f"no config file at {path}")
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise CLIError(f"{path} is not valid YAML{line}: fix the file (configs/*.yaml show the form)") from None
    if not isinstance(data, dict):
        raise CLIError(f"{path} must hold a mapping of config keys, got {type(data).__name__}")
    return data


def checkpoint_path(path) -> Path:
    """A checkpoint file, or a run folder's ``checkpoints/last.pt``.

    Raises:
        CLIError: no file there.
    """
    from gfcore.checkpoint_io import checkpoint_file

    path = checkpoint_file(path)
    if not path.is_file():
        raise CLIError(f"no checkpoint at {path}: give a checkpoint file or a run folder written by "
                       "'python -m gfcore train'")
    return path


def checkpoint_kind(path: Path) -> str | None:
    """The kind a checkpoint declares (``"shapegf-latent-gan"``, ...); an unreadable file raises
    :class:`gfcore.checkpoint_io.CheckpointError`."""
    from gfcore.checkpoint_io import checkpoint_kind as kind

    return kind(path)


def resolve_device(name: str, option: str = "--device"):
    """The ``torch.device`` that ``--device`` names (``auto``: CUDA when present, else CPU).

    Raises:
        CLIError: a name torch does not know, or a CUDA device on a machine where torch sees none (or fewer).
    """
    import torch

    from gfcore.utils import default_device

    if name == "auto":
        return default_device()
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise CLIError(f"{option} {name!r} is not a device: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise CLIError(f"{option} {name}: torch sees no CUDA GPU on this machine (torch {torch.__version__}); "
                           "use --device cpu, or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise CLIError(f"{option} {name}: this machine has {torch.cuda.device_count()} CUDA device(s); "
                           "use cuda:0 or auto")
    return device


# -- reporting failures -------------------------------------------------------------------------------------------
def _known_errors() -> tuple[type[BaseException], ...]:
    return (CLIError, ValueError, TypeError, OSError, ImportError, FloatingPointError)


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (whitespace runs, newlines included, become one space), with a hint
    for the failures whose message does not say what to do."""
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, ImportError):
        text += " (an optional dependency is missing: pip install 'gfcore[data,viz3d]', or see requirements.txt)"
    elif isinstance(err, OSError) and not isinstance(err, FileNotFoundError) and err.filename is not None:
        text += ": check the path and its permissions"
    return text


def run_reporting(command: str, func, args, *, debug: bool) -> int:
    """Run ``func(args)``; a known failure prints ``gfcore <command>: error: <one line>`` on stderr (after its
    traceback with ``debug``) and returns a non-zero exit status instead of raising.

    Known failures: :class:`CLIError`, ``ValueError`` (config and data checks,
    :class:`gfcore.checkpoint_io.CheckpointError`), ``TypeError``, ``OSError`` (files), ``ImportError`` (optional
    dependencies), ``FloatingPointError`` (a loss became NaN/inf) and Ctrl-C. Anything else is a bug: it keeps its
    traceback.
    """
    try:
        return func(args)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"gfcore {command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _known_errors() as err:
        if debug:
            traceback.print_exc()
        print(f"gfcore {command}: error: {one_line(err)}", file=sys.stderr)
        return EXIT_FAILURE if isinstance(err, FloatingPointError) else EXIT_USAGE


def debug_from_env() -> bool:
    """``GF_DEBUG=1`` (any non-empty value but ``0``) acts as ``--debug``."""
    return os.environ.get("GF_DEBUG", "") not in ("", "0")
