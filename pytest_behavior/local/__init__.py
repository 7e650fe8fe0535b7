"""The optional embedded local model behind ``--behavior-model=local/...``.

:mod:`~pytest_behavior.local.model` finds the weights and runs
:mod:`~pytest_behavior.local.server` (with :mod:`~pytest_behavior.local.echo`) in a
child process. The runtime needs the ``[local]`` extra (llama-cpp-python and a GGUF
model package); importing this package, or ``local.model``, must stay cheap and
never import ``llama_cpp``.
"""
