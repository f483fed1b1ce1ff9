"""Tokenizers chosen in config (LAC words, characters, spacy-pkuseg) and HanLP as an NER backend.

The HanLP tests train a tiny HanLP model here (HanLP 2.1's own `RNNNamedEntityRecognizer` on
character/IOBES-tag files written from the sentences below, MSRA-style NR/NS/NT labels), then run
the real loading and tagging code through `build_nlp(ner="hanlp")` and `tifa evaluate --ner
hanlp`. They skip when the `hanlp` extra is not installed. The pkuseg tests use the model
`tifa fetch-pkuseg` puts in models/pkuseg and skip when it is absent; the fetch itself (a 48.8 MB
download) runs only with TIFA_TEST_FETCH_PKUSEG=1.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.nlp.build import DEFAULT_NER_MODEL, annotate, build_nlp, tokenizer_config
from pipeline.nlp.config import DEFAULT_PKUSEG_MODEL

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "raw"
LABELS = {"PERSON", "ORG", "GPE", "LOC", "DATE", "WORK_OF_ART", "POSITION", "MEETING", "DOCUMENT"}

# Real sentences of the genre (the bundled sample plus hand-written ones), one with layout
# whitespace between sentences.
TEXTS = [
    (SAMPLES / "hubei_meeting_news.txt").read_text(encoding="utf-8").split("\n\n", 1)[1][:600],
    "国务院总理李强出席联合国大会并发表讲话。  湖北省人民政府地方志办公室主任罗文斌参加。",
    "中共中央办公厅印发《关于加强新时代党史工作的意见》。\n2024年5月，上海市市长龚正到浦东新区调研。",
]

# Annotated sentences for the tiny HanLP model and the gold file: [mention](LABEL).
HANLP_SENTENCES = [
    "[习近平](NR)在[北京](NS)会见[联合国](NT)秘书长[古特雷斯](NR)。",
    "[湖北省委](NT)书记[王蒙徽](NR)主持召开会议。",
    "[李强](NR)出席[国务院](NT)常务会议并讲话。",
    "[上海市](NS)市长[龚正](NR)到[浦东新区](NS)调研。",
    "[湖北省人民政府](NT)副省长[周亚楠](NR)参加会议。",
    "[陈向东](NR)在[武汉](NS)出席调度会。",
    "[中共中央办公厅](NT)印发通知。",
    "[国家统计局](NT)局长[康义](NR)介绍[江苏省](NS)经济运行情况。",
    "[梁景辉](NR)代表[湖北省委办公厅](NT)发言。",
    "代表团访问了[日本](NS)和[韩国](NS)。",
    "[王毅](NR)同[俄罗斯](NS)外长[拉夫罗夫](NR)通电话。",
    "[长江](NS)流域生态保护取得新进展。",
]
HANLP_LABEL_OF = {"NR": "PERSON", "NS": "LOC", "NT": "ORG"}


def parse_markup(sentence: str) -> tuple[str, list[tuple[int, int, str]]]:
    """`[text](LABEL)` markup -> (plain sentence, character spans)."""
    text, spans = "", []
    for m in re.finditer(r"\[([^\]]+)\]\((\w+)\)|(.)", sentence):
        if m.group(3):
            text += m.group(3)
            continue
        spans.append((len(text), len(text) + len(m.group(1)), m.group(2)))
        text += m.group(1)
    return text, spans


def char_tags(sentence: str, scheme: str) -> list[tuple[str, str]]:
    """(character, tag) pairs; `scheme` "IOBES" (HanLP training) or "BMES" (MSRA gold)."""
    text, spans = parse_markup(sentence)
    tags = ["O"] * len(text)
    inside = "I" if scheme == "IOBES" else "M"
    for s, e, label in spans:
        if e - s == 1:
            tags[s] = f"S-{label}"
            continue
        tags[s] = f"B-{label}"
        for i in range(s + 1, e - 1):
            tags[i] = f"{inside}-{label}"
        tags[e - 1] = f"E-{label}"
    return list(zip(text, tags, strict=True))


def write_tagged(path: Path, sentences: list[str], scheme: str, repeat: int = 1) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for _ in range(repeat):
            for sentence in sentences:
                fh.write("".join(f"{c}\t{t}\n" for c, t in char_tags(sentence, scheme)) + "\n")
    return path


def check_entities(doc) -> None:
    text = doc.text
    for ent in doc.ents:
        assert 0 <= ent.start_char < ent.end_char <= len(text)
        assert text[ent.start_char : ent.end_char] == ent.text
        assert ent.text.strip() == ent.text and ent.text
        assert ent.label_ in LABELS, (ent.text, ent.label_)


def sentence_spans(doc) -> list[tuple[int, int]]:
    out = []
    for sent in doc.sents:
        stripped = sent.text.strip()
        if stripped:
            start = sent.start_char + len(sent.text) - len(sent.text.lstrip())
            out.append((start, start + len(stripped)))
    return out


# ---------------------------------------------------------------------------------------------
# Tokenizers


@pytest.fixture(scope="module")
def lac_docs():
    return list(annotate(build_nlp(ner="lac"), TEXTS))


def test_tokenizer_config_names():
    assert tokenizer_config("lac")["@tokenizers"] == "tifa.LACTokenizer.v1"
    assert tokenizer_config("char") == {
        "@tokenizers": "spacy.zh.ChineseTokenizer",
        "segmenter": "char",
    }
    assert tokenizer_config("pkuseg")["segmenter"] == "pkuseg"
    with pytest.raises(ValueError, match="unknown tokenizer"):
        tokenizer_config("jieba")


def test_char_tokenizer_pipeline(lac_docs):
    nlp = build_nlp(tokenizer="char", ner="lac")
    assert nlp.pipe_names[0] == "tifa_sentences"
    assert nlp.config["nlp"]["tokenizer"]["segmenter"] == "char"
    docs = list(annotate(nlp, TEXTS))
    for text, doc, lac_doc in zip(TEXTS, docs, lac_docs, strict=True):
        assert doc.text == text
        assert all(len(t) == 1 for t in doc if not t.is_space)
        # Same sentences as the LAC tokenizer, LAC's tags on the characters of each word.
        assert sentence_spans(doc) == sentence_spans(lac_doc)
        assert all(t.tag_ for t in doc if not t.is_space)
        check_entities(doc)
        # LAC's analysis is the same whatever the tokens: names, bodies and places agree.
        names = {(e.start_char, e.end_char, e.label_) for e in doc.ents if e.label_ == "PERSON"}
        lac_names = {
            (e.start_char, e.end_char, e.label_) for e in lac_doc.ents if e.label_ == "PERSON"
        }
        assert names == lac_names
    found = {(e.text, e.label_) for d in docs for e in d.ents}
    assert {
        ("李强", "PERSON"),
        ("罗文斌", "PERSON"),
        ("上海市", "GPE"),
        ("陈向东", "PERSON"),
    } <= found
    assert ("《关于加强新时代党史工作的意见》", "DOCUMENT") in found


@pytest.mark.skipif(
    not (DEFAULT_NER_MODEL / "tifa_ner").is_dir()
    and not (DEFAULT_NER_MODEL / "model.crfsuite").exists(),
    reason="no trained NER model in models/tifa_ner (run `tifa train ner`)",
)
def test_char_tokenizer_with_trained_ner():
    # tifa_ner reads LAC's analysis the tifa_sentences component stored: no second LAC pass.
    docs = list(annotate(build_nlp(tokenizer="char", ner="model"), TEXTS))
    for doc in docs:
        check_entities(doc)
    assert {"PERSON", "ORG"} <= {e.label_ for d in docs for e in d.ents}


def pkuseg_model_or_skip() -> Path:
    """The pkuseg model in models/pkuseg; a fresh checkout (as in CI) fetches it once with the
    real `tifa fetch-pkuseg` (pip from the package registry), so the pkuseg tokenizer is tested
    everywhere. Skips only when the fetch cannot reach the registry (TIFA_OFFLINE=1 skips it)."""
    if not (DEFAULT_PKUSEG_MODEL / "weights.npz").exists():
        if os.environ.get("TIFA_OFFLINE") == "1":
            pytest.skip(f"no pkuseg model in {DEFAULT_PKUSEG_MODEL} and TIFA_OFFLINE=1")
        result = CliRunner().invoke(app, ["fetch-pkuseg", "--dest", str(DEFAULT_PKUSEG_MODEL)])
        if result.exit_code != 0:
            pytest.skip(f"`tifa fetch-pkuseg` failed (no registry?): {result.output[-300:]}")
    return DEFAULT_PKUSEG_MODEL


@pytest.fixture(scope="module")
def pkuseg_nlp():
    pkuseg_model_or_skip()
    return build_nlp(tokenizer="pkuseg", ner="lac")


def test_pkuseg_tokenizer_pipeline(pkuseg_nlp, lac_docs):
    assert pkuseg_nlp.config["nlp"]["tokenizer"]["segmenter"] == "pkuseg"
    docs = list(annotate(pkuseg_nlp, TEXTS))
    for text, doc, lac_doc in zip(TEXTS, docs, lac_docs, strict=True):
        assert doc.text == text
        assert sentence_spans(doc) == sentence_spans(lac_doc)
        check_entities(doc)
    words = [t.text for d in docs for t in d if not t.is_space]
    # pkuseg words, not characters: most multi-character, and not LAC's segmentation.
    assert sum(len(w) > 1 for w in words) > len(words) / 3
    assert {"调研", "印发", "地方志", "办公室"} <= set(words)
    found = {(e.text, e.label_) for d in docs for e in d.ents}
    assert {("李强", "PERSON"), ("罗文斌", "PERSON"), ("上海市", "GPE")} <= found


def test_pkuseg_whole_batch_runs(pkuseg_nlp, monkeypatch):
    """Domain spans, relations, every table from Docs with pkuseg tokens: rows, no errors."""
    from pipeline.core.document import Document
    from pipeline.nlp import build as nlp_module
    from pipeline.run.batch import RunContext, process_batch
    from pipeline.run.config import RunConfig

    # The stage builds its pipeline through get_nlp; hand it this module's instead of loading
    # the pkuseg model a second time.
    monkeypatch.setattr(nlp_module, "build_nlp", lambda *a, **k: pkuseg_nlp)
    nlp_module.get_nlp.cache_clear()
    docs = [
        Document(doc_id=f"d{i}", source_file="test", raw_text=text) for i, text in enumerate(TEXTS)
    ]
    try:
        config = RunConfig.of(ner="lac", tokenizer="pkuseg")
        result = process_batch(docs, config, RunContext())
    finally:
        nlp_module.get_nlp.cache_clear()
    assert result.n_documents == len(TEXTS), result.rows.get("errors")
    assert not result.rows.get("errors")
    ents = result.rows["entities"]
    texts = {d.doc_id: d.text for d in docs}
    assert all(texts[r["doc_id"]][r["start"] : r["end"]] == r["text"] for r in ents)
    assert any(r["relation"] == "holds_position" for r in result.rows.get("relations", []))


def test_pkuseg_missing_model_says_how_to_fetch(tmp_path):
    with pytest.raises(FileNotFoundError, match="tifa fetch-pkuseg"):
        build_nlp(tokenizer="pkuseg", pkuseg_model=tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(SAMPLES),
            "--out",
            str(tmp_path / "out"),
            "--tokenizer",
            "pkuseg",
            "--pkuseg-model",
            str(tmp_path),
            "-q",
        ],
    )
    assert result.exit_code == 2
    assert "fetch-pkuseg" in result.output


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("TIFA_TEST_FETCH_PKUSEG") != "1",
    reason="downloads the 48.8 MB pkuseg sdist; set TIFA_TEST_FETCH_PKUSEG=1 to run",
)
def test_fetch_pkuseg_command(tmp_path):
    dest = tmp_path / "pkuseg"
    result = CliRunner().invoke(app, ["fetch-pkuseg", "--dest", str(dest)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in dest.iterdir()) == ["features.msgpack", "weights.npz"]
    doc = build_nlp(tokenizer="pkuseg", pkuseg_model=dest, ner="lac")(
        "上海市市长龚正到浦东新区调研。"
    )
    assert {"上海市", "市长", "调研"} <= {t.text for t in doc}


def test_run_cli_char_tokenizer(tmp_path):

    import pandas as pd

    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["run", str(SAMPLES), "--out", str(out), "--tokenizer", "char", "--ner", "lac", "-q"]
    )
    assert result.exit_code == 0, result.output
    docs = pd.read_parquet(out / "documents").set_index("doc_id")["text"]
    assert len(docs) >= 10
    errors = pd.read_parquet(out / "errors") if (out / "errors").exists() else pd.DataFrame()
    # Only the deliberately broken sample fails.
    assert list(errors.source_file.map(lambda f: Path(f).name)) == [
        "broken_truncated_scrape.jsonl"
    ], errors.to_dict("records")
    for table in ("entities", "sentences", "relations"):
        rows = pd.read_parquet(out / table)
        assert len(rows), table
        for r in rows.itertuples():
            text = r.text if table != "relations" else None
            if text is not None:
                assert docs[r.doc_id][r.start : r.end] == text
    ents = pd.read_parquet(out / "entities")
    assert set(ents.label) <= LABELS
    assert {"PERSON", "ORG", "GPE", "POSITION", "MEETING"} <= set(ents.label)


# ---------------------------------------------------------------------------------------------
# HanLP


def test_hanlp_label_mapping():
    from pipeline.nlp.hanlp import map_label

    assert [map_label(x) for x in ("NR", "PER", "PERSON", "nr")] == ["PERSON"] * 4
    assert [map_label(x) for x in ("NT", "ORG")] == ["ORG"] * 2
    assert [map_label(x) for x in ("NS", "LOC", "GPE")] == ["LOC"] * 3
    assert map_label("DATE") is None and map_label("O") is None


def test_hanlp_refuses_a_path_that_is_not_a_model_folder(tmp_path):
    # Never handed to hanlp.load, which would read a name or URL as something to download.
    with pytest.raises(FileNotFoundError, match="never downloads"):
        build_nlp(ner="hanlp", ner_model=tmp_path / "MSRA_NER_ELECTRA_SMALL_ZH")
    with pytest.raises(FileNotFoundError, match="config.json"):
        build_nlp(ner="hanlp", ner_model=tmp_path)


@pytest.fixture(scope="module")
def hanlp_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny HanLP NER model trained here with HanLP's own trainer (CPU, one thread)."""
    pytest.importorskip(
        "hanlp", reason="the hanlp extra is not installed (pip install -e '.[hanlp]')"
    )
    import torch
    from hanlp.components.ner.rnn_ner import RNNNamedEntityRecognizer
    from hanlp.components.taggers.rnn import rnntaggingmodel
    from hanlp.layers.crf.crf import CRF

    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp("hanlp")
    train = write_tagged(work / "train.tsv", HANLP_SENTENCES, "IOBES", repeat=25)
    dev = write_tagged(work / "dev.tsv", HANLP_SENTENCES, "IOBES")
    save_dir = work / "model"
    t0 = time.perf_counter()
    # HanLP 2.1 builds this tagger's CRF with batch_first=None (see ner_hanlp._fix_crf_orientation);
    # train with the orientation its tensors have. The saved model is HanLP's stock class.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rnntaggingmodel, "CRF", lambda n, _constraints=None: CRF(n, batch_first=True))
        RNNNamedEntityRecognizer().fit(
            str(train),
            str(dev),
            str(save_dir),
            epochs=2,
            embed=32,
            rnn_hidden=64,
            batch_size=16,
            lr=0.01,
            tagging_scheme="IOBES",
            devices=-1,
            seed=1,
            verbose=False,
        )
    assert time.perf_counter() - t0 < 60
    assert (save_dir / "config.json").exists()
    return save_dir


