"""The doctor's checks: small functions, each returning a `CheckResult` with what was found and what to do next.

Texts are English templates with `%(name)s` parameters, marked for the gettext catalogue and translated only when
printed (agent/cli/doctor.py), so `--json` and the tests see stable English. The camera checks share a
`CameraProbe` that carries what earlier steps learned (clock offset, stream URI, frames) to later ones.

Only the standard library here; the host's checks are in hostchecks.py, and the checks that need PyAV, the motion
detector or paho live in the CLI module.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from agent.health import probes
from agent.i18n import N_

PASS, FAIL, SKIP = "pass", "fail", "skip"
CLOCK_OFFSET_MAX_S = 60.0  # beyond a minute event times are misleading, and some cameras reject WS-Security logins
# Cameras without a clock battery restart at 1970 (or their firmware's build date) after a power cut; none we install
# was made before this date, so an earlier camera time means the clock was reset, not merely drifted.
CLOCK_RESET_BEFORE = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One step. `status` is pass, fail or skip; `detail` and `hint` are English templates over `params`."""

    name: str
    title: str
    status: str
    detail: str = ""
    hint: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != FAIL

    def text(self, translate: Callable[[str], str] = lambda s: s) -> tuple[str, str, str]:
        """(title, detail, hint) translated and filled in."""

        def fill(template: str) -> str:
            if not template:
                return ""
            t = translate(template)
            try:
                return t % dict(self.params) if self.params else t
            except (KeyError, ValueError, TypeError):  # a bad translation must not hide the finding
                return template % dict(self.params) if self.params else template

        return translate(self.title), fill(self.detail), fill(self.hint)

    def to_dict(self, translate: Callable[[str], str] = lambda s: s) -> dict[str, Any]:
        title, detail, hint = self.text(translate)
        return {"name": self.name, "title": title, "status": self.status, "ok": self.ok, "detail": detail,
                "hint": hint}


def passed(name: str, title: str, detail: str = "", **params: Any) -> CheckResult:
    return CheckResult(name, title, PASS, detail, "", params)


def failed(name: str, title: str, detail: str, hint: str, **params: Any) -> CheckResult:
    return CheckResult(name, title, FAIL, detail, hint, params)


def skipped(name: str, title: str, detail: str, **params: Any) -> CheckResult:
    return CheckResult(name, title, SKIP, detail, "", params)


# -- camera ------------------------------------------------------------------------------------------------------
@dataclass
class CameraProbe:
    """One camera under examination. Credentials are never printed: `describe()` has none."""

    name: str
    host: str | None = None
    onvif_port: int | None = 80  # None: a camera known only by its stream URL (no ONVIF steps)
    rtsp_url: str | None = None  # with or without user:password@; the password is taken out before use
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = probes.SOAP_TIMEOUT_S
    # learned along the way
    session: probes.OnvifSession | None = None
    offset_s: float | None = None
    camera_time: datetime | None = None
    stream_uri: str | None = None
    device: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rtsp_url:
            clean, user, password = probes.strip_userinfo(self.rtsp_url)
            self.rtsp_url = clean
            if self.user is None and user:
                self.user, self.password = user, password
            if self.host is None:
                self.host = urlsplit(clean).hostname

    def describe(self) -> str:
        return f"{self.name} ({self.host})" if self.host and self.host != self.name else self.name

    def onvif(self) -> probes.OnvifSession:
        if self.session is None:
            self.session = probes.OnvifSession(
                probes.device_xaddr(self.host or "", self.onvif_port or 80), self.user, self.password,
                timeout=self.timeout_s,
            )
        return self.session


_T_REACH = N_("IP reachable")
_T_ONVIF = N_("ONVIF answers")
_T_AUTH = N_("credentials accepted")
_T_CLOCK = N_("camera clock")
_T_URI = N_("stream address (URI)")
_T_RTSP = N_("RTSP stream opens")

_H_UNREACHABLE = N_(
    "The camera does not answer at this address. Check its power and cable (PoE switch lights), that it is on "
    "this network, and whether its IP changed (run: matthan-agent discover)."
)
_H_REFUSED_ONVIF = N_(
    "Something answers at this address but refuses port %(port)s. If the camera was just powered on or is "
    "rebooting, wait a minute and run the doctor again. Otherwise ONVIF may be disabled in the camera's web page "
    "(enable ONVIF / Open Network Video Interface), it uses another port (try 8000, 8080, 2020), or another device "
    "now has this IP (run: matthan-agent discover)."
)
_H_NO_ADDRESS = N_(
    "No address is known for this camera: the config gives no ip or url, and discovery has not found it (it is not "
    "in the agent's inventory). Check the camera's power and cable, run: matthan-agent discover, or give its "
    "address with --onvif HOST."
)
_H_NO_CREDS = N_(
    "The camera requires a login and no user name or password is known for it. Give them with --user and "
    "--password-env, or add the camera's credentials (or discovery.credentials) to the config."
)

