"""The ``topcal`` command. Each subcommand is a thin wrapper around one library function.

Bad input ends with exit code 2 and one line ``topcal: <what is wrong>`` on stderr, and nothing written.
"""

from __future__ import annotations

import errno
import functools
import shlex
import signal
import sys

import click

from topcal.config import LIKELIHOODS, PROCESSES, TOP_LABELS, TRUTH_RECORDS
from topcal.errors import ConfigError, TopcalError
from topcal.reproduce.scales import SCALES
from topcal.workers import EXECUTORS


def _user_errors(fn):
    """Turn TopcalError (bad input) into a one-line message and exit code 2; an interruption (Ctrl-C or
    SIGTERM, which is handled like Ctrl-C so that every partial output is removed) into exit code 130; a
    full disk or an unwritable place into one line and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            return fn(*args, **kwargs)
        except TopcalError as exc:
            raise click.exceptions.Exit(_fail(str(exc))) from None
        except KeyboardInterrupt:
            click.echo("topcal: interrupted; no unfinished output was published (an interrupted training keeps "
                       "its OUTPUT.partial checkpoint for --resume)", err=True)
            raise click.exceptions.Exit(130) from None
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM):
                name = f"{exc.filename}: " if exc.filename else ""
                raise click.exceptions.Exit(_fail(f"{name}{exc.strerror}", code=1)) from None
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)

    return wrapper


def _terminate(signum, frame):
    raise KeyboardInterrupt


def _pool_options(fn, what: str = "Run independent steps here, on a local process pool, or on dask."):
    """Where independent steps run (:mod:`topcal.workers`): ``generate`` chunks, ensemble members,
    ``reproduce`` tasks, and the coffea chunks of ``process`` and ``predict``."""
    options = [
        click.option("--executor", type=click.Choice(EXECUTORS), default="iterative",
                     show_default=True, help=what),
        click.option("-j", "--workers", type=int, default=1, show_default=True,
                     help="Worker processes (futures pool, or dask LocalCluster when no --scheduler)."),
        click.option("--scheduler", default=None, help="Address of a running dask scheduler (tcp://host:8786)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _runner_options(fn):
    """The coffea-runner options shared by ``process`` and ``predict``: the pool options and the chunk size."""
    fn = click.option("--chunksize", type=int, default=20_000, show_default=True, help="Events per chunk.")(fn)
    return _pool_options(fn, "coffea executor: one process, a process pool, or dask.distributed.")


def _fail(message: str, code: int = 2) -> int:
    click.echo(f"topcal: {message}", err=True)
    return code


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="topcal")
@click.option("-v", "--verbose", is_flag=True, help="Let TensorFlow's, XLA's and FastJet's own messages through.")
@click.option("-q", "--quiet", "silent", is_flag=True, help="Print nothing but errors (no progress, no summary).")
def main(verbose, silent):
    """topcal: per-jet top-quark pT with Bayesian networks, from PYTHIA events to ROOT friend trees.

    Progress bars appear on a terminal only; the summary of what was done and where it went is printed at
    the end of each command."""
    import os

    from topcal.console import VERBOSE_ENV

    ctx = click.get_current_context()
    for flag, name in ((verbose, VERBOSE_ENV), (silent, SILENT_ENV)):
        if flag:
            os.environ[name] = "1"
            ctx.call_on_close(lambda name=name: os.environ.pop(name, None))


SILENT_ENV = "TOPCAL_SILENT"


def show_progress(requested: bool) -> bool:
    """Progress unless --quiet or topcal -q: a bar on a terminal, a line every 10% elsewhere."""
    import os

    return requested and not os.environ.get(SILENT_ENV)


def _say(text: str) -> None:
    """A command's summary on standard output (nothing with ``topcal -q``)."""
    import os

    if not os.environ.get(SILENT_ENV):
        click.echo(text)


@main.command()
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="Output DELPHES-format ROOT file.")
@click.option("-n", "--events", required=True, type=int, help="Number of events to generate (> 0).")
@click.option("--process", type=click.Choice(PROCESSES), default=None,
              help="pp -> t tbar (hadronic tops) or QCD dijets (HardQCD:all), 14 TeV [ttbar, or the card's].")
