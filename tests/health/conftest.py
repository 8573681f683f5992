"""Every test here fails if a test password reaches a log record (see tests/cli_tools/secret_scan.py)."""

from tests.cli_tools.secret_scan import no_password_in_logs

__all__ = ["no_password_in_logs"]
