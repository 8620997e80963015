"""The face-detection demo (``python -m actorflow.demo``, what ``make demo`` runs)."""
