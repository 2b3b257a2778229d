//! Server → client WebSocket frames, written without a per-connection
//! buffer: every listener's copy of an update is the same `Utf8Bytes`, so a
//! frame is a 2–10 byte header written beside that shared payload. A batch
//! of up to 16 KiB is copied into one short-lived buffer and sent with one
//! `send`; a bigger one (a snapshot, a burst) is one `writev` of the shared
//! payloads. Server frames are never masked.

use std::io::IoSlice;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Up to this many bytes are copied into one buffer and written with one
/// `send`: on a socket that is cheaper than a `writev` of header and payload
/// (the hub's CPU at 100 sessions × 100 listeners, 1,000 ops/s: 0.84 → 0.78
/// cores, docs/benchmarks/2026-11-30-sixth-round.md), and copying a few hundred bytes is
/// not.
const COPY_MAX: usize = 16 * 1024;

/// Writes server text frames straight to the socket: a 2–10 byte header and
/// the shared payload per frame. Every listener's copy of an update is the
/// same `Utf8Bytes`; nothing is buffered per listener between writes.
pub struct FrameWriter<'a> {
    frames: &'a [Utf8Bytes],
    heads: Vec<([u8; 10], usize)>,
    /// The frame being written and how many of its bytes are out.
    idx: usize,
    off: usize,
}

impl<'a> FrameWriter<'a> {
    pub fn new(frames: &'a [Utf8Bytes]) -> Self {
        FrameWriter {
            frames,
            heads: frames.iter().map(|f| text_header(f.len())).collect(),
            idx: 0,
            off: 0,
        }
    }

    fn frame_len(&self, i: usize) -> usize {
        self.heads[i].1 + self.frames[i].len()
    }

    /// What is left, from frame `idx` up to (not including) frame `end`.
    fn slices(&self, end: usize) -> Vec<IoSlice<'_>> {
        let mut v = Vec::with_capacity((end - self.idx) * 2);
        for i in self.idx..end {
            let head = &self.heads[i].0[..self.heads[i].1];
            let body = self.frames[i].as_str().as_bytes();
            let skip = if i == self.idx { self.off } else { 0 };
            if skip < head.len() {
                v.push(IoSlice::new(&head[skip..]));
                v.push(IoSlice::new(body));
            } else {
                v.push(IoSlice::new(&body[skip - head.len()..]));
            }
        }
        v
    }

    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let left = self.frame_len(self.idx) - self.off;
            if n >= left {
                n -= left;
                self.idx += 1;
                self.off = 0;
            } else {
                self.off += n;
                n = 0;
            }
        }
    }

    /// Write frames `idx..end`. Each write must make progress within
    /// `stall`: a peer whose socket accepts nothing for that long gets
    /// `TimedOut` (the timer is only armed when a write has to wait).
    async fn write_until<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        end: usize,
        stall: Duration,
    ) -> std::io::Result<()> {
        while self.idx < end {
            let slices = self.slices(end);
            let total: usize = slices.iter().map(|s| s.len()).sum();
            let n = if total <= COPY_MAX {
                let mut buf = Vec::with_capacity(total);
                for s in &slices {
                    buf.extend_from_slice(s);
                }
                progress(stall, io.write(&buf)).await?
            } else {
                progress(stall, io.write_vectored(&slices)).await?
            };
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.advance(n);
        }
        progress(stall, io.flush()).await
    }

    /// Write every frame; see `write_until` for `stall`.
    pub async fn write_all<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        stall: Duration,
    ) -> std::io::Result<()> {
        let end = self.frames.len();
        self.write_until(io, end, stall).await
    }

    /// Complete the frame a cancelled `write_all` left half-written.
    pub async fn finish_frame<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        stall: Duration,
    ) -> std::io::Result<()> {
        if self.off == 0 {
            return Ok(());
        }
        let end = self.idx + 1;
        self.write_until(io, end, stall).await
    }
}

/// `op`, or `TimedOut` if it makes no progress within `stall`.
async fn progress<T>(
    stall: Duration,
    op: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    tokio::time::timeout(stall, op)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// RFC 6455 §5.2 header of a final, unmasked text frame of `len` bytes.
fn text_header(len: usize) -> ([u8; 10], usize) {
    let mut h = [0u8; 10];
    h[0] = 0x81;
    if len < 126 {
        h[1] = len as u8;
        (h, 2)
    } else if let Ok(len) = u16::try_from(len) {
        h[1] = 126;
        h[2..4].copy_from_slice(&len.to_be_bytes());
        (h, 4)
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        (h, 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::WebSocketStream;

    /// Writes frames of `sizes` through a pipe that takes `pipe` bytes at a
    /// time and checks that a tungstenite client reads them back intact.
    async fn round_trip(sizes: &[usize], pipe: usize) {
        let frames: Vec<Utf8Bytes> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let c = char::from(b'a' + (i % 26) as u8);
                Utf8Bytes::from(c.to_string().repeat(n))
            })
            .collect();
        let (mut server, client) = tokio::io::duplex(pipe);
        let writer = tokio::spawn(async move {
            let mut w = FrameWriter::new(&frames);
            w.write_all(&mut server, Duration::from_secs(5))
                .await
                .unwrap();
            server
        });
        let mut ws = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        for (i, &n) in sizes.iter().enumerate() {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    assert_eq!(t.len(), n);
                    assert!(t.bytes().all(|b| b == b'a' + (i % 26) as u8));
                }
                other => panic!("frame {i}: got {other:?}"),
            }
        }
        drop(writer.await.unwrap());
    }

    /// Every header length boundary, in a batch too big to copy (vectored
    /// writes, then a copied tail), a few bytes at a time.
    #[tokio::test]
    async fn frame_writer_output_is_read_back_by_tungstenite() {
        round_trip(&[1, 125, 126, 127, 65_535, 65_536, 70_000], 7).await;
    }

    /// A batch of small frames goes out as one copied buffer; partial
    /// writes of it resume mid-frame.
    #[tokio::test]
    async fn a_copied_batch_survives_partial_writes() {
        round_trip(&[3, 300, 125, 126, 40, 1_000, 2], 5).await;
        round_trip(&[COPY_MAX - 4, 1], 64).await;
    }

    /// A peer that reads nothing fails the write after `stall`, however
    /// much is left to write.
    #[tokio::test(start_paused = true)]
    async fn a_write_that_cannot_progress_times_out() {
        let frames: Vec<Utf8Bytes> = vec!["z".repeat(4096).into()];
        let (mut server, _client) = tokio::io::duplex(64);
        let mut w = FrameWriter::new(&frames);
        let e = w
            .write_all(&mut server, Duration::from_secs(30))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    }

    #[test]
    fn text_headers_use_the_shortest_length_encoding() {
        assert_eq!(text_header(125).1, 2);
        assert_eq!(text_header(126).1, 4);
        assert_eq!(text_header(65_535).1, 4);
        assert_eq!(text_header(65_536).1, 10);
        assert_eq!(&text_header(300).0[..4], &[0x81, 126, 1, 44]);
    }

    /// A write cut off mid-frame is completed up to the frame's end and no
    /// further, so a close frame sent next still parses.
    #[tokio::test]
    async fn finish_frame_completes_only_the_frame_in_progress() {
        let frames: Vec<Utf8Bytes> = vec!["x".repeat(40).into(), "y".repeat(40).into()];
        let mut w = FrameWriter::new(&frames);
        w.advance(10);
        let mut out: Vec<u8> = Vec::new();
        w.finish_frame(&mut out, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(out.len(), 42 - 10);
        assert_eq!(w.idx, 1);
        assert_eq!(w.off, 0);
    }
}
