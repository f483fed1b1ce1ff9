"""One story, counted once (run/stories.py): syndicated copies found, linked and processed once.

Real items (tests/data/syndication/, sources in its README): the same story from several sites
and distinct stories on the same topic and date. Real LAC, real Parquet, a real LocalCluster.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.analyst.views import connect_views
from pipeline.evaluate.syndication import DEFAULT_SET, evaluate_syndication, load_items
from pipeline.io.write import read_table
from pipeline.normalise.signature import similarity, story_signature
from pipeline.run.runner import run_pipeline
from pipeline.run.stories import StoryPlanner
from tests.kill_support import run_tifa

ITEMS = load_items(DEFAULT_SET)
COPIES_OF = defaultdict(list)
for _item in ITEMS:
    COPIES_OF[_item["story"]].append(_item["id"])


def _write_corpus(folder: Path, items: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "night.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for it in items:
            rec = {"id": it["id"], "text": it["text"], "date": it["date"], "url": it["url"]}
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return folder


def _stories(out: Path) -> dict[str, tuple]:
    docs = read_table(out, "documents", ["doc_id", "cluster_id", "duplicate_of", "rows_from"])
    return {
        r["doc_id"]: (r["cluster_id"], r["duplicate_of"], r["rows_from"]) for r in docs.to_pylist()
    }


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("stories")
    out = base / "out"
    run_pipeline([_write_corpus(base / "in", ITEMS)], out, batch_size=4)
    return out


def test_labelled_set_precision_and_recall() -> None:
    report = evaluate_syndication()
    assert report["same_story_pairs"] >= 9 and report["pairs"] - report["same_story_pairs"] >= 200
    assert report["precision"] >= 0.98, report["errors"]
    assert report["recall"] >= 0.95, report["errors"]


def test_signature_ignores_chrome_script_and_pinyin() -> None:
    by_id = {i["id"]: i for i in ITEMS}
    a = story_signature(by_id["council1_meidafaner"]["text"])[0]
    b = story_signature(by_id["council1_sourcecodebean"]["text"])[0]  # traditional + 拼音
    c = story_signature(by_id["politburo_2026_04_xitheory"]["text"])[0]
    assert a is not None and b is not None and c is not None
    assert similarity(a, b) >= 0.9 > 0.2 > similarity(a, c)


def test_every_copy_stays_with_its_own_metadata(full_run: Path) -> None:
    docs = read_table(full_run, "documents").to_pylist()
    assert sorted(d["doc_id"] for d in docs) == sorted(i["id"] for i in ITEMS)
    by_id = {d["doc_id"]: d for d in docs}
    for story, ids in COPIES_OF.items():
        clusters = {by_id[i]["cluster_id"] for i in ids}
        assert clusters == {ids[0]}, story  # the first copy read is the canonical one
        assert by_id[ids[0]]["duplicate_of"] is None
        for other in ids[1:]:
            assert by_id[other]["duplicate_of"] == ids[0]
            assert by_id[other]["similarity"] >= 0.35
    # The pinyin-annotated reprint is near-exact: not run through the NLP, its own row stays
    # (its own url, date, text), and it has no rows of its own in the NLP tables.
    copy = by_id["council1_4debris"]
    assert copy["rows_from"] == "council1_meidafaner"
    assert copy["url"].startswith("http://www.4debris.com/")
    assert str(copy["published_at"]) == "2023-03-19"
    for table in ("sentences", "entities"):
        ids = set(read_table(full_run, table, ["doc_id"])["doc_id"].to_pylist())
        assert "council1_4debris" not in ids and "council1_meidafaner" in ids
    # A copy with real differences (another site's trimmed version) is processed in full.
    assert by_id["chuwu_hswh_www"]["rows_from"] == "chuwu_hswh_www"
    stories = read_table(full_run, "stories").to_pylist()
    council = next(s for s in stories if s["cluster_id"] == "council1_meidafaner")
    assert council["n_copies"] == 3 and council["n_derived"] >= 1 and council["n_sources"] == 0
    assert len(stories) == len(COPIES_OF)


def test_story_level_counts_equal_the_corpus_without_copies(full_run: Path, tmp_path: Path) -> None:
    firsts = [i for i in ITEMS if COPIES_OF[i["story"]][0] == i["id"]]
    out = tmp_path / "out"
    run_pipeline([_write_corpus(tmp_path / "in", firsts)], out, batch_size=4)
    q = {
        "trends": "SELECT formulation_id, year, n_mentions, n_docs, round(rate_per_10k, 9) "
        "FROM trends ORDER BY ALL",
        "trends_monthly": "SELECT formulation_id, month, n_mentions, n_docs, "
        "round(rate_per_10k, 9) FROM trends_monthly ORDER BY ALL",
        "new_tonight": "SELECT kind, item, n_docs, n_mentions FROM new_tonight "
        "WHERE kind = 'formulation' ORDER BY ALL",
    }
    with_copies, without = connect_views(full_run), connect_views(out)
    for name, sql in q.items():
        a = with_copies.execute(sql).fetchall()
        assert a == without.execute(sql).fetchall(), name
    assert a, "the set has formulations to count"
    # Reach: the copies are beside the story counts, never in them.
    reach = with_copies.execute("SELECT sum(reach_docs) - sum(n_docs) FROM trends").fetchone()[0]
    assert reach > 0
    counts = read_table(full_run, "formulation_counts").to_pandas()
    assert counts["reach_mentions"].sum() > counts["n_mentions"].sum()


def test_tonight_is_matched_against_earlier_nights(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = [ITEMS[0]]  # apec4_johnnytowncar
    run_pipeline([_write_corpus(tmp_path / "n1", first)], out)
    run_pipeline([_write_corpus(tmp_path / "n2", ITEMS[1:3])], out)  # its copy + a negative
    st = _stories(out)
    assert st["apec4_fastread"][0] == "apec4_johnnytowncar"
    assert st["apec3_ncdzx"][0] == "apec3_ncdzx"


def test_kill_and_rerun_give_the_same_clusters(full_run: Path, tmp_path: Path) -> None:
    corpus = _write_corpus(tmp_path / "in", ITEMS)
    out = tmp_path / "out"
    killed = run_tifa([corpus], out, "--batch-size", "4", "--no-report",
                      TIFA_CRASH_AT="batch.done:2")  # fmt: skip
    assert killed.returncode != 0
    written = set(read_table(out, "documents", ["doc_id"])["doc_id"].to_pylist())
    assert 0 < len(written) < len(ITEMS)
    rerun = run_tifa([corpus], out, "--batch-size", "4", "--no-report")
    assert rerun.returncode == 0, rerun.stderr
    assert _stories(out) == _stories(full_run)
    sigs = read_table(out, "signatures", ["doc_id"])["doc_id"].to_pylist()
    assert sorted(sigs) == sorted(i["id"] for i in ITEMS)


def test_dask_gives_the_same_clusters(full_run: Path, tmp_path: Path) -> None:
    corpus = _write_corpus(tmp_path / "in", ITEMS)
    out = tmp_path / "out"
    run_pipeline([corpus], out, workers=2, scheduler="dask", batch_size=4, partition_bytes=6000)
    assert _stories(out) == _stories(full_run)
    files = [pq.read_table(f) for f in sorted((out / "documents").glob("*.parquet"))]
    assert len(files) > 1  # the workers wrote their own parts


def test_planner_is_order_stable_for_a_killed_runs_documents() -> None:
    """A document a killed run wrote (no runs row yet) enters the index where the rerun's
    input meets it, so an earlier new document does not see it."""
    sigs = {i["id"]: story_signature(i["text"]) for i in ITEMS}
    order = [i["id"] for i in ITEMS]
    clean = StoryPlanner(0.35, 0.95)
    for d in order:
        clean.see(d, sigs[d], True)
    from pipeline.run.stories import _Entry

    later = order[1]  # apec4_fastread, written by the killed run
    held = [(later, _Entry(clean.decisions[later].cluster_id, *sigs[later]), False)]
    rerun = StoryPlanner(0.35, 0.95, held)
    for d in order:
        rerun.see(d, sigs[d], d != later)
    for d in order:
        if d != later:
            assert rerun.decisions[d].cluster_id == clean.decisions[d].cluster_id


def test_dedup_and_evaluate_commands(full_run: Path) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["dedup", "--out", str(full_run)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "22 documents, 15 stories" in res.output
    assert "council1_meidafaner" in res.output and "apec3_ncdzx" not in res.output
    res = runner.invoke(app, ["evaluate-syndication"])
    assert res.exit_code == 0 and "precision 1.000, recall 1.000" in res.output, res.output
    res = runner.invoke(app, ["run", "--story-threshold", "0.9", "--copy-threshold", "0.5"])
    assert res.exit_code == 2 and "copy_threshold must be at least" in res.output
