"""``python -m actorflow.demo``: see ``actorflow.demo.face_detect``."""

from __future__ import annotations

import sys

from actorflow.demo.face_detect import main

if __name__ == "__main__":
    sys.exit(main())
