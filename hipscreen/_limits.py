"""The bounds on what hipscreen accepts: rule files, the engine network they compile to, and forms.

Every limit is a named constant here, with the reason for its value; docs/writing-rules.md and
docs/limitations.md list them. Each is far above what real rule sets and forms use (the built-in
figures are in the comments) and far below what breaks the C engine or exhausts memory.
"""

from __future__ import annotations

from typing import Final

# -- rule files (checked while loading, before anything reaches the engine) -----------------------

MAX_RULE_FILE_BYTES: Final = 524_288
"""Size of one YAML file (512 KiB). The largest built-in file is 11 KB; 500 long rules fit."""

MAX_RULE_DATA_BYTES: Final = 2_097_152
"""All the YAML files of one rule set together (2 MiB; built-in: 40 KB): bounds the time to load
and check (YAML parses at roughly 0.2–1 MB/s)."""

MAX_RULE_FILES: Final = 200
"""``findings/*.yaml`` files across the base and extra directories (built-in: 4)."""

MAX_YAML_DEPTH: Final = 32
"""Nesting of YAML collections (built-in: 11). The YAML composer recurses once per level."""

# YAML anchors and aliases (``&a`` / ``*a``) are refused outright: a 526-byte file of nested
# aliases expands to billions of nodes ("billion laughs"), and rule files never need them.

MAX_RULES: Final = 500
"""Rules in one rule set, base and extra together (built-in: 38)."""

MAX_ALTERNATIVES: Final = 32
"""Alternatives of one condition (or escalation) once ``any_of`` inside ``all_of`` is multiplied
out (disjunctive normal form; built-in: 4). Each alternative is an engine rule; 24 ``any_of``
pairs inside one ``all_of`` would be 16.7 million of them."""

MAX_PATTERNS_PER_ALTERNATIVE: Final = 6
"""Atoms one alternative joins (built-in: 3). Each is a fact pattern the engine joins on."""

MAX_CHAIN_DEPTH: Final = 16
"""Longest chain of findings resting on findings (built-in: 3)."""

MAX_COMBINATIONS_PER_RULE: Final = 4_096
"""Worst-case fact combinations one condition can match in a full form (per alternative, the
product of how many facts each atom can match, summed over alternatives; built-in: 16). The
engine fires once per combination: an ``all_of`` of five identical grade atoms naming no muscle
is 16⁵ ≈ 1 million firings (12 s and 300 MB per assessment)."""

MAX_COMBINATIONS_PER_FORM: Final = 20_000
"""The same, summed over every condition of the rule set (built-in: 203): bounds the time and
memory of one assessment of a full form (about 20 µs per firing: 0.4 s at the very worst)."""

MAX_NUMBER_MAGNITUDE: Final = 1_000_000
"""Largest absolute threshold or number in a condition. Form values stay within ±2,000."""

MAX_THRESHOLD_DECIMALS: Final = 3
"""Decimal places of a threshold. With at most three, the engine's number encoding is exact for
every comparison (see ``hipscreen._engine.engine_number``)."""

# -- the compiled engine network (durable_rules 2.0.28's fixed-size tables, src/rules/rete.c) ----

MAX_ENGINE_RULES: Final = 2_000
"""Engine rules (alternatives of every rule and escalation; built-in: 54). The C engine stops at
4,096 actions (error 106)."""

MAX_ALPHA_BRANCHES: Final = 256
"""Distinct tests following one test in the engine's alpha network (built-in: 47). The C table
has 512 slots and a lookup in a full table never ends: 504 chained rules hang the compile."""

MAX_OR_LINKS: Final = 64
"""``$or`` patterns sharing one alpha test (built-in: 6); the C list holds 128 and is then read
past its end."""

MAX_PATTERNS_PER_TEST: Final = 128
"""Rule patterns ending on the same alpha test (built-in: 5); the C list holds 256 and is then
read past its end."""

MAX_PATTERN_EXPRESSIONS: Final = 31
"""Expression entries of one fact pattern (two per ``$and``/``$or`` group; built-in: 12); the C
engine refuses 32 (error 113). Merged ``any_of`` patterns are split to stay within."""

# -- intake forms (checked before validation, for mappings and JSON documents alike) -------------

MAX_FORM_BYTES: Final = 1_048_576
"""Size of a JSON form (1 MiB). A complete form is under 2 KB."""

MAX_FORM_DEPTH: Final = 8
"""Nesting of mappings and lists in a form (the deepest field, ``thomas_test.hip_angle.left``,
is 3 levels down)."""

MAX_FORM_ITEMS: Final = 100
"""Items in one list or mapping of a form (there are 47 symptoms and 8 muscles)."""

MAX_FORM_STRING: Final = 200
"""Characters in one string or key of a form (``client_id`` allows 200; names are shorter)."""

MAX_FORM_INT_DIGITS: Final = 20
"""Digits of an integer in a form: no field takes more than 4, and Python refuses to convert
integers over 4,300 digits to text (``ValueError``)."""
