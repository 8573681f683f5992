"""MQTT commands: strict parsing of `cmd/<name>` messages and a dispatcher over operations the daemon provides.

Public API: `CommandDispatcher`, `CommandOps`, `CommandFailed`, `CommandResponse`, `ErrorCode`, `encode_response`,
`COMMANDS`, `MAX_PAYLOAD_BYTES`. Imports only pydantic and the standard library.
"""

from agent.commands.dispatcher import CommandDispatcher, CommandFailed, CommandOps
from agent.commands.schema import COMMANDS, MAX_PAYLOAD_BYTES, CommandResponse, ErrorCode, encode_response

__all__ = [
    "COMMANDS",
    "MAX_PAYLOAD_BYTES",
    "CommandDispatcher",
    "CommandFailed",
    "CommandOps",
    "CommandResponse",
    "ErrorCode",
    "encode_response",
]
