"""Training-set warnings: too few examples, stub replies, one reply repeated."""

from __future__ import annotations

from diffusellm.learn.dataset import ChatExample
from diffusellm.learn.quality import training_warnings, trivial_body


def _examples(*replies: str) -> list[ChatExample]:
    return [ChatExample([{"role": "user", "content": f"write f{i}"}], r) for i, r in enumerate(replies)]


def test_stub_bodies_are_trivial_and_real_code_is_not() -> None:
    for stub in ("    pass\n", "    ...\n", "    # later\n    return None\n", "    raise NotImplementedError('x')\n", ""):
        assert trivial_body(stub), stub
    assert not trivial_body("    return a + b\n")
    assert not trivial_body("    if x:\n        pass\n    return x\n")


def test_one_example_whose_answer_is_pass_gets_both_warnings() -> None:
    warnings = training_warnings(_examples("    pass\n"))
    assert len(warnings) == 2
    assert warnings[0].startswith("only 1 training example(s)")
    assert warnings[1].startswith("1 of 1 example replies are trivial bodies")


def test_a_healthy_set_has_no_warnings_and_a_repetitive_one_is_named() -> None:
    healthy = _examples(*(f"    return x * {i}\n" for i in range(25)))
    assert training_warnings(healthy) == []
    repeated = _examples(*(["    return 1\n"] * 20 + ["    return 2\n"] * 5))
    assert training_warnings(repeated) == ["only 2 distinct replies among 25 examples: the adapter learns to repeat them"]
    assert training_warnings([]) == []
