"""Phase 8, fine-tuning data: the functions a model wrote in accepted runs (as the run committed them),
turned into the same fill prompts the generation loop sends the model, or chat JSONL for other tools."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from diffusellm.errors import InputError
from diffusellm.learn.outcomes import Outcome
from diffusellm.models.base import ChatMessage
from diffusellm.pipeline.generate.prompts import fill_messages, generation_context
from diffusellm.pipeline.workspace import run_git


@dataclass(frozen=True)
class ChatExample:
    """One training example: the prompt turns and the assistant reply to learn."""

    messages: list[ChatMessage]
    reply: str


@dataclass(frozen=True)
class FunctionSource:
    """A function as written in one version of a file: header (decorators, def, docstring) and body."""

    qualname: str
    header: str
    body: str


def _functions(tree: ast.Module, lines: list[str]) -> Iterator[FunctionSource]:
    def walk(nodes: list[ast.stmt], prefix: str) -> Iterator[FunctionSource]:
        for node in nodes:
            if isinstance(node, ast.ClassDef):
                yield from walk(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield _split(node, lines, prefix + node.name)

    return walk(tree.body, "")


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def _split(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str], qualname: str) -> FunctionSource:
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
    first = node.body[0]
    body_start = (first.end_lineno or first.lineno) + 1 if _is_docstring(first) else first.lineno
    while body_start <= len(lines) and body_start < (node.end_lineno or 0) and not lines[body_start - 1].strip():
        body_start += 1  # blank lines after the docstring belong to neither part
    end = node.end_lineno or node.lineno
    header = "".join(lines[start : min(body_start, end + 1) - 1])
    body = "".join(lines[body_start - 1 : end])
    return FunctionSource(qualname, header, body)


def functions_in(text: str) -> dict[str, FunctionSource]:
    """Every function and method of a module's source by qualname within the module ({} if it does not parse)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return {}
    lines = text.splitlines(keepends=True)
    return {f.qualname: f for f in _functions(tree, lines)}


def _file_at(repo: Path, commit: str, path: str) -> str:
    shown = run_git(["show", f"{commit}:{path}"], repo, check=False)
    return shown.stdout.decode("utf-8", errors="replace") if shown.returncode == 0 else ""


def _wanted(op: dict[str, str], qualname: str, path: str) -> bool:
    """Whether a changed function of `path` is what a generated operation wrote."""
    target = str(op.get("target", ""))
    if op.get("op") == "add_test":
        return path == op.get("path") and qualname.rsplit(".", 1)[-1].startswith("test")
    return target == qualname or target.endswith("." + qualname)


def examples_for(outcome: Outcome, repo: Path) -> list[ChatExample]:
    """Fill-prompt examples for the functions an accepted run's model wrote, as the run committed them."""
    if outcome.verdict != "accepted" or not outcome.commit:
        return []
    examples: list[ChatExample] = []
    for path in (p for p in outcome.changed_files if p.endswith(".py")):
        before = functions_in(_file_at(repo, outcome.base_commit, path))
        after = functions_in(_file_at(repo, outcome.commit, path))
        for qualname, function in after.items():
            if before.get(qualname) == function or not function.body.strip():
                continue
            for op in outcome.generated():
                if _wanted(op, qualname, path):
                    instruction = str(op.get("instruction") or outcome.title)
                    context = generation_context(instruction, "")
                    examples.append(ChatExample(fill_messages(function.header, "", context), function.body))
                    break
    return examples


def write_jsonl(examples: list[ChatExample], path: Path) -> int:
    """Write examples as chat JSONL ({"messages": [..., {"role": "assistant", ...}]}); return the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for ex in examples:
            turns = [*ex.messages, {"role": "assistant", "content": ex.reply}]
            out.write(json.dumps({"messages": turns}, ensure_ascii=False) + "\n")
    return len(examples)


def read_jsonl(path: Path) -> list[ChatExample]:
    """Examples written by `write_jsonl` (or any chat JSONL whose last turn is the assistant's)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read training data {path}: {exc}", hint=_JSONL_HINT) from None
    examples: list[ChatExample] = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            examples.append(_example(line, f"{path}:{number}"))
    return examples


_JSONL_HINT = 'one JSON object per line: {"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}'


def _example(line: str, where: str) -> ChatExample:
    try:
        turns: list[ChatMessage] = json.loads(line)["messages"]
        last = turns[-1]
        if last["role"] != "assistant" or not all(t["role"] in ("system", "user", "assistant") for t in turns):
            raise ValueError("the last turn must be the assistant's reply")
        return ChatExample(
            [{"role": t["role"], "content": str(t["content"])} for t in turns[:-1]], str(last["content"])
        )
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise InputError(f"{where}: not a chat example ({exc})", hint=_JSONL_HINT) from None
