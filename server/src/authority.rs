//! Accepting the HTTP/2 `:authority` that gRPC-Go clients send when dialled with a URL.
//!
//! etcdctl 3.4 with `--cluster` (and any Go client that dials members' advertised client URLs)
//! sends `:authority: http://127.0.0.1:2379`. etcd's Go server ignores the authority; the h2 crate
//! under tonic refuses it as malformed and resets every stream. This wrapper sits between the
//! socket and h2: it decodes the connection's first header block, and if its authority does not
//! parse, it re-encodes every header block of that connection with the scheme (and any path)
//! stripped from the authority. Connections whose first authority parses (nearly all) are passed
//! through untouched after that first block, and HTTP/1 (`/health`, `/metrics`) is never touched.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use loona_hpack::{Decoder, Encoder};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The smallest SETTINGS_MAX_FRAME_SIZE a peer may set: re-encoded blocks are split to fit it. It
/// is also the size h2 advertises (tonic sets no other), so a larger frame is one h2 refuses.
const MAX_FRAME: usize = 16_384;
/// The most of one header block held here. Past it the wrapper stops looking and hands the bytes
/// to h2, whose own header-list and CONTINUATION limits refuse the block with a GOAWAY: a client
/// that never ends a header block (a CONTINUATION flood) cannot grow this buffer without bound.
const MAX_BLOCK: usize = 64 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Reading the client preface.
    Preface,
    /// Holding frames until the first header block is complete.
    Detect,
    /// Re-encoding every header block.
    Rewrite,
    /// Forwarding bytes untouched.
    Pass,
}

/// A header block being gathered from HEADERS and CONTINUATION frames.
struct Block {
    stream_id: u32,
    end_stream: bool,
    fragment: Vec<u8>,
    /// The block's frames as received, for when they are passed on unchanged.
    raw: Vec<u8>,
}

pub struct FixAuthority<IO> {
    inner: IO,
    mode: Mode,
    input: BytesMut,
    output: BytesMut,
    block: Option<Block>,
    decoder: Decoder<'static>,
    encoder: Encoder<'static>,
}

