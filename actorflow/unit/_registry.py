"""Unit registry: name -> class, built-ins and the entry-point group ``actorflow.flowunits``.

Built-in units and installed packages alike declare their units in the entry-point
group ``actorflow.flowunits`` (actorflow's own are in its ``pyproject.toml``); a unit's
module is imported only when a graph names it::

    [project.entry-points."actorflow.flowunits"]
    face_blur = "acme_units.blur:FaceBlur"
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

import structlog

from actorflow.errors import UnitConfigError, UnitNotFoundError
from actorflow.graph import Contract, suggest
from actorflow.unit._base import FlowUnit
from actorflow.unit._params import abstract_problem, param_problems, unit_checker

ENTRY_POINT_GROUP = "actorflow.flowunits"

logger = structlog.get_logger(__name__)


class Registry:
    """Maps unit names to classes; implements the graph layer's ``UnitCatalog``."""

    def __init__(self) -> None:
        self._classes: dict[str, type[FlowUnit]] = {}
        self._lazy: dict[str, str] | None = None

    def register(self, cls: type[FlowUnit], name: str | None = None) -> type[FlowUnit]:
        """Register ``cls`` under ``name`` (default ``cls.name``); the last registration wins."""
        key = name or cls.name
        if not key:
            msg = f"{cls.__qualname__} has no registry name; set the class attribute 'name'"
            raise UnitConfigError(msg)
        previous = self._classes.get(key)
        if previous is not None and previous is not cls:
            logger.debug("unit_replaced", name=key, old=previous.__qualname__, new=cls.__qualname__)
        self._classes[key] = cls
        return cls

    def get(self, name: str) -> type[FlowUnit]:
        """Return the class registered as ``name``, importing built-ins and plugins lazily.

        Raises:
            UnitNotFoundError: no such unit; the message suggests near misses.
        """
        cls = self._classes.get(name)
        if cls is not None:
            return cls
        target = self._lazy_table().get(name)
        if target is not None:
            return self.register(_import(target, name), name)
        names = sorted(self.names())
        msg = (
            f"unknown unit {name!r}{suggest(name, names)} (installed units: {', '.join(names)};"
            " 'actorflow units' describes each)"
        )
        raise UnitNotFoundError(msg, name)

    def contract(self, name: str) -> Contract | None:
        """The unit's ports, or ``None`` (the graph layer's ``UnitCatalog`` protocol)."""
        try:
            cls = self.get(name)
        except UnitNotFoundError:
            return None
        return Contract(
            inputs=tuple(p.name for p in cls.inputs),
            outputs=tuple(p.name for p in cls.outputs),
            optional_inputs=frozenset(p.name for p in cls.inputs if p.optional),
            check=unit_checker(cls),
        )

    def names(self) -> Iterable[str]:
        """Every registered or installable unit name."""
        return set(self._classes) | set(self._lazy_table())

    def installed_names(self) -> Iterable[str]:
        """Names of the units installed with packages: built-ins and entry points.

        Units registered at run time (driver dirs, workflow blocks, tests) are not listed.
        """
        return set(self._lazy_table())

    def _lazy_table(self) -> dict[str, str]:
        if self._lazy is None:
            table: dict[str, str] = {}
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                table.setdefault(ep.name, ep.value)
            self._lazy = table
        return self._lazy


def instantiate(cls: type[FlowUnit], params: Mapping[str, Any], *, node: str) -> FlowUnit:
    """Build a unit from graph parameters, turning signature errors into clear messages.

    The parameters are checked against the unit's signature first (``param_problems``:
    unknown, missing, or not of the annotated type), and a unit without ``process`` is
    refused, so that nothing wrong reaches the constructor.

    Raises:
        UnitConfigError: an unknown, missing or mistyped parameter, a unit that cannot
            run, or the unit rejected a value.
    """
    label = f"node {node!r} ({cls.name or cls.__qualname__})"
    abstract = abstract_problem(cls)
    problems = [abstract] if abstract else param_problems(cls, params)
    if problems:
        raise UnitConfigError(f"{label}: " + "; ".join(problems))
    try:
        return cls(**params)
    except UnitConfigError as exc:
        msg = f"{label}: {exc}"
        raise UnitConfigError(msg) from exc
    except (TypeError, ValueError) as exc:
        msg = f"{label}: invalid parameters: {exc}"
        raise UnitConfigError(msg) from exc


def _import(target: str, name: str) -> type[FlowUnit]:
    module_name, _, attr = target.partition(":")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        msg = f"unit {name!r} is declared as {target!r}, which cannot be imported: {exc}"
        raise UnitNotFoundError(msg, name) from exc
    if not (isinstance(obj, type) and issubclass(obj, FlowUnit)):
        msg = f"unit {name!r} ({target}) is not a FlowUnit subclass"
        raise UnitNotFoundError(msg, name)
    return obj


default_registry = Registry()
"""The process-wide registry that ``name = ...`` classes and ``@flowunit`` register into."""
