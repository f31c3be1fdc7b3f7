"""Command line: ``python -m gfcore train|sample|eval|mesh``.

::

    python -m gfcore --version
    python -m gfcore train --config configs/shapenet-airplane.yaml [--out runs/airplane] [--resume]
                           [--set key=value ...] [--device cuda] [--no-progress]
    python -m gfcore sample --ckpt runs/airplane --out samples.npy
                            [--num-points 2048] [--num-shapes 16] [--from-dataset val] [--raw]
                            [--save-input PATH] [--set key=value ...]
    python -m gfcore eval --ckpt runs/airplane [--split val] [--data ROOT] [--emd approxmatch] [--out eval.json]
    python -m gfcore mesh (--ckpt runs/airplane | --pretrained shapes3d | --gan runs/airplane-gan)
                          --out shape.ply [--input cloud.npy | --dataset-index 0 [--split test]] [--sigma 0.05]
                          [--num-support 2048] [--resolution 128] [--raw]
    python -m gfcore sample|eval|mesh --official airplane_recon_add.pt --official-config airplane_recon_add.yaml ...

One module per command: :mod:`~gfcore.cli.train` loads a YAML preset into :class:`gfcore.train.AutoEncoderConfig`
(or, for a preset with ``stage: gan``, :class:`gfcore.train.LatentGANConfig`; unknown keys are an error), applies
``--set`` overrides (values parsed as YAML; dotted keys reach into dicts: ``--set dataset_kwargs.root=/data/pc15k``)
and trains; the run folder (:class:`gfcore.train.RunDir`) gets ``config.yaml``, ``metrics.jsonl`` and
``checkpoints/last.pt``. :mod:`~gfcore.cli.sample` auto-encodes shapes of a split of the checkpoint's own dataset
(encode, then annealed Langevin from the uniform prior), or, given a latent-GAN run, generates new shapes; it
writes a ``(B, num_points, d)`` ``.npy`` in the normalised space (``--raw``: the dataset's original coordinates,
auto-encoding only). :mod:`~gfcore.cli.eval` scores an auto-encoder under the official protocol
(:func:`gfcore.evaluation.main_eval`) or a latent GAN, and writes the JSON record. :mod:`~gfcore.cli.mesh`
extracts the surface of one shape (:func:`gfcore.surface.mesh_from_model`) as PLY or OBJ.
With ``--official CKPT --official-config YAML`` (:mod:`~gfcore.cli.official`), ``sample``, ``eval`` and ``mesh``
use a checkpoint of the official ShapeGF code (:func:`gfcore.pretrained.load_official`) as a native model: a
latent GAN generates (``sample``) or is scored by the generation table (``eval``), an auto-encoder reconstructs
the ShapeNet data its config names. :mod:`~gfcore.cli.common` holds what the commands share.

Failures: every known failure (a bad argument or config key, a missing or malformed data folder, an unreadable,
truncated, unsafe or incompatible checkpoint, a CUDA device on a machine without one, a loss that became NaN)
prints one line on stderr, ``gfcore <command>: error: ...``, naming the file or the step and what to do, and
exits with status 2 (1 when a training run diverged, 130 on Ctrl-C). ``--debug`` (or ``GF_DEBUG=1``) prints the
traceback first.

Taught in chapter 5 (training on a GPU), chapter 8 (surfaces) and chapter 10 (the ShapeNet commands).
"""
from __future__ import annotations

import argparse
import sys

from gfcore._version import __version__
from gfcore.cli import eval as eval_command
from gfcore.cli import mesh, sample, train
from gfcore.cli.common import (
    EXIT_USAGE,
    CLIError,
    apply_overrides,
    debug_from_env,
    load_config_dict,
    parse_assignment,
    run_reporting,
)

COMMANDS = (train, sample, eval_command, mesh)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m gfcore``: ``--version``, ``--debug`` and one subcommand per module."""
    parser = argparse.ArgumentParser(prog="python -m gfcore",
                                     description="gfcore: train and sample ShapeGF "
                                                 "(gradient fields for shapes)")
    parser.add_argument("--version", action="version", version=f"gfcore {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    # the subcommands accept --debug too; SUPPRESS keeps them from overriding the main parser's value
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the traceback of a failure")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,sample,eval,mesh}")
    for command in COMMANDS:
        command.add_parser(sub, [debug])
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 2 user error, 1 a diverged run)."""
    args = build_parser().parse_args(argv)
    return run_reporting(args.command, args.func, args, debug=args.debug or debug_from_env())


__all__ = ["EXIT_USAGE", "CLIError", "apply_overrides", "build_parser", "load_config_dict", "main",
           "parse_assignment"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