_H_REFUSED_RTSP = N_(
    "Something answers at this address but refuses port %(port)s. RTSP may be disabled in the camera's web page, "
    "or the stream address has the wrong port (554 is usual)."
)


def check_reachable(cam: CameraProbe) -> CheckResult:
    """TCP connect to the ONVIF port (or the RTSP port when only a stream URL is known)."""
    if not cam.host:  # the technician must find the camera: a run that could not look at it is not a clean run
        return failed("reachable", _T_REACH, N_("no address known for this camera"), _H_NO_ADDRESS)
    try:
        port = cam.onvif_port if cam.onvif_port is not None else probes.url_port(cam.rtsp_url or "", 554)
    except probes.ProbeError as exc:
        return failed("reachable", _T_REACH, "%(error)s", N_("Check the stream address: rtsp://IP:PORT/path."),
                      error=str(exc))
    try:
        seconds = probes.tcp_connect(cam.host, port, timeout=min(cam.timeout_s, 3.0))
    except probes.ProbeError as exc:
        if exc.kind == "refused":
            hint = _H_REFUSED_ONVIF if cam.onvif_port is not None else _H_REFUSED_RTSP
            return failed("reachable", _T_REACH, N_("%(host)s refused a connection on port %(port)s"),
                          hint, host=cam.host, port=port)
        return failed("reachable", _T_REACH, N_("no answer from %(host)s port %(port)s"), _H_UNREACHABLE,
                      host=cam.host, port=port)
    return passed("reachable", _T_REACH, N_("connected to %(host)s:%(port)s in %(ms)d ms"),
                  host=cam.host, port=port, ms=round(seconds * 1000))


