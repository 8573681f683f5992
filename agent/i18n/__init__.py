"""Translations for what a technician reads: messages are English in the code, Vietnamese from a gettext catalogue.

The catalogue is `agent/i18n/locale/vi/LC_MESSAGES/matthan.mo`, compiled from the `.po` beside it by
`python -m agent.i18n.compile` (no GNU gettext needed on the Pi). Vietnamese is chosen when the first of
LANGUAGE, LC_ALL, LC_MESSAGES, LANG that is set starts with `vi` — the order gettext itself uses.

Published MQTT payloads stay English (the station's software reads the reason codes, not the words); only the
command-line tools translate.
"""

from __future__ import annotations

import gettext as _gettext
import os
from collections.abc import Mapping
from pathlib import Path

DOMAIN = "matthan"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
_ENV_ORDER = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def N_(message: str) -> str:  # the conventional gettext marker name
    """Mark a string for the catalogue without translating it here (it is translated where it is shown)."""
    return message


def language_from_env(env: Mapping[str, str] | None = None) -> str:
    """'vi' when the locale environment asks for Vietnamese, else 'en'."""
    env = os.environ if env is None else env
    for key in _ENV_ORDER:
        value = env.get(key, "")
        if value:
            # LANGUAGE may be a colon-separated preference list; the first entry decides.
            first = value.split(":", 1)[0].strip().lower()
            return "vi" if first.startswith("vi") else "en"
    return "en"


def translator(language: str | None = None) -> _gettext.NullTranslations:
    """The translations for `language` ('vi' or 'en'; None reads the environment). English is the identity."""
    lang = language_from_env() if language is None else language
    if lang != "vi":
        return _gettext.NullTranslations()
    return _gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), languages=["vi"], fallback=True)


__all__ = ["DOMAIN", "LOCALE_DIR", "N_", "language_from_env", "translator"]
