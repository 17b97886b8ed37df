//! How far a peer's clock is from this node's (`/staffroom/time/1`): the request is empty and
//! the answer is the peer's clock, 8 bytes, milliseconds since the Unix epoch, big-endian.
//! The offset is taken as in NTP, against the middle of the round trip. Entries more than ten
//! minutes ahead of a node's clock are held, so a school whose clock is wrong sees its posts
//! arrive late or not at all: the doctor names the offset, and this is how it knows.
//!
//! Informational only: an offset never changes a verdict, and a peer that does not speak the
//! protocol is simply not asked (identify says which protocols it speaks).

use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response::{self, Codec, ProtocolSupport};
use libp2p::StreamProtocol;

pub const TIME_PROTOCOL: StreamProtocol = StreamProtocol::new("/staffroom/time/1");
/// A peer's clock is asked again after this long.
pub const ASK_INTERVAL: Duration = Duration::from_secs(600);
/// A probe's round trip at most; slower answers say little about the clock.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes a request may carry: none, but a few are tolerated so that later versions may add a
/// field without breaking this one.
const REQUEST_BYTES_MAX: u64 = 64;

/// The peer's clock in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerTime(pub u64);

#[derive(Debug, Clone, Default)]
pub struct TimeCodec;

pub type TimeProbe = request_response::Behaviour<TimeCodec>;

pub fn behaviour() -> TimeProbe {
    request_response::Behaviour::with_codec(
        TimeCodec,
        [(TIME_PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(PROBE_TIMEOUT)
            .with_max_concurrent_streams(4),
    )
}

/// The peer's clock minus this node's, in milliseconds: `peer_ms` against the middle of a
/// round trip sent at `sent_ms` and answered at `received_ms` (this node's clock). Saturates
/// rather than wrapping on absurd values.
pub fn offset_ms(sent_ms: u64, received_ms: u64, peer_ms: u64) -> i64 {
    let middle = (i128::from(sent_ms) + i128::from(received_ms)) / 2;
    let offset = i128::from(peer_ms) - middle;
    i64::try_from(offset).unwrap_or(if offset < 0 { i64::MIN } else { i64::MAX })
}

impl Codec for TimeCodec {
    type Protocol = StreamProtocol;
    type Request = ();
    type Response = PeerTime;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<()>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut ignored = Vec::new();
        io.take(REQUEST_BYTES_MAX).read_to_end(&mut ignored).await?;
        Ok(())
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<PeerTime>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut bytes = [0u8; 8];
        io.read_exact(&mut bytes).await?;
        Ok(PeerTime(u64::from_be_bytes(bytes)))
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        (): (),
    ) -> std::io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        PeerTime(ms): PeerTime,
    ) -> std::io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&ms.to_be_bytes()).await?;
        io.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_taken_against_the_middle_of_the_round_trip() {
        assert_eq!(offset_ms(1_000, 1_200, 1_100), 0);
        assert_eq!(offset_ms(1_000, 1_200, 61_100), 60_000, "peer ahead");
        assert_eq!(offset_ms(1_000, 1_200, 0), -1_100, "peer behind");
        assert_eq!(offset_ms(0, 0, u64::MAX), i64::MAX, "saturates");
    }

    #[tokio::test]
    async fn the_codec_round_trips_and_bounds_requests() {
        let mut codec = TimeCodec;
        let mut wire = futures::io::Cursor::new(Vec::new());
        codec
            .write_response(&TIME_PROTOCOL, &mut wire, PeerTime(42))
            .await
            .unwrap();
        let mut read = futures::io::Cursor::new(wire.into_inner());
        let time = codec.read_response(&TIME_PROTOCOL, &mut read).await;
        assert_eq!(time.unwrap(), PeerTime(42));
        let mut short = futures::io::Cursor::new(vec![0u8; 3]);
        assert!(codec
            .read_response(&TIME_PROTOCOL, &mut short)
            .await
            .is_err());
        let mut long = futures::io::Cursor::new(vec![0u8; 1 << 20]);
        codec.read_request(&TIME_PROTOCOL, &mut long).await.unwrap();
        assert_eq!(
            long.position(),
            REQUEST_BYTES_MAX,
            "reads no more than the bound"
        );
    }
}
