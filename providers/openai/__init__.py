"""OpenAI-compatible chat completions (OpenAI or Azure OpenAI), which GPT enrichment asks (``chat``)."""
