"""The whole config: the stages in order (prompts, providers, defaultTest, tests), one suite per
provider, and the report of what was not converted or changed.
"""

from __future__ import annotations

from pathlib import Path

from pytest_promptgate.importers.promptfoo.cases import _Cases, _copy_expect
from pytest_promptgate.importers.promptfoo.data import ImportedSuite, ImportResult, _Transform
from pytest_promptgate.importers.promptfoo.prompts import _Prompts
from pytest_promptgate.importers.promptfoo.providers import _Providers
from pytest_promptgate.importers.promptfoo.rendering import _Rendering, _renders_for
from pytest_promptgate.importers.promptfoo.suite_file import _SuiteWriter
from pytest_promptgate.importers.promptfoo.tables import CONFIG_KEYS_HANDLED, CONFIG_KEYS_IGNORED
from pytest_promptgate.importers.promptfoo.text import _clip, _slug, _unique
from pytest_promptgate.importers.promptfoo.yaml12 import _Map, _map, _mapping, _read_yaml
from pytest_promptgate.model import Location, UsageError


class _Converter(_Prompts, _Providers, _Cases, _Rendering, _SuiteWriter):
    """One config, converted stage by stage (each stage is a base class of its own module)."""

    def convert(self, name: str | None) -> ImportResult:
        text = self.read_text(self.config_path, self.where(None, 1))
        if self.config_path.suffix.lower() == ".json":
            self.root = self.read_structured(self.config_path, self.where(None, 1))
        else:
            self.root = _read_yaml(text, self.display)
        data = self.root
        if not isinstance(data, _Map):
            self.fail(
                self.where(None, 1),
                "a promptfoo config is a mapping (prompts, providers, tests...)",
            )
        self.sink = self.header_todos
        for key in sorted(set(data) - CONFIG_KEYS_HANDLED):
            if key == "env":
                self.note(
                    self.where(None, data.line_of(key)),
                    "`env` left out: set those variables in the environment of the run",
                )
            elif key not in CONFIG_KEYS_IGNORED:
                self.todo(self.where(None, data.line_of(key)), f"`{key}` not converted")
        prompts = self.prompts(data)
        self.sink = None
        providers = self.providers(data)

        default, problem = self.deref(
            data.get("defaultTest"), self.where(None, data.line_of("defaultTest"))
        )
        if problem is not None:
            self.header_todos.append(problem)
        default_where = self.where(None, data.line_of("defaultTest"))
        if isinstance(default, str) and default.startswith("file://"):
            default = self.read_structured(
                self.resolve_files(default, default_where)[0], default_where
            )
        default = default if isinstance(default, _Map) else _Map(data.line)
        default_options = _mapping(default.get("options"))
        default_transform: _Transform | None = None
        default_comments: list[str] = []
        if "transform" in default_options:
            code = default_options["transform"]
            default_transform = _Transform(
                code, self.transform(code, default_where, False, "`defaultTest.options.transform`")
            )
            if default_transform.jinja is None:
                default_comments.append(
                    self.todo(
                        default_where,
                        f"`defaultTest.options.transform: {_clip(code)}` not converted",
                    )
                )
        for key in sorted(set(default_options) - {"transform"}):
            default_comments.append(
                self.todo(default_where, f"`defaultTest.options.{key}` not converted")
            )
        for key in sorted(set(default) - {"assert", "vars", "options", "threshold"}):
            default_comments.append(self.todo(default_where, f"`defaultTest.{key}` not converted"))
        default_expect = self.assertions(
            default.get("assert"),
            Location(default_where.file, default.line_of("assert")),
            default_transform is not None and default_transform.jinja is None,
            default_transform is not None and default_transform.parsed,
        )
        default_vars = self.load_vars(_mapping(default.get("vars")), default_where)

        self.sink = self.header_todos  # tests that cannot be read have no case to sit in
        rows = self.test_rows(data)
        self.sink = None
        if not rows:
            rows = [(_map(data.line, description="default"), self.where(None, data.line))]
            self.note(
                self.where(None, data.line),
                "no tests: one case with the default vars, as promptfoo runs one",
            )
        cases = self.cases(rows, default_vars, default_transform, default.get("threshold"))

        # A templated default stays shared (the loader renders it per case) when it renders
        # for every case; else each case gets its own copy (rendered where a var is missing).
        applied = [case for case in cases if not case.no_defaults]
        shared = [e for e in default_expect if not e.templated or _renders_for(e, applied)]
        per_case = [e for e in default_expect if not any(e is x for x in shared)]
        skipped: set[str] = set()
        for case in cases:
            if case.no_defaults:
                if default_expect and str(case.location) not in skipped:
                    skipped.add(str(case.location))
                    case.comments.append(
                        self.todo(
                            case.location,
                            "`defaultTest` assertions not applied to this test (`defaults: "
                            "false`): its JavaScript transform was not converted",
                        )
                    )
            else:
                case.expect = [_copy_expect(e) for e in per_case] + case.expect
            self.render_values(case)
        base_name = _slug(name or _default_name(self.config_path)) or "promptfoo"
        suites = []
        used: set[str] = set()
        for provider in providers:
            chosen = [p for p in prompts if _allowed(p.label, provider.prompts)]
            if not chosen:
                self.todo(
                    provider.location, f"provider `{provider.label}` matches none of the prompts"
                )
                continue
            suite_name = base_name
            if len(providers) > 1:
                suite_name = f"{base_name}-{_slug(provider.label) or 'provider'}"
            suite_name = _unique(suite_name, used)
            filled = self.fill_missing_vars(chosen, cases)
            suites.append(
                ImportedSuite(
                    name=suite_name,
                    text=self.suite_text(
                        suite_name, data, provider, chosen, shared, default_comments, filled
                    ),
                    versions=len(chosen),
                    cases=len(filled),
                )
            )
        return ImportResult(self.display, tuple(suites), tuple(self.findings))


