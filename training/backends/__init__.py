"""Generation backends: the in-process transformers path (``training.runners.generation``) and
OpenAI-compatible servers (vLLM, TGI, llama.cpp, SGLang, hosted APIs).

``openai_client`` is the HTTP client (no Django, no torch); ``config`` holds the pure checks of a
server's settings; ``models`` the ``ModelServer`` registry row; ``services``/``selectors`` its
writes and reads. The server-side generation runner is ``training.runners.generation_server``.
"""
