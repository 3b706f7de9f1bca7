"""Standard instruments (pain NRS, PSFS, HOOS JR, LEFS, STarT Back, PAR-Q+) as scored inputs.

Each instrument is data (``rules/instruments/<id>.yaml``, validated by `InstrumentSpec`); the
form's ``instruments`` block is checked against it (`InstrumentsBlock`) and scored
(`score_items`, `score_given`) into `InstrumentScore` results that rules read as facts.
"""
