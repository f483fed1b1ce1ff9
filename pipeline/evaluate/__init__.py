"""Scores against gold sets: NER (`ner`), relations (`relations`, with the calibration of rule
confidences), page cleaning (`pages`), and the shared precision/recall/F1 (`scores`).

May import: every package but `cli`.
"""
