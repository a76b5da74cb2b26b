"""OpenRouter itself: the HTTP client (the only module that imports httpx), its wire models, error answers,
the stream aggregator and the model catalog cache."""