def test_hanlp_backend_tags_with_a_model_from_disk(hanlp_model):
    nlp = build_nlp(ner="hanlp", ner_model=hanlp_model)
    assert nlp.pipe_names == ["tifa_hanlp_ner", "tifa_domain_spans"]
    sentences = [parse_markup(s) for s in HANLP_SENTENCES]
    docs = list(annotate(nlp, [t for t, _ in sentences]))
    hit = total = 0
    for (text, gold), doc in zip(sentences, docs, strict=True):
        assert doc.text == text
        check_entities(doc)
        found = {
            (e.start_char, e.end_char, "LOC" if e.label_ == "GPE" else e.label_) for e in doc.ents
        }
        gold_spans = {(s, e, HANLP_LABEL_OF[lab]) for s, e, lab in gold}
        hit += len(found & gold_spans)
        total += len(gold_spans)
    # The model has seen these sentences: it gives most entities back, with tifa's labels.
    assert hit / total >= 0.7, (hit, total)
    labels = {(e.text, e.label_) for d in docs for e in d.ents}
    assert ("习近平", "PERSON") in labels
    # NS -> LOC, refined to GPE for administrative divisions and states, LOC otherwise.
    assert ("上海市", "GPE") in labels or ("俄罗斯", "GPE") in labels
    assert not {lab for _, lab in labels} - LABELS