@click.option("--isr/--no-isr", default=None, help="Initial-state radiation [off, or the card's].")
@click.option("--seed", type=int, default=None,
              help="Master seed; the output depends only on it, the event count and the chunk size [1].")
@click.option("-j", "--workers", type=int, default=1, show_default=True,
              help="Worker processes (local pool, or dask LocalCluster with --executor dask).")
@click.option("--executor", type=click.Choice(EXECUTORS), default=None,
              help="Where chunks are generated: this process, a local pool, or dask [futures with -j > 1].")
@click.option("--scheduler", default=None, help="Address of a running dask scheduler (tcp://host:8786).")
@click.option("--chunk-events", type=int, default=None,
              help="Events per reproducible chunk [default: 250].")
@click.option("--pthat-min", type=float, default=None, help="Hard-process pT window, lower edge in GeV [350].")
@click.option("--pthat-max", type=float, default=None, help="Hard-process pT window, upper edge in GeV [1100].")
@click.option("--config", "card", type=click.Path(dir_okay=False), default=None,
              help="TOML card overriding any generator or detector number (see topcal.config).")
@click.option("--truth", type=click.Choice(TRUTH_RECORDS), default=None,
              help="Particle record: PYTHIA's full record, or tops/Ws and their decay products [full].")
@click.option("--slim", is_flag=True,
              help="Small files: compact truth, only Event/Particle/EFlow collections, ZSTD compression.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_user_errors
def generate(output, events, process, isr, seed, workers, executor, scheduler, chunk_events, pthat_min, pthat_max,
             card, truth, slim, overwrite, quiet):
    """PYTHIA 8 events through the DELPHES-like ATLAS detector simulation into a DELPHES-format ROOT file."""
    from topcal.config import load_card
    from topcal.generate.run import generate as run_generate

    # only what the user gave overrides the card (and is recorded in the file's configuration)
    given = {"process": process, "isr": isr, "pthat_min_gev": pthat_min, "pthat_max_gev": pthat_max}
    overrides = {"generator": {k: v for k, v in given.items() if v is not None}}
    if seed is not None:
        overrides["seed"] = seed
    if chunk_events is not None:
        overrides["chunk_events"] = chunk_events
    if slim:
        from dataclasses import asdict

        from topcal.config import slim_output

        overrides["output"] = asdict(slim_output())
    if truth is not None:
        overrides.setdefault("output", {})["truth"] = truth
    cfg = load_card(card, overrides)
    summary = run_generate(
        output, events, cfg, workers=workers, overwrite=overwrite, progress=show_progress(not quiet),
        command=shlex.join(["topcal", *sys.argv[1:]]), executor=executor, scheduler=scheduler,
    )
    _say(str(summary))


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False),
              help="Output dataset directory (Parquet parts, dataset.json, histograms.root, figures/).")
@_runner_options
@click.option("--pt-min", type=float, default=None, help="Lower edge of the pT,j window in GeV [400].")
@click.option("--pt-max", type=float, default=None, help="Upper edge of the pT,j window in GeV [1000].")
@click.option("--radius", type=float, default=None, help="Anti-kT radius [1.2].")
@click.option("--towers", is_flag=True, help="Cluster calorimeter towers instead of energy-flow objects.")
@click.option("--match-decay-products/--match-top-only", default=None,
              help="Require the top's b quark and both W-decay quarks inside the jet (Delta R < R), as the "
                   "public top-tagging data set does, or the top alone [decay products].")
@click.option("--top-label", type=click.Choice(TOP_LABELS), default=None,
              help="pT,t(truth) from the top as the hard process made it [hard-process], from its last copy "
                   "before its decay, or from the top after the ISR recoil and before its own final-state "
                   "radiation (before-fsr: for samples with ISR).")
@click.option("--jet-leptons/--no-jet-leptons", default=None,
              help="Keep electrons and muons among the jet inputs [keep], or drop them as DELPHES's EFlowFilter "
                   "does.")
