"""`providers` (or `targets`): promptfoo provider ids as litellm model strings, their `config`
as `params:`; credentials are never copied into a suite.
"""

from __future__ import annotations

from typing import Any

from pytest_promptgate.importers.promptfoo.base import _Base
from pytest_promptgate.importers.promptfoo.data import _Provider
from pytest_promptgate.importers.promptfoo.tables import (
    PROVIDER_PARAMS,
    PROVIDER_PREFIXES,
    SECRET_CONFIG_KEYS,
)
from pytest_promptgate.importers.promptfoo.text import _clip
from pytest_promptgate.importers.promptfoo.yaml12 import _Map, _map, _mapping, _plain, _Seq
from pytest_promptgate.model import Location


class _Providers(_Base):
    """`providers` as `model:` and `params:`, one suite each."""

    def providers(self, data: _Map) -> list[_Provider]:
        raw = data.get("providers", data.get("targets"))
        key = "providers" if "providers" in data else "targets"
        line = data.line_of(key)
        if raw is None:
            self.note(
                self.where(None, data.line),
                "the config has no `providers`: the suite has no `model:` and uses "
                "--promptgate-model",
            )
            return [_Provider("", None, {}, None, self.where(None, data.line))]
        if isinstance(raw, str) and raw.startswith("file://"):
            raw = self.read_structured(
                self.resolve_files(raw, self.where(None, line))[0], self.where(None, line)
            )
        items: list[tuple[Any, int]]
        if isinstance(raw, _Seq):
            items = [(item, raw.line_at(i)) for i, item in enumerate(raw)]
        elif isinstance(raw, _Map) and "id" not in raw:  # legacy {id: options}
            items = []
            for provider_id, options in raw.items():
                entry = _Map(raw.line_of(provider_id))
                entry.update(options if isinstance(options, dict) else {})
                entry["id"] = provider_id
                items.append((entry, raw.line_of(provider_id)))
        else:
            items = [(raw, line)]
        providers = []
        for item, item_line in items:
            self.sink = []
            providers.append(self.provider(item, self.where(None, item_line)))
        self.sink = None
        return [p for p in providers if p is not None]

    def provider(self, item: Any, where: Location) -> _Provider | None:
        if isinstance(item, str):
            item = _map(where.line, id=item)
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            self.todo(where, f"provider `{_clip(item)}` has no string `id`; not converted")
            return None
        provider_id = item["id"]
        label = item["label"] if isinstance(item.get("label"), str) else provider_id
        config = _mapping(item.get("config"))
        model = _litellm_model(provider_id)
        params: dict[str, Any] = {}
        if model is None:
            self.todo(
                where,
                f"provider `{provider_id}` has no litellm equivalent here: set `model:` "
                "(any litellm model string) by hand",
            )
        elif model.endswith("/"):
            self.todo(where, f"provider `{provider_id}` names no model: set `model:` by hand")
            model = None
        for key, value in config.items():
            if key in SECRET_CONFIG_KEYS:
                self.note(
                    where,
                    f"provider config `{key}` left out: credentials come from the environment "
                    "(e.g. OPENAI_API_KEY), never from a suite file",
                )
            elif key == "apiHost" and isinstance(value, str):
                host = value if "://" in value else f"https://{value}"
                params["api_base"] = host
            elif key == "tools" and isinstance(value, str) and value.startswith("file://"):
                files = self.resolve_files(value, where)
                params["tools"] = _plain(self.read_structured(files[0], where))
                self.note(where, f"provider config `tools: {value}` inlined")
            elif key in PROVIDER_PARAMS:
                if isinstance(value, str) and "{{" in value:
                    self.todo(
                        where, f"provider config `{key}: {value}` is a template; set it by hand"
                    )
                    continue
                params[PROVIDER_PARAMS[key]] = _plain(value)
            else:
                self.todo(
                    where, f"provider config `{key}` not converted: {_shown_value(key, value)}"
                )
        if "api_base" in params and model and provider_id.startswith("openai:"):
            # An OpenAI-compatible server: litellm's `openai/` prefix with its base URL.
            model = "openai/" + model.split("/", 1)[1]
        prompts = item.get("prompts")
        filters = tuple(str(p) for p in prompts) if isinstance(prompts, list) else None
        for extra in sorted(set(item) - {"id", "label", "config", "prompts"}):
            self.todo(
                where, f"provider key `{extra}` not converted: {_shown_value(extra, item[extra])}"
            )
        return _Provider(label, model, params, filters, where, tuple(self.sink or ()))


def _litellm_model(provider_id: str) -> str | None:
    for prefix in sorted(PROVIDER_PREFIXES, key=len, reverse=True):
        if provider_id.startswith(prefix):
            return PROVIDER_PREFIXES[prefix] + provider_id[len(prefix) :]
    return None


def _shown_value(key: str, value: Any) -> str:
    """A provider setting for the report, unless it may hold a credential (headers, env...)."""
    from pytest_promptgate import render

    if key in ("env", "headers") or render.is_secret_key(key):
        return "(value not shown: it may hold a credential)"
    plain = _plain(value)
    if isinstance(plain, dict) and any(render.is_secret_key(k) for k in plain):
        return "(value not shown: it may hold a credential)"
    return _clip(plain)
