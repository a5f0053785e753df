"""The ``curate`` command line: one module per area, each with a ``register(app)``; :mod:`curate.cli.main` is the entry."""