@click.option("--truth-pt-min", type=float, default=None,
              help="Drop jets whose pT,t(truth) is below this, in GeV [400].")
@click.option("--truth-pt-max", type=float, default=None,
              help="Drop jets whose pT,t(truth) is at or above this, in GeV [1000].")
@click.option("--no-flatten", is_flag=True, help="Keep all matched jets (no flattening in pT,t(truth)).")
@click.option("--background", is_flag=True,
              help="Keep every jet in the window, top or not (QCD jets for the top tagger); implies --no-flatten.")
@click.option("--max-constituents", type=int, default=None,
              help="Constituents per jet in the network input [100; 200 when the input was made with ISR].")
@click.option("--seed", type=int, default=None, help="Seed of the flattening draw [1].")
@click.option("--config", "card", type=click.Path(dir_okay=False), default=None,
              help="TOML card with any topcal.config.ProcessConfig field.")
@click.option("--skip-bad-files", is_flag=True, help="Skip unreadable or non-DELPHES inputs and report them.")
@click.option("--no-figures", is_flag=True, help="Do not draw the dataset figures.")
@click.option("--overwrite", is_flag=True, help="Replace an existing dataset directory.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_user_errors
def process(files, output, executor, workers, scheduler, chunksize, pt_min, pt_max, radius, towers,
            match_decay_products, top_label, jet_leptons, truth_pt_min, truth_pt_max, no_flatten, background,
            max_constituents, seed, card,
            skip_bad_files, no_figures, overwrite, quiet):
    """DELPHES files (paths, globs or a JSON fileset) -> flattened, truth-matched fat-jet dataset."""
    from topcal.config import ProcessConfig, load_card
    from topcal.process.run import process as run_process

    flags = {"jet_pt_min_gev": pt_min, "jet_pt_max_gev": pt_max, "jet_radius": radius,
             "max_constituents": max_constituents, "seed": seed, "top_label": top_label,
             "match_decay_products": match_decay_products, "jet_leptons": jet_leptons,
             "truth_pt_min_gev": truth_pt_min, "truth_pt_max_gev": truth_pt_max}
    overrides = {k: v for k, v in flags.items() if v is not None}
    if towers:
        overrides["use_towers"] = True
    if no_flatten or background:
        overrides["flatten"] = False
    if background:
        overrides["truth_match"] = False
    cfg = load_card(card, overrides, cls=ProcessConfig)
    summary = run_process(
        files, output, cfg, executor=executor, workers=workers, scheduler=scheduler, chunksize=chunksize,
        skip_bad_files=skip_bad_files, overwrite=overwrite, progress=show_progress(not quiet), figures=not no_figures,
        command=shlex.join(["topcal", *sys.argv[1:]]),
    )
    _say(str(summary))


@main.command()
@click.argument("dataset", type=click.Path(file_okay=False))
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False),
              help="Model directory to write (model.json, weights, history.json).")
@click.option("--network", type=click.Choice(["default", "paper"]), default="default", show_default=True,
              help="topcal's Bayesian deep set on jet-frame inputs with the response as target, or the paper's "
                   "dense network on lab-frame four-vectors (topcal.config.paper_train_config); a --config "
                   "card and the flags below override either.")
@click.option("--likelihood", type=click.Choice(LIKELIHOODS), default=None,
              help="Gaussian, or a mixture of 2 or 3 Gaussians [default network: gmm3; paper network: gauss].")
@click.option("--train-size", type=int, default=None, help="Training jets per network [all trainable jets].")
@click.option("--epochs", type=int, default=None, help="Maximum epochs (early stopping may end sooner) [200].")
@click.option("--patience", type=int, default=None,
              help="Epochs without a better validation negative log-likelihood before stopping [12; paper 10].")
@click.option("--smear", type=float, default=None,
              help="Label smearing: Gaussian width as a fraction of pT,t(truth), e.g. 0.05 [0].")
