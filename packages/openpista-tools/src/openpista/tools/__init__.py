"""openpista tools: what the LLM can do on this machine.

`system.run` (`openpista.tools.system`), `screen.capture` and `screen.ocr`
(`openpista.tools.screen`), the `browser.*` tools (`openpista.tools.browser`) and
`system.notify` (`openpista.tools.notify`). Each module is found through an `openpista.tools`
entry point and imported only when its tools are registered, and each imports its heavy
libraries (mss, Pillow, Playwright, jeepney) only inside the call that needs them, so this
package face imports nothing.
"""
