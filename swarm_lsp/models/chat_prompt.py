"""A conversation as the prompt text the model's own chat template makes of it.

llama-cpp-python renders the GGUF's ``tokenizer.chat_template`` (Jinja) inside
``create_chat_completion`` and then samples through its Python sampler chain. Rendering it here
the same way lets a greedy chat run in the engine's own decoding loop
(:mod:`swarm_lsp.models.greedy`), which reports how many prompt tokens were reused from the
last request and how many were evaluated.
"""

from __future__ import annotations

from typing import Any


def render(llm: Any, messages: list[dict[str, str]]) -> str | None:
    """The prompt for ``messages`` with the assistant's turn opened, or None when the model
    has no Jinja template of its own (llama-cpp-python then picks a built-in format)."""
    if getattr(llm, "chat_format", None) != "chat_template.default":
        return None
    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        return None
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    eos_id, bos_id = llm.token_eos(), llm.token_bos()
    formatter = Jinja2ChatFormatter(
        template=template,
        eos_token=llm._model.token_get_text(eos_id) if eos_id != -1 else "",
        bos_token=llm._model.token_get_text(bos_id) if bos_id != -1 else "",
        add_generation_prompt=True,
    )
    return str(formatter(messages=messages).prompt)  # type: ignore[arg-type]