def _allowed(label: str, filters: tuple[str, ...] | None) -> bool:
    """promptfoo's isAllowedPrompt: an exact label, or a `group:` prefix."""
    if filters is None:
        return True
    return any(label == f or label.startswith(f"{f}:") or _slug(label) == _slug(f) for f in filters)


def _default_name(config_path: Path) -> str:
    stem = config_path.name.split(".")[0]
    if stem.lower() in ("promptfooconfig", "promptfoo", "config"):
        return config_path.resolve().parent.name
    return stem


def convert_config(
    config_path: Path, name: str | None = None, rootdir: Path | None = None
) -> ImportResult:
    """Convert one promptfoo config (YAML or JSON) into suite texts and a list of findings.

    Raises PromptgateError (with file:line) when the config cannot be read at all.
    """
    config_path = Path(config_path)
    display = config_path.as_posix()
    if rootdir is not None:
        try:
            display = config_path.resolve().relative_to(Path(rootdir).resolve()).as_posix()
        except ValueError:
            pass
    if not config_path.is_file():
        raise UsageError(
            f"promptfoo config `{config_path}` not found",
            hint="give the path of promptfooconfig.yaml",
        )
    return _Converter(config_path, display).convert(name)


def format_report(result: ImportResult, written: list[Path], problems: list[str]) -> str:
    lines = [f"promptgate import promptfoo: {result.source}"]
    for suite, path in zip(result.suites, written):
        lines.append(f"  wrote {path} ({suite.versions} version(s), {suite.cases} case(s))")
    todos, notes = result.todos, result.notes
    if todos:
        lines.append(
            f"not converted ({len(todos)}; a TODO(promptfoo) comment marks each in the suites):"
        )
        lines += [f"  {finding}" for finding in todos]
    if notes:
        lines.append(f"changed on the way ({len(notes)}):")
        lines += [f"  {finding}" for finding in notes]
    if problems:
        lines.append("the written suites do not load yet:")
        lines += ["  " + problem.replace("\n", "\n  ") for problem in problems]
    if not todos and not problems:
        lines.append("everything was converted.")
    return "\n".join(lines)
