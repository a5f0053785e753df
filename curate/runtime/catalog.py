"""Build scorers and selectors from the names the CLI and recipes use; the names come from the classes.

Each scorer class lists the names it answers to (``catalog``: name -> constructor options) and its capabilities
(``learns_from``, ``needs_model_version``, ``embeddings_only``); each selector class its ``name``. Any other name of
the form ``package.module:ClassName`` is imported and constructed without arguments (your own scorer or selector).
Scorer modules are imported only when a name is looked up, so ``import curate.runtime.catalog`` stays light.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from typing import Any

import numpy as np

from curate.errors import InputError
from curate.scorers.base import BaseScorer, BuildContext, Scorer
from curate.selectors.base import BaseSelector, Selector

#: Modules whose :class:`~curate.scorers.base.BaseScorer` subclasses ``curate score --scorer`` knows.
SCORER_MODULES = ("curate.scorers.embedding", "curate.scorers.perplexity", "curate.scorers.egl",
                  "curate.scorers.classifier", "curate.scorers.reward", "curate.scorers.rewrite",
                  "curate.scorers.reward_laplace", "curate.scorers.prompt_coverage")
#: Selectors ``curate select --selector`` knows, each with the options it is built with by name.
SELECTOR_OPTIONS: dict[str, dict[str, Any]] = {"kcenter": {"metric": "cosine"}, "cluster": {}, "round_robin": {}}

__all__ = ["SCORER_MODULES", "BuildContext", "build_scorer", "build_selector", "scorer_class", "scorer_names",
           "scorer_options", "seed_model_check", "selector_names"]


def _import(path: str) -> Any:
    module, _, name = path.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise InputError(
            f"cannot import {path!r}: {exc}. Give package.module:ClassName of an installed module."
        ) from exc


def _subclasses(base: type[Any]) -> list[type[Any]]:
    found: list[type[Any]] = []
    stack = list(base.__subclasses__())
    while stack:
        cls = stack.pop(0)
        found.append(cls)
        stack.extend(cls.__subclasses__())
    return found


@functools.cache
def _scorer_table() -> dict[str, tuple[type[BaseScorer], dict[str, Any]]]:
    """``{name: (class, options)}`` from every scorer class of :data:`SCORER_MODULES` (catalog names first)."""
    for module in SCORER_MODULES:
        importlib.import_module(module)
    classes: list[type[BaseScorer]] = [c for c in _subclasses(BaseScorer) if c.__module__ in SCORER_MODULES]
    table: dict[str, tuple[type[BaseScorer], dict[str, Any]]] = {}
    for cls in classes:
        for name, options in cls.catalog.items():
            table[name] = (cls, dict(options))
    for cls in classes:
        if "name" in vars(cls):  # a class's own name (e.g. reward_uncertainty) builds it with its defaults
            table.setdefault(cls.name, (cls, {}))
    return table


def _scorer_entry(name: str) -> tuple[type[BaseScorer], dict[str, Any]]:
    table = _scorer_table()
    if name not in table:
        raise InputError(f"unknown scorer {name!r}; use one of {', '.join(table)} or package.module:ClassName.")
    return table[name]


def scorer_names() -> list[str]:
    """Every scorer name :func:`build_scorer` accepts (besides ``package.module:ClassName``)."""
    return list(_scorer_table())


def scorer_class(name: str) -> type[BaseScorer] | None:
    """The class behind scorer ``name`` (its capabilities are class attributes), or ``None`` for an import path.

    Raises :class:`InputError` for an unknown name.
    """
    if ":" in name:
        cls = _import(name)
        return cls if isinstance(cls, type) and issubclass(cls, BaseScorer) else None
    return _scorer_entry(name)[0]


def scorer_options(name: str) -> dict[str, Any]:
    """The constructor options scorer ``name`` stands for (e.g. ``margin`` -> ``{"method": "margin"}``)."""
    table = _scorer_table()
    return dict(table[name][1]) if name in table else {}


def build_scorer(name: str, ctx: BuildContext) -> Scorer:
    """The scorer called ``name`` (see :func:`scorer_names`) or ``package.module:ClassName``, built for ``ctx``."""
    if ":" in name:
        scorer = _import(name)()
        if not isinstance(scorer, Scorer):
            raise InputError(f"{name} is not a scorer: it needs name, key() and score(records).")
        return scorer
    cls, options = _scorer_entry(name)
    return cls.build(ctx, **dict(options))


def seed_model_check(ctx: BuildContext) -> Any:
    """Cross-validate a logistic regression on the labeled texts (:func:`curate.rounds.coldstart.check_seed_model`).

    Returns the report (its ``warnings`` say when the seed model is too weak or overfit for its uncertainty
    rankings to mean anything), or ``None`` when fewer than two classes are labeled.
    """
    from curate.rounds.coldstart import check_seed_model
    from curate.scorers.classifier import labeled_texts

    records, labels = labeled_texts(ctx.labeled)
    if len(set(labels)) < 2:
        return None
    X = ctx.make_embedder().embed_records(records)
    return check_seed_model(X, labels, rng=np.random.default_rng(ctx.seed))


def _selector_table() -> dict[str, type[BaseSelector]]:
    importlib.import_module("curate.selectors")
    classes: list[type[BaseSelector]] = _subclasses(BaseSelector)
    return {cls.name: cls for cls in classes
            if cls.__module__.startswith("curate.selectors.") and not cls.__name__.startswith("_")
            and "base" not in {f.name for f in dataclasses.fields(cls)}}  # wrappers are composed in code


def selector_names() -> list[str]:
    """Every selector name :func:`build_selector` accepts (besides ``package.module:ClassName``)."""
    return sorted(_selector_table())


def build_selector(name: str, *, threshold: float | None = None) -> Selector:
    """The selector called ``name`` (see :func:`selector_names`) or ``package.module:ClassName``.

    ``badge`` selects over gradient embeddings, which only the classifier scorers provide; ``threshold`` is the
    cosine threshold of ``deita``. Wrappers (random mix, quotas, prefilter) take a base selector and are composed
    in code, not named here.
    """
    if ":" in name:
        selector = _import(name)()
        if not isinstance(selector, Selector):
            raise InputError(f"{name} is not a selector: it needs name, key() and select(scores, k, ...).")
        return selector
    table = _selector_table()
    if name not in table:
        raise InputError(
            f"unknown selector {name!r}; use one of {', '.join(sorted(table))} or package.module:ClassName."
        )
    options = dict(SELECTOR_OPTIONS.get(name, {}))
    if name == "deita" and threshold is not None:
        options["threshold"] = threshold
    return table[name](**options)
