"""``actorflow gallery build DIR -o people.npz``: enrol people from folders of photos.

``DIR`` holds one sub-folder per person (its name is the person's name), with one or
more photos each. Every photo gives one embedding (its largest face); photos where no
face is found, or that cannot be read, are listed on stderr by file. The output is
written atomically, so a running flow that reads it (``face_recognition``'s
``gallery``) picks up the new version on its next frame without a restart.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``gallery`` command (``gallery build``) to the ``actorflow`` CLI."""
    parser = subparsers.add_parser(
        "gallery",
        help="build a face identity gallery from folders of photos",
        description="Face identity galleries for the face_recognition unit.",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION")
    build = actions.add_parser(
        "build",
        help="enrol people: DIR/<person>/<photos> -> people.npz",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build.add_argument("directory", metavar="DIR", help="one sub-folder of photos per person")
    build.add_argument("-o", "--output", required=True, help="the gallery file to write (.npz)")
    build.add_argument(
        "--detection-threshold", type=float, default=0.7, help="smallest face score (0-1)"
    )
    build.add_argument(
        "--strict", action="store_true", help="fail (exit 1) if any photo gave no face"
    )
    build.set_defaults(handler=run_build)
    parser.set_defaults(handler=lambda _args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_build(args: argparse.Namespace) -> int:
    """Build the gallery; print a summary to stdout, problems to stderr."""
    from actorflow.errors import UnitConfigError
    from actorflow.flowunits.face.recognize import FaceRecognizer

    try:
        recognizer = FaceRecognizer(score_threshold=args.detection_threshold)
        gallery, reports = recognizer.build_gallery(args.directory)
    except (ValueError, UnitConfigError) as exc:
        print(f"actorflow gallery build: {exc}", file=sys.stderr)
        return 1
    failed = [r for r in reports if not r.used]
    for report in reports:
        kind = "note" if report.used else "skipped"
        print(f"{kind}: {report.path}: {report.problem}", file=sys.stderr)
    output = Path(args.output)
    gallery.save(output)
    counts = {p: int((gallery.names == p).sum()) for p in gallery.people}
    enrolled = ", ".join(f"{p} ({n})" for p, n in counts.items())
    print(f"wrote {output}: {len(gallery.people)} people, {len(gallery)} photos: {enrolled}")
    if failed:
        print(f"{len(failed)} photo(s) or folder(s) gave no face (listed above)", file=sys.stderr)
    return 1 if failed and args.strict else 0
