"""The documentation stays true: generated pages are current, every example runs, the site builds.

Conventions in the Markdown pages (docs/**/*.md and README.md):

* Every ```` ```python ```` block runs, in page order, sharing one namespace per page.
* A ```` ```text ```` block right after the line ``<!-- output -->`` is the exact printed output
  of the Python block before it. A line ``...`` in it stands for any number of lines, and
  ``...`` inside a line for any text.
* ``<!-- no-run -->`` on the line before a Python block skips it: only for a block that truly
  cannot run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

import hipscreen
from hipscreen import _vocabulary

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted([*DOCS.rglob("*.md"), ROOT / "README.md"])

NO_RUN = "<!-- no-run -->"
OUTPUT = "<!-- output -->"
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")


def _load_gen_pages() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_pages", DOCS / "gen_pages.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- generated pages ------------------------------------------------------------------------------


def test_generated_pages_are_up_to_date() -> None:
    """The rule catalog, exercise catalog and safety page match the rule data."""
    gen = _load_gen_pages()
    stale = gen.stale_pages(gen.render_pages())
    assert not stale, (
        f"generated pages are out of date: {', '.join(f'docs/{name}' for name in stale)}; "
        "run `python docs/gen_pages.py` and commit the result"
    )


def test_generated_pages_are_deterministic() -> None:
    gen = _load_gen_pages()
    assert gen.render_pages() == gen.render_pages()


def test_check_mode_reports_missing_pages(tmp_path: Path) -> None:
    """`--check` fails when a page is missing or differs (stale_pages is what it reports)."""
    gen = _load_gen_pages()
    pages = gen.render_pages()
    assert gen.stale_pages(pages, tmp_path) == list(pages)
    for name, text in pages.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert gen.stale_pages(pages, tmp_path) == []


def test_rule_catalog_covers_every_rule_and_threshold() -> None:
    gen = _load_gen_pages()
    ruleset = hipscreen.Screener().ruleset
    text = gen.render_pages(ruleset)[gen.RULES_PAGE]
    for rule in ruleset.rules:
        assert f"{{#{rule.id}}}" in text, rule.id
    for name, spec in ruleset.thresholds.items():
        assert f"`{name}`{{#threshold-{name}}} | {spec.value:g} |" in text, name


# -- code examples --------------------------------------------------------------------------------


@dataclass
class Block:
    """One fenced code block of a page."""

    info: str
    line: int  # 1-based line of the opening fence
    code: str
    marker: str  # the last non-blank line before the fence


def code_blocks(text: str) -> list[Block]:
    """Every fenced block, dedented to its fence (so blocks inside admonitions work)."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    previous = ""
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        indent, fence, info = match["indent"], match["fence"], match["info"].strip()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not (
            lines[j].strip().startswith(fence) and not lines[j].strip().strip(fence[0])
        ):
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        language = info.split()[0].lstrip(".{") if info else ""
        blocks.append(Block(language, i + 1, "\n".join(body) + "\n", previous))
        previous = ""
        i = j + 1
    return blocks


def output_pattern(expected: str) -> re.Pattern[str]:
    parts = []
    for line in expected.rstrip("\n").split("\n"):
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            body = ".*?".join(re.escape(piece) for piece in line.rstrip().split("..."))
            parts.append(body + r"\n")
    return re.compile("".join(parts), re.DOTALL)


def _page_id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_pages_have_python_examples() -> None:
    """The collection below finds the examples (a broken fence parser would run nothing)."""
    blocks = code_blocks((DOCS / "index.md").read_text(encoding="utf-8"))
    assert sum(block.info == "python" for block in blocks) >= 3


def _page_marks(page: Path) -> list[pytest.MarkDecorator]:
    """Marks by what a page's examples do: start Spark or dask, need polars, start workers,
    screen the 3,000-row sample file (seconds)."""
    code = "\n".join(
        block.code
        for block in code_blocks(page.read_text(encoding="utf-8"))
        if block.info == "python"
    )
    needs = {
        "spark": "pyspark" in code,
        "dask": "import dask" in code,
        "polars": "import polars" in code,
        "process": "workers=" in code,
    }
    marks = [getattr(pytest.mark, name) for name, needed in needs.items() if needed]
    slow = needs["spark"] or needs["dask"] or "intake_sample.csv" in code
    return [*marks, pytest.mark.slow] if slow else marks


