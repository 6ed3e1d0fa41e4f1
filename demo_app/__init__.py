"""The asgi_llmguard demo: a mock OpenAI-compatible LLM, a FastAPI app and a Django site that use it.

The library never imports this package; the demo, the tests and the benchmarks do.
"""
