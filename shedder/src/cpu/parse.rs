//! Pure text parsers for the kernel's CPU files; no I/O here, so every rule is unit-tested.

use std::collections::HashSet;
use std::num::IntErrorKind;

use super::CpuError;

/// The longest single range a CPU list may hold. Real lists name at most a few thousand CPUs;
/// the cap keeps a corrupt `0-9223372036854775807` from allocating without bound (go-zero
/// would loop over it).
const MAX_RANGE: u64 = 1 << 16;

/// go-zero's `parseUint`: a signed 64-bit integer, where out-of-range and negative values
/// read as 0 and anything else unparsable is an error.
pub(crate) fn parse_uint(s: &str) -> Result<u64, CpuError> {
    match s.parse::<i64>() {
        Ok(v) => Ok(u64::try_from(v).unwrap_or(0)),
        Err(e)
            if matches!(
                e.kind(),
                IntErrorKind::PosOverflow | IntErrorKind::NegOverflow
            ) =>
        {
            Ok(0)
        }
        Err(_) => Err(CpuError::BadInt(s.to_owned())),
    }
}

/// go-zero's `parseUints`: a comma list of values and inclusive ranges `a-b`, deduplicated in
/// first-seen order. A bad single value is a [`CpuError::BadInt`]; a bad range (bad endpoint,
/// `b < a`, or longer than [`MAX_RANGE`]) is a [`CpuError::BadIntList`] naming the whole list.
pub(crate) fn parse_uints(s: &str) -> Result<Vec<u64>, CpuError> {
    let mut out = Vec::new();
    if s.is_empty() {
        return Ok(out);
    }
    let list_err = || CpuError::BadIntList(s.to_owned());
    let mut seen = HashSet::new();
    let mut push = |v: u64, out: &mut Vec<u64>| {
        if seen.insert(v) {
            out.push(v);
        }
    };
    for item in s.split(',') {
        if let Some((a, b)) = item.split_once('-') {
            let start = parse_uint(a).map_err(|_| list_err())?;
            let end = parse_uint(b).map_err(|_| list_err())?;
            if end < start || end - start >= MAX_RANGE {
                return Err(list_err());
            }
            for v in start..=end {
                push(v, &mut out);
            }
        } else {
            push(parse_uint(item)?, &mut out);
        }
    }
    Ok(out)
}

/// How many CPUs a list such as `0-3,8` names; `None` for an empty list (which the kernel
/// writes when the value is inherited, so the caller falls back to another source).
pub(crate) fn count_cpus(list: &str) -> Result<Option<usize>, CpuError> {
    let n = parse_uints(list.trim())?.len();
    Ok((n > 0).then_some(n))
}

/// A cgroup v2 `cpu.max` (`"<quota> <period>"` or `"max <period>"`), as a number of CPUs.
/// `Ok(None)` means no quota. A zero quota is treated as none, as in go-zero (the kernel
/// never writes one).
pub(crate) fn parse_cpu_max(s: &str) -> Result<Option<f64>, String> {
    let fields: Vec<&str> = s.split_whitespace().collect();
    let [quota, period] = fields[..] else {
        return Err(format!("expected \"<quota> <period>\", got {s:?}"));
    };
    if quota == "max" {
        return Ok(None);
    }
    let quota = parse_uint(quota).map_err(|e| e.to_string())?;
    let period = parse_uint(period).map_err(|e| e.to_string())?;
    quota_cpus(quota, period)
}

/// `quota / period` as CPUs; `Ok(None)` for no quota (0), an error for a zero period.
pub(crate) fn quota_cpus(quota_us: u64, period_us: u64) -> Result<Option<f64>, String> {
    if quota_us == 0 {
        return Ok(None);
    }
    if period_us == 0 {
        return Err("zero CPU period".to_owned());
    }
    Ok(Some(quota_us as f64 / period_us as f64))
}

/// The value of `key` in a `key value` per-line file such as `cpu.stat`.
pub(crate) fn keyed_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let mut it = line.split_whitespace();
        (it.next() == Some(key)).then(|| it.next()).flatten()
    })
}

/// The value of `Key:` in `/proc/self/status` (tab or space separated).
pub(crate) fn status_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

/// This process's cgroup v2 path: the `0::<path>` line of `/proc/self/cgroup`.
pub(crate) fn unified_path(cgroup_file: &str) -> Option<&str> {
    cgroup_file
        .lines()
        .find_map(|l| l.trim().strip_prefix("0::"))
        .map(str::trim)
}

