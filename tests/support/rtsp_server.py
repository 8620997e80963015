"""A real RTSP server on 127.0.0.1 for the reconnect tests: GStreamer's rtsp-server.

Run with Debian's Python (``/usr/bin/python3``, which has ``python3-gi``; the Makefile
installs ``gir1.2-gst-rtsp-server-1.0`` where missing)::

    /usr/bin/python3 tests/support/rtsp_server.py PORT

It serves ``rtsp://127.0.0.1:PORT/test``: a live 320x240 test video (a moving ball) at
15 frames/s as Motion-JPEG over RTP, shared by every client, prints ``ready`` once it
listens, and runs until terminated.
"""

from __future__ import annotations

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PIPELINE = (
    "( videotestsrc is-live=true pattern=ball "
    "! video/x-raw,width=320,height=240,framerate=15/1 ! videoconvert "
    "! video/x-raw,format=I420 "
    "! jpegenc quality=80 ! rtpjpegpay name=pay0 pt=26 )"
)


def main(port: int) -> None:
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE)
    factory.set_shared(True)
    server.get_mount_points().add_factory("/test", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main(int(sys.argv[1]))
