"""Rule data: reading, checking and loading ``rules/``, and the evaluator that explains it."""
