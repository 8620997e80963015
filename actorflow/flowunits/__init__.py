"""Built-in flowunits, one small module per unit family.

Built-in units register like any plugin: through the entry-point group
``actorflow.flowunits`` in ``pyproject.toml`` (``name = "module:Class"``). The registry
imports a module only when a graph names one of its units, so ``import actorflow``
stays light.
"""
