"""``python -m actorflow``: the command line (see ``actorflow --help``)."""

from __future__ import annotations

from actorflow.cli import main

raise SystemExit(main())
