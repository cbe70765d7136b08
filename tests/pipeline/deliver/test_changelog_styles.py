"""Changelog styles of real projects, read from repositories built here and written back the same way."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

from diffusellm.pipeline.deliver.changelog import changelog_entry
from diffusellm.pipeline.deliver.summary import convention_lines, summary_markdown
from diffusellm.pipeline.spec import Spec
from diffusellm.pipeline.understand.style.changelog import changelog_info
from diffusellm.pipeline.understand.style.infer import profile_style

FIX = {"op": "rename_symbol", "target": "pkg.mod.old_name", "new_name": "new_name"}


def spec(title: str = "Rename old_name to new_name") -> Spec:
    return Spec.model_validate({"title": title, "operations": [FIX]})


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root,
                   check=True, capture_output=True)


def entry(root: Path, issue: int | None = 42) -> tuple[str | None, str]:
    info = changelog_info(root)
    rel = changelog_entry(info, spec(), root, issue_number=issue,
                          now=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    return rel, (root / rel).read_text(encoding="utf-8") if rel else ""


PALLETS_OPEN = """\
Version 2.1.0
-------------

Unreleased

-   Speed up the parser. :issue:`310`
-   Drop the old API. :pr:`311`

Version 2.0.1
-------------

Released 2025-05-01