/// One line of a cgroup v1 `/proc/self/cgroup`: `id:controller,controller:path`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct V1Line<'a> {
    /// The comma-joined controller list as written (also the name of a joined mount).
    pub(crate) controllers: &'a str,
    /// The cgroup path relative to the controller's hierarchy root.
    pub(crate) path: &'a str,
}

impl V1Line<'_> {
    /// Whether this hierarchy carries `controller`.
    pub(crate) fn has(&self, controller: &str) -> bool {
        self.controllers.split(',').any(|c| c == controller)
    }
}

/// Every non-blank line of a cgroup v1 `/proc/self/cgroup`; a line without exactly three
/// colon-separated fields is an error, as in go-zero.
pub(crate) fn v1_lines(text: &str) -> Result<Vec<V1Line<'_>>, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let fields: Vec<&str> = l.split(':').collect();
            match fields[..] {
                [_, controllers, path] => Ok(V1Line { controllers, path }),
                _ => Err(format!(
                    "line {l:?} has {} fields, expected 3",
                    fields.len()
                )),
            }
        })
        .collect()
}

/// The aggregate `cpu ` line of `/proc/stat` as (busy, total) jiffies: busy = user + nice +
/// system + irq + softirq + steal, total = busy + idle + iowait. Guest time is already
/// inside user and nice, so it is not added again.
pub(crate) fn proc_stat_times(text: &str) -> Result<(u64, u64), String> {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some("cpu"))
        .ok_or("no aggregate \"cpu\" line")?;
    let mut f = [0u64; 8];
    let mut n = 0;
    for (slot, word) in f.iter_mut().zip(line.split_whitespace().skip(1)) {
        *slot = word
            .parse()
            .map_err(|_| format!("bad number {word:?} in {line:?}"))?;
        n += 1;
    }
    // steal (the 8th) arrived in Linux 2.6.11; older kernels have 7 fields, steal then 0.
    if n < 7 {
        return Err(format!("{line:?} has {n} fields, expected at least 7"));
    }
    let [user, nice, system, idle, iowait, irq, softirq, steal] = f;
    let busy = [user, nice, system, irq, softirq, steal]
        .iter()
        .try_fold(0u64, |acc, v| acc.checked_add(*v))
        .ok_or("overflow")?;
    let total = busy
        .checked_add(idle)
        .and_then(|t| t.checked_add(iowait))
        .ok_or("overflow")?;
    Ok((busy, total))
}

/// How many per-core `cpuN` lines `/proc/stat` has: the host's online CPUs.
pub(crate) fn proc_stat_cores(text: &str) -> usize {
    text.lines()
        .filter(|l| {
            l.strip_prefix("cpu")
                // The id follows "cpu" directly; the aggregate line has a space there.
                .and_then(|rest| rest.split(char::is_whitespace).next())
                .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        })
        .count()
}

