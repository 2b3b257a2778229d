//! Restart safety: the hub process killed with SIGKILL mid-stream.