def check_onvif(cam: CameraProbe, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> CheckResult:
    """Unauthenticated GetSystemDateAndTime: is this an ONVIF device, and what time does it think it is."""
    if cam.onvif_port is None or not cam.host:
        return skipped("onvif", _T_ONVIF, N_("not asked: the camera is given by its stream address only"))
    try:
        camera_time = probes.get_system_date_and_time(cam.onvif())
    except probes.ProbeError as exc:
        hint = {
            "http": N_("The port answers HTTP but not ONVIF at /onvif/device_service. Check the ONVIF port in the "
                       "camera's web page, and that ONVIF is enabled."),
            "protocol": N_("The answer was not ONVIF. Another device may have taken this IP address; check the "
                           "camera's address (matthan-agent discover)."),
            "timeout": N_("The camera accepted the connection but did not answer the ONVIF request. It may be "
                          "overloaded or still booting; wait a minute and run the doctor again."),
        }.get(exc.kind, N_("ONVIF is not working on this camera. Enable ONVIF in the camera's web page and check "
                           "the port."))
        return failed("onvif", _T_ONVIF, N_("GetSystemDateAndTime failed: %(error)s"), hint, error=str(exc))
    cam.camera_time = camera_time
    cam.offset_s = (camera_time - now()).total_seconds()
    cam.onvif().offset_s = cam.offset_s
    return passed("onvif", _T_ONVIF, N_("the camera's clock reads %(time)s UTC"), time=camera_time.isoformat(" "))


_H_AUTH = N_(
    "Password rejected — was the camera reset to factory settings? Try the installer's default credential set, or "
    "the password on the label; after several failures some cameras lock logins for 10-30 minutes."
)


def check_credentials(cam: CameraProbe) -> CheckResult:
    """GetDeviceInformation signed with the credentials (WS-Security digest, HTTP digest as fallback); with no
    user name known it is asked unsigned, and a camera that then demands a login fails the step (not skips it)."""
    if cam.onvif_port is None:
        return skipped("credentials", _T_AUTH, N_("checked with the RTSP stream below (the camera is given by its "
                                                  "stream address)"))
    if cam.offset_s is None:
        return skipped("credentials", _T_AUTH, N_("needs ONVIF, which did not answer"))
    try:
        cam.device = probes.get_device_information(cam.onvif())
    except probes.ProbeError as exc:
        if exc.kind == "auth" and not cam.user:
            return failed("credentials", _T_AUTH, N_("the camera requires a login, and no user name is known"),
                          _H_NO_CREDS)
        if exc.kind == "auth":
            hint = _H_AUTH
            if cam.offset_s is not None and abs(cam.offset_s) > 300:
                hint = N_("The camera's clock is wrong by minutes, and ONVIF logins are time-stamped: set the "
                          "camera's time (NTP) first, then check the password.")
            return failed("credentials", _T_AUTH, N_("user %(user)s was refused: %(error)s"), hint,
                          user=cam.user, error=str(exc))
        return failed("credentials", _T_AUTH, N_("GetDeviceInformation failed: %(error)s"),
                      N_("The camera answered with an error; check its firmware and ONVIF settings."), error=str(exc))
    info = " ".join(v for k, v in cam.device.items() if k in ("Manufacturer", "Model", "FirmwareVersion") and v)
    if not cam.user:
        return passed("credentials", _T_AUTH, N_("the camera answers without a login: %(device)s"), device=info or "?")
    return passed("credentials", _T_AUTH, N_("logged in as %(user)s: %(device)s"), user=cam.user, device=info or "?")


def check_clock_offset(cam: CameraProbe) -> CheckResult:
    if cam.offset_s is None:
        return skipped("clock_offset", _T_CLOCK, N_("the camera's time is unknown (ONVIF did not answer)"))
    off = cam.offset_s
    if cam.camera_time is not None and cam.camera_time < CLOCK_RESET_BEFORE:
        return failed(
            "clock_offset", _T_CLOCK, N_("the camera's clock reads %(time)s: it was reset"),
            N_("The camera lost its time, as cameras without a clock battery do after a power cut or reboot. Set "
               "NTP on the camera (its web page: System → Time) so that it sets its clock at every start; until "
               "then event times are wrong and ONVIF logins may fail."),
            time=cam.camera_time.isoformat(" "), offset=off,
        )
    if abs(off) > CLOCK_OFFSET_MAX_S:
        return failed(
            "clock_offset", _T_CLOCK, N_("the camera's clock is %(offset)+.0f s off this box's clock"),
            N_("Set NTP on the camera (its web page: System → Time) to the same server as this box, or to this "
               "box's address. Wrong camera clocks confuse event times and can break ONVIF logins."),
            offset=off,
        )
    return passed("clock_offset", _T_CLOCK, N_("%(offset)+.0f s from this box's clock"), offset=off)


def check_stream_uri(cam: CameraProbe) -> CheckResult:
    if cam.rtsp_url:
        cam.stream_uri = cam.rtsp_url
        return passed("stream_uri", _T_URI, N_("given: %(uri)s"), uri=cam.rtsp_url)
    if cam.offset_s is None:
        return skipped("stream_uri", _T_URI, N_("needs ONVIF, which did not answer"))
    try:
        uri = probes.get_stream_uri(cam.onvif())
    except probes.ProbeError as exc:
        auth_hint = _H_AUTH if cam.user else _H_NO_CREDS
        hint = auth_hint if exc.kind == "auth" else N_(
            "The camera has no usable media profile. Open its web page, check that a video stream is enabled, or "
            "give the stream address with --camera-url rtsp://...")
        return failed("stream_uri", _T_URI, N_("GetStreamUri failed: %(error)s"), hint, error=str(exc))
    clean, _, _ = probes.strip_userinfo(uri)
    try:
        probes.url_port(clean, 554)
    except probes.ProbeError as exc:
        return failed("stream_uri", _T_URI, N_("the camera gave an unusable stream address: %(error)s"),
                      N_("The camera's firmware reports a broken RTSP address. Restart the camera; if it persists, "
                         "give the address with --camera-url rtsp://IP:554/... (see the camera's manual)."),
                      error=str(exc))
    cam.stream_uri = clean
    return passed("stream_uri", _T_URI, "%(uri)s", uri=cam.stream_uri)


def check_rtsp(cam: CameraProbe) -> CheckResult:
    """RTSP DESCRIBE with the credentials: the stream exists, we may watch it, and it has video."""
    if not cam.stream_uri:
        return skipped("rtsp", _T_RTSP, N_("no stream address known"))
    try:
        answer = probes.rtsp_request(cam.stream_uri, "DESCRIBE", user=cam.user, password=cam.password,
                                     timeout=cam.timeout_s)
    except probes.ProbeError as exc:
        hint = {
            "refused": N_("The camera refuses RTSP connections. RTSP may be disabled, on another port, or the camera "
                          "allows too few viewers (close other recorders/phone apps watching it)."),
            "timeout": N_("The RTSP port accepts connections but the camera does not answer: it may be overloaded "
                          "(too many viewers) or hung; power-cycle it."),
        }.get(exc.kind, _H_UNREACHABLE)
        return failed("rtsp", _T_RTSP, N_("DESCRIBE failed: %(error)s"), hint, error=str(exc))
    if answer.status == 401:
        return failed("rtsp", _T_RTSP, N_("the camera refused the credentials for the stream (RTSP 401)"),
                      _H_AUTH if cam.user else _H_NO_CREDS)
    if answer.status == 404:
        return failed("rtsp", _T_RTSP, N_("no stream at this address (RTSP 404)"),
                      N_("The stream path is wrong. Let ONVIF find it (remove the url from the config) or check "
                         "the camera's manual for its RTSP path."))
    if answer.status != 200:
        return failed("rtsp", _T_RTSP, N_("the camera answered RTSP %(status)s %(reason)s"),
                      N_("The camera refused the stream; power-cycle it and try again."),
                      status=answer.status, reason=answer.reason)
    if not answer.has_video:
        return failed("rtsp", _T_RTSP, N_("the stream has no video track"),
                      N_("Choose another stream or profile on the camera (the substream must carry video)."))
    return passed("rtsp", _T_RTSP, N_("DESCRIBE answered 200 with a video track"))


# -- frames and image ---------------------------------------------------------------------------------------------
_T_FRAMES = N_("frames arrive")
_T_IMAGE = N_("image neither frozen nor black")
_T_MOTION = N_("motion detector sane")

# Every camera step in the order the doctor runs them: (name, title). Names are stable for --json readers.
CAMERA_STEPS: tuple[tuple[str, str], ...] = (
    ("reachable", _T_REACH), ("onvif", _T_ONVIF), ("credentials", _T_AUTH), ("clock_offset", _T_CLOCK),
    ("stream_uri", _T_URI), ("rtsp", _T_RTSP), ("frames", _T_FRAMES), ("image", _T_IMAGE), ("motion", _T_MOTION),
)

BLACK_MEAN = 24.0  # grey levels; video black is Y=16 (limited range), plus noise
FLAT_STD = 4.0
FROZEN_GRID_PX = 8  # compare single pixels on a sparse grid: averages would hide the sensor noise of a live scene
FROZEN_TOLERANCE = 2  # grey levels; a live sensor's noise exceeds this somewhere on the grid, a frozen image never
FROZEN_SHARE = 0.8  # this share of consecutive pairs identical = frozen (keyframes re-encode noise now and then)


def check_image(lumas: list[Any]) -> CheckResult:
    """Given a few seconds of luma planes (numpy arrays): not all identical, not black, not one flat colour."""
    if len(lumas) < 2:
        return skipped("image", _T_IMAGE, N_("not enough frames to judge"))
    last = lumas[-1].astype("float32")
    mean, std = float(last.mean()), float(last.std())
    if std <= FLAT_STD:
        if mean <= BLACK_MEAN:
            return failed("image", _T_IMAGE, N_("the image is black (mean grey %(mean).0f)"),
                          N_("The lens may be covered, the IR lights broken at night, or the sensor dead. Look at "
                             "the camera; clean or uncover the lens."), mean=mean)
        return failed("image", _T_IMAGE, N_("the image is one flat colour (grey %(mean).0f, variation %(std).1f)"),
                      N_("Something covers the lens (fog, dirt, a bag), or the sensor failed. Look at the camera."),
                      mean=mean, std=std)
    g = FROZEN_GRID_PX
    grids = [y[g // 2::g, g // 2::g].astype("int16") for y in lumas]
    same = sum(1 for a, b in itertools.pairwise(grids)
               if a.shape == b.shape and int(abs(a - b).max()) <= FROZEN_TOLERANCE)
    if same >= FROZEN_SHARE * (len(grids) - 1):
        return failed("image", _T_IMAGE, N_("%(n)d frames are identical: the picture is frozen"),
                      N_("The camera keeps sending the same picture (its encoder hung). Power-cycle the camera; if "
                         "it happens again, update its firmware."), n=len(lumas))
    return passed("image", _T_IMAGE, N_("mean grey %(mean).0f, variation %(std).0f, picture changes"),
                  mean=mean, std=std)