impl<IO> std::fmt::Debug for FixAuthority<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixAuthority")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl<IO> FixAuthority<IO> {
    pub fn new(inner: IO) -> Self {
        Self {
            inner,
            mode: Mode::Preface,
            input: BytesMut::new(),
            output: BytesMut::new(),
            block: None,
            decoder: Decoder::new(),
            encoder: Encoder::new(),
        }
    }

    /// Moves every complete unit of `input` to `output`, transformed as the mode says.
    fn process(&mut self) -> io::Result<()> {
        loop {
            match self.mode {
                Mode::Pass => {
                    let rest = self.input.split();
                    self.output.unsplit(rest);
                    return Ok(());
                }
                Mode::Preface => {
                    let n = self.input.len().min(PREFACE.len());
                    if self.input[..n] != PREFACE[..n] {
                        self.mode = Mode::Pass; // HTTP/1, or not HTTP at all: none of our business.
                        continue;
                    }
                    if n < PREFACE.len() {
                        return Ok(());
                    }
                    let preface = self.input.split_to(PREFACE.len());
                    self.output.unsplit(preface);
                    self.mode = Mode::Detect;
                }
                Mode::Detect | Mode::Rewrite => {
                    if self.input.len() < FRAME_HEADER {
                        return Ok(());
                    }
                    let len = (usize::from(self.input[0]) << 16)
                        | (usize::from(self.input[1]) << 8)
                        | usize::from(self.input[2]);
                    if len > MAX_FRAME {
                        // Not a frame h2 accepts: let h2 refuse it, without holding it here.
                        self.pass_on();
                        continue;
                    }
                    if self.input.len() < FRAME_HEADER + len {
                        return Ok(());
                    }
                    let frame = self.input.split_to(FRAME_HEADER + len);
                    self.frame(&frame)?;
                }
            }
        }
    }

    /// Stops looking at this connection: what is held goes to h2 as received, and so does
    /// everything after it.
    fn pass_on(&mut self) {
        if let Some(block) = self.block.take() {
            self.output.extend_from_slice(&block.raw);
        }
        let rest = self.input.split();
        self.output.unsplit(rest);
        self.mode = Mode::Pass;
    }

    fn frame(&mut self, frame: &[u8]) -> io::Result<()> {
        let (kind, flags) = (frame[3], frame[4]);
        let stream_id = u32::from_be_bytes([frame[5] & 0x7f, frame[6], frame[7], frame[8]]);
        let payload = &frame[FRAME_HEADER..];
        match kind {
            HEADERS => {
                let mut body = payload;
                let mut pad = 0;
                if flags & PADDED != 0 {
                    pad = usize::from(*body.first().ok_or_else(|| bad("empty padded HEADERS"))?);
                    body = &body[1..];
                }
                if flags & PRIORITY != 0 {
                    body = body.get(5..).ok_or_else(|| bad("short HEADERS priority"))?;
                }
                let end = body
                    .len()
                    .checked_sub(pad)
                    .ok_or_else(|| bad("HEADERS padding too long"))?;
                self.block = Some(Block {
                    stream_id,
                    end_stream: flags & END_STREAM != 0,
                    fragment: body[..end].to_vec(),
                    raw: frame.to_vec(),
                });
            }
            CONTINUATION => match self.block.as_mut() {
                Some(b) => {
                    b.fragment.extend_from_slice(payload);
                    b.raw.extend_from_slice(frame);
                    if b.raw.len() > MAX_BLOCK {
                        self.pass_on();
                        return Ok(());
                    }
                }
                None => return Err(bad("CONTINUATION without HEADERS")),
            },
            _ => {
                self.output.extend_from_slice(frame);
                return Ok(());
            }
        }
        if flags & END_HEADERS != 0 {
            let block = self.block.take().expect("a block is open");
            self.finish_block(block)?;
        }
        Ok(())
    }

    fn finish_block(&mut self, block: Block) -> io::Result<()> {
        let headers = match self.decoder.decode(&block.fragment) {
            Ok(h) => h,
            // Let h2 see (and refuse) what it was sent.
            Err(_) if self.mode == Mode::Detect => {
                self.output.extend_from_slice(&block.raw);
                self.mode = Mode::Pass;
                return Ok(());
            }
            Err(e) => return Err(bad(&format!("undecodable header block: {e:?}"))),
        };
        let broken = headers
            .iter()
            .any(|(n, v)| n == b":authority" && http::uri::Authority::try_from(&v[..]).is_err());
        if self.mode == Mode::Detect && !broken {
            self.output.extend_from_slice(&block.raw);
            self.mode = Mode::Pass;
            return Ok(());
        }
        self.mode = Mode::Rewrite;
        let fixed: Vec<(Vec<u8>, Vec<u8>)> = headers
            .into_iter()
            .map(|(n, v)| {
                if n == b":authority" {
                    (n, fix(&v))
                } else {
                    (n, v)
                }
            })
            .collect();
        let encoded = self
            .encoder
            .encode(fixed.iter().map(|(n, v)| (&n[..], &v[..])));
        let mut chunks = encoded.chunks(MAX_FRAME).peekable();
        let mut first = true;
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            let mut flags = if last { END_HEADERS } else { 0 };
            if first && block.end_stream {
                flags |= END_STREAM;
            }
            let kind = if first { HEADERS } else { CONTINUATION };
            let len = chunk.len() as u32;
            self.output.extend_from_slice(&len.to_be_bytes()[1..]);
            self.output.extend_from_slice(&[kind, flags]);
            self.output
                .extend_from_slice(&block.stream_id.to_be_bytes());
            self.output.extend_from_slice(chunk);
            first = false;
        }
        if encoded.is_empty() {
            let flags = END_HEADERS | if block.end_stream { END_STREAM } else { 0 };
            self.output.extend_from_slice(&[0, 0, 0, HEADERS, flags]);
            self.output
                .extend_from_slice(&block.stream_id.to_be_bytes());
        }
        Ok(())
    }
}

