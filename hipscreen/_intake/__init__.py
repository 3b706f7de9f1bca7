"""The intake: the typed form and the strict JSON reader."""
