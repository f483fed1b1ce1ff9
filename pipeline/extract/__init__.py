"""What the analyst's tables say, read off annotated Docs: formulations (`formulations`),
relations (`relations/`: one module per family of rules), one name per person (`persons`), and
the rows of every batch table for one document (`rows`).

For the rule writer: the rules themselves are data files in `pipeline/resources/`. May import:
`core`, `normalise`, `io` (schemas), `nlp`.
"""
