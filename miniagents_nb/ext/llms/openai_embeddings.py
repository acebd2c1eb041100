"""`openai_embedding_agent`: embeddings through the official `openai` SDK (OpenAI and compatible servers)."""

from __future__ import annotations

from typing import Any

from miniagents_nb.agents import InteractionContext, MiniAgent, MiniAgents
from miniagents_nb.ext.llms.errors import LLMResponseError, llm_error_from
from miniagents_nb.ext.llms.llm_utils import (
    amessages_to_llm_dicts,
    llm_miniagent,
    route_unknown_kwargs_to_extra_body,
    thaw,
)
from miniagents_nb.ext.llms.messages import EmbeddingMessage
from miniagents_nb.ext.llms.openai import openai_client

__all__ = ["openai_embedding_agent"]


async def _openai_embedding_agent(
    ctx: InteractionContext,
    model: str,
    *,
    async_client: Any = None,
    batch_mode: bool = False,
    response_metadata: Any = None,
    llm_logger_agent: Any = None,
    base_url: str | None = None,
    api_key: str | None = None,
    api_key_env: str | None = None,
    max_retries: int | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> None:
    """Embeds its input: all messages joined into one text, or (`batch_mode=True`) one embedding per message.
    Replies `EmbeddingMessage`s (`embedding`, `content` = the embedded text, `model`, `usage`, ...)."""
    texts = [message_dict["content"] for message_dict in await amessages_to_llm_dicts(ctx.message_promises)]
    if not batch_mode:
        texts = ["\n\n".join(texts)]
    metadata = thaw(response_metadata) or {}
    request = {key: thaw(value) for key, value in kwargs.items()}
    if timeout is not None:
        request["timeout"] = timeout
    try:
        async with openai_client(
            async_client=async_client,
            api_key=api_key,
            api_key_env=api_key_env,
            base_url=base_url,
            max_retries=max_retries,
        ) as client:
            method = client.embeddings.create
            response = await method(
                **route_unknown_kwargs_to_extra_body(method, {"model": model, "input": texts, **request})
            )
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(texts):
            raise LLMResponseError(
                f"The server returned {len(data)} embeddings for {len(texts)} inputs; "
                "the server may not follow the OpenAI protocol.",
                provider="openai",
                model=model,
            )
        usage = response.usage.model_dump(exclude_none=True) if getattr(response, "usage", None) else None
    except Exception as error:
        translated = llm_error_from(
            error, provider="openai", model=model, max_retries=max_retries, timeout=timeout, base_url=base_url
        )
        if translated is error:
            raise
        raise translated from error
    replies = [
        EmbeddingMessage(
            content=text,
            embedding=tuple(item.embedding),
            **{"model": model, "response_model": response.model, "usage": usage, **metadata},
        )
        for text, item in zip(texts, data, strict=True)
    ]
    ctx.reply(replies)
    logger = _resolve_logger(llm_logger_agent)
    if logger is not None:
        preview = [
            {
                "content": f"{message.content}\n\n(embedding of {len(message.embedding)} floats: "
                f"{', '.join(f'{value:g}' for value in message.embedding[:8])}"
                f"{', ...' if len(message.embedding) > 8 else ''})",
                "role": "embedding",
                "model": model,
            }
            for message in replies
        ]
        ctx.make_sure_to_wait(
            logger.trigger(
                preview,
                request_metadata={"agent_alias": ctx.this_agent.alias, "model": model, "batch_mode": batch_mode},
                show_response_metadata=False,
            )
        )


def _resolve_logger(value: Any) -> Any:
    if value is None:
        value = MiniAgents.get_current().llm_logger_agent
    if value is True:
        from miniagents_nb.ext.agents.llm_logger_agents import markdown_llm_logger_agent

        return markdown_llm_logger_agent
    return value if isinstance(value, MiniAgent) else None


openai_embedding_agent = llm_miniagent(_openai_embedding_agent, alias="OPENAI_EMBEDDING_AGENT")
"""Embeds its input with the OpenAI embeddings API: `openai_embedding_agent.trigger(texts, model="...")`."""
