//! A bounded HTTP/1.1 client for the tests: one `GET` per connection (`Connection: close`),
//! every step under one deadline, the answer read to the end. Small on purpose: the tests
//! need the status, one header and the body, and control over the socket (to drop it).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// The longest any request may take, connecting included: generous, for a loaded machine.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// An answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    /// The `Retry-After` header, if any.
    pub(crate) retry_after: Option<String>,
    pub(crate) body: String,
    /// From connecting to the last byte.
    pub(crate) elapsed: Duration,
    /// When the request was sent.
    pub(crate) sent: Instant,
    /// Who sent it (the `x-client-id`).
    pub(crate) client: Option<String>,
}

/// `GET path` on `addr`, as `client` (the `x-client-id` header) or anonymously (keyed by
/// IP). Panics with the reason if there is no complete answer within [`REQUEST_TIMEOUT`]:
/// the service must always answer.
pub(crate) async fn get(addr: SocketAddr, path: &str, client: Option<&str>) -> Reply {
    let sent = Instant::now();
    let exchange = async {
        let mut stream = send(addr, path, client).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = match timeout(REQUEST_TIMEOUT, exchange).await {
        Ok(Ok(raw)) => raw,
        Ok(Err(e)) => panic!("GET {path}: {e}"),
        Err(_) => panic!("GET {path}: no answer within {REQUEST_TIMEOUT:?}"),
    };
    let mut reply = parse(&raw).unwrap_or_else(|| panic!("GET {path}: not HTTP: {raw:?}"));
    (reply.elapsed, reply.sent) = (sent.elapsed(), sent);
    reply.client = client.map(str::to_owned);
    reply
}

/// Connects and sends `GET path`, leaving the answer unread: the caller may drop the
/// connection before it comes.
pub(crate) async fn send(
    addr: SocketAddr,
    path: &str,
    client: Option<&str>,
) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    let id = client.map_or(String::new(), |c| format!("x-client-id: {c}\r\n"));
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n{id}connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    Ok(stream)
}

/// The status, `Retry-After` and body of a complete answer (bodies here have a length).
fn parse(raw: &[u8]) -> Option<Reply> {
    let text = std::str::from_utf8(raw).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let retry_after = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
        .map(|(_, value)| value.trim().to_owned());
    Some(Reply {
        status,
        retry_after,
        body: body.to_owned(),
        elapsed: Duration::ZERO,
        sent: Instant::now(),
        client: None,
    })
}

/// The `q`-quantile (0..=1) of `samples`, nearest rank; zero for none.
pub(crate) fn quantile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    match sorted.len() {
        0 => Duration::ZERO,
        n => sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_retry_after_and_body() {
        let raw =
            b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 2\r\nRetry-After: 3\r\n\r\nno";
        let reply = parse(raw).unwrap();
        assert_eq!(
            (reply.status, reply.retry_after.as_deref()),
            (429, Some("3"))
        );
        assert_eq!(reply.body, "no");
        assert!(parse(b"garbage").is_none());
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let ms = |v: u64| Duration::from_millis(v);
        let samples: Vec<_> = (1..=100).map(ms).collect();
        assert_eq!(quantile(&samples, 0.99), ms(99));
        assert_eq!(quantile(&samples, 0.5), ms(50));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}
