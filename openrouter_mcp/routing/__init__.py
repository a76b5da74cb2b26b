"""Which model answers, at what price: personas, plan (candidates), pricing, budgets, decisions, cooldowns, fallback.

Pure: nothing here imports mcp or httpx, so every decision is tested directly and fast.
"""
