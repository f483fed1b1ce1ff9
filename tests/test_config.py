"""Settings are checked once, before any work: a bad option is a clear message naming it, exit
code 2, and nothing written (not a traceback after the output folder was created)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.run.config import ConfigError, RunConfig
from pipeline.run.runner import run_pipeline

from .conftest import SAMPLES


def _run(tmp_path: Path, *args: str):  # noqa: ANN202
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(SAMPLES), "--out", str(out), "-q", *args])
    return result, out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ner", "hanlp"], "the hanlp backend needs --ner-model"),
        (["--ner-model", "no/such/model"], "no NER model at"),
        (["--tokenizer", "pkuseg", "--pkuseg-model", "no/such/pkuseg"], "no pkuseg model at"),
        (["--lexicon", "README.md"], "the formulation lexicon cannot be used"),
    ],
)
def test_a_bad_option_stops_before_any_work(tmp_path: Path, args: list[str], message: str) -> None:
    if "README.md" in args:
        args = [
            str(Path(__file__).resolve().parents[1] / "README.md") if a == "README.md" else a
            for a in args
        ]
    result, out = _run(tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists()  # nothing written, not even an empty folder


@pytest.mark.parametrize("option", ["--lac-runner", "--ner", "--tokenizer", "--scheduler"])
def test_choices_come_from_the_one_list(tmp_path: Path, option: str) -> None:
    result, out = _run(tmp_path, option, "nonsense")
    assert result.exit_code == 2
    assert "nonsense" in result.output and not out.exists()


def test_a_lexicon_with_an_unknown_category_names_the_entry(tmp_path: Path) -> None:
    lexicon = tmp_path / "lexicon.yaml"
    lexicon.write_text("- id: x1\n  canonical: 两个确立\n  category: nonsense\n", encoding="utf-8")
    problems = RunConfig.of(lexicon=lexicon).problems()
    assert len(problems) == 1 and "'x1' has category 'nonsense'" in problems[0]


def test_every_problem_is_named_at_once() -> None:
    config = RunConfig.of(ner="hanlp", workers=0, chunk_chars=0, scheduler="yarn")
    with pytest.raises(ConfigError) as err:
        config.check()
    for part in ("hanlp backend needs", "workers must be", "chunk_chars must be", "'yarn'"):
        assert part in str(err.value)


def test_run_pipeline_refuses_a_bad_config_before_taking_the_lock(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ConfigError):
        run_pipeline([SAMPLES], out, ner="hanlp")
    assert not out.exists()
    with pytest.raises(TypeError, match="unknown run settings: nonsense"):
        run_pipeline([SAMPLES], out, nonsense=1)


def test_settings_travel_whole() -> None:
    """Model paths are made absolute (a Dask worker may run elsewhere); NLP settings land in
    the NlpConfig every process builds its pipeline from."""
    config = RunConfig.of(ner="lac", tokenizer="char", ner_model="models/tifa_ner", workers=2)
    assert config.nlp.ner == "lac" and config.nlp.tokenizer == "char"
    assert Path(config.nlp.ner_model).is_absolute()
    assert config.lac_threads == 1 and config.parallel
    assert RunConfig().lac_threads is None
