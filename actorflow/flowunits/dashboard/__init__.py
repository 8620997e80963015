"""Live video for the dashboard: the ``dashboard`` sink unit and the frame hub it feeds."""
