"""The stand-in's broker process, behind :mod:`standin` (which keeps the standard-library
process wrapper and the entry point). Its modules need python-qpid-proton:

- :mod:`_standin.wire`: AMQP message sections, the SDK's batches, a message as delivered.
- :mod:`_standin.broker`: the entities, messages, locks and sequence numbers; settling,
  expiry, dead-lettering, and the state file kept across restarts.
- :mod:`_standin.management`: the ``$management`` operations, one function each.
- :mod:`_standin.server`: the AMQP container and links wired to the broker.
"""
