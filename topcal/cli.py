"""The ``topcal`` command. Each subcommand is a thin wrapper around one library function.

Bad input ends with exit code 2 and one line ``topcal: <what is wrong>`` on stderr, and nothing written.
"""

from __future__ import annotations

import functools
import shlex
import sys

import click

from topcal.errors import TopcalError


def _user_errors(fn):
    """Turn TopcalError (bad input) into a one-line message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TopcalError as exc:
            raise click.exceptions.Exit(_fail(str(exc))) from None

    return wrapper


def _fail(message: str) -> int:
    click.echo(f"topcal: {message}", err=True)
    return 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="topcal")
def main():
    """topcal: per-jet top-quark pT with Bayesian networks, from PYTHIA events to ROOT friend trees."""


@main.command()
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="Output DELPHES-format ROOT file.")
@click.option("-n", "--events", required=True, type=int, help="Number of events to generate (> 0).")
@click.option("--process", type=click.Choice(["ttbar", "qcd"]), default="ttbar", show_default=True,
              help="pp -> t tbar (hadronic tops) or QCD dijets (HardQCD:all), 14 TeV.")
@click.option("--isr/--no-isr", default=False, show_default=True, help="Initial-state radiation.")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Master seed; the output depends only on it, the event count and the chunk size.")
@click.option("-j", "--workers", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("--chunk-events", type=int, default=None,
              help="Events per reproducible chunk [default: 250].")
@click.option("--pthat-min", type=float, default=None, help="Hard-process pT window, lower edge in GeV [350].")
@click.option("--pthat-max", type=float, default=None, help="Hard-process pT window, upper edge in GeV [1100].")
@click.option("--config", "card", type=click.Path(dir_okay=False), default=None,
              help="TOML card overriding any generator or detector number (see topcal.config).")
@click.option("--truth", type=click.Choice(["full", "compact"]), default=None,
              help="Particle record: PYTHIA's full record, or tops/Ws and their decay products [full].")
@click.option("--slim", is_flag=True,
              help="Small files: compact truth, only Event/Particle/EFlow collections, LZMA compression.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_user_errors
def generate(output, events, process, isr, seed, workers, chunk_events, pthat_min, pthat_max, card, truth, slim,
             overwrite, quiet):
    """PYTHIA 8 events through the DELPHES-like ATLAS detector simulation into a DELPHES-format ROOT file."""
    from topcal.config import load_card
    from topcal.generate.run import generate as run_generate

    gen = {"process": process, "isr": isr}
    if pthat_min is not None:
        gen["pthat_min_gev"] = pthat_min
    if pthat_max is not None:
        gen["pthat_max_gev"] = pthat_max
    overrides = {"generator": gen, "seed": seed}
    if chunk_events is not None:
        overrides["chunk_events"] = chunk_events
    if slim:
        from topcal.config import SLIM_COLLECTIONS

        overrides["output"] = {"truth": "compact", "collections": SLIM_COLLECTIONS, "compression": "lzma",
                               "compression_level": 9}
    if truth is not None:
        overrides.setdefault("output", {})["truth"] = truth
    cfg = load_card(card, overrides)
    summary = run_generate(
        output, events, cfg, workers=workers, overwrite=overwrite, progress=not quiet,
        command=shlex.join(["topcal", *sys.argv[1:]]),
    )
    click.echo(str(summary))


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@_user_errors
def info(files):
    """Summarise DELPHES files (topcal's or DELPHES's own): events, collections, provenance."""
    from topcal.io.delphes_reader import summarize

    for path in files:
        click.echo(summarize(path))


if __name__ == "__main__":  # pragma: no cover
    main()
