"""The trained NER component (`tifa_ner`): a character CRF over LAC's analysis.

LAC segments and tags well but labels entities by its own convention and misses many
organisation and place boundaries (micro-F1 0.72 on MSRA-style gold). The CRF sees, for every
character, the characters around it and what LAC says about the word it sits in (see
`ner_features.py`), and was trained on MSRA / People's Daily gold (`tifa train ner`, model card
in `models/README.md`). It predicts PERSON, ORG and LOC (LOC is refined to GPE for
administrative divisions, as for LAC); LAC's DATE and WORK_OF_ART entities are kept where they do
not overlap a model entity. POSITION/MEETING/DOCUMENT stay with the data-file rules of
`tifa_domain_spans`, which runs after this component and wins over overlapping entities.

With the LAC tokenizer the words and tags LAC produced are read from `doc.user_data`, so LAC
runs once per sentence. With any other tokenizer (characters, pkuseg) the component runs LAC
itself on the document's sentences to get its features.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ahocorasick_rs import AhoCorasick, MatchKind
from spacy.tokens import Doc

from pipeline.core.resources import RESOURCES, load_yaml, read_lines
from pipeline.nlp.crf_inference import CompiledCRF, decode_bioes
from pipeline.nlp.docs import (
    LAC_USER_DATA,
    NER_DONE_USER_DATA,
    BatchedComponent,
    lac_analysis,
    set_model_entities,
)
from pipeline.nlp.known_persons import closed_edges, forced_persons, ordinary_word
from pipeline.nlp.labels import MODEL_LABELS

MODEL_FILE = "model.crfsuite"


# The same weights as arrays for `crf_inference` (compiling them from the crfsuite dump takes
# seconds per process; loading this file a fraction of that).
COMPILED_FILE = "compiled.npz"


CONFIG_FILE = "cfg.json"


# Counts of the characters of person names in the training data (`train_ner.name_character_counts`).
NAME_CHARACTERS_FILE = "name_characters.json"


@dataclass(frozen=True)
class _PersonContext:
    heads: Any
    heads_inside: Any
    common_word_tags: frozenset[str]
    gap_tags: frozenset[str]
    max_gap: int
    person_after: Any
    credit_after: Any
    idioms: Any
    min_probability: float
    min_probability_unseen: float


@functools.cache
def _person_context() -> _PersonContext:
    import regex

    rules = load_yaml(RESOURCES / "person_rules.yaml")
    heads = rules["doctrine_heads"]
    return _PersonContext(
        heads=regex.compile(f"^(?:{heads})"),
        heads_inside=regex.compile(heads),
        common_word_tags=frozenset(rules["common_word_tags"]),
        gap_tags=frozenset(rules["doctrine_gap_tags"]),
        max_gap=int(rules["doctrine_max_gap"]),
        person_after=regex.compile(rules["person_after_name"]),
        credit_after=regex.compile(rules["credit_after_name"]),
        idioms=AhoCorasick(
            [line.strip() for line in read_lines("idioms.txt")],
            matchkind=MatchKind.Standard,
        ),
        min_probability=float(rules["person_min_probability"]),
        min_probability_unseen=float(rules["person_min_probability_unseen_characters"]),
    )


@functools.cache
def person_titles() -> tuple[str, ...]:
    """Titles a person is named with (positions.txt and persons.yaml's extra titles), longest
    first."""

    titles = {ln.strip() for ln in read_lines("positions.txt")}
    extra = load_yaml(RESOURCES / "persons.yaml")
    titles |= set(extra["extra_titles"])
    return tuple(sorted(titles, key=len, reverse=True))


def titled(sentence: str, start: int, end: int) -> bool:
    """The name [start, end) is written with a title right before (主席 习近平) or after
    (吴邦国委员长, 李强同志): the text itself says it is a person."""
    before = sentence[max(0, start - 12) : start].rstrip()
    after = sentence[end : end + 12].lstrip()
    titles = person_titles()
    return after.startswith("同志") or before.endswith(titles) or after.startswith(titles)


def trimmed_span(sentence: str, start: int, end: int, label: str) -> tuple[int, int, str] | None:
    """The span without the layout whitespace a sentence running over a line break puts at its
    edges ("，\n沙千里") and without a bracket it does not close or open ("翁浩浩）"): LAC and
    the model both may take them in."""
    # A bracket the span does not close cuts it: keep the side that is all inside or outside.
    open_at: list[int] = []
    for i in range(start, end):
        c = sentence[i]
        if c in _OPENERS:
            open_at.append(i)
        elif c in _CLOSERS:
            if open_at and _CLOSER_OF[sentence[open_at[-1]]] == c:
                open_at.pop()
            else:
                start, open_at = i + 1, []
    if open_at:
        end = open_at[0]
    while start < end and sentence[start].isspace():
        start += 1
    while end > start and sentence[end - 1].isspace():
        end -= 1
    return (start, end, label) if end > start else None


_BRACKETS = ["（）", "()", "“”", "「」", "『』", "【】", "《》"]


_OPENERS = frozenset(b[0] for b in _BRACKETS)


_CLOSERS = frozenset(b[1] for b in _BRACKETS)


_CLOSER_OF = {b[0]: b[1] for b in _BRACKETS}


_CLAUSE_END = "，。；：！？,;:!?\n"


def _supported(
    sentence: str,
    spans: Sequence[tuple[int, int, str]],
    at: int,
    unsure_in_sentence: set[int],
    confident_in_document: set[str],
) -> bool:
    """Evidence that the doubtful PERSON `spans[at]` names a person: its document names the same
    string as a person with confidence; a title stands next to it (主席 习近平, 吴邦国委员长) or
    follows its 为/兼 (沙千里为粮食部部长); or
    it is an item of a 、-list whose other items include a person the model is sure of or that
    carries a title (副委员长王晨、曹建明、张春贤…)."""
    start, end, _ = spans[at]
    if (
        sentence[start:end] in confident_in_document
        or titled(sentence, start, end)
        or appointed(sentence, start, end)
    ):
        return True
    if not _list_item(sentence, start, end):
        return False
    clause_start = max(sentence.rfind(c, 0, start) for c in _CLAUSE_END) + 1
    clause_end = min(
        (i for i in (sentence.find(c, end) for c in _CLAUSE_END) if i >= 0), default=len(sentence)
    )
    return any(
        i != at
        and label == "PERSON"
        and clause_start <= s
        and e <= clause_end
        and _list_item(sentence, s, e)
        and (i not in unsure_in_sentence or titled(sentence, s, e))
        for i, (s, e, label) in enumerate(spans)
    )


def _list_item(sentence: str, start: int, end: int) -> bool:
    return sentence[end : end + 1] == "、" or sentence[start - 1 : start] == "、"


@functools.cache
def _appointed_as() -> Any:
    import regex

    titles = "|".join(map(regex.escape, person_titles()))
    return regex.compile(rf"(?:为|兼任?|担任)[^，。；,;\n]{{0,20}}?(?:{titles})")


def appointed(sentence: str, start: int, end: int) -> bool:
    """The name [start, end) is made something: "沙千里为粮食部部长", "陈毅兼外交部部长"."""
    return _appointed_as().match(sentence, end) is not None


def _inside_common_word(
    words: Sequence[tuple[str, str]], start: int, end: int, tags: frozenset[str]
) -> bool:
    pos = 0
    for word, tag in words:
        word_start, pos = pos, pos + len(word)
        if word_start <= start and end <= pos:
            return (word_start, pos) != (start, end) and tag in tags
    return False


def not_a_person(sentence: str, words: Sequence[tuple[str, str]], start: int, end: int) -> bool:
    """The PERSON span [start, end) of `sentence` is a piece of an idiom or an ordinary word, a
    doctrine or a photo credit, not a person. `words` is LAC's analysis of the sentence (its tags
    judge the words between a name and a doctrine head)."""
    rules = _person_context()
    after = sentence[end : end + 16]
    if rules.credit_after.match(after):
        return True
    if end - start == 1 and _inside_common_word(words, start, end, rules.common_word_tags):
        return True  # 马|列 in 马列 (a noun): a character of a word, not a surname
    window_start = max(0, start - 8)
    for _, a, b in rules.idioms.find_matches_as_indexes(
        sentence[window_start : end + 8], overlapping=True
    ):
        a, b = a + window_start, b + window_start
        if a <= start and end <= b and (a, b) != (start, end):
            return True
    if rules.person_after.match(after) or not after:
        return False
    gap = 0
    pos = 0
    for word, tag in words:
        word_start, pos = pos, pos + len(word)
        if pos <= end:
            continue
        piece = word[max(0, end - word_start) :]  # the model may end a name inside a LAC word
        if rules.heads.match(piece):
            return True
        gap += len(piece)
        if tag not in rules.gap_tags or gap > rules.max_gap:
            return False
        if rules.heads_inside.search(piece):  # 中国特色社会主义(思想), 列宁主义者: doctrine words
            return True
    return False


@functools.cache
def _place_body_heads() -> Any:
    import regex

    rules = load_yaml(RESOURCES / "ner_rules.yaml")
    heads = sorted(rules["place_body_heads"], key=len, reverse=True)
    return regex.compile("|".join(map(regex.escape, heads)))


def _with_body_head(
    sentence: str,
    span: tuple[int, int, str],
    heads: Any,
    spans: list[tuple[int, int, str]],
    word_ends: set[int],
) -> tuple[int, int, str]:
    """LOC + a body head right after it (武汉市|委, 广东省|政协) → one ORG, when the head ends
    where a LAC word ends (not 中国|委内瑞拉) and no other entity starts inside it."""
    start, end, label = span
    if label != "LOC":
        return span
    match = heads.match(sentence, end)
    if (
        match is None
        or match.end() not in word_ends
        or any(end <= s < match.end() for s, _, _ in spans)
    ):
        return span
    return (start, match.end(), "ORG")


class CRFEntityTagger(BatchedComponent):
    """spaCy component: sets PERSON/ORG/LOC/GPE from the CRF, keeps LAC's DATE/WORK_OF_ART."""

    # Names said with confidence in the earlier chunks of a huge document (pipeline/run/huge.py):
    # evidence for a doubtful PERSON of a later chunk, as the rest of the text is in one piece;
    # names confident in each call are added. None outside chunked processing.
    carried_names: set[str] | None = None

    def __init__(
        self,
        vocab: Any,
        name: str = "tifa_ner",
        lac_runner: str = "batched",
        lac_threads: int | None = None,
    ):
        self.vocab = vocab
        self.name = name
        self.lac_runner = lac_runner
        self.lac_threads = lac_threads
        self.model_bytes: bytes | None = None
        self.cfg: dict[str, Any] = {}
        self.name_characters: dict[str, dict[str, int]] = {}
        self._crf: CompiledCRF | None = None

    # -- model ---------------------------------------------------------------------------------
    @property
    def crf(self) -> CompiledCRF:
        if self._crf is None:
            if self.model_bytes is None:
                raise RuntimeError(
                    "the tifa_ner component has no model: train one with `tifa train ner` "
                    "or load models/tifa_ner"
                )
            self._crf = CompiledCRF.from_crfsuite(self.model_bytes)
        return self._crf

    def set_model(
        self,
        model_bytes: bytes,
        cfg: dict[str, Any] | None = None,
        compiled: CompiledCRF | None = None,
    ) -> None:
        self.model_bytes = model_bytes
        self.cfg = dict(cfg or {})
        self._crf = compiled

    # -- tagging -------------------------------------------------------------------------------
    def predict(
        self,
        sentences: Sequence[str],
        analyses: Sequence[Sequence[tuple[str, str]]],
        documents: Sequence[int] | None = None,
    ) -> list[list[tuple[int, int, str]]]:
        """(start, end, label) character spans per sentence, labels PERSON/ORG/LOC.

        `documents` numbers the document of each sentence (default: each sentence its own).
        A PERSON the model is unsure of (its span probability below `person_min_probability`)
        is kept only with evidence from the text (`_supported`): ordinary words that look like
        names (陈兵 "mass troops", 林权 "forest rights", 陆海) are the model's doubtful calls and
        have none."""
        out = []
        tagged, probabilities = self.crf.tag_and_score(sentences, analyses, label="PERSON")
        heads = _place_body_heads()
        confident: dict[int, set[str]] = defaultdict(set)  # document -> sure names
        doubtful: list[tuple[int, int, int]] = []  # (sentence, span index, document)
        for k, (sentence, words, tags) in enumerate(zip(sentences, analyses, tagged, strict=True)):
            spans = []
            probability_of: dict[tuple[int, int], float] = {}
            tags, sure = self._with_name_constraints(sentence, words, tags, probabilities[k])
            for s, e, lab in decode_bioes(tags):
                span = trimmed_span(sentence, s, e, MODEL_LABELS[lab])
                if span is not None:
                    spans.append(span)
                    if (s, e) in sure:
                        probability_of[span[:2]] = sure[(s, e)]
                    elif (s, e) in probabilities[k]:
                        probability_of[span[:2]] = probabilities[k][(s, e)]
            if any(label == "LOC" for _, _, label in spans):
                ends = set(itertools.accumulate(len(w) for w, _ in words))
                spans = [_with_body_head(sentence, span, heads, spans, ends) for span in spans]
            spans = sorted(spans + self._lac_entities_with_evidence(sentence, words, spans))
            kept = []
            for s, e, label in spans:
                if label == "PERSON":
                    if not_a_person(sentence, words, s, e):
                        continue
                    doc = documents[k] if documents is not None else k
                    probability = probability_of.get((s, e), 0.0)  # 0: LAC's candidate
                    if probability >= self._required_probability(sentence[s:e]):
                        confident[doc].add(sentence[s:e])
                    else:
                        doubtful.append((k, len(kept), doc))
                kept.append((s, e, label))
            out.append(kept)
        carried = self.carried_names
        if carried is not None:
            for names in list(confident.values()):
                carried.update(names)
            for _, _, doc in doubtful:
                confident[doc] |= carried
        unsure: dict[int, set[int]] = defaultdict(set)  # sentence -> doubtful span indices
        for k, at, _ in doubtful:
            unsure[k].add(at)
        dropped = {
            (k, at)
            for k, at, doc in doubtful
            if not _supported(sentences[k], out[k], at, unsure[k], confident[doc])
        }
        if dropped:
            out = [
                [span for at, span in enumerate(spans) if (k, at) not in dropped]
                for k, spans in enumerate(out)
            ]
        return out

    def _with_name_constraints(
        self,
        sentence: str,
        words: Sequence[tuple[str, str]],
        tags: list[str],
        probabilities: dict[tuple[int, int], float],
    ) -> tuple[list[str], dict[tuple[int, int], float]]:
        """The sentence's tags decoded again under the name constraints of `known_persons`
        when the model's best path breaks one: a known person found where a person is seen must
        be exactly one PERSON, and a one-character conjunction or preposition opens or closes
        no PERSON the model is unsure of (和万春, 向兵: 和 and 向 are surnames too, and the
        model is sure of those). Returns the tags and the probabilities of the PERSON spans the
        constraints made (1.0 for a known person)."""
        spans = decode_bioes(tags)
        persons = [(s, e) for s, e, label in spans if label == "PERSON"]
        unsure = _person_context().min_probability
        sure = [span for span in persons if probabilities.get(span, 0.0) >= unsure]
        forced = forced_persons(sentence, words, spans, sure)
        if len(sure) == len(persons) and all(span in persons for span in forced):
            # Most sentences: every name is sure and no known name is split or extended. A
            # known name in a run of them is sure whatever the threshold for its characters.
            return tags, {
                (fs, fe): 1.0 for fs, fe in forced if any(e == fs or s == fe for s, e in forced)
            }
        covered = {i for s, e in forced for i in range(s, e)}
        closed = closed_edges(sentence, words) - covered

        # A known name the constraint makes out of a person the model saw (刘国|中 → 刘国中,
        # 蔡奇丁 → 蔡奇), or one of a run of known names, is sure, unless LAC reads it as (part
        # of) an ordinary word. Any other keeps the model's probability (0 for LAC's name only),
        # so that 汪洋 of 汪洋中的小木屋, LAC's PER, still needs the text's evidence.
        def made_sure(fs: int, fe: int) -> bool:
            in_run = any(e == fs or s == fe for s, e in forced)
            seen = (fs, fe) not in persons and any(s < fe and fs < e for s, e in persons)
            return (seen or in_run) and not ordinary_word(words, fs, fe)

        known = {span: 1.0 if made_sure(*span) else probabilities.get(span, 0.0) for span in forced}
        broken = any(span not in persons for span in forced) or any(
            (s in closed or e - 1 in closed) and probabilities.get((s, e), 0.0) < unsure
            for s, e in persons
            if (s, e) not in forced
        )
        if not broken:
            return tags, known
        pinned = [(s, e, "PERSON") for s, e in forced]
        # Only the edges of the unsure spans are closed: a sure name keeps its surname 和.
        sure_edges = {i for s, e in sure for i in (s, e - 1)}
        return self.crf.tag_constrained(sentence, words, pinned, closed - sure_edges), known

    def _lac_entities_with_evidence(
        self,
        sentence: str,
        words: Sequence[tuple[str, str]],
        spans: Sequence[tuple[int, int, str]],
    ) -> list[tuple[int, int, str]]:
        """Names and bodies LAC found where the model found nothing, when a title stands next to
        them: 栗战书 of "栗战书委员长" or of "常委李克强、栗战书、汪洋" (a rare surname the
        CRF passes over), 中央人民政府 of "中央人民政府主席". LAC's PERSON candidates then need
        the same evidence as the model's doubtful ones (`_supported`); they carry no probability,
        so they count as doubtful."""
        found: list[tuple[int, int, str]] = []
        titles = person_titles()
        pos = 0
        for word, tag in words:
            start, pos = pos, pos + len(word)
            if tag not in ("PER", "ORG") or any(s < pos and start < e for s, e, _ in spans):
                continue
            span = trimmed_span(sentence, start, pos, "PERSON" if tag == "PER" else "ORG")
            if span is None:
                continue
            if tag == "PER" or sentence.startswith(titles, span[1]):
                found.append(span)
        return found

    def _required_probability(self, name: str) -> float:
        """A Chinese-shaped name (2–3 characters) whose later characters never occur in any
        training name (苏修伙, 严私德, 王家坝) needs more confidence than one that looks like a
        name: the model has learnt to call such strings people only from LAC's PER tag."""
        rules = _person_context()
        given = self.name_characters.get("given")
        if (
            given
            and 2 <= len(name) <= 3
            and all("\u4e00" <= c <= "\u9fff" for c in name)
            and any(given.get(c, 0) == 0 for c in name[1:])
        ):
            return rules.min_probability_unseen
        return rules.min_probability

    def _pipe_batch(self, docs: list[Doc]) -> Iterator[Doc]:
        todo = [d for d in docs if not d.user_data.get(NER_DONE_USER_DATA)]
        if todo:
            self._tag_docs(todo)  # in place
        yield from docs

    def _tag_docs(self, docs: list[Doc]) -> None:
        missing = [d for d in docs if LAC_USER_DATA not in d.user_data]
        if missing:
            # One batched LAC call for every document the tokenizer did not analyse.
            for doc, analysis in zip(
                missing, self._run_lac([d.text for d in missing]), strict=True
            ):
                doc.user_data[LAC_USER_DATA] = analysis
        # One CRF call for every sentence of the batch.
        sentences: list[str] = []
        analyses: list[list[tuple[str, str]]] = []
        for doc in docs:
            for _start, words in doc.user_data[LAC_USER_DATA]:
                sentences.append("".join(w for w, _ in words))
                analyses.append(words)
        documents: list[int] = []
        for k, doc in enumerate(docs):
            documents += [k] * len(doc.user_data[LAC_USER_DATA])
        predicted = iter(self.predict(sentences, analyses, documents))
        for doc in docs:
            spans = []
            for start, _words in doc.user_data[LAC_USER_DATA]:
                spans += [(start + s, start + e, label) for s, e, label in next(predicted)]
            self._set_entities(doc, spans)

    def _run_lac(self, texts: list[str]) -> list[list[tuple[int, list[tuple[str, str]]]]]:
        return lac_analysis(texts, self.lac_runner, self.lac_threads)[1]

    def _set_entities(self, doc: Doc, spans: list[tuple[int, int, str]]) -> None:
        set_model_entities(doc, spans, source="model")

    # -- serialisation (spaCy's to_disk/from_disk protocol) -------------------------------------
    def to_disk(self, path: str | Path, exclude: Iterable[str] = ()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.model_bytes is not None:
            (path / MODEL_FILE).write_bytes(self.model_bytes)
            (path / COMPILED_FILE).write_bytes(self.crf.to_bytes())
        (path / CONFIG_FILE).write_text(
            json.dumps(self.cfg, ensure_ascii=False, indent=2, sort_keys=True), encoding="utf-8"
        )
        if self.name_characters:
            (path / NAME_CHARACTERS_FILE).write_text(
                json.dumps(self.name_characters, ensure_ascii=False, sort_keys=True),
                encoding="utf-8",
            )

    def from_disk(self, path: str | Path, exclude: Iterable[str] = ()) -> CRFEntityTagger:
        path = Path(path)
        model = path / MODEL_FILE
        if not model.exists():
            raise FileNotFoundError(f"no NER model at {model}: run `tifa train ner`")
        cfg_path = path / CONFIG_FILE
        cfg = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.exists() else {}
        compiled = path / COMPILED_FILE
        self.set_model(
            model.read_bytes(),
            cfg,
            CompiledCRF.from_bytes(compiled.read_bytes()) if compiled.exists() else None,
        )
        names = path / NAME_CHARACTERS_FILE
        self.name_characters = (
            json.loads(names.read_text(encoding="utf-8")) if names.exists() else {}
        )
        return self

    def to_bytes(self, exclude: Iterable[str] = ()) -> bytes:
        payload = {
            "cfg": self.cfg,
            "model": (self.model_bytes or b"").hex(),
            "name_characters": self.name_characters,
        }
        return json.dumps(payload).encode("utf-8")

    def from_bytes(self, data: bytes, exclude: Iterable[str] = ()) -> CRFEntityTagger:
        payload = json.loads(data)
        self.set_model(bytes.fromhex(payload["model"]), payload["cfg"])
        self.name_characters = payload.get("name_characters", {})
        return self
