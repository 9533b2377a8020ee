"""One error tree (common/errors.py): every exception settlewatch defines derives from
SettlewatchError and is drawn in the tree of that module's docstring."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import settlewatch
from settlewatch.common import errors


def defined_exceptions() -> list[type[BaseException]]:
    found = []
    for module_info in pkgutil.walk_packages(settlewatch.__path__, "settlewatch."):
        if ".migrations" in module_info.name or module_info.name.endswith("__main__"):
            continue
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                found.append(cls)
    return found


def test_every_exception_is_in_the_tree_and_its_picture() -> None:
    public = [cls for cls in defined_exceptions() if not cls.__name__.startswith("_")]
    assert len(public) >= 10
    assert [c.__name__ for c in public if not issubclass(c, errors.SettlewatchError)] == []
    assert errors.__doc__ is not None
    assert [c.__name__ for c in public if c.__name__ not in errors.__doc__] == []
