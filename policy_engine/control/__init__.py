"""The control plane: a pure deterministic core and the shells around it.

Layer 4, above :mod:`policy_engine.engine` (beside :mod:`policy_engine.analysis`):

- :mod:`.core` (the dispatcher, composing :mod:`.kernel` and the parts
  :mod:`.allocation`, :mod:`.lifecycle`, :mod:`.latching`, :mod:`.modes`),
  :mod:`.state`, :mod:`.records`, :mod:`.snapshot`, :mod:`.events` (the typed
  events) and :mod:`.shell` (admit -> refuse -> journal -> apply): the core,
  ``(state, event) -> (state, records)``, with no I/O, no clock, no threads and
  no logging;
- :mod:`.controller` (with :mod:`.journal` and :mod:`.watcher`): the in-process
  shell, thread safe, journaled, with subscribers;
- :mod:`.replay`: the journal re-run through the core, and what-if comparison.
"""
