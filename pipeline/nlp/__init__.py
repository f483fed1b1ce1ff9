"""spaCy Docs from text: the LAC tokenizer (`lac_tokenizer`, `lac_runner`), the trained CRF NER
(`crf`, `crf_inference`, `crf_features`, trained by `train` on the corpora `corpora` reads;
known persons and name boundaries as decoder constraints: `known_persons`),
HanLP as another backend (`hanlp`), other segmenters (`segmenters`), POSITION/MEETING/DOCUMENT
spans (`domain_spans`), label mapping (`labels`), what components read from a Doc (`docs`:
the Doc extensions, declared once) and the pipeline built from one `NlpConfig` (`build`: every
component registration in one place).

For the NLP engineer. May import: `core`, `normalise`.
"""