@pytest.mark.parametrize(
    "page", [pytest.param(page, marks=_page_marks(page)) for page in PAGES], ids=_page_id
)
def test_python_examples_run(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Python block of the page runs; printed output matches its `<!-- output -->` block."""
    monkeypatch.chdir(ROOT)
    blocks = code_blocks(page.read_text(encoding="utf-8"))
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    last_output: str | None = None
    last_where = ""
    for block in blocks:
        where = f"{_page_id(page)}:{block.line}"
        if block.info == "python":
            if block.marker == NO_RUN:
                last_output = None
                continue
            buffer = io.StringIO()
            try:
                compiled = compile(block.code, where, "exec")
                with contextlib.redirect_stdout(buffer):
                    exec(compiled, namespace)
            except Exception as error:
                pytest.fail(f"the example at {where} raised {type(error).__name__}: {error}")
            last_output, last_where = buffer.getvalue(), where
        elif block.marker == OUTPUT:
            assert last_output is not None, f"{where}: an output block follows no Python block"
            actual = "\n".join(line.rstrip() for line in last_output.splitlines()) + "\n"
            if not output_pattern(block.code).fullmatch(actual):
                pytest.fail(
                    f"the output shown at {where} is not what the example at {last_where} "
                    f"prints.\n--- shown\n{block.code}--- printed\n{actual}",
                    pytrace=False,
                )
            last_output = None


def test_concepts_page_names_every_input_name() -> None:
    """Every muscle, symptom, activity and context name is documented on the concepts page."""
    text = (DOCS / "concepts.md").read_text(encoding="utf-8")
    vocabularies = (
        _vocabulary.Muscle,
        _vocabulary.Symptom,
        _vocabulary.Activity,
        _vocabulary.RomMethod,
        _vocabulary.HipApproach,
    )
    missing = [m.value for enum in vocabularies for m in enum if f"`{m.value}`" not in text]
    assert missing == []


def test_writing_rules_page_names_every_condition_and_context_item() -> None:
    from hipscreen._rules.conditions import CONDITION_KEYS
    from hipscreen._rules.files import RuleSpec

    text = (DOCS / "writing-rules.md").read_text(encoding="utf-8")
    names = [
        *CONDITION_KEYS,
        *RuleSpec.model_fields,
        *(m.value for m in _vocabulary.ContextItem),
        *(m.value for m in _vocabulary.TestName),
        *(m.value for m in _vocabulary.SignName),
    ]
    missing = [name for name in names if f"`{name}`" not in text]
    assert missing == []


def test_api_reference_documents_every_public_name() -> None:
    text = (DOCS / "reference" / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^::: hipscreen\.(\w+)$", text, re.MULTILINE))
    missing = sorted(set(hipscreen.__all__) - documented - {"__version__"})
    assert missing == [], "add `::: hipscreen.NAME` to docs/reference/api.md"


def test_condition_table_lists_each_atoms_keys() -> None:
    """The grammar table in writing-rules.md shows exactly the keys each atom accepts."""
    from hipscreen._rules.conditions import ATOM_KEYS

    rows = {
        line.split("|")[1].strip().strip("`"): line
        for line in (DOCS / "writing-rules.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| `")
    }
    for atom, keys in ATOM_KEYS.items():
        mapping = re.search(r"\{(.*)\}", rows[atom].split("|")[2])
        assert mapping is not None, f"{atom}: the table shows no {{...}} mapping"
        shown = set(re.findall(r"[a-z_]+", mapping.group(1))) - {"or"}
        assert shown == keys, f"{atom}: the table shows {sorted(shown)}, the loader {sorted(keys)}"


def test_every_cited_source_is_on_the_references_page() -> None:
    """Rule data cites sources as [R27b]; each code has an entry (and anchor) in references.md."""
    data = "\n".join(
        path.read_text(encoding="utf-8") for path in sorted((ROOT / "rules").rglob("*.yaml"))
    )
    cited = set(re.findall(r"\[(R\d+[a-z]?)\]", data))
    text = (DOCS / "references.md").read_text(encoding="utf-8")
    missing = sorted(code for code in cited if f"**{code}**{{#{code.lower()}}}" not in text)
    assert missing == [], "add these to docs/references.md"


# -- the site -------------------------------------------------------------------------------------


@pytest.mark.docs
@pytest.mark.process
@pytest.mark.slow
def test_site_builds_strictly(tmp_path: Path) -> None:
    """`mkdocs build --strict`: no broken link or anchor, no page outside the nav, API docs render.

    Runs in a subprocess: mkdocs and its plugins emit warnings that pytest turns into errors.
    """
    if importlib.util.find_spec("mkdocs") is None:
        pytest.fail("mkdocs is not installed: run `pip install -e '.[dev]'`")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # Material's end-of-life banner
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = completed.stderr + completed.stdout
    assert completed.returncode == 0, f"mkdocs build --strict failed:\n{output}"
    assert (tmp_path / "site" / "reference" / "rules" / "index.html").is_file()
