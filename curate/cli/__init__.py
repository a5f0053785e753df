"""The ``curate`` command line: one module per area, each with a ``register(app)``; the entry is ``main``."""