@click.option("--ensemble", type=int, default=None,
              help="Train M deterministic networks (frequentist ensemble) instead of the Bayesian one [0].")
@click.option("--seed", type=int, default=None, help="Seed of initialisation, subsampling and smearing [1].")
@click.option("--config", "card", type=click.Path(dir_okay=False), default=None,
              help="TOML card with any topcal.config.TrainConfig field (architecture, prior, optimiser...).")
@click.option("--label-systematics", "label_card", type=click.Path(dir_okay=False), default=None,
              help="TOML card of named label-uncertainty sources (smear, shift): also trains their networks "
                   "(docs/systematics_labels.md).")
@click.option("--resume", is_flag=True, help="Continue an interrupted training from OUTPUT.partial.")
@click.option("--overwrite", is_flag=True, help="Replace an existing model directory.")
@_pool_options
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_user_errors
def train(dataset, output, network, likelihood, train_size, epochs, patience, smear, ensemble, seed, card, label_card,
          resume, overwrite, executor, workers, scheduler, quiet):
    """Train the Bayesian network (or the ensemble) on a per-jet dataset from `topcal process`."""
    from topcal.config import TrainConfig, load_card, paper_train_config
    from topcal.train.fit import train as run_train

    flags = {"likelihood": likelihood, "train_size": train_size, "epochs": epochs, "patience": patience,
             "smear": smear, "ensemble": ensemble, "seed": seed}
    base = paper_train_config() if network == "paper" else TrainConfig()
    cfg = load_card(card, {k: v for k, v in flags.items() if v is not None}, cls=TrainConfig, base=base)
    kwargs = {} if label_card is None else {"card_path": label_card}
    if label_card is not None:  # the nominal network and one per label variation, as tasks
        from topcal.train.label_training import train_label_systematics as run_train
    summary = run_train(dataset, output, cfg, overwrite=overwrite, resume=resume, progress=show_progress(not quiet),
                        command=shlex.join(["topcal", *sys.argv[1:]]), executor=executor, workers=workers,
                        scheduler=scheduler, **kwargs)
    _say(str(summary))


@main.command()
@click.argument("top_dataset", type=click.Path(file_okay=False))
@click.argument("background_dataset", type=click.Path(file_okay=False))
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False),
              help="Tagger directory to write (tagger.json, weights).")
@click.option("--epochs", type=int, default=None, help="Maximum epochs (early stopping may end sooner) [30].")
@click.option("--max-jets", type=int, default=None, help="Training jets per class at most [all].")
@click.option("--seed", type=int, default=None, help="Seed of initialisation and subsampling [1].")
@click.option("--config", "card", type=click.Path(dir_okay=False), default=None,
              help="TOML card with any topcal.config.TaggerConfig field (constituents, combinations, layers...).")
@click.option("--overwrite", is_flag=True, help="Replace an existing tagger directory.")
@click.option("--quiet", is_flag=True, help="No progress output.")
@_user_errors
def tagger(top_dataset, background_dataset, output, epochs, max_jets, seed, card, overwrite, quiet):
    """Train the LoLa top tagger: top jets (`topcal process`) against background (`topcal process --background`)."""
    from topcal.config import TaggerConfig, load_card
    from topcal.tagger.run import train_tagger

    flags = {"epochs": epochs, "max_jets_per_class": max_jets, "seed": seed}
    cfg = load_card(card, {k: v for k, v in flags.items() if v is not None}, cls=TaggerConfig)
    summary = train_tagger(top_dataset, background_dataset, output, cfg, progress=show_progress(not quiet),
                           overwrite=overwrite,
                           command=shlex.join(["topcal", *sys.argv[1:]]))
    _say(str(summary))


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False),
              help="Directory for the figures (one subdirectory per input, PNG and PDF).")
@_user_errors
def plot(inputs, output):
    """Figures from datasets (`topcal process`), reports (`topcal evaluate`) and friend files (`topcal predict`)."""
    from topcal.plot.run import plot as run_plot

    for path in run_plot(inputs, output):
        _say(str(path))