def test_hanlp_invalid_tag_sequence_costs_one_sentence(monkeypatch):
    """HanLP's IOBES decoder raises on an invalid sequence; only that sentence loses entities."""
    from pipeline.nlp import hanlp as ner_hanlp

    class InvalidTagSequence(Exception):  # HanLP's exception, matched by name
        pass

    def fake_model(batch):
        if any("坏" in "".join(tokens) for tokens in batch):
            raise InvalidTagSequence("B-NR B-NS")
        return [[("".join(t[:2]), "NR", 0, 2)] for t in batch]

    monkeypatch.setattr(ner_hanlp, "load_hanlp_model", lambda *_args: fake_model)
    tagger = ner_hanlp.HanLPEntityTagger.__new__(ner_hanlp.HanLPEntityTagger)
    tagger.model_path, tagger.n_failed_sentences = "unused", 0
    spans = tagger.predict(["王明 说好", "坏句子", "", "李华来了"])
    assert spans == [[(0, 2, "PERSON")], [], [], [(0, 2, "PERSON")]]
    assert tagger.n_failed_sentences == 1
    # Whitespace is left out of what HanLP sees and mapped back: "王 明" is characters 0..3.
    assert tagger.predict(["王 明来了"]) == [[(0, 3, "PERSON")]]


