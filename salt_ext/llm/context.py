"""Context-window management (AI003): trim the conversation, never the system rules.

A request is ``[system rules..., history..., task]``: the rules and the last
message (the task: question, candidates, results) are kept whole; history
turns are dropped oldest first until prompt + answer fit the window. If the
rules and the task alone do not fit, the request fails with AI003.
"""

from __future__ import annotations

from collections.abc import Callable

from salt_ext.errors import ServerFlowError
from salt_ext.llm.types import LLMRequest, Message

PER_MESSAGE = 4  # chat-template tokens around each message


def prompt_tokens(messages: list[Message], count: Callable[[str], int]) -> int:
    return sum(count(m.content) + PER_MESSAGE for m in messages)


def fit_request(request: LLMRequest, window: int, max_output: int, count: Callable[[str], int]) -> tuple[LLMRequest, int]:
    """``request`` trimmed to ``window`` tokens (with room for ``max_output``); returns it and the turns dropped."""
    system = [m for m in request.messages if m.role == "system"]
    turns = [m for m in request.messages if m.role != "system"]
    if not turns:
        raise ServerFlowError("AI003", "the request has no message to answer")
    task, history = turns[-1], turns[:-1]
    budget = int(window) - int(max_output)
    fixed = prompt_tokens(system + [task], count)
    if fixed > budget:
        raise ServerFlowError(
            "AI003", f"the question with its data needs {fixed} tokens but the model's context holds {window} "
            f"(with {max_output} kept for the answer); ask about fewer servers or a narrower topic",
            needed=fixed, window=int(window))
    sizes = [count(m.content) + PER_MESSAGE for m in history]
    dropped = 0
    while history and fixed + sum(sizes) > budget:
        history.pop(0)
        sizes.pop(0)
        dropped += 1
    if dropped:
        request = LLMRequest(messages=system + history + [task], structured=request.structured,
                             max_tokens=request.max_tokens, temperature=request.temperature,
                             timeout=request.timeout, stop=list(request.stop), purpose=request.purpose)
    return request, dropped
