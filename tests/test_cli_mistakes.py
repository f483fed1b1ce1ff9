"""The mistakes an analyst makes at the command line, each answered by one line that says what
is wrong and an exit code (2: a usage mistake), before any work and without a traceback; and the
runs that used to end "0 documents" with exit 0 (an empty input, nothing tifa reads, --out the
input folder) now say why and fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app

from .conftest import NER, ROOT, SAMPLES

# (arguments, the whole output, exit code). {tmp}: the test's folder, {samples}: data/raw.
# The output folder {tmp}/out must never be created by a mistake.
MISTAKES = [
    (
        "run --only formulations --out {tmp}/out",
        "error: --only formulations redoes that stage over the whole archive: add --force",
        2,
    ),
    (
        "run {samples} --force --only formulations --out {tmp}/out",
        "error: --only formulations reads the archive in --out, not INPUT: drop INPUT",
        2,
    ),
    (
        "run --force --only formulations --out {tmp}/out",
        "error: {tmp}/out holds no tifa output (no {tmp}/out/documents)",
        2,
    ),
    (
        "lexicon accept 低空经济 --out {tmp}/out",
        "error: {tmp}/out holds no tifa output (no {tmp}/out/documents); run tifa first",
        2,
    ),
    (
        "lexicon reject 一伙千方百计 --out {tmp}/out",
        "error: {tmp}/out holds no tifa output (no {tmp}/out/documents); run tifa first",
        2,
    ),
    (
        "lexicon candidates --out {tmp}/out",
        "error: {tmp}/out holds no tifa output (no formulation_candidates); run tifa",
        2,
    ),
    (
        "run {samples} --out {tmp}/out --ner hanlp",
        "error: the hanlp backend needs --ner-model PATH (a HanLP model on disk)",
        2,
    ),
    (
        "run {samples} --out {tmp}/out --ner-model {tmp}/no/model",
        "error: no NER model at {tmp}/no/model (--ner-model)",
        2,
    ),
    (
        "run {samples} --out {tmp}/out --ner-model {tmp}/empty",
        "error: {tmp}/empty holds no tifa NER model (no model.crfsuite in it or in its "
        "tifa_ner/): give the folder `tifa train ner --out` wrote (--ner-model)",
        2,
    ),
    (
        "evaluate --gold {tmp}/gold.bio --format bio --ner-model {tmp}/empty",
        "error: {tmp}/empty holds no tifa NER model (no model.crfsuite in it or in its "
        "tifa_ner/): give the folder `tifa train ner --out` wrote (--ner-model)",
        2,
    ),
    (
        "evaluate --gold {tmp}/gold.bio --format bio --ner hanlp",
        "error: the hanlp backend needs --ner-model PATH (a HanLP model on disk)",
        2,
    ),
    (
        "run {samples} --out {tmp}/out --ner nonsense",
        "error: Invalid value for '--ner': 'nonsense' is not one of 'model', 'lac', 'hanlp'. "
        "(see tifa run --help)",
        2,
    ),
    (
        "run {samples} --out {tmp}/out --workers 0",
        "error: Invalid value for '--workers' / '-w': Input should be greater than or equal to 1 "
        "(see tifa run --help)",
        2,
    ),
    (
        "run {samples} --out {tmp}/out --wokers 2",
        "error: No such option: --wokers (Possible options: --ner, --tokenizer, --workers) "
        "(see tifa run --help)",
        2,
    ),
    (
        "run {samples} --out {tmp}/out --lexicon {tmp}/category.yaml",
        "error: the formulation lexicon cannot be used: {tmp}/category.yaml: entry 'x1' has "
        "category 'nonsense'; use one of defense, development_strategy, economy, "
        "foreign_affairs, governance, ideology, leadership_core, meetings_and_plans, "
        "party_building, social_policy",
        2,
    ),
    (
        "run {samples} --out {tmp}/out --lexicon {tmp}/broken.yaml",
        "error: the formulation lexicon cannot be used: broken.yaml: not valid YAML "
        '(while parsing a flow sequence in "{tmp}/broken.yaml", line 1, column 7 did not find '
        "expected ',' or ']' in \"{tmp}/broken.yaml\", line 2, column 1)",
        2,
    ),
    (
        "run {samples} --out {tmp}/out --lexicon {tmp}/words.yaml",
        "error: the formulation lexicon cannot be used: {tmp}/words.yaml: a lexicon is a YAML "
        "list of entries, not a str",
        2,
    ),
    (
        "run {samples} --out {tmp}/out --lexicon {tmp}/missing.yaml",
        "error: Invalid value for '--lexicon': file '{tmp}/missing.yaml' does not exist. "
        "(see tifa run --help)",
        2,
    ),
    (
        "run {samples} --out {tmp}/out --compact-target-size 12Q",
        "error: --compact-target-size: not a size: '12Q' (examples: 128M, 1G, 500K, 1000000)",
        2,
    ),
    (
        "run {samples} --out {tmp}/out --scheduler processes --dask-address tcp://h:8786",
        "error: --dask-address names a Dask cluster but --scheduler is 'processes': drop "
        "--scheduler or use --scheduler dask",
        2,
    ),
    (
        "run {tmp}/nightt --out {tmp}/out",
        "error: no such file or folder: {tmp}/nightt",
        2,
    ),
    (
        "run {tmp}/empty --out {tmp}/out",
        "error: nothing to read in {tmp}/empty: no files (tifa reads .txt, .jsonl, .csv)",
        2,
    ),
    (
        "run {tmp}/office --out {tmp}/out",
        "error: nothing to read in {tmp}/office: only 2 files tifa does not read (plan.docx, "
        "report.pdf); it reads .txt, .jsonl, .csv",
        2,
    ),
    (
        "run {tmp}/night --out {tmp}/night",
        "error: --out {tmp}/night is the input folder: name another folder for the tables "
        "(e.g. --out {tmp}/processed)",
        2,
    ),
    (
        "run {samples} --out {tmp}/a-file",
        "error: --out {tmp}/a-file is a file, not a folder: name a folder (created if missing)",
        2,
    ),
    (
        "report --out {tmp}/out",
        "error: no such folder {tmp}/out: give the --out folder of `tifa run`",
        2,
    ),
    (
        "compact --out {tmp}/out",
        "error: no such folder {tmp}/out: give the --out folder of `tifa run`",
        2,
    ),
    (
        "kwic 改革 --out {tmp}/out",
        "error: {tmp}/out holds no tifa tables (no {tmp}/out/documents)",
        2,
    ),
    (
        "kwic",
        "error: Missing argument 'term'. (see tifa kwic --help)",
        2,
    ),
    (
        "kwic 改革 --format xml --out {tmp}/out",
        "error: Invalid value for '--format' / '-f': 'xml' is not one of 'table', 'csv', "
        "'json'. (see tifa kwic --help)",
        2,
    ),
    (
        "evaluate-relations --gold {tmp}/words.yaml --docs {tmp}/words.yaml",
        "error: {tmp}/words.yaml and {tmp}/words.yaml are not a gold relations JSONL and its "
        "documents (JSONDecodeError: Expecting value: line 1 column 1 (char 0))",
        2,
    ),
    (
        "nonsense",
        "error: No such command 'nonsense'. (see tifa --help)",
        2,
    ),
]


@pytest.fixture(scope="module")
def playground(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("mistakes")
    (tmp / "category.yaml").write_text(
        "- id: x1\n  canonical: 两个确立\n  category: nonsense\n", encoding="utf-8"
    )
    (tmp / "broken.yaml").write_text("just: [unclosed\n", encoding="utf-8")
    (tmp / "words.yaml").write_text("hello\n", encoding="utf-8")
    (tmp / "empty").mkdir()
    (tmp / "gold.bio").write_text("中 B-LOC\n国 I-LOC\n\n", encoding="utf-8")
    (tmp / "office").mkdir()
    (tmp / "office" / "report.pdf").write_bytes(b"%PDF-1.4\n")
    (tmp / "office" / "plan.docx").write_bytes(b"PK\x03\x04")
    (tmp / "night").mkdir()
    (tmp / "night" / "a.txt").write_text("国务院召开常务会议。", encoding="utf-8")
    (tmp / "a-file").write_text("", encoding="utf-8")
    return tmp


def test_the_table_has_at_least_fifteen_mistakes() -> None:
    assert len(MISTAKES) >= 15


@pytest.mark.parametrize("args, expected, code", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_a_mistake_is_one_line_and_an_exit_code(
    playground: Path, args: str, expected: str, code: int
) -> None:
    fill = {"tmp": str(playground), "samples": str(SAMPLES)}
    argv = [a.format(**fill) for a in args.split()]
    result = CliRunner().invoke(app, argv, prog_name="tifa")
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit | None), result.exception
    assert "Traceback" not in result.output
    assert result.output.strip() == expected.format(**fill)
    assert not (playground / "out").exists()  # nothing written, not even the folder


def test_the_night_folder_was_left_as_it_was(playground: Path) -> None:
    """--out equal to the input was refused before anything was written into it."""
    CliRunner().invoke(app, ["run", str(playground / "night"), "--out", str(playground / "night")])
    assert sorted(p.name for p in (playground / "night").iterdir()) == ["a.txt"]


def test_every_input_failing_is_a_failed_run_with_the_errors_listed(tmp_path: Path) -> None:
    night = tmp_path / "night"
    night.mkdir()
    (night / "a.jsonl").write_bytes(b'{"text": "\xff\xfe broken\n')
    (night / "b.jsonl").write_text('{"id": 1, "text": ', encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(night), "--out", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[-1] == (
        "error: no document could be read from the input: every file failed (errors above)"
    )
    # The errors by type, then each with its file and message.
    head = lines.index("2 errors (DecodeError 1, JSONDecodeError 1):")
    assert lines[head + 1] == (
        f"  DecodeError  {night / 'a.jsonl'}: bytes are not valid UTF-8, GB18030, Big5 or "
        "UTF-16; re-save the file as UTF-8"
    )
    assert lines[head + 2] == (
        f"  JSONDecodeError  {night / 'b.jsonl'}: line 1: Expecting value at column 19"
    )
    assert lines[head + 3] == f"  (all in {tmp_path / 'out'}/errors)"


def test_the_summary_lists_a_few_errors_then_how_many_more(tmp_path: Path) -> None:
    night = tmp_path / "night"
    night.mkdir()
    (night / "good.txt").write_text("国务院召开常务会议，研究部署经济工作。", encoding="utf-8")
    for k in range(7):
        (night / f"scan{k}.pdf").write_bytes(b"%PDF-1.4\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(night), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    head = lines.index("7 errors (UnsupportedFormat 7):")
    shown = lines[head + 1 : head + 6]
    assert shown == [
        f"  UnsupportedFormat  {night / f'scan{k}.pdf'}: '.pdf' files are not read; use .txt, "
        ".jsonl, .csv"
        for k in range(5)
    ]
    assert lines[head + 6] == f"  2 more in {out}/errors"


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("tifa ") and len(result.output.split()) == 2


def test_kwic_formats(samples_out: Path) -> None:
    import csv
    import io

    out = str(samples_out)
    table = CliRunner().invoke(app, ["kwic", "中国式现代化", "--out", out, "-n", "2"])
    assert table.exit_code == 0 and "中国式现代化" in table.output
    as_csv = CliRunner().invoke(
        app, ["kwic", "中国式现代化", "--out", out, "-n", "2", "--format", "csv", "--width", "8"]
    )
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(rows) == 2 and all(r["match"] for r in rows)
    # The whole --width either side, not what a terminal has room for.
    assert max(len(r["left_context"]) for r in rows) == 8
    # The table piped (CliRunner's output is not a terminal) keeps the whole --width too.
    piped = CliRunner().invoke(
        app, ["kwic", "中国式现代化", "--out", out, "-n", "2", "--width", "8"]
    )
    for r in rows:
        assert r["left_context"] in piped.stdout and r["right_context"] in piped.stdout
    as_json = CliRunner().invoke(
        app, ["kwic", "中国式现代化", "--out", out, "-n", "2", "--format", "json"]
    )
    objects = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [o["doc_id"] for o in objects] == [r["doc_id"] for r in rows]
    assert set(objects[0]) == {
        "doc_id",
        "title",
        "published_at",
        "year",
        "left_context",
        "match",
        "right_context",
    }


def test_compact_takes_out_like_every_command(samples_out: Path, tmp_path: Path) -> None:
    old = CliRunner().invoke(app, ["compact", str(samples_out), "-q"])
    new = CliRunner().invoke(app, ["compact", "--out", str(samples_out), "-q"])
    assert old.exit_code == new.exit_code == 0, old.output + new.output
    both = CliRunner().invoke(app, ["compact", str(tmp_path), "--out", str(samples_out)])
    assert both.exit_code == 2 and "two output folders" in both.output


def test_readme_names_no_removed_flag() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "tifa compact [DIR]" not in readme


@pytest.mark.skipif(not (NER / "msra_train.bio").exists(), reason="no ../shared NER corpora")
def test_train_ner_leaves_the_shipped_model_alone_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "tifa_ner").mkdir(parents=True)
    (tmp_path / "models" / "tifa_ner" / "meta.json").write_text("{}", "utf-8")
    result = CliRunner().invoke(
        app,
        ["train", "ner", "--msra", str(NER / "msra_train.bio"), "--limit", "200",
         "--max-iterations", "3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (trained,) = (tmp_path / "models").glob("tifa_ner-*")
    assert (trained / "training.json").is_file()
    assert f"use it with `tifa run --ner-model {trained.relative_to(tmp_path)}`" in result.output
    assert [p.name for p in (tmp_path / "models" / "tifa_ner").iterdir()] == ["meta.json"]