@main.command()
@click.argument("model", type=click.Path(file_okay=False))
@click.argument("dataset", type=click.Path(file_okay=False))
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False),
              help="Report directory (report.json, report.md, predictions.parquet, figures/).")
@click.option("--samples", type=int, default=50, show_default=True, help="Weight samples T per jet.")
@click.option("--reference", type=click.Path(file_okay=False), default=None,
              help="Model trained without label smearing: adds sigma_cal = sqrt(sigma_stoch^2 - sigma_stoch,0^2).")
@click.option("--input-smear", type=float, default=None,
              help="Input-smearing comparison: constituents scaled by 1 +- F (e.g. 0.05).")
@click.option("--max-jets", type=int, default=None, help="Evaluate only the first N test jets.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the weight sampling.")
@click.option("--overwrite", is_flag=True, help="Replace an existing report directory.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_user_errors
def evaluate(model, dataset, output, samples, reference, input_smear, max_jets, seed, overwrite, quiet):
    """Evaluate a trained model on the test part of a dataset, against the fat-jet pT baseline."""
    from topcal.train.evaluate import evaluate as run_evaluate

    summary = run_evaluate(model, dataset, output, samples=samples, reference=reference, input_smear=input_smear,
                           seed=seed, max_jets=max_jets, overwrite=overwrite, progress=show_progress(not quiet),
                           command=shlex.join(["topcal", *sys.argv[1:]]))
    _say(str(summary))


@main.command()
@click.argument("model", type=click.Path(file_okay=False))
@click.argument("files", nargs=-1, required=True)
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False),
              help="Directory for the friend files (<input stem>_topcal.root).")
@_runner_options
@click.option("--samples", type=int, default=50, show_default=True, help="Weight samples T per jet.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Sampling seed: with --samples it fixes the T weight draws used for every jet.")
@click.option("--reference", type=click.Path(file_okay=False), default=None,
              help="Model trained without label smearing: adds FatJet_sigmaCal.")
@click.option("--prior", default=None, metavar="FILE.root:HIST",
              help="The analysis's pT,t spectrum (1-D histogram, GeV): outputs under it instead of the flat "
                   "training prior.")
@click.option("--stat-variations/--no-stat-variations", default=None,
              help="Require (or leave out) FatJet_ptPred_stat*; by default written when the model stores them "
                   "for --samples and --seed.")
@click.option("--radius", type=float, default=None, help="Check that the model was trained on jets of this R.")
@click.option("--systematic", "systematic", multiple=True, metavar="NAME=SIZE",
              help="Change one detector source's one-sigma size (a fraction: trackPtScale=0.02 is 2%); "
                   "repeatable. Defaults: trackPtScale=0.01, photonEnergyScale=0.01, neutralHadronEnergyScale=0.05.")
