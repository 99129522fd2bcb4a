"""openpista channels: where messages come from and replies go (cli here; telegram, web, ...).

Every channel is a `ChannelAdapter` (the protocol lives in `openpista.core.channel`):

- `name` is the prefix of the channel ids it owns: `cli` owns `cli:local`.
- `run(dispatch)` receives until stopped or its source ends, turning each incoming message
  into a `ChannelEvent` handed to `dispatch` (the gateway), which returns once it is queued.
- `send(response)` delivers the agent's reply (or error reply, `is_error`) for a channel id;
  `send_delta(channel_id, session_id, text)` delivers streamed text before it, and channels
  that cannot stream ignore it.
- `stop()` makes `run` return soon after.

A channel is found through an `openpista.channels` entry point naming a factory
`(Config) -> ChannelAdapter`, so third-party channels plug in the same way. Each module is
imported only when its channel is used, so this package face imports nothing.
"""
