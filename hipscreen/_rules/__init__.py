"""Rule data: reading, checking and loading ``rules/``, and the evaluator that explains it.

One concept per module, lower ones first (a module imports only those above it):

- ``builtin``: where the built-in rules are.
- ``problems``: collecting every problem at once; ``safeyaml``: bounded, alias-free YAML reading.
- ``numbers``: what a number in rule data may be.
- ``atoms``: the parsed condition (``Atom``, ``AllOf``, ``AnyOf``); ``conditions``: the typed
  condition grammar that makes them from a rule's ``when``.
- ``tables``: the clinical tables (``rules/tables.yaml``).
- ``files``: the rule files' pydantic models; ``ruleset``: ``Rule`` and ``RuleSet``.
- ``bounds``: limits on condition sizes and chains; ``checks``: cross-checks over the files;
  ``safetynet``: the referral policy and the vocabulary's alarm classification.
- ``loader``: ``load_ruleset``, the steps above in order.
- ``formfacts``, ``evaluator``, ``explain``: the pure-Python evaluator of the rule data (its facts
  from the form, its evaluation) and the why / why-not explanations built on it.

Import from the submodules; this package re-exports nothing.
"""
