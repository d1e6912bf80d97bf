"""Extension points of pytest-promptgate (pluggy hookspecs, registered in ``pytest_addhooks``).

Implement them in a ``conftest.py`` or in an installed plugin (a ``pytest11`` entry point).
"""

import pluggy

hookspec = pluggy.HookspecMarker("pytest")


@hookspec
def pytest_promptgate_add_expectations(register):
    """Add expectation types that suites can use under ``expect:``.

    Called once in ``pytest_configure``. ``register(name, check, validate=None, *,
    options=None)`` adds a type:

    * ``name``: lower-case with dashes (``is-uppercase``). A ``not-`` form is automatic.
      Built-in names cannot be replaced.
    * ``check(output, value, ctx)``: sync or ``async``. ``output`` is the model's text,
      ``value`` what the suite wrote after the type name, ``ctx`` a
      ``pytest_promptgate.assertions.CheckContext`` (``vars``, ``call`` with cost, tokens and
      latency, ``suite_dir``...). Return a bool, a score (passes at >= 0.5), a
      ``(bool, reason)`` tuple, a ``{"pass": ..., "score": ..., "reason": ...}`` dict or an
      ``assertions.CheckOutcome``. An exception becomes a failed check naming it.
    * ``validate(value, suite_dir)``: optional; raise ``ValueError("<what is wrong>; <how to
      fix>")`` and the suite fails to load with that message at the expectation's line.
    * ``options``: optional ``{key: validator}``, keys a suite may write beside ``value`` in the
      ``{type: ..., value: ...}`` form; each validator is called like ``validate`` and the
      check reads the values as ``ctx.options``.

    Example (``conftest.py``)::

        def pytest_promptgate_add_expectations(register):
            def is_uppercase(output, value, ctx):
                text = output.strip()
                return text.isupper(), f"output is not upper-case: {text[:40]!r}"

            def validate_is_uppercase(value, suite_dir):
                if value not in (None, True):
                    raise ValueError("is-uppercase takes no value; write `- is-uppercase: true`")

            register("is-uppercase", is_uppercase, validate_is_uppercase)

    and in a suite::

        expect:
          - is-uppercase: true
          - not-is-uppercase: true   # the negation comes for free
    """


@hookspec
def pytest_promptgate_case_result(result):
    """Called on the controller (never on an xdist worker) for each finished case.

    ``result`` is a ``pytest_promptgate.model.CaseResult`` (all samples of one prompt, version,
    case and model, with outputs, check results, tokens, cost and latency). Use it to feed a
    custom sink: a metrics store, a database, a dashboard. The return value is ignored; keep
    it quick, it runs while the session reports.

    Example::

        import json

        def pytest_promptgate_case_result(result):
            with open("promptgate-cases.jsonl", "a", encoding="utf-8") as sink:
                sink.write(json.dumps({"case": result.case, "status": result.status}) + "\\n")
    """