def test_hanlp_backend_on_other_tokens_and_whitespace(hanlp_model):
    """Characters as tokens, whitespace inside a sentence, LAC's DATE kept."""
    nlp = build_nlp(tokenizer="char", ner="hanlp", ner_model=hanlp_model)
    plain, _ = parse_markup(
        "2024年5月，[李强](NR) 出席 [国务院](NT)常务会议并讲话。\n\n"
        "[上海市](NS)市长[龚正](NR)到[浦东新区](NS)调研。"
    )
    doc = next(annotate(nlp, [plain]))
    assert doc.text == plain
    check_entities(doc)
    labels = {(e.text, e.label_) for e in doc.ents}
    assert ("2024年5月", "DATE") in labels
    assert {e.label_ for e in doc.ents} & {"PERSON", "ORG", "GPE", "LOC"}


def test_evaluate_cli_with_hanlp(hanlp_model, tmp_path):
    import json

    gold = write_tagged(tmp_path / "gold.bmes", HANLP_SENTENCES, "BMES")
    gold.write_text(
        gold.read_text("utf-8")
        .replace("-NR", "-PER")
        .replace("-NS", "-LOC")
        .replace("-NT", "-ORG")
        .replace("\t", " "),
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--gold",
            str(gold),
            "--format",
            "bmes",
            "--ner",
            "hanlp",
            "--ner-model",
            str(hanlp_model),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["ner"] == "hanlp"
    assert report["n_sentences"] == len(HANLP_SENTENCES)
    assert report["micro_f1"] >= 0.6
    assert set(report["per_label"]) == {"PERSON", "ORG", "LOC"}
