"""Which cameras this agent runs, and with what: configuration plus discovery, resolved into camera jobs.

Two kinds of camera reach a worker:
- a configured camera with a direct `url` (a camera without ONVIF, a file, an HTTP snapshot URL): no discovery;
- a camera that discovery found and interrogated successfully: its substream URI from ONVIF, the credentials that
  worked (the camera's own from the configuration, else the credential set whose user name discovery reports), and
  the motion settings of the configuration entry that matches it (by uuid, then IP, then name), if any.

`stream: snapshot` polls HTTP pictures instead of decoding video: the entry's http(s) `url`, or for a discovered
camera the ONVIF snapshot URI of its chosen profile, with the same credentials (the source answers Digest or Basic).

A camera that discovery found but could not interrogate has no stream to run; it is not a job, but the daemon
still shows it with the failure reason (auth failed, no ONVIF answer, ...).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from agent.app.config_map import pipeline_settings, tracker_settings
from agent.app.jobs import CameraJob
from agent.camera.settings import OnvifEventsSettings
from agent.config import AgentConfig, StreamChoice, effective_camera, match_camera
from agent.config.effective import CameraSettings
from agent.models import CameraInfo, StatusReason

HTTP_SCHEMES = ("http", "https")
# Kept for entries written before `stream: snapshot` existed: with `stream: auto`, an http(s) url whose path looks
# like a picture is polled rather than opened as a video stream (which would end after one frame and reconnect).
SNAPSHOT_HINTS = (".jpg", ".jpeg", "snapshot", "snap.", "picture", "onvif/snapshot")


NO_SNAPSHOT_URI = ("stream: snapshot, but the camera gave no ONVIF snapshot URI; set stream: auto for video, "
                   "or list it with its picture address as url")


@dataclass(frozen=True, slots=True)
class ResolvedCamera:
    """One camera the agent knows, with a stream to run (`uri`) or the reason it has none (`problem`)."""

    camera_id: str
    settings: CameraSettings
    uri: str | None  # with credentials inside: never log it
    snapshot: bool = False  # `uri` is polled as HTTP JPEG snapshots
    info: CameraInfo | None = None
    problem: str | None = None  # plain words for the status message
    reason: StatusReason | None = None  # why there is no stream, in the status machine's words

    @property
    def runnable(self) -> bool:
        return self.uri is not None and self.settings.enabled


def with_credentials(uri: str, user: str | None, password: str | None) -> str:
    """Put `user:password@` into an RTSP/HTTP URI that has no credentials of its own (cameras want them there)."""
    if not user:
        return uri
    parts = urlsplit(uri)
    if parts.username or not parts.hostname:
        return uri
    userinfo = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))


def _looks_like_snapshot(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in HTTP_SCHEMES and any(h in parts.path.lower() for h in SNAPSHOT_HINTS)


def polls_snapshots(settings: CameraSettings, url: str | None = None) -> bool:
    """Whether this camera is polled as HTTP snapshots: `stream: snapshot`, or (auto) a url that is a picture."""
    if settings.stream is StreamChoice.SNAPSHOT:
        return True
    return url is not None and settings.stream is StreamChoice.AUTO and _looks_like_snapshot(url)


def configured_cameras(cfg: AgentConfig) -> list[ResolvedCamera]:
    """Cameras with a direct `url` in the configuration: they need no discovery."""
    out = []
    for entry in cfg.cameras:
        if entry.url is None or not entry.name:
            continue
        settings = effective_camera(cfg, entry)
        creds = entry.credentials
        uri = with_credentials(str(entry.url), creds.username if creds else None, creds.secret() if creds else None)
        out.append(ResolvedCamera(entry.name, settings, uri, snapshot=polls_snapshots(settings, str(entry.url))))
    return out


def discovered_camera(cfg: AgentConfig, info: CameraInfo, *, credential_user: str | None, ok: bool,
                      problem: str | None = None, reason: StatusReason | None = None) -> ResolvedCamera:
    """A camera from discovery (`info.camera_id` is the inventory id), matched to its configuration entry."""
    entry = match_camera(cfg, uuid=info.endpoint_uuid, ip=info.ip, name=info.camera_id)
    settings = effective_camera(cfg, entry, name=info.camera_id)
    snapshot = polls_snapshots(settings)
    source_uri = info.snapshot_uri if snapshot else info.stream_uri
    if ok and snapshot and not source_uri:
        return ResolvedCamera(info.camera_id, settings, None, info=info, problem=NO_SNAPSHOT_URI,
                              reason=StatusReason.ONVIF_ERROR)
    if not ok or not source_uri:
        return ResolvedCamera(info.camera_id, settings, None, info=info,
                              problem=problem or info.error or "no stream URI from ONVIF",
                              reason=reason or StatusReason.ONVIF_ERROR)
    user, password = _credential_for(cfg, settings, credential_user)
    uri = with_credentials(source_uri, user, password)
    return ResolvedCamera(info.camera_id, settings, uri, snapshot=snapshot, info=info)


def _credential_for(cfg: AgentConfig, settings: CameraSettings, user: str | None) -> tuple[str | None, str | None]:
    own = settings.credentials
    if own is not None and (user is None or own.username == user):
        return own.username, own.secret()
    for cred in cfg.discovery.credentials:
        if cred.username == user or user is None:  # unknown user: the set discovery tries first
            return cred.username, cred.secret()
    return user, None


def merge(configured: Iterable[ResolvedCamera], discovered: Mapping[str, ResolvedCamera]) -> list[ResolvedCamera]:
    """Configured-by-URL cameras win over a discovered camera of the same id; the order is stable (by id)."""
    by_id = dict(discovered)
    for cam in configured:
        by_id[cam.camera_id] = cam
    return [by_id[k] for k in sorted(by_id)]


def jobs_for(cfg: AgentConfig, cameras: Iterable[ResolvedCamera], *, state_dir: Path) -> list[CameraJob]:
    """Camera jobs for every runnable camera; equal settings give equal jobs, so a reload leaves them alone."""
    jobs = []
    for cam in cameras:
        if not cam.runnable:
            continue
        assert cam.uri is not None
        pipeline = pipeline_settings(cam.settings, camera_id=cam.camera_id, uri=cam.uri, snapshot=cam.snapshot)
        jobs.append(CameraJob(
            camera_id=cam.camera_id,
            pipeline=pipeline,
            agent_id=cfg.agent_id,
            topic_prefix=cfg.topic_prefix,
            outbox_path=str(state_dir / "outbox.sqlite3"),
            outbox_max_bytes=int(cfg.storage.outbox_max_bytes),
            outbox_max_rows=int(cfg.storage.outbox_max_rows),
            snapshot_dir=str(state_dir / "snapshots"),
            snapshot_quota_bytes=int(cfg.storage.snapshot_quota_bytes),
            onvif_events=onvif_events_settings(cam),
        ))
    return jobs


def onvif_events_settings(cam: ResolvedCamera) -> OnvifEventsSettings | None:
    """The PullPoint subscription for a camera whose configuration asks for its own motion alarm."""
    source = str(cam.settings.event_source)
    if source == "video" or cam.info is None or not cam.info.xaddr or cam.uri is None:
        return None
    device = urlsplit(cam.info.xaddr)
    stream = urlsplit(cam.uri)  # holds the credentials that worked for this camera
    return OnvifEventsSettings(
        camera_id=cam.camera_id,
        host=device.hostname or cam.info.ip or "",
        port=device.port or 80,
        username=unquote(stream.username) if stream.username else None,
        password=unquote(stream.password) if stream.password else None,
        emit_events=source == "onvif_events",
        tracker=tracker_settings(cam.settings),
    )


def without_secrets(cam: ResolvedCamera) -> ResolvedCamera:
    """The same camera with the credentials taken out of its URI, for the state file and logs."""
    if cam.uri is None:
        return cam
    parts = urlsplit(cam.uri)
    if parts.password is None:
        return cam
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return dataclasses.replace(cam, uri=urlunsplit(parts._replace(netloc=netloc)))
