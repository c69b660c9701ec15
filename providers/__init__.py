"""Provider clients and their pure parsers by family (``instagram/``, ``youtube/``, ``shopify/``, ``openai/``,
``cdn/``); at the top, what they share: the HTTP layer, errors, credentials, rate limits, breakers, the crawler.
The sandbox (``sandbox/``) stands in for them in tests and demos."""
