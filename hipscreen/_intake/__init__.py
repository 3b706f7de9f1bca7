"""The intake: how untrusted input becomes an `IntakeForm` (``form``), read by the one strict JSON
reader (``strictjson``), held to the form bounds (``bounds``), with given labels coerced to typed
values (``coerce``) and validation errors translated into field problems (``problems``)."""
