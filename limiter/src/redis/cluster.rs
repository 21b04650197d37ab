//! Redis Cluster: the slot of a key, and which master serves each slot (`CLUSTER SLOTS`),
//! so that a limiter can tell which node a failed decision concerns.

use redis::Value;

/// Slots of a Redis Cluster.
pub(crate) const SLOTS: u16 = 16384;

/// CRC16/XMODEM (polynomial 0x1021, initial value 0, no reflection), the checksum Redis
/// Cluster hashes keys with.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The slot of a Redis key: of its hash tag (the bytes between the first `{` and the first
/// `}` after it) if that is not empty, else of the whole key.
pub(crate) fn slot(key: &[u8]) -> u16 {
    let tag = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        rest.iter()
            .position(|&b| b == b'}')
            .filter(|&close| close > 0)
            .map(|close| &rest[..close])
    });
    crc16(tag.unwrap_or(key)) % SLOTS
}

/// Which master serves each slot, as one node answered `CLUSTER SLOTS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Topology {
    /// Each slot's master, an index into `nodes` (`NONE`: no node serves the slot).
    owner: Box<[u16]>,
    /// The masters, as `host:port`.
    nodes: Vec<String>,
}

const NONE: u16 = u16::MAX;

impl Topology {
    /// The map in a `CLUSTER SLOTS` reply from the node at `host` (a master listed with an
    /// empty host is that node; with `host` unknown, such a reply is refused), or `None`
    /// if the reply is not one.
    pub(crate) fn parse(reply: &Value, host: Option<&str>) -> Option<Topology> {
        let Value::Array(ranges) = reply else {
            return None;
        };
        let mut owner = vec![NONE; usize::from(SLOTS)].into_boxed_slice();
        let mut nodes: Vec<String> = Vec::new();
        for range in ranges {
            let Value::Array(fields) = range else {
                return None;
            };
            let [Value::Int(start), Value::Int(end), Value::Array(master), ..] = fields.as_slice()
            else {
                return None;
            };
            let (start, end) = (usize::try_from(*start).ok()?, usize::try_from(*end).ok()?);
            if start > end || end >= usize::from(SLOTS) {
                return None;
            }
            let [name, Value::Int(port), ..] = master.as_slice() else {
                return None;
            };
            let name = match name {
                Value::BulkString(b) => String::from_utf8(b.clone()).ok()?,
                Value::SimpleString(s) => s.clone(),
                _ => return None,
            };
            let name = if name.is_empty() || name == "?" {
                host?
            } else {
                &name
            };
            let node = format!("{name}:{port}");
            let index = match nodes.iter().position(|n| *n == node) {
                Some(i) => i,
                None => {
                    nodes.push(node);
                    nodes.len() - 1
                }
            };
            let index = u16::try_from(index).ok().filter(|&i| i != NONE)?;
            owner[start..=end].fill(index);
        }
        Some(Topology { owner, nodes })
    }

    /// The master serving `slot` (`host:port`), if one does.
    pub(crate) fn owner(&self, slot: u16) -> Option<&str> {
        let index = *self.owner.get(usize::from(slot))?;
        self.nodes.get(usize::from(index)).map(String::as_str)
    }

    /// The masters (`host:port`), each once.
    pub(crate) fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// Whether `node` serves any slot.
    pub(crate) fn serves(&self, node: &str) -> bool {
        self.nodes.iter().any(|n| n == node)
    }
}

/// `host:port` split, for routing a command to one node.
pub(crate) fn host_port(node: &str) -> Option<(&str, u16)> {
    let (host, port) = node.rsplit_once(':')?;
    Some((host, port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_clusters() {
        // CLUSTER KEYSLOT on Redis 7.0.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b"{user1000}.following"), 3443);
        assert_eq!(slot(b"foo{{bar}}zap"), 4015);
        assert_eq!(slot(b"{}foo"), 9500);
        assert_eq!(slot(b"{p:a}b}"), 3793);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"{api:203.0.113.7}"), slot(b"api:203.0.113.7"));
        // An empty tag hashes the whole key; only the first `{...}` counts.
        assert_eq!(slot(b"{}foo"), crc16(b"{}foo") % SLOTS);
        assert_eq!(slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % SLOTS);
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
        assert_eq!(slot(b"{p:a}b}"), slot(b"p:a"));
        assert_eq!(slot(b""), 0);
    }

    fn node(host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::BulkString(host.as_bytes().to_vec()),
            Value::Int(port),
            Value::BulkString(b"id".to_vec()),
        ])
    }

    fn range(start: i64, end: i64, master: Value) -> Value {
        Value::Array(vec![Value::Int(start), Value::Int(end), master])
    }

    #[test]
    fn cluster_slots_is_read() {
        let reply = Value::Array(vec![
            range(0, 5460, node("127.0.0.1", 7000)),
            range(5461, 10922, node("", 7001)),
            range(10923, 16000, node("127.0.0.1", 7002)),
            range(16001, 16001, node("127.0.0.1", 7000)),
        ]);
        let t = Topology::parse(&reply, Some("10.9.8.7")).unwrap();
        assert_eq!(
            t.nodes(),
            ["127.0.0.1:7000", "10.9.8.7:7001", "127.0.0.1:7002"]
        );
        assert_eq!(t.owner(0), Some("127.0.0.1:7000"));
        assert_eq!(t.owner(5461), Some("10.9.8.7:7001"));
        assert_eq!(t.owner(16000), Some("127.0.0.1:7002"));
        assert_eq!(t.owner(16001), Some("127.0.0.1:7000"));
        assert_eq!(t.owner(16002), None);
        assert_eq!(t.owner(SLOTS), None);
        assert!(t.serves("127.0.0.1:7002") && !t.serves("127.0.0.1:7003"));
        assert_eq!(host_port("127.0.0.1:7002"), Some(("127.0.0.1", 7002)));
        assert_eq!(host_port("::1:7002"), Some(("::1", 7002)));
        assert_eq!(host_port("nohost"), None);

        for odd in [
            Value::Nil,
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![range(5, 4, node("h", 1))]),
            Value::Array(vec![range(0, 16384, node("h", 1))]),
            Value::Array(vec![range(-1, 3, node("h", 1))]),
            Value::Array(vec![range(0, 3, Value::Int(1))]),
        ] {
            assert_eq!(Topology::parse(&odd, Some("h")), None, "{odd:?}");
        }
        assert_eq!(
            Topology::parse(&Value::Array(vec![]), Some("h")).map(|t| t.nodes().len()),
            Some(0)
        );
        // A master without a host, from a node whose address is not known.
        let reply = Value::Array(vec![range(0, 1, node("", 7001))]);
        assert_eq!(Topology::parse(&reply, None), None);
    }
}
