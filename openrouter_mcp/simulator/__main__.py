"""``python -m openrouter_mcp.simulator --port N``: serve the simulated OpenRouter (see :func:`.serve.main`)."""

from openrouter_mcp.simulator.serve import main

if __name__ == "__main__":
    main()
