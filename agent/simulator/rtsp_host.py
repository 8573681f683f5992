"""RTSP host for simulated cameras. Runs under Debian's /usr/bin/python3 (PyGObject + GstRtspServer), not the venv.

Standalone on purpose: it imports only the standard library and GObject introspection, because the venv has no
PyGObject. One process hosts every camera: one GstRTSPServer per camera (its own address and port), each with a
main and a sub mount. Streams are pre-encoded elementary streams (see encode.py) pushed access unit by access unit
into an appsrc, so nothing is re-encoded; the RTSP sinks pace them in real time.

Control is JSON lines on stdin, one reply line on stdout per command ({"ok": true, ...} or {"error": "..."}).
End of stdin (the parent died or closed the pipe) stops the process.

Scene clock: frame k of a loop of N frames is sent at wall time anchor + m*N/fps + k/fps. A new session starts at
the next keyframe, so every client sees the same loop phase and the ground truth maps to wall time.
"""

from __future__ import annotations

import json
import os
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

RESYNC_LATE_S = 0.5  # a feed this far behind wall time (after a stall) jumps to the current loop phase
REALM = "MatthanSim"


class Clip:
    """A loaded elementary stream: one GLib.Bytes per access unit, shared by every session and camera."""

    def __init__(self, es_path: str, index_path: str) -> None:
        with open(index_path) as f:
            idx = json.load(f)
        with open(es_path, "rb") as f:
            data = f.read()
        self.codec = idx["codec"]
        self.fps = idx["fps"]
        self.aus = [GLib.Bytes.new(data[o:o + s]) for o, s, _k in idx["frames"]]
        self.keys = [bool(k) for _o, _s, k in idx["frames"]]
        self.n = len(self.aus)
        self.dur_ns = Gst.SECOND // self.fps


CLIPS: dict[str, Clip] = {}


def clip_for(es_path: str, index_path: str) -> Clip:
    if es_path not in CLIPS:
        CLIPS[es_path] = Clip(es_path, index_path)
    return CLIPS[es_path]


class Feed:
    """One appsrc (one media pipeline, shared by that mount's clients) and where it is in the loop."""

    def __init__(self, cam: Camera, clip: Clip, appsrc: Gst.Element) -> None:
        self.cam, self.clip, self.appsrc = cam, clip, appsrc
        self.pos: int | None = None
        self.pts = 0
        self.frozen_at: int | None = None  # keyframe repeated while frozen

    def running_time(self) -> int | None:
        clock = self.appsrc.get_clock()
        if clock is None or self.appsrc.get_state(0)[1] != Gst.State.PLAYING:
            return None
        return clock.get_time() - self.appsrc.get_base_time()

    def _sync(self, rt_now: int) -> None:
        """Start at the next keyframe, timed so that the loop phase matches wall time."""
        clip = self.clip
        now = time.time()
        phase = (now - self.cam.anchor) * clip.fps
        k = int(phase) + 1
        while not clip.keys[k % clip.n]:
            k += 1
        self.pos = k % clip.n
        self.pts = rt_now + int((k - phase) / clip.fps * Gst.SECOND)

    def push_next(self) -> None:
        cam, clip = self.cam, self.clip
        if cam.stall:
            cam.starving.add(self)
            return
        rt_now = self.running_time()
        if self.pos is None:
            self._sync(rt_now or 0)
        elif rt_now is not None and self.pts < rt_now - int(RESYNC_LATE_S * Gst.SECOND):
            self._sync(rt_now)
            self.frozen_at = None
        assert self.pos is not None
        if cam.freeze and self.frozen_at is None and clip.keys[self.pos]:
            self.frozen_at = self.pos  # freeze on the next keyframe: the picture stops, it does not jump back
        if self.frozen_at is not None and not cam.freeze and clip.keys[self.pos]:
            self.frozen_at = None  # unfreeze on a keyframe so the decoder never sees a broken reference
        idx = self.pos if self.frozen_at is None else self.frozen_at
        buf = Gst.Buffer.new_wrapped_bytes(clip.aus[idx])
        buf.pts = buf.dts = self.pts
        buf.duration = clip.dur_ns
        self.pos = (self.pos + 1) % clip.n
        self.pts += clip.dur_ns
        self.appsrc.emit("push-buffer", buf)