-   Fix a crash. :issue:`300`
"""


def test_pallets_unreleased_section_gets_the_entry_in_its_style(tmp_path: Path) -> None:
    write(tmp_path, {"CHANGES.rst": PALLETS_OPEN})
    info = changelog_info(tmp_path)
    assert (info.format, info.path, info.reference) == ("pallets", "CHANGES.rst", ":issue:`{n}`")
    assert info.evidence and "CHANGES.rst" in info.evidence[0]
    rel, text = entry(tmp_path)
    assert rel == "CHANGES.rst"
    assert info.bullet == "-   "
    assert text == PALLETS_OPEN.replace(
        ":pr:`311`\n", ":pr:`311`\n-   Rename old_name to new_name. :issue:`42`\n"
    )


def test_pallets_released_top_starts_the_next_version(tmp_path: Path) -> None:
    released = PALLETS_OPEN.split("Version 2.0.1")[0].replace("Unreleased", "Released 2025-06-01")
    write(tmp_path, {"CHANGES.md": "## Version 2.1.0\n\nReleased 2025-06-01\n\n- Speed up. {issue}`310`\n"})
    rel, text = entry(tmp_path)
    assert rel == "CHANGES.md"
    assert text == ("## Version 2.1.1\n\nUnreleased\n\n- Rename old_name to new_name. {issue}`42`\n\n"
                    "## Version 2.1.0\n\nReleased 2025-06-01\n\n- Speed up. {issue}`310`\n")
    write(tmp_path / "rst", {"CHANGES.rst": released})
    _, rst = entry(tmp_path / "rst")
    assert rst.startswith("Version 2.1.1\n-------------\n\nUnreleased\n\n-   Rename old_name to new_name. "
                          ":issue:`42`\n\nVersion 2.1.0\n")


def test_history_with_a_dev_section_on_top(tmp_path: Path) -> None:
    text = ("Release History\n===============\n\ndev\n---\n\n- Support more things. (#9)\n\n"
            "2.0.0 (2025-02-01)\n------------------\n\n- Big change. (#8)\n")
    write(tmp_path, {"HISTORY.rst": text})
    info = changelog_info(tmp_path)
    assert (info.format, info.unreleased_heading, info.reference) == ("sections", "dev", "(#{n})")
    _, written = entry(tmp_path)
    assert written == text.replace("(#9)\n", "(#9)\n- Rename old_name to new_name. (#42)\n")


def test_markdown_history_released_top_starts_the_section_its_history_shows(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    old = "# History\n\n## 1.1.0 (UNRELEASED)\n\n* Add a thing\n  ([#5](https://github.com/o/r/pull/5))\n"
    write(tmp_path, {"HISTORY.md": old})
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "start")
    released = "# History\n\n## 1.1.0 (2025-03-01)\n\n* Add a thing\n  ([#5](https://github.com/o/r/pull/5))\n"
    write(tmp_path, {"HISTORY.md": released})
    git(tmp_path, "commit", "-qam", "release")
    info = changelog_info(tmp_path)
    assert info.new_section == "{version} (UNRELEASED)"
    assert info.reference == "([#{n}](https://github.com/o/r/issues/{n}))"
    assert info.bullet == "* "
    _, text = entry(tmp_path)
    assert text == released.replace(
        "## 1.1.0 (2025-03-01)",
        "## 1.1.1 (UNRELEASED)\n\n* Rename old_name to new_name. ([#42](https://github.com/o/r/issues/42))\n\n"
        "## 1.1.0 (2025-03-01)",
    )


def test_docs_changelog_without_history_starts_unreleased_and_keeps_jump_targets(tmp_path: Path) -> None:
    text = ("Changelog\n=========\n\n.. _v3-1:\n\n3.1 - 2025-01-01\n~~~~~~~~~~~~~~~~\n\n"
            "* Faster. (:pull:`12`)\n* Smaller. (:pull:`13`)\n* Leaner. (:pull:`14`)\n")
    write(tmp_path, {"docs/changelog.rst": text, "docs/index.rst": "Docs\n====\n"})
    info = changelog_info(tmp_path)
    assert (info.format, info.path, info.reference) == ("sections", "docs/changelog.rst", None)
    _, written = entry(tmp_path)
    assert written == text.replace(
        ".. _v3-1:", "Unreleased\n~~~~~~~~~~\n\n* Rename old_name to new_name.\n\n.. _v3-1:")


def test_docs_page_that_only_includes_the_root_changelog_is_not_the_changelog(tmp_path: Path) -> None:
    write(tmp_path, {"docs/changes.rst": "Changes\n=======\n\n.. include:: ../CHANGES.rst\n"})
    assert changelog_info(tmp_path).format == "none"


def test_scriv_fragment_with_and_without_categories(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": '[tool.scriv]\nfragment_directory = "news"\ncategories = []\n',
                     "news/README.txt": "Fragments.\n"})
    info = changelog_info(tmp_path)
    assert (info.format, info.path, info.evidence) == ("scriv", "news", ["pyproject.toml [tool.scriv]"])
    rel, text = entry(tmp_path)
    assert rel == "news/20260102_030405_diffusellm_rename-old-name-to-new-name.rst"
    assert text == "- Rename old_name to new_name. (#42)\n"
    other = write(tmp_path / "o", {"setup.cfg": "[scriv]\ncategories = Added, Changed, Fixed\n"})
    rel, text = entry(other, issue=None)
    assert rel is not None and rel.startswith("changelog.d/")
    assert text == "Changed\n-------\n\n- Rename old_name to new_name.\n"


def test_towncrier_types_from_config_name_the_fragment(tmp_path: Path) -> None:
    write(tmp_path, {"towncrier.toml": '[tool.towncrier]\ndirectory = "changes"\n'
                     '[[tool.towncrier.type]]\ndirectory = "breaking"\nname = "B"\n'
                     '[[tool.towncrier.type]]\ndirectory = "change"\nname = "C"\n'})
    info = changelog_info(tmp_path)
    assert (info.format, info.path, info.fragment_types) == ("towncrier", "changes", ["breaking", "change"])
    assert entry(tmp_path)[0] == "changes/42.change.md"


def test_release_notes_only_on_github_means_no_entry(tmp_path: Path) -> None:
    write(tmp_path, {"README.md": "# Tool\n\nSee the GitHub releases page.\n", "RELEASING.md": "# Steps\n"})
    info = changelog_info(tmp_path)
    assert info.format == "none"
    assert info.evidence
    assert entry(tmp_path) == (None, "")


def test_keepachangelog_cites_issues_the_way_the_file_does(tmp_path: Path) -> None:
    text = ("# Changelog\n\nBased on Keep a Changelog.\n\n## [Unreleased]\n\n### Fixed\n\n"
            "- A bug [#3](https://example.org/o/r/issues/3)\n")
    write(tmp_path, {"CHANGELOG.md": text})
    _, written = entry(tmp_path)
    assert "- Rename old_name to new_name [#42](https://example.org/o/r/issues/42)\n" in written


def test_pr_body_says_what_was_taken_from_where(tmp_path: Path) -> None:
    write(tmp_path, {
        "pkg/mod.py": "def f():\n  return 'x'\n",
        ".editorconfig": "[*.py]\nindent_size = 4\nmax_line_length = 100\n",
        "AGENTS.md": "Run `pytest -q tests` first.\nNever edit `pkg/generated.py`.\nKeep the API token secret.\n",
        "CHANGES.rst": PALLETS_OPEN,
    })
    profile = profile_style(tmp_path)
    lines = convention_lines(profile)
    assert lines == [
        "Indentation: 4 spaces (from .editorconfig [*.py] indent_size)",
        "Quotes: single (measured from the code)",
        "Line length: 100 (from .editorconfig [*.py] max_line_length)",
        "Changelog: pallets in `CHANGES.rst` (CHANGES.rst: 'Version X' headings with 'Unreleased' / "
        "'Released' lines; top section 'Version 2.1.0')",
        "Test command: `pytest -q tests` (from AGENTS.md line 1)",
        "Not to be edited: `pkg/generated.py` (from AGENTS.md line 2)",
        "Guidance given to the model from: AGENTS.md; 1 line(s) about permissions, secrets or the network left out",
    ]
    body = summary_markdown(spec(), changed_files=["pkg/mod.py"], report=None, changelog_path="CHANGES.rst",
                            branch="b", commit=None, conventions=lines)
    section = body.split("### Repository conventions\n\n")[1].split("\n\n")[0]
    assert section.splitlines() == [f"- {line}" for line in lines]


def test_whatsnew_folder_writes_to_the_unreleased_page_only(tmp_path: Path) -> None:
    page = "What's new in 2.1.0 (unreleased)\n================================\n\nBug fixes\n---------\n\n- A fix.\n"
    write(tmp_path, {"docs/whatsnew/v2.0.0.rst": "What's new in 2.0.0\n===================\n\n- Old.\n",
                     "docs/whatsnew/v2.1.0.rst": page, "docs/whatsnew/index.rst": "Index\n=====\n"})
    info = changelog_info(tmp_path)
    assert (info.format, info.path) == ("sections", "docs/whatsnew/v2.1.0.rst")
    assert info.evidence[0] == "docs/whatsnew/: one page per release"
    _, text = entry(tmp_path)
    assert text == page.replace("- A fix.\n", "- A fix.\n- Rename old_name to new_name.\n")
    released = write(tmp_path / "r", {"docs/whatsnew/v2.0.0.rst": "What's new in 2.0.0\n===================\n\n- Old.\n"})
    info = changelog_info(released)
    assert info.format == "none" and "docs/whatsnew/v2.0.0.rst, is released" in info.evidence[0]
