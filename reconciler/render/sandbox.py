"""The budget templates run within: time, output size, recursion, and the size of what one
expression may build.

A pull request controls the repository's templates/, and `render --check`, `plan` and `apply`
run them. Jinja's sandbox keeps them from Python's internals but not from running for ever or
filling memory: a template that includes itself, loops of loops, or `'x' * 4000000000`. Here
each file renders within MAX_SECONDS and MAX_OUTPUT_CHARS, and no repetition, power or string
method may build a value past MAX_VALUE_CHARS; past any of them, OverBudget (RND001).
"""

from __future__ import annotations

import signal
import string
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jinja2.sandbox import SandboxedEnvironment

MAX_OUTPUT_CHARS = 1_000_000  # one rendered file (real ones are a few thousand characters)
MAX_VALUE_CHARS = MAX_OUTPUT_CHARS  # one value an expression builds
MAX_SECONDS = 2.0  # one rendered file (real ones take about a millisecond)
MAX_EXPONENT = 1000  # ** of whole numbers: 2 ** 1000 has 302 digits


class OverBudget(Exception):
    """A template went past its budget."""


class BudgetedEnvironment(SandboxedEnvironment):
    """Jinja's sandbox, with repetition, powers and string methods held to MAX_VALUE_CHARS."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """`*` and `**` within the budget, then as Jinja computes them."""
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if (isinstance(sequence, str | bytes | list | tuple) and isinstance(times, int)
                        and len(sequence) * times > MAX_VALUE_CHARS):
                    raise OverBudget(f"an expression builds more than {MAX_VALUE_CHARS} "
                                     "items")
        if (operator == "**" and isinstance(right, int) and right > MAX_EXPONENT
                and isinstance(left, int) and abs(left) > 1):
            raise OverBudget(f"a power with an exponent over {MAX_EXPONENT}")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """A call, refused when it is a method of a string or sequence asked for more than
        MAX_VALUE_CHARS (center, ljust, zfill, expandtabs, a format width...)."""
        method = getattr(__obj, "__wrapped__", __obj)  # str.format comes wrapped (below)
        if isinstance(getattr(method, "__self__", None), str | bytes | list | tuple):
            numbers = [v for v in (*args, *kwargs.values()) if isinstance(v, int)]
            if any(abs(n) > MAX_VALUE_CHARS for n in numbers):
                raise OverBudget(f"a string method asked for more than {MAX_VALUE_CHARS} "
                                 "characters")
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Any:
        """str.format and format_map as Jinja sandboxes them, refused when their format string
        asks for a field wider than the budget."""
        wrapped = super().wrap_str_format(value)
        if wrapped is not None and _wide(value.__self__):
            raise OverBudget(f"a format asks for a field wider than {MAX_VALUE_CHARS}")
        return wrapped


def _wide(format_string: str) -> bool:
    """Whether a format string asks for a field wider than the budget."""
    try:
        specs = [spec or "" for _, _, spec, _ in string.Formatter().parse(format_string)]
    except ValueError:
        return False
    return any(len(digits) > len(str(MAX_VALUE_CHARS))
               for spec in specs for digits in _digit_runs(spec))


def _digit_runs(text: str) -> Iterator[str]:
    run = ""
    for char in text + " ":
        if char.isdigit():
            run += char
        elif run:
            yield run
            run = ""


def render(template: Any, context: dict[str, Any]) -> str:
    """template rendered with context within the budget (OverBudget past it)."""
    chunks: list[str] = []
    size = 0
    deadline = time.monotonic() + MAX_SECONDS
    try:
        with _alarm(MAX_SECONDS):
            for chunk in template.generate(context):
                size += len(chunk)
                if size > MAX_OUTPUT_CHARS:
                    raise OverBudget(f"it writes more than {MAX_OUTPUT_CHARS} characters")
                if time.monotonic() > deadline:
                    raise _timed_out()
                chunks.append(chunk)
    except RecursionError:
        raise OverBudget("it nests too deeply (a template that includes itself?)") from None
    except MemoryError:
        raise OverBudget("it needs more memory than a deployment config can") from None
    return "".join(chunks)


def _timed_out() -> OverBudget:
    return OverBudget(f"it runs longer than {MAX_SECONDS:g} s")


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Interrupt what runs here after seconds, also inside a loop that writes nothing (only in
    the main thread, where Python delivers signals; elsewhere the output checks remain)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
            signal, "setitimer"):
        yield
        return

    def expire(_signum: int, _frame: Any) -> None:
        raise _timed_out()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