class Camera:
    def __init__(self, spec: dict) -> None:
        self.name = spec["name"]
        self.anchor = float(spec["anchor"])
        self.stall = self.freeze = self.refuse = False
        self.starving: set[Feed] = set()
        self.source_id = 0
        self.server = GstRtspServer.RTSPServer()
        self.server.set_address(spec["address"])
        self.server.set_service(str(spec.get("port", 0)))
        self.server.set_backlog(32)
        self.auth = GstRtspServer.RTSPAuth()
        self.auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        self.auth.set_realm(REALM)
        self.user = ""
        self.set_credentials(spec["username"], spec["password"])
        self.server.set_auth(self.auth)
        mounts = self.server.get_mount_points()
        for stream in spec["streams"]:
            clip = clip_for(stream["es"], stream["index"])
            factory = GstRtspServer.RTSPMediaFactory()
            if clip.codec == "h264":
                caps, chain = "video/x-h264,stream-format=byte-stream,alignment=au", "h264parse ! rtph264pay"
            else:
                caps, chain = "video/x-h265,stream-format=byte-stream,alignment=au", "h265parse ! rtph265pay"
            # max-buffers: a short queue, so a fault (freeze, stall) reaches the wire within a frame or two.
            factory.set_launch(f"( appsrc name=src is-live=false format=time max-buffers=3 caps={caps} ! {chain} "
                               "name=pay0 pt=96 config-interval=-1 )")
            factory.set_shared(True)
            factory.add_role_from_structure(Gst.Structure.from_string(
                "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true")[0])
            factory.connect("media-configure", self._on_media, clip)
            mounts.add_factory(stream["path"], factory)
        self.listen()

    def set_credentials(self, user: str, password: str) -> None:
        if self.user:
            self.auth.remove_digest(self.user)
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "user")
        self.auth.add_digest(user, password, token)
        self.user = user

    def _on_media(self, _factory: object, media: GstRtspServer.RTSPMedia, clip: Clip) -> None:
        appsrc = media.get_element().get_by_name("src")
        feed = Feed(self, clip, appsrc)
        appsrc.connect("need-data", lambda _src, _length: feed.push_next())

    def listen(self) -> int:
        if not self.source_id:
            self.source_id = self.server.attach(None)
            self.server.set_service(str(self.server.get_bound_port()))  # a free port stays ours after a refuse
        return self.server.get_bound_port()

    def port(self) -> int:
        return self.server.get_bound_port() if self.source_id else 0

    def close_listener(self, drop_clients: bool) -> None:
        if self.source_id:
            GLib.Source.remove(self.source_id)
            self.source_id = 0
        if drop_clients:
            self.server.client_filter(lambda _s, _c: GstRtspServer.RTSPFilterResult.REMOVE)

    def resume(self) -> None:
        starving, self.starving = self.starving, set()
        for feed in starving:
            feed.push_next()


CAMERAS: dict[str, Camera] = {}


def handle(cmd: dict) -> dict:
    op = cmd.get("cmd")
    if op == "add":
        if cmd["name"] in CAMERAS:
            return {"error": f"camera {cmd['name']} already exists"}
        cam = Camera(cmd)
        CAMERAS[cam.name] = cam
        return {"ok": True, "port": cam.port()}
    cam = CAMERAS.get(cmd.get("name", ""))
    if cam is None:
        return {"error": f"unknown camera {cmd.get('name')!r}"}
    if op == "state":
        was_stalled = cam.stall
        cam.stall, cam.freeze = bool(cmd.get("stall")), bool(cmd.get("freeze"))
        refuse = bool(cmd.get("refuse"))
        if refuse and not cam.refuse:
            cam.close_listener(drop_clients=True)
        elif cam.refuse and not refuse:
            cam.listen()
        cam.refuse = refuse
        if was_stalled and not cam.stall:
            cam.resume()
        return {"ok": True, "port": cam.port()}
    if op == "credentials":
        cam.set_credentials(cmd["username"], cmd["password"])
        return {"ok": True}
    if op == "move":
        cam.close_listener(drop_clients=True)
        cam.server.set_address(cmd["address"])
        cam.server.set_service(str(cmd.get("port", 0)))
        port = 0 if cam.refuse else cam.listen()
        return {"ok": True, "port": port}
    if op == "remove":
        cam.close_listener(drop_clients=True)
        del CAMERAS[cam.name]
        return {"ok": True}
    return {"error": f"unknown command {op!r}"}


def main() -> int:
    Gst.init(None)
    loop = GLib.MainLoop()
    stdin = GLib.IOChannel.unix_new(sys.stdin.fileno())
    buf = bytearray()

    def on_stdin(_channel: object, condition: int) -> bool:
        chunk = os.read(sys.stdin.fileno(), 65536) if condition & GLib.IO_IN else b""
        if not chunk:
            loop.quit()  # parent gone: stop serving
            return False
        buf.extend(chunk)
        while b"\n" in buf:
            line, _, rest = bytes(buf).partition(b"\n")
            buf[:] = rest
            try:
                reply = handle(json.loads(line))
            except Exception as exc:  # the parent must always get a reply line, whatever went wrong
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
        return True

    GLib.io_add_watch(stdin, GLib.PRIORITY_DEFAULT, GLib.IO_IN | GLib.IO_HUP | GLib.IO_ERR, on_stdin)
    sys.stdout.write(json.dumps({"ok": True, "ready": True, "gstreamer": Gst.version_string()}) + "\n")
    sys.stdout.flush()
    loop.run()
    for cam in list(CAMERAS.values()):
        cam.close_listener(drop_clients=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
