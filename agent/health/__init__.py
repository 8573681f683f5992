"""Health: metrics, camera status, the state file and the doctor checks."""
