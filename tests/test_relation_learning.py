"""Issue 27: the relation decider, leave-one-set-out evaluation and the scorer's conventions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.evaluate.relation_learning import gold_sets, leave_one_set_out, train
from pipeline.evaluate.relations import convention_key, meeting_identity, relation_key
from pipeline.extract.relations.decider import MODEL_PATH, RelationDecider, row_features

GOLD = Path(__file__).parent / "data"


def test_packaged_model_judges_only_the_generous_proposals() -> None:
    decider = RelationDecider.load()
    assert decider.judges("proposed_title_list/untagged")
    assert not decider.judges("org_position_person")
    model = json.loads(MODEL_PATH.read_text("utf-8"))
    assert len(model["trained_on"]) >= 10 and model["weights"]


def test_a_model_of_other_features_is_refused() -> None:
    model = json.loads(MODEL_PATH.read_text("utf-8"))
    model["features_version"] = -1
    with pytest.raises(ValueError, match="retrain"):
        RelationDecider(model)


def test_features_name_the_rule_and_the_foreign_state() -> None:
    row = {
        "doc_id": "d", "relation": "holds_position", "head": "梁强", "head_label": "PERSON",
        "tail": "越南", "tail_label": "GPE", "role": "国家主席", "rule": "proposed_foreign_post",
        "resolved_from": None, "evidence": "越南国家主席梁强会见中方客人。", "start": 0, "end": 8,
        "confidence": 0.7,
    }  # fmt: skip
    f = row_features(row, "习近平会见越南国家主席", 1)
    assert f["rule=proposed_foreign_post"] == 1.0
    assert f["foreign_state_in_sentence=True"] == 1.0
    assert f["title_has=会见"] == 1.0


@pytest.mark.parametrize(
    "tail_a, tail_b",
    [
        ("十四届全国人大二次会议开幕会", "中华人民共和国第十四届全国人民代表大会第二次会议开幕会"),
        ("省十一届人大四次会议", "黑龙江省十一届人大四次会议"),
        ("市政府第五十六次常务会议", "青岛市政府第五十六次常务会议"),
    ],
)
def test_one_meeting_many_names(tail_a: str, tail_b: str) -> None:
    assert meeting_identity(tail_a) == meeting_identity(tail_b)


def test_sitting_and_session_differ_unless_the_set_folds_them() -> None:
    assert meeting_identity("十四届全国人大二次会议开幕会") != meeting_identity(
        "十四届全国人大二次会议"
    )
    row = {"doc_id": "d", "relation": "attends", "head": "李强", "role": None}
    sitting = relation_key({**row, "tail": "十四届全国人大二次会议开幕会"})
    session = relation_key({**row, "tail": "十四届全国人大二次会议"})
    assert convention_key(sitting, 1) == convention_key(session, 1)
    assert convention_key(sitting, 2) != convention_key(session, 2)


def test_conventions_1_sets_are_not_scored_on_session_roles() -> None:
    row = {"doc_id": "d", "relation": "holds_position", "head": "赵乐际", "role": "常务主席"}
    key = relation_key({**row, "tail": "十四届全国人大二次会议主席团"})
    assert convention_key(key, 1) is None
    assert convention_key(key, 2) is not None


def test_leave_one_set_out_on_two_sets() -> None:
    sets = gold_sets(GOLD, only=["relations", "relations_heldout"])
    assert {s.name: s.conventions for s in sets} == {"relations": 1, "relations_heldout": 1}
    report = leave_one_set_out(sets)
    assert set(report["sets"]) == {"relations", "relations_heldout"}
    for scores in report["sets"].values():
        assert scores["decided"]["f1"] >= 0.9  # the invented sets the rules were written on
        assert scores["decided"]["gold"] > 100
    assert report["summary"]["decided"]["worst_set"] in report["sets"]


def test_train_needs_proposals_with_both_outcomes() -> None:
    sets = gold_sets(GOLD, only=["relations_blind11", "relations_blind12"])
    from pipeline.evaluate.relation_learning import candidates

    model = train([c for s in sets for c in candidates(s)])
    assert model["rows"] > model["right"] > 0
    assert all(isinstance(w, float) for w in model["weights"].values())


def test_cli_leave_one_out_and_train(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["evaluate-relation-sets", "--only", "relations", "--only", "relations_blind2"]
    )
    assert result.exit_code == 0, result.output
    assert "mean F1" in result.output
    out = tmp_path / "decider.json"
    result = runner.invoke(app, ["train-relations", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert RelationDecider.load(out).weights
    bad = runner.invoke(app, ["evaluate-relation-sets", "--sets", str(tmp_path)])
    assert bad.exit_code == 2 and "no relation gold sets" in bad.output