@click.option("--no-systematics", is_flag=True, help="No detector variations (FatJet_ptPred_<source>Up/Down, ...).")
@click.option("--tree-name", default="topcal", show_default=True, help="Name of the friend tree.")
@click.option("--skip-bad-files", is_flag=True, help="Skip unreadable or non-DELPHES inputs and report them.")
@click.option("--overwrite", is_flag=True, help="Replace existing friend files.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_user_errors
def predict(model, files, output, executor, workers, scheduler, chunksize, samples, seed, reference, prior,
            stat_variations, radius, systematic, no_systematics, tree_name, skip_bad_files, overwrite, quiet):
    """Per-jet pT and uncertainties for every fat jet, as ROOT friend trees next to the DELPHES events."""
    from topcal.predict.detector_systematics import parse_systematics
    from topcal.predict.run import predict as run_predict

    if no_systematics and systematic:
        raise TopcalError("--no-systematics: cannot be combined with --systematic")
    systematics = False if no_systematics else parse_systematics(systematic) or None

    summary = run_predict(model, files, output, executor=executor, workers=workers, scheduler=scheduler,
                          chunksize=chunksize, samples=samples, seed=seed, reference=reference, prior=prior,
                          stat_variations=stat_variations, tree_name=tree_name, skip_bad_files=skip_bad_files,
                          overwrite=overwrite, progress=show_progress(not quiet), radius=radius,
                          systematics=systematics, command=shlex.join(["topcal", *sys.argv[1:]]))
    _say(str(summary))


@main.command()
@click.argument("model", type=click.Path(file_okay=False))
@click.option("--samples", type=int, default=50, show_default=True, help="Weight samples T of the posterior.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the weight draws.")
@click.option("--dataset", type=click.Path(file_okay=False), default=None,
              help="Dataset for the decomposition jets (default: the model's training dataset).")
@_user_errors
def variations(model, samples, seed, dataset):
    """Compute and store a model's statistical eigen-variations for the posterior of --samples and --seed."""
    from topcal.train.variations import compute_for_model

    if samples < 2:
        raise ConfigError(f"samples: {samples} must be >= 2")
    v = compute_for_model(model, samples, seed, dataset)
    _say(f"{model}: {v.k} statistical variations for samples={v.samples} seed={v.seed}, keeping "
         f"{100 * v.kept:.1f}% of the variance on {v.jets} jets")


@main.command()
@click.option("-o", "--output", "output", default="out/demo", show_default=True, type=click.Path(file_okay=False),
              help="Directory for the dataset, model, report, friend trees and figures.")
@click.option("--sample", default=None, type=click.Path(dir_okay=False),
              help="DELPHES file to run on [default: the embedded sample, topcal/data/ttbar_noisr_2000ev.root].")
@click.option("--epochs", type=int, default=None, help="Maximum training epochs (early stopping ends sooner) [200].")
@click.option("--samples", type=int, default=50, show_default=True, help="Weight samples T per jet.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_user_errors
def demo(output, sample, epochs, samples, quiet):
    """The main job: process -> train -> evaluate -> predict on one file, in a few minutes on a laptop."""
    import dataclasses

    from topcal.pipeline import DEMO_TRAIN, main_job

    cfg = DEMO_TRAIN if epochs is None else dataclasses.replace(DEMO_TRAIN, epochs=epochs)
    cfg.validate()
    summary = main_job(sample, output, cfg, samples=samples, progress=show_progress(not quiet),
                       command=shlex.join(["topcal", *sys.argv[1:]]))
    _say(str(summary))


@main.command()
@click.option("--scale", type=click.Choice(list(SCALES)), default="small", show_default=True,
              help="small: under 30 min on 2 cores; medium: about 2 h; paper: the paper's sample sizes (use "
                   "--dry-run for the projected time, and a cluster); tiny: wiring only.")
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False),
              help="Directory for samples, dataset, models, reports, plots/ and report.md (reused to resume).")
@click.option("--sample", type=click.Path(dir_okay=False), default=None,
              help="Use this DELPHES file (ttbar, no ISR) instead of generating one.")
@_pool_options
@click.option("--dry-run", is_flag=True,
              help="List the tasks (done or to do) and the projected wall time; run nothing.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_user_errors
def reproduce(scale, output, sample, executor, workers, scheduler, dry_run, quiet):
    """The paper's studies end to end: generate, process, train, evaluate, figures and a report.

    Every training and evaluation is a task: with --executor dask (a LocalCluster of --workers, or the
    cluster at --scheduler) independent tasks run at the same time. An interrupted run resumes."""
    from topcal.reproduce.run import reproduce as run_reproduce

    summary = run_reproduce(scale, output, sample=sample, progress=show_progress(not quiet),
                            command=shlex.join(["topcal", *sys.argv[1:]]), executor=executor, workers=workers,
                            scheduler=scheduler, dry_run=dry_run)
    _say(str(summary))


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--check", is_flag=True, help="Read and decompress every basket of DELPHES files, hash and decode every "
                                           "part of a dataset, load a model's weights (finds damaged data).")
@_user_errors
def info(paths, check):
    """Summarise DELPHES files (topcal's or DELPHES's own), datasets, model directories and friend files."""
    from topcal.info import describe

    for path in paths:
        _say(describe(path, check=check))


if __name__ == "__main__":  # pragma: no cover
    main()
