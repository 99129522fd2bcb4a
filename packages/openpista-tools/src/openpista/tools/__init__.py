"""openpista tools: what the LLM can do on this machine (`system.run` in `openpista.tools.system`).

Each module is found through an `openpista.tools` entry point and imported only when its
tools are registered, so this package face imports nothing.
"""
