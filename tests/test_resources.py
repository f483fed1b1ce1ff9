"""The resource files: every packaged rule file has the shape its schema declares, and a
malformed one is one clear error naming the file and the key (not a traceback in a rule)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pipeline.core.resources import (
    RESOURCES,
    ResourceError,
    _schemas,
    load_yaml,
    read_table,
)


@pytest.mark.parametrize("name", sorted(_schemas()))
def test_every_packaged_rule_file_has_its_declared_shape(name: str) -> None:
    assert isinstance(load_yaml(RESOURCES / name), dict)


def test_every_yaml_rule_file_has_a_schema() -> None:
    files = {p.name for p in RESOURCES.glob("*.yaml")}
    assert files - set(_schemas()) == {"formulations.yaml", "resource_schemas.yaml"}


def _broken_copy(tmp_path: Path, edit) -> Path:  # noqa: ANN001 - a function of the parsed rules
    rules = yaml.safe_load((RESOURCES / "relation_rules.yaml").read_text(encoding="utf-8"))
    edit(rules)
    path = tmp_path / "relation_rules.yaml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: r.pop("issue_trigger"), "relation_rules.yaml: missing key 'issue_trigger'"),
        (lambda r: r.update(isue_trigger="x"), "relation_rules.yaml: unknown key 'isue_trigger'"),
        (
            lambda r: r.update(issue_trigger=["印发"]),
            "'issue_trigger' must be of type regex, not list",
        ),
        (lambda r: r.update(issue_trigger="(印发"), "'issue_trigger' is not a valid pattern"),
        (
            lambda r: r.update(generic_issuer_window="6"),
            "'generic_issuer_window' must be of type int",
        ),
    ],
)
def test_a_malformed_rule_file_names_the_key(tmp_path: Path, edit, message: str) -> None:  # noqa: ANN001
    with pytest.raises(ResourceError) as err:
        load_yaml(_broken_copy(tmp_path, edit))
    assert message in str(err.value)


def test_invalid_yaml_is_a_resource_error(tmp_path: Path) -> None:
    path = tmp_path / "relation_rules.yaml"
    path.write_text("issue_trigger: [unclosed\n", encoding="utf-8")
    with pytest.raises(ResourceError, match="relation_rules.yaml: not valid YAML"):
        load_yaml(path)


def test_a_table_with_a_short_row_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "post_bodies.tsv"
    shutil.copy(RESOURCES / "post_bodies.tsv", path)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("总理\t国务院\n")
    n_lines = len(path.read_text(encoding="utf-8").splitlines())
    with pytest.raises(ResourceError, match=f"post_bodies.tsv line {n_lines}: expected 3"):
        read_table(path, ("post", "body", "kind"))


def test_a_table_header_must_name_its_columns(tmp_path: Path) -> None:
    path = tmp_path / "lac_labels.tsv"
    path.write_text("tag\tlabel\tpos\nPER\tPERSON\tPROPN\n", encoding="utf-8")
    with pytest.raises(ResourceError, match="header must begin lac_tag"):
        read_table(path, ("lac_tag", "entity_label", "ud_pos"), header=True)
