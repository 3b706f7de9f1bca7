"""asyncio support: screen a form in a worker thread so the event loop keeps running."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from concurrent.futures import Executor
from typing import Any

from hipscreen._intake.form import IntakeForm
from hipscreen._results import Assessment
from hipscreen._screen import Screener, default_screener

__all__ = ["assess_async"]


async def assess_async(
    form: IntakeForm | Mapping[str, Any] | str | bytes,
    *,
    screener: Screener | None = None,
    executor: Executor | None = None,
) -> Assessment:
    """Screen one intake form from asyncio code without blocking the event loop.

    The screening runs in ``executor`` (the loop's default thread pool when omitted); screeners
    are safe to call from many threads. Validation errors are raised here as from `assess`.

    Args:
        form: an `IntakeForm`, a mapping of the same shape, or a JSON document.
        screener: the `Screener` to use; the built-in rules when omitted.
        executor: a ``concurrent.futures`` executor (use a thread pool: a process pool would
            have to pickle the screener).

    Returns:
        The `Assessment`.

    Raises:
        InvalidFormError: the form breaks the input contract (a ``ValueError``).

    Examples:
        >>> import asyncio, hipscreen
        >>> result = asyncio.run(hipscreen.assess_async({"tightness": {"hip_flexors": 2}}))
        >>> result.finding_ids()[0]
        'tight-hip-flexors'
    """
    loop = asyncio.get_running_loop()
    # Resolve the default screener in the worker too: its first use compiles the rules.
    call = functools.partial(_assess, screener, form)
    return await loop.run_in_executor(executor, call)


def _assess(
    screener: Screener | None, form: IntakeForm | Mapping[str, Any] | str | bytes
) -> Assessment:
    return (screener or default_screener()).assess(form)
