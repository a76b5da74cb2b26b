"""Which model answers, at what price: personas, candidate planning, fallback, cooldowns and budgets.

Pure: nothing here imports mcp or httpx, so every decision is tested directly and fast.
"""
