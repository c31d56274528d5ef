"""How a question becomes model input, shared by generation and training so both see the same tokens."""

from __future__ import annotations

from dataclasses import dataclass

from ..schema import defaults_from_schema


@dataclass(frozen=True)
@defaults_from_schema("reasoning.sampling.prompt")
class PromptSettings:
    """``reasoning.sampling.prompt``; defaults are the schema's."""

    template: str  # must contain {question}
    chat_template: bool  # wrap in the tokenizer's chat template (instruct models)
    system_prompt: str | None

    def __post_init__(self) -> None:
        if "{question}" not in self.template:
            raise ValueError(f"prompt template must contain '{{question}}': {self.template!r}")


def prompt_text(tokenizer, question: str, settings: PromptSettings) -> str:
    """The exact prompt string; with a chat template it ends with the assistant turn's header."""
    user = settings.template.replace("{question}", question)
    if not settings.chat_template:
        return user
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "prompt.chat_template is true but the tokenizer has no chat template; "
            "set chat_template: false for base models"
        )
    messages = [{"role": "user", "content": user}]
    if settings.system_prompt:
        messages.insert(0, {"role": "system", "content": settings.system_prompt})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def prompt_ids(tokenizer, question: str, settings: PromptSettings) -> list[int]:
    """Token ids of the prompt. A chat template already spells out its special tokens, so none are added."""
    text = prompt_text(tokenizer, question, settings)
    return list(tokenizer(text, add_special_tokens=not settings.chat_template)["input_ids"])


def completion_ids(tokenizer, completion: str) -> list[int]:
    """Token ids of a completion followed by EOS, which ends the assistant turn in chat templates."""
    ids = list(tokenizer(completion, add_special_tokens=False)["input_ids"])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return ids