/// utime + stime of `/proc/self/stat`, in clock ticks. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its last `)`.
pub(crate) fn proc_self_ticks(text: &str) -> Result<u64, String> {
    let after = text
        .rfind(')')
        .map(|i| &text[i + 1..])
        .ok_or("no \")\" after the command name")?;
    // After the name come field 3 (state) onwards: utime is field 14, stime field 15.
    let mut it = after.split_whitespace().skip(11);
    let mut tick = |name: &str| -> Result<u64, String> {
        let w = it.next().ok_or_else(|| format!("no {name} field"))?;
        w.parse().map_err(|_| format!("bad {name} {w:?}"))
    };
    let utime = tick("utime")?;
    let stime = tick("stime")?;
    utime
        .checked_add(stime)
        .ok_or_else(|| "overflow".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uints(s: &str) -> Vec<u64> {
        parse_uints(s).unwrap()
    }

    #[test]
    fn parse_uint_follows_go_zero() {
        assert_eq!(parse_uint("0").unwrap(), 0);
        assert_eq!(parse_uint("123").unwrap(), 123);
        assert_eq!(parse_uint("-1").unwrap(), 0);
        assert_eq!(parse_uint("-18446744073709551616").unwrap(), 0);
        assert_eq!(parse_uint("18446744073709551616").unwrap(), 0);
        assert_eq!(parse_uint("9223372036854775807").unwrap(), i64::MAX as u64);
        let err = parse_uint("foo").unwrap_err();
        assert!(matches!(&err, CpuError::BadInt(s) if s == "foo"));
        assert_eq!(err.to_string(), "cgroup: bad int format: foo");
        assert!(matches!(parse_uint(""), Err(CpuError::BadInt(_))));
    }

    #[test]
    fn parse_uints_follows_go_zero() {
        assert!(uints("").is_empty());
        assert_eq!(uints("1,2,3"), [1, 2, 3]);
        assert_eq!(uints("1-3"), [1, 2, 3]);
        assert_eq!(uints("1-3,5,7-9"), [1, 2, 3, 5, 7, 8, 9]);
        assert_eq!(uints("3,1-3,1"), [3, 1, 2], "dedup keeps first-seen order");
        let err = parse_uints("foo").unwrap_err();
        assert_eq!(err.to_string(), "cgroup: bad int format: foo");
        for bad in ["1-bar", "bar-3", "3-1", "0,3-1"] {
            let err = parse_uints(bad).unwrap_err();
            assert!(
                matches!(&err, CpuError::BadIntList(s) if s == bad),
                "{bad}: {err}"
            );
            assert_eq!(
                err.to_string(),
                format!("cgroup: bad int list format: {bad}")
            );
        }
    }

    #[test]
    fn huge_ranges_are_rejected_not_allocated() {
        assert!(matches!(
            parse_uints("0-9223372036854775807"),
            Err(CpuError::BadIntList(_))
        ));
        assert_eq!(parse_uints("0-65535").unwrap().len(), 65536);
    }

    #[test]
    fn cpu_counts() {
        assert_eq!(count_cpus("0-3\n").unwrap(), Some(4));
        assert_eq!(count_cpus("0,2,4-5").unwrap(), Some(4));
        assert_eq!(count_cpus("").unwrap(), None);
        assert!(count_cpus("x").is_err());
    }

    #[test]
    fn cpu_max() {
        assert_eq!(parse_cpu_max("150000 100000").unwrap(), Some(1.5));
        assert_eq!(parse_cpu_max("max 100000").unwrap(), None);
        assert_eq!(parse_cpu_max("50000 100000\n").unwrap(), Some(0.5));
        assert!(parse_cpu_max("150000").is_err());
        assert!(parse_cpu_max("150000 100000 1").is_err());
        assert!(parse_cpu_max("abc 100000").is_err());
        assert!(parse_cpu_max("1000 0").is_err());
    }

    #[test]
    fn keyed_and_status_values() {
        let stat = "usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n";
        assert_eq!(keyed_value(stat, "usage_usec"), Some("1234"));
        assert_eq!(keyed_value(stat, "usage"), None);
        let status = "Name:\tx\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\n";
        assert_eq!(status_value(status, "Cpus_allowed_list"), Some("0-1"));
        assert_eq!(status_value(status, "Cpus_allowed"), Some("3"));
    }

    #[test]
    fn cgroup_lines() {
        assert_eq!(
            unified_path("1:cpu:/a\n0::/kube/pod1\n"),
            Some("/kube/pod1")
        );
        assert_eq!(unified_path("1:cpu:/a\n"), None);
        let lines = v1_lines("\n4:cpu,cpuacct:/docker/abc\n0::/\n").unwrap();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].has("cpuacct") && lines[0].has("cpu") && !lines[0].has("cpus"));
        assert_eq!(lines[0].path, "/docker/abc");
        assert!(v1_lines("4:cpu:/a:b\n").is_err());
        assert!(v1_lines("4:cpu\n").is_err());
    }

    #[test]
    fn proc_stat() {
        let text = "cpu  10 1 5 100 4 2 3 7 9 0\ncpu0 5 0 2 50 2 1 1 3 0 0\ncpu1 5 1 3 50 2 1 2 4 0 0\nintr 1\n";
        assert_eq!(proc_stat_times(text).unwrap(), (28, 132));
        assert_eq!(proc_stat_cores(text), 2);
        assert_eq!(proc_stat_times("cpu  1 2 3 4 5 6 7\n").unwrap(), (19, 28));
        assert!(proc_stat_times("cpu0 1 2 3 4 5 6 7 8\n").is_err());
        assert!(proc_stat_times("cpu  1 2 3 4 5 6\n").is_err());
        assert!(proc_stat_times("cpu  1 2 x 4 5 6 7 8\n").is_err());
    }

    #[test]
    fn proc_self_stat() {
        let text = "42 (my (odd) name) S 1 42 42 0 -1 4194304 98 0 0 0 150 3 0 0 20 0 1 0\n";
        assert_eq!(proc_self_ticks(text).unwrap(), 153);
        assert!(proc_self_ticks("42 (x) S 1 2").is_err());
        assert!(proc_self_ticks("no paren").is_err());
    }
}