/// `http://host:port/...` -> `host:port`.
fn fix(authority: &[u8]) -> Vec<u8> {
    let s = String::from_utf8_lossy(authority);
    let rest = s.split_once("://").map_or(&*s, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).as_bytes().to_vec()
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("http2: {what}"))
}

impl<IO: AsyncRead + Unpin> AsyncRead for FixAuthority<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.output.is_empty() {
                let n = buf.remaining().min(this.output.len());
                buf.put_slice(&this.output[..n]);
                this.output.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.mode == Mode::Pass && this.input.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            let mut chunk = [0u8; 8192];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                // End of stream: hand over whatever was held, unchanged, and let h2 judge it.
                this.pass_on();
                if this.output.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            this.input.extend_from_slice(read.filled());
            this.process()?;
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for FixAuthority<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<IO: Connected> Connected for FixAuthority<IO> {
    type ConnectInfo = IO::ConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_header(len: usize, kind: u8, flags: u8, stream: u32) -> Vec<u8> {
        let mut f = (len as u32).to_be_bytes()[1..].to_vec();
        f.extend_from_slice(&[kind, flags]);
        f.extend_from_slice(&stream.to_be_bytes());
        f
    }

    /// Feeds `chunks` to a wrapper one by one; returns the most it ever held and its mode.
    fn feed(chunks: impl IntoIterator<Item = Vec<u8>>) -> (usize, Mode) {
        let mut w = FixAuthority::new(());
        let mut most = 0;
        for chunk in chunks {
            w.input.extend_from_slice(&chunk);
            w.process().unwrap();
            let held = w.input.len()
                + w.block
                    .as_ref()
                    .map_or(0, |b| b.raw.len() + b.fragment.len());
            most = most.max(held);
            w.output.clear(); // what h2 would have read
        }
        (most, w.mode)
    }

    /// A header block that never ends (HEADERS, then CONTINUATION frames without END_HEADERS) is
    /// held only up to MAX_BLOCK, then handed to h2 (which refuses it with a GOAWAY); before the
    /// bound, 600 MiB of such frames took a member from 81 MiB to 1.8 GiB.
    #[test]
    fn an_endless_header_block_is_not_held() {
        let mut frames = vec![PREFACE.to_vec()];
        let mut headers = frame_header(3, HEADERS, 0, 1);
        headers.extend_from_slice(&[0x82, 0x86, 0x84]);
        frames.push(headers);
        for _ in 0..10_000 {
            let mut f = frame_header(MAX_FRAME, CONTINUATION, 0, 1);
            f.resize(FRAME_HEADER + MAX_FRAME, 0x40);
            frames.push(f);
        }
        let (most, mode) = feed(frames);
        assert_eq!(mode, Mode::Pass);
        assert!(most <= 2 * (MAX_BLOCK + MAX_FRAME), "held {most} bytes");
    }

    /// A frame longer than h2 accepts is passed on as its header arrives, not buffered whole.
    #[test]
    fn an_oversized_frame_is_not_held() {
        let big = 16 << 20;
        let mut chunks = vec![PREFACE.to_vec(), frame_header(big - 1, HEADERS, 0, 1)];
        chunks.extend((0..big / MAX_FRAME).map(|_| vec![0u8; MAX_FRAME]));
        let (most, mode) = feed(chunks);
        assert_eq!(mode, Mode::Pass);
        assert!(most <= MAX_FRAME, "held {most} bytes");
    }

    #[test]
    fn strips_scheme_and_path() {
        assert_eq!(fix(b"http://127.0.0.1:2379"), b"127.0.0.1:2379");
        assert_eq!(fix(b"https://h:1/x/y"), b"h:1");
        assert_eq!(fix(b"h:1"), b"h:1");
    }
}
