"""Cases files (spec/case_files.py): JSONL, CSV, YAML rows and promptfoo columns."""

from __future__ import annotations

from helpers.suite_files import error, load

from pytest_promptgate.model import Location
from pytest_promptgate.spec import load_suite


def test_jsonl_cases_structured_and_flat(tmp_path):
    suite = load(
        tmp_path,
        "prompt: p\nuser: '{{ ticket }}'\ncases_file: cases/t.jsonl\n",
        **{
            "cases/t.jsonl": """
            {"id": "s", "vars": {"ticket": "a"}, "expect": [{"equals": "billing"}], "tags": ["x"], "repeat": 2}

            {"ticket": "b", "ideal": "bug", "expect": [{"type": "contains", "value": "bu"}], "__expected": "icontains:BUG"}
            """,
        },
    )
    structured, flat = suite.cases
    assert structured.id == "s" and structured.vars == {"ticket": "a"} and structured.repeat == 2
    assert structured.location.file == "cases/t.jsonl" and structured.location.line == 1
    assert flat.id == "case-2" and flat.vars == {"ticket": "b"} and flat.ideal == "bug"
    assert [e.type for e in flat.expect] == ["contains", "icontains"]
    assert flat.location.line == 3 and flat.expect[0].location == flat.location


def test_jsonl_errors_name_the_row(tmp_path):
    err = error(
        tmp_path, "prompt: p\nuser: hi\ncases_file: c.jsonl\n", **{"c.jsonl": '{"a": 1}\n{oops\n'}
    )
    assert (err.location.file, err.location.line) == ("c.jsonl", 2)
    err = error(tmp_path, "prompt: p\nuser: hi\ncases_file: c.jsonl\n", **{"c.jsonl": "[1]\n"})
    assert "JSON object" in err.message
    err = error(
        tmp_path,
        "prompt: p\nuser: hi\ncases_file: c.jsonl\n",
        **{"c.jsonl": '{"vars": {}, "expcet": []}\n'},
    )
    assert (err.location.file, err.location.line) == ("c.jsonl", 1)
    assert "did you mean `expect`?" in err.message


def test_csv_cases(tmp_path):
    suite = load(
        tmp_path,
        "prompt: p\nuser: '{{ ticket }} {{ lang }}'\ncases_file: t.csv\n",
        **{
            "t.csv": """
            id,ticket,lang,tags,ideal,expect,__expected
            c1,charged twice,en,payments; urgent,billing,equals:billing,
            ,"multi
            line",fr,,,"[{""contains"": ""x""}, ""is-json""]",grade:is polite
            c3,crash,de,,,,not-contains: sorry
            c4,plain,en,,,,billing
            """,
        },
    )
    c1, c2, c3, c4 = suite.cases
    assert c1.id == "c1" and c1.vars == {"ticket": "charged twice", "lang": "en"}
    assert c1.tags == ("payments", "urgent") and c1.ideal == "billing"
    assert [(e.type, e.value) for e in c1.expect] == [("equals", "billing")]
    assert c1.location.line == 2 and c1.location.file == "t.csv"
    assert c2.id == "case-2" and c2.vars["ticket"] == "multi\nline" and c2.location.line == 3
    assert [e.type for e in c2.expect] == ["contains", "is-json", "llm-rubric"]
    assert c2.expect[2].value == "is polite"
    assert c3.location.line == 5
    assert [(e.type, e.negate, e.value) for e in c3.expect] == [("contains", True, "sorry")]
    assert [(e.type, e.value) for e in c4.expect] == [("equals", "billing")]


def test_csv_errors_name_the_row(tmp_path):
    err = error(
        tmp_path, "prompt: p\nuser: hi\ncases_file: t.csv\n", **{"t.csv": "a,b\n1,2\n1,2,3\n"}
    )
    assert (err.location.file, err.location.line) == ("t.csv", 3)
    err = error(
        tmp_path,
        "prompt: p\nuser: hi\ncases_file: t.csv\n",
        **{"t.csv": "a,expect\n1,contians:x\n"},
    )
    assert (err.location.line, err.message) == (
        2,
        "unknown expectation `contians`; did you mean `contains`?",
    )
    err = error(tmp_path, "prompt: p\nuser: hi\ncases_file: t.csv\n", **{"t.csv": "a,a\n1,2\n"})
    assert err.location.line == 1 and "twice" in err.message


def test_yaml_cases_file(tmp_path):
    suite = load(
        tmp_path,
        "prompt: p\nuser: '{{ t }}'\ncases_file: [c.yaml, d.yml]\n",
        **{
            "c.yaml": """
            - id: y1
              vars: {t: a}
              expect: [{equals: a}]
            - t: flat
              tags: [z]
            """,
            "d.yml": "- {id: y3, vars: {t: c}}\n",
        },
    )
    assert [c.id for c in suite.cases] == ["y1", "case-2", "y3"]
    assert suite.cases[1].vars == {"t": "flat"} and suite.cases[1].tags == ("z",)
    assert [(c.location.file, c.location.line) for c in suite.cases] == [
        ("c.yaml", 1),
        ("c.yaml", 4),
        ("d.yml", 1),
    ]
    assert suite.cases[0].expect[0].location == Location("c.yaml", 3)


def test_yaml_cases_file_errors(tmp_path):
    err = error(
        tmp_path, "prompt: p\nuser: hi\ncases_file: c.yaml\n", **{"c.yaml": "- id: a\n- id: [\n"}
    )
    assert err.location.file == "c.yaml" and err.message.startswith("invalid YAML")
    err = error(tmp_path, "prompt: p\nuser: hi\ncases_file: c.yaml\n", **{"c.yaml": "a: 1\n"})
    assert "list of cases" in err.message


def test_template_variable_missing_in_a_cases_file_row(tmp_path):
    err = error(
        tmp_path,
        "prompt: p\nversions:\n  v1: {user: '{{ ticket }}'}\ncases_file: c.jsonl\n",
        **{"c.jsonl": '{"ticket": "ok"}\n{"tickte": "typo"}\n'},
    )
    assert (err.location.file, err.location.line) == ("c.jsonl", 2)
    assert "`ticket`" in err.message and "version `v1`" in err.message


def test_unsupported_cases_file_extension(tmp_path):
    err = error(tmp_path, "prompt: p\nuser: hi\ncases_file: c.txt\n", **{"c.txt": ""})
    assert err.location.line == 3 and ".jsonl" in err.hint


def test_a_large_plain_suite_is_not_mistaken_for_an_alias_bomb(tmp_path):
    # 10,000 realistic inline cases make ~300,000 YAML values but repeat none: only alias
    # repeats count against the limit (which the old guard got wrong).
    case = (
        "  - {{id: c{i}, vars: {{q: 'x {i}', lang: en, channel: email}}, ideal: x,"
        " tags: [bulk], expect: [{{contains: x}}, {{regex: '[0-9]'}}, {{word-count: {{max: 9}}}}]}}\n"
    )
    path = tmp_path / "big.promptgate.yaml"
    path.write_text(
        "prompt: big\nmodel: openai/m\nuser: '{{ q }}'\ncases:\n"
        + "".join(case.format(i=i) for i in range(10_000))
    )
    assert len(load_suite(path).cases) == 10_000
