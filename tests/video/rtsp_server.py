"""A loopback RTSP server for tests and benchmarks: serves an MP4 (H.264) file, looped, at its own frame rate.

Runs under Debian's /usr/bin/python3 (PyGObject and gst-rtsp-server live there, not in the venv):
    /usr/bin/python3 tests/video/rtsp_server.py --port 8554 --path /cam clip.mp4
Prints "READY <port>" on stdout once it listens. Each client gets the file from its start (no re-encoding).
"""

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("clip")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/cam")
    args = parser.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    # Looping: the factory re-creates the pipeline per client; a client that reads past the end gets EOS, so
    # tests use clips longer than they need.
    factory.set_launch(
        f'( filesrc location="{args.clip}" ! qtdemux ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 )'
    )
    factory.set_shared(False)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print("ERROR cannot listen", flush=True)
        return 1
    print(f"READY {args.port}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
