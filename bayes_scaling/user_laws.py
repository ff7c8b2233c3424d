"""A user's own law, named on the command line as ``path/to/law.py:factory`` or ``package.module:factory``.

The factory is called with no arguments and must return a :class:`~bayes_scaling.laws.Law` (see
``examples/custom_law.py``); the law is registered under its own name so that saved posteriors and reports name it.
Programs of a law whose functions live outside this package are compiled per process (never stored), since its code
can change under the same name.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

from .laws import Law, get_law, register_law

__all__ = ["load_law", "is_law_spec"]


def is_law_spec(text: str) -> bool:
    """Whether ``text`` names a factory (``FILE.py:NAME`` or ``MODULE:NAME``) rather than a registered law."""
    return ":" in str(text)


def _module_of(where: str, spec: str):
    if where.endswith(".py") or os.sep in where or "/" in where:
        if not os.path.isfile(where):
            raise ValueError(f"--law {spec}: no file {where}")
        name = "bayes_scaling_user_law_" + os.path.splitext(os.path.basename(where))[0]
        loader = importlib.util.spec_from_file_location(name, where)
        module = importlib.util.module_from_spec(loader)
        sys.modules[name] = module
        try:
            loader.loader.exec_module(module)
        except Exception as err:  # the user's file: say which and why, in one line
            raise ValueError(f"--law {spec}: importing {where} failed: {type(err).__name__}: {err}") from None
        return module
    try:
        return importlib.import_module(where)
    except Exception as err:
        raise ValueError(f"--law {spec}: cannot import module {where!r}: {type(err).__name__}: {err}") from None


def load_law(spec: str) -> Law:
    """The law made by the factory that ``spec`` names (``FILE.py:NAME`` or ``MODULE:NAME``); a registered law's
    name is returned as :func:`~bayes_scaling.laws.get_law` gives it."""
    if not is_law_spec(spec):
        return get_law(spec)
    where, _, name = str(spec).rpartition(":")
    if not where or not name:
        raise ValueError(f"--law {spec}: expected FILE.py:FACTORY or MODULE:FACTORY")
    module = _module_of(where, spec)
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ValueError(f"--law {spec}: {where} has no function {name!r}")
    try:
        law = factory()
    except Exception as err:
        raise ValueError(f"--law {spec}: {name}() failed: {type(err).__name__}: {err}") from None
    if not isinstance(law, Law):
        raise ValueError(f"--law {spec}: {name}() returned {type(law).__name__}, not a bayes_scaling Law")
    register_law(law.name, lambda: law)
    return law
