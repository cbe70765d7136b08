"""Phase 7 commit builder, summary: the Markdown body of the later pull request."""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Sequence

from diffusellm.pipeline.deliver.text import code_span, describe_operation
from diffusellm.pipeline.spec import Spec
from diffusellm.pipeline.understand.style.profile import StyleProfile
from diffusellm.pipeline.validate.report import CheckResult, ValidationReport

MAX_FILES_LISTED = 100
MAX_FAILURES_LISTED = 5


def spec_digest(spec: Spec) -> str:
    """First 16 hex digits of the sha256 of the spec's canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def spec_marker(spec: Spec) -> str:
    """The hidden line that lets a retry recognise its own earlier pull request."""
    return f"<!-- diffusellm:spec={spec_digest(spec)} -->"


def _user_text(text: str) -> str:
    """User-written Markdown with HTML comments defused, so it cannot fake our markers."""
    return text.replace("<!--", "&lt;!--")


def _cell(text: str) -> str:
    """Text safe inside one Markdown table cell (GFM: `\\|` works inside code spans too)."""
    return " ".join(text.replace("|", "\\|").split())


def _result(check: CheckResult) -> str:
    ran = f" ({check.tests_run} tests)" if check.name in ("pytest", "acceptance") and check.command else ""
    if check.state == "off":
        return f"off: {check.skipped_reason or 'switched off in settings'}"
    if check.state == "not_run":
        return f"⚠️ not run: {check.skipped_reason or 'no reason recorded'}"
    return ("✅ passed" if check.state == "passed" else "❌ failed") + ran


def unchecked_title(title: str, report: ValidationReport) -> str:
    """The pull request title, saying plainly when a check that would normally run did not."""
    missing = sorted({c.name for c in report.checks if c.state in ("not_run", "off")} & {"pytest"})
    return f"{title} (not checked: {', '.join(missing)})" if missing else title


def _failures(check: CheckResult) -> str:
    if not check.new_failures:
        return "none"
    shown = [code_span(" ".join(f.split())) for f in check.new_failures[:MAX_FAILURES_LISTED]]
    more = len(check.new_failures) - len(shown)
    if more:
        shown.append(f"… and {more} more")
    return f"{len(check.new_failures)}: " + "<br>".join(shown)


def validation_table(report: ValidationReport) -> str:
    """A check | command | result | new failures table, one row per check."""
    rows = ["| check | command | result | new failures |", "|---|---|---|---|"]
    for check in report.checks:
        name = f"{check.name} ({check.scope})" if check.scope else check.name
        command = code_span(shlex.join(check.command)) if check.command else ""
        cells = [name, command, _result(check), _failures(check)]
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if report.failed:
        verdict = "**New failures against the base commit.**"
    elif report.missing:
        verdict = "**Not validated: required checks did not run** (" + "; ".join(report.missing) + ")."
    else:
        verdict = "No new failures against the base commit."
    unchecked = [u for u in report.unchecked if u.split(":", 1)[0] not in report.required]
    if unchecked and not report.failed:
        verdict += " **Not checked:** " + "; ".join(unchecked) + "."
    return verdict + "\n\n" + "\n".join(rows) + _environment_line(report)


def _environment_line(report: ValidationReport) -> str:
    env = report.environment
    if env is None:
        return ""
    if env.error:
        return f"\n\nEnvironment ({_cell(env.how)}): **could not be built**: {code_span(' '.join(env.error.split()))}"
    built = "from the cache" if env.cache_hit else f"built in {env.build_s:.1f}s"
    packages = f", {env.packages} packages" if env.packages else ""
    return f"\n\nEnvironment: {_cell(env.how)}; {code_span(env.python)}{packages}, {built}."


def _files_section(changed_files: Sequence[str]) -> str:
    listed = [f"- {code_span(f)}" for f in changed_files[:MAX_FILES_LISTED]]
    if len(changed_files) > MAX_FILES_LISTED:
        listed.append(f"- … and {len(changed_files) - MAX_FILES_LISTED} more")
    return "\n".join(listed) or "_No files changed._"


def _from(profile: StyleProfile, fact: str) -> str:
    source = profile.sources.get(fact)
    return f"from {source}" if source else "measured from the code"


def _guidance_lines(profile: StyleProfile) -> list[str]:
    guidance = profile.guidance
    lines: list[str] = []
    for name, fact in (("Test command", profile.test_command), ("Lint command", guidance.lint_command)):
        if fact is not None:
            lines.append(f"{name}: {code_span(fact.value)} (from {fact.source})")
    lines += [f"Not to be edited: {code_span(f.value)} (from {f.source})" for f in guidance.protected_paths]
    if guidance.files:
        names = [f.path + (f" with {', '.join(f.includes)}" if f.includes else "") for f in guidance.files]
        dropped = sum(f.dropped_lines for f in guidance.files)
        left_out = f"; {dropped} line(s) about permissions, secrets or the network left out" if dropped else ""
        lines.append(f"Guidance given to the model from: {', '.join(names)}{left_out}")
    return lines


def convention_lines(profile: StyleProfile) -> list[str]:
    """What the run took from the repository's own conventions, and where each came from."""
    log = profile.changelog
    where = f" in {code_span(log.path)}" if log.path else ""
    evidence = "; ".join(log.evidence)
    return [
        f"Indentation: {profile.indent} ({_from(profile, 'indent')})",
        f"Quotes: {profile.quote_style} ({_from(profile, 'quote_style')})",
        f"Line length: {profile.line_length} ({_from(profile, 'line_length')})",
        f"Changelog: {log.format}{where}" + (f" ({evidence})" if evidence else ""),
        *_guidance_lines(profile),
    ]


def summary_markdown(
    spec: Spec,
    *,
    changed_files: Sequence[str],
    report: ValidationReport | None,
    changelog_path: str | None,
    branch: str,
    commit: str | None,
    conventions: Sequence[str] = (),
) -> str:
    """The pull request body: what changed and why, files, validation table, changelog, marker."""
    what = "\n".join(f"- {describe_operation(op)}" for op in spec.operations)
    why = _user_text(spec.description.strip()) or "_No description was given._"
    validation = validation_table(report) if report is not None else "_Validation was not run._"
    changelog = (
        f"Entry added in {code_span(changelog_path)}."
        if changelog_path
        else "_No changelog entry: the repository keeps no changelog this tool recognises._"
    )
    where = f"Branch {code_span(branch)}" + (f", commit {code_span(commit[:12])}" if commit else "")
    sections = [
        f"## {_user_text(' '.join(spec.title.split()))}",
        f"### What changed\n\n{what}",
        f"### Why\n\n{why}",
        f"### Files changed ({len(changed_files)})\n\n{_files_section(changed_files)}",
        f"### Validation\n\n{validation}",
        f"### Changelog\n\n{changelog}",
        *(["### Repository conventions\n\n" + "\n".join(f"- {_user_text(c)}" for c in conventions)]
          if conventions else []),
        where + ". Generated by diffusellm.",
        spec_marker(spec),
    ]
    return "\n\n".join(sections) + "\n"
