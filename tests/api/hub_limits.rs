//! Abuse limits and slow listeners over real sockets.
