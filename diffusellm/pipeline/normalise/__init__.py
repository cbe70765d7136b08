"""Phase 3, spec normalisation: a free-text issue becomes a validated `Spec`, or a question for its author
(`issue`). Rules for plainly stated refactors (`rules`), evidence in the wording (`cues`), ranking of
(change kind, target) options (`rank`), their parameters (`fill`), the model's draft path (`draft`, with
the schemas of `schema` and `names`) and its prompts. Takes the issue text, the localisation and the style;
hands on a `Spec`.
"""
